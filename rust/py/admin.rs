//! `Admin`: topic creation, listing and the metadata ping.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::bridge::awaitable;
use super::convert::{extra_config, seconds};
use crate::kafka::admin::{KafkaAdmin, TopicCreation, TopicSpec};

/// (name, partitions, replication factor, topic configs) as Python passes it.
type TopicTuple = (String, i32, i32, Option<HashMap<String, String>>);

#[pyclass(name = "Admin", module = "tradecore_eventbus._core", frozen)]
pub struct PyAdmin {
    inner: ManuallyDrop<Arc<KafkaAdmin>>,
}

#[pymethods]
impl PyAdmin {
    #[new]
    #[pyo3(signature = (bootstrap_servers, *, client_id = "tradecore-admin", config = None))]
    fn new(
        bootstrap_servers: String,
        client_id: &str,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let extra = extra_config(config)?;
        Ok(PyAdmin {
            inner: ManuallyDrop::new(KafkaAdmin::new(&bootstrap_servers, client_id, &extra)?),
        })
    }

    /// Creates topics given as (name, partitions, replication_factor, configs) tuples.
    /// Resolves to {name: "created" | "exists"}.
    #[pyo3(signature = (topics, timeout = 30.0))]
    fn create_topics<'py>(
        &self,
        py: Python<'py>,
        topics: Vec<TopicTuple>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let specs: Vec<TopicSpec> = topics
            .into_iter()
            .map(|(name, partitions, replication_factor, configs)| {
                let mut configs: Vec<(String, String)> =
                    configs.unwrap_or_default().into_iter().collect();
                configs.sort();
                TopicSpec {
                    name,
                    partitions,
                    replication_factor,
                    configs,
                }
            })
            .collect();
        let admin = Arc::clone(&self.inner);
        awaitable(py, async move {
            let results = admin.create_topics(&specs, timeout).await?;
            Ok(results
                .into_iter()
                .map(|(name, how)| {
                    let how = match how {
                        TopicCreation::Created => "created",
                        TopicCreation::AlreadyExists => "exists",
                    };
                    (name, how)
                })
                .collect::<HashMap<String, &'static str>>())
        })
    }

    /// Resolves to the topic's configuration entries that differ from the broker defaults.
    #[pyo3(signature = (topic, timeout = 10.0))]
    fn describe_topic<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let admin = Arc::clone(&self.inner);
        awaitable(py, async move {
            let entries = admin.describe_topic(&topic, timeout).await?;
            Ok(entries.into_iter().collect::<HashMap<String, String>>())
        })
    }

    /// Resolves to {topic: partition count}.
    #[pyo3(signature = (timeout = 10.0))]
    fn list_topics<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let admin = Arc::clone(&self.inner);
        awaitable(py, async move {
            let topics = admin
                .guarded("list topics", move |a| a.list_topics(timeout))
                .await?;
            Ok(topics.into_iter().collect::<HashMap<String, usize>>())
        })
    }

    /// A metadata round trip; resolves to the number of brokers, or raises
    /// (BrokerUnavailableError / TransportTimeoutError) within `timeout` seconds.
    #[pyo3(signature = (timeout = 5.0))]
    fn ping<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let admin = Arc::clone(&self.inner);
        awaitable(py, async move {
            Ok(admin
                .guarded("metadata ping", move |a| a.ping(timeout))
                .await?)
        })
    }

    /// Counters for health reporting: client_errors, last_error, authentication_error (the
    /// broker's refusal of the credentials while it stands, else None).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let health = self.inner.health();
        let d = PyDict::new(py);
        d.set_item("client_errors", health.error_count())?;
        d.set_item("last_error", health.last_error())?;
        d.set_item("authentication_error", health.auth.current_failure())?;
        Ok(d)
    }
}

impl Drop for PyAdmin {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here; the field is not used afterwards.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        super::release(inner);
    }
}
