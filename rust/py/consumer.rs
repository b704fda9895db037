//! `Consumer`: `take()` returns what is already here without waiting (and without the GIL
//! while librdkafka is polled); `wait()` is the only awaitable, so cancelling it never loses
//! a record. `tradecore_eventbus.transport.KafkaConsumer.poll_batch` combines the two.

use std::mem::ManuallyDrop;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::bridge::{awaitable, settle_later};
use super::convert::{extra_config, seconds};
use super::record::PyRecord;
use crate::kafka::consumer::KafkaConsumer;
use crate::kafka::settings::{CommitSettings, ConsumerSettings, OffsetReset};
use crate::runtime::spawn_blocking;

#[pyclass(name = "Consumer", module = "tradecore_eventbus._core", frozen)]
pub struct PyConsumer {
    inner: ManuallyDrop<Arc<KafkaConsumer>>,
}

#[pymethods]
impl PyConsumer {
    #[new]
    #[pyo3(signature = (
        bootstrap_servers,
        group_id,
        *,
        client_id = "tradecore",
        auto_offset_reset = "earliest",
        enable_commit = true,
        commit_batch_size = 100,
        commit_interval_ms = 5000,
        session_timeout_ms = 45000,
        heartbeat_interval_ms = 3000,
        max_poll_records = 500,
        partition_assignment_strategy = "cooperative-sticky",
        group_instance_id = None,
        config = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        bootstrap_servers: String,
        group_id: String,
        client_id: &str,
        auto_offset_reset: &str,
        enable_commit: bool,
        commit_batch_size: usize,
        commit_interval_ms: u32,
        session_timeout_ms: u32,
        heartbeat_interval_ms: u32,
        max_poll_records: usize,
        partition_assignment_strategy: &str,
        group_instance_id: Option<String>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let settings = ConsumerSettings {
            bootstrap_servers,
            group_id,
            client_id: client_id.to_owned(),
            auto_offset_reset: OffsetReset::parse(auto_offset_reset)?,
            commit: CommitSettings {
                enabled: enable_commit,
                batch_size: commit_batch_size,
                interval_ms: commit_interval_ms,
            },
            session_timeout_ms,
            heartbeat_interval_ms,
            max_poll_records,
            partition_assignment_strategy: partition_assignment_strategy.to_owned(),
            group_instance_id,
            extra: extra_config(config)?,
        };
        Ok(PyConsumer {
            inner: ManuallyDrop::new(KafkaConsumer::new(&settings)?),
        })
    }

    fn subscribe(&self, topics: Vec<String>) -> PyResult<()> {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        Ok(self.inner.subscribe(&refs)?)
    }

    /// Resolves once the group assigned this consumer its partitions (possibly none) and
    /// their start offsets are fixed; raises TransportTimeoutError after `timeout` seconds,
    /// and at once FencedInstanceError (another live member has this group.instance.id) or
    /// the error that refused the join (authorization, an unusable group id).
    fn wait_assigned<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let consumer = Arc::clone(&self.inner);
        awaitable(py, async move {
            consumer.wait_assigned(timeout).await?;
            Ok(())
        })
    }

    /// Up to `max_records` records that have already arrived (empty list if none).
    /// Never waits for the network. With `decode_events`, each record's `event` holds its
    /// value decoded as an event object (one pass in Rust for the whole batch instead of a
    /// `json.loads` per record), or None where the value is not one.
    #[pyo3(signature = (max_records = None, *, decode_events = false))]
    fn take<'py>(
        &self,
        py: Python<'py>,
        max_records: Option<usize>,
        decode_events: bool,
    ) -> PyResult<Vec<PyRecord>> {
        let max = max_records.unwrap_or(self.inner.max_poll_records());
        let consumer = Arc::clone(&self.inner);
        let data = py.detach(move || consumer.drain(max))?;
        let mut out = Vec::with_capacity(data.len());
        let mut topic: Option<(std::sync::Arc<str>, Bound<'py, PyString>)> = None;
        for record in data {
            let py_topic = match &topic {
                Some((name, s)) if Arc::ptr_eq(name, &record.topic) || **name == *record.topic => {
                    s.clone()
                }
                _ => {
                    let s = PyString::new(py, &record.topic);
                    topic = Some((record.topic.clone(), s.clone()));
                    s
                }
            };
            out.push(PyRecord::from_data(py, record, &py_topic, decode_events));
        }
        Ok(out)
    }

    /// Resolves to True when records or events may be waiting (call `take`), False after
    /// `timeout` seconds or when closed. Cancel-safe.
    fn wait<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let (future, settler) = settle_later(py)?;
        self.inner
            .wait_then(timeout, move |woken| settler.settle(Ok(woken)));
        Ok(future)
    }

    /// Marks records processed (at-least-once): their offsets are committed once every
    /// earlier record of their partition is processed too. Returns how many counted.
    fn mark_processed(&self, py: Python<'_>, records: Vec<PyRef<'_, PyRecord>>) -> PyResult<usize> {
        let mut positions = Vec::with_capacity(records.len());
        for r in &records {
            positions.push((r.topic(py).to_str()?, r.partition(), r.offset()));
        }
        Ok(self.inner.mark_processed(positions)?)
    }

    /// Commits the processed offsets now and waits for the broker.
    fn commit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = Arc::clone(&self.inner);
        awaitable(py, async move {
            spawn_blocking(move || consumer.commit_sync()).await?;
            Ok(())
        })
    }

    /// Reads `topic` without joining the group: assigns every partition from the first record
    /// at or after `since_ms` (epoch milliseconds). Resolves to [(partition, start, end)],
    /// `end` being the partition's end offset now.
    #[pyo3(signature = (topic, since_ms, timeout = 10.0))]
    fn assign_from_time<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        since_ms: i64,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let consumer = Arc::clone(&self.inner);
        awaitable(py, async move {
            Ok(
                spawn_blocking(move || consumer.assign_from_time(&topic, since_ms, timeout))
                    .await?,
            )
        })
    }

    /// Stops fetching from the given (topic, partition) pairs, or from all assigned ones.
    #[pyo3(signature = (partitions = None))]
    fn pause(&self, partitions: Option<Vec<(String, i32)>>) -> PyResult<()> {
        Ok(self.inner.pause(partitions.as_deref())?)
    }

    #[pyo3(signature = (partitions = None))]
    fn resume(&self, partitions: Option<Vec<(String, i32)>>) -> PyResult<()> {
        Ok(self.inner.resume(partitions.as_deref())?)
    }

    fn assignment(&self, py: Python<'_>) -> PyResult<Vec<(String, i32)>> {
        // librdkafka answers from its own thread: wait for it without the GIL.
        let consumer = Arc::clone(&self.inner);
        Ok(py.detach(move || consumer.assignment())?)
    }

    /// [(topic, partition, lag)] for the assigned partitions whose lag is known: how many
    /// records are behind the next one this consumer hands out, from the high watermark
    /// librdkafka last fetched (nothing is asked of the broker). A partition not fetched
    /// from yet is left out.
    fn lag(&self, py: Python<'_>) -> PyResult<Vec<(String, i32, i64)>> {
        // Reading the assignment waits for librdkafka's main thread: not with the GIL.
        let consumer = Arc::clone(&self.inner);
        Ok(py.detach(move || consumer.lag())?)
    }

    /// Commits what was processed, leaves the group. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = Arc::clone(&self.inner);
        awaitable(py, async move {
            spawn_blocking(move || consumer.close()).await?;
            Ok(())
        })
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether the group has assigned this consumer its partitions (possibly none) since
    /// `subscribe`: from then on it is live.
    #[getter]
    fn assigned(&self) -> bool {
        self.inner.is_assigned()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("received", s.received.load(Relaxed))?;
        d.set_item("processed", s.processed.load(Relaxed))?;
        d.set_item("commit_requests", s.commit_requests.load(Relaxed))?;
        d.set_item("commits", s.commits.load(Relaxed))?;
        d.set_item("commit_failures", s.commit_failures.load(Relaxed))?;
        d.set_item("consume_errors", s.consume_errors.load(Relaxed))?;
        d.set_item("rebalances", s.rebalances.load(Relaxed))?;
        d.set_item("client_errors", self.inner.health().error_count())?;
        d.set_item("last_error", self.inner.health().last_error())?;
        d.set_item(
            "authentication_error",
            self.inner.health().auth.current_failure(),
        )?;
        d.set_item("closed", self.inner.is_closed())?;
        d.set_item("assigned", self.inner.is_assigned())?;
        d.set_item(
            "fatal_error",
            self.inner.fatal_error().map(ToString::to_string),
        )?;
        Ok(d)
    }
}

impl Drop for PyConsumer {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here; the field is not used afterwards.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        super::release(inner);
    }
}
