//! `Producer`: sends records and resolves one awaitable per call (one per batch).

use std::mem::ManuallyDrop;
use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rdkafka::message::{Header, OwnedHeaders};

use super::bridge::{awaitable, settle_later, Failure, Settler};
use super::convert::{extra_config, headers, optional_bytes, seconds};
use super::encode::{EncodedBatch, EncodedData};
use super::results::Deliveries;
use crate::kafka::delivery::Outcome;
use crate::kafka::error::Error;
use crate::kafka::producer::{KafkaProducer, OutRecord, PendingSend, RecordSource};
use crate::kafka::settings::ProducerSettings;
use crate::runtime::spawn_blocking;

#[pyclass(name = "Producer", module = "tradecore_eventbus._core", frozen)]
pub struct PyProducer {
    inner: ManuallyDrop<Arc<KafkaProducer>>,
}

#[pymethods]
impl PyProducer {
    #[new]
    #[pyo3(signature = (
        bootstrap_servers,
        *,
        client_id = "tradecore",
        acks = "all",
        compression_type = "lz4",
        linger_ms = 10,
        batch_size = 16384,
        enable_idempotence = true,
        delivery_timeout_ms = 30000,
        config = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        bootstrap_servers: String,
        client_id: &str,
        acks: &str,
        compression_type: &str,
        linger_ms: u32,
        batch_size: u32,
        enable_idempotence: bool,
        delivery_timeout_ms: u32,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let settings = ProducerSettings {
            bootstrap_servers,
            client_id: client_id.to_owned(),
            acks: acks.to_owned(),
            compression_type: compression_type.to_owned(),
            linger_ms,
            batch_size,
            enable_idempotence,
            delivery_timeout_ms,
            extra: extra_config(config)?,
        };
        Ok(PyProducer {
            inner: ManuallyDrop::new(KafkaProducer::new(&settings)?),
        })
    }

    /// Sends one record; the awaitable resolves to (partition, offset) once the broker
    /// acknowledged it, or raises a TransportError subclass.
    #[pyo3(signature = (topic, value, key = None, headers = None, partition = None))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        value: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
        partition: Option<i32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let record = OutRecord {
            key: match key {
                Some(k) => optional_bytes(k, "key")?,
                None => None,
            },
            value: optional_bytes(value, "value")?,
            headers: match headers {
                Some(h) => self::headers(h)?,
                None => None,
            },
            partition,
        };
        let (future, settler) = settle_later(py)?;
        let pending = self.inner.enqueue(topic, std::iter::once(record))?;
        self.inner.on_finished(pending, move |result| {
            settler.settle(match result {
                Ok(deliveries) => Ok((deliveries[0].partition, deliveries[0].offset)),
                Err(Error::Batch(outcomes)) => match outcomes.first() {
                    Some(Outcome::Failed(f)) => Err(Failure::Delivery(f.clone())),
                    _ => Err(Error::Batch(outcomes).into()),
                },
                Err(e) => Err(e.into()),
            })
        });
        Ok(future)
    }

    /// Sends many records to one topic in one call. `records` holds (key, value) or
    /// (key, value, headers) tuples. The awaitable resolves once, to the list of
    /// (partition, offset) in record order, or raises BatchDeliveryError whose `results`
    /// tell, record by record, what was delivered and what failed. `immediate`: the records do not
    /// wait for linger.ms once they are all handed to librdkafka (decision 95).
    #[pyo3(signature = (topic, records, *, immediate = false))]
    fn send_batch<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        records: &Bound<'py, PyAny>,
        immediate: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // First pass: take (owned) references to every key and value and build the headers;
        // second pass: borrow the bytes from those references while librdkafka copies them.
        let mut objects: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = Vec::new();
        let mut record_headers: Vec<Option<OwnedHeaders>> = Vec::new();
        for item in records.try_iter()? {
            let item = item?;
            let tuple = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err(
                    "each record must be a (key, value) or (key, value, headers) tuple",
                )
            })?;
            let n = tuple.len();
            if n != 2 && n != 3 {
                return Err(PyTypeError::new_err(format!(
                    "a record tuple has 2 or 3 items, not {n}"
                )));
            }
            objects.push((tuple.get_item(0)?, tuple.get_item(1)?));
            record_headers.push(if n == 3 {
                headers(&tuple.get_item(2)?)?
            } else {
                None
            });
        }
        let mut out_records = Vec::with_capacity(objects.len());
        for ((key, value), hdrs) in objects.iter().zip(record_headers) {
            out_records.push(OutRecord {
                key: optional_bytes(key, "key")?,
                value: optional_bytes(value, "value")?,
                headers: hdrs,
                partition: None,
            });
        }
        let (future, settler) = settle_later(py)?;
        let pending = self
            .inner
            .enqueue_with(topic, out_records.into_iter(), immediate)?;
        settle_with_deliveries(&self.inner, pending, settler);
        Ok(future)
    }

    /// Sends events encoded by `encode_events` (all, or those at `indices`), each with its
    /// key and the event_type / event_id / content-type headers. Resolves like
    /// `send_batch`, in the order of `indices`; `immediate` as there.
    #[pyo3(signature = (topic, batch, indices = None, *, immediate = false))]
    fn send_encoded<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        batch: PyRef<'py, EncodedBatch>,
        indices: Option<Vec<usize>>,
        immediate: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let picked: Vec<usize> = match indices {
            Some(list) => {
                if let Some(bad) = list.iter().find(|&&i| i >= batch.count()) {
                    return Err(PyIndexError::new_err(format!(
                        "no event {bad} in the batch"
                    )));
                }
                list
            }
            None => (0..batch.count()).collect(),
        };
        // The enqueue thread reads the encoded bytes (shared, not copied) and builds the
        // headers there, off the thread that holds the GIL.
        let source = EncodedRecords {
            data: Arc::clone(batch.data()),
            picked,
        };
        let (future, settler) = settle_later(py)?;
        let pending = self
            .inner
            .enqueue_source(topic, Box::new(source), immediate)?;
        settle_with_deliveries(&self.inner, pending, settler);
        Ok(future)
    }

    /// Waits until every record handed to this producer was answered by the broker.
    #[pyo3(signature = (timeout = 30.0))]
    fn flush<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let producer = Arc::clone(&self.inner);
        awaitable(py, async move {
            spawn_blocking(move || producer.flush(timeout)).await?;
            Ok(())
        })
    }

    /// Refuses new sends and waits for everything in flight. Idempotent.
    #[pyo3(signature = (timeout = 30.0))]
    fn close<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let producer = Arc::clone(&self.inner);
        awaitable(py, async move {
            spawn_blocking(move || producer.close(timeout)).await?;
            Ok(())
        })
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Records not yet answered by the broker.
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    /// Counters for health reporting.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("delivered", self.inner.delivered_count())?;
        d.set_item("failed", self.inner.failed_count())?;
        d.set_item("in_flight", self.inner.in_flight())?;
        d.set_item("client_errors", self.inner.health().error_count())?;
        d.set_item("last_error", self.inner.health().last_error())?;
        d.set_item(
            "authentication_error",
            self.inner.health().auth.current_failure(),
        )?;
        d.set_item("closed", self.inner.is_closed())?;
        Ok(d)
    }
}

impl Drop for PyProducer {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here; the field is not used afterwards.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        super::release(inner);
    }
}

/// Records of an encoded batch (those at `picked`, in that order), each with its key and the
/// event_type / event_id / content-type headers.
struct EncodedRecords {
    data: Arc<EncodedData>,
    picked: Vec<usize>,
}

impl RecordSource for EncodedRecords {
    fn len(&self) -> usize {
        self.picked.len()
    }

    fn record(&mut self, i: usize) -> OutRecord<'_> {
        let at = self.picked[i];
        // Headers are costly (librdkafka allocates and serializes each one, the broker stores
        // them; decision 31): only when the batch asked for them.
        let headers = self.data.headers(at).map(|pairs| {
            pairs
                .into_iter()
                .fold(OwnedHeaders::new_with_capacity(3), |h, (key, value)| {
                    h.insert(Header {
                        key,
                        value: Some(value),
                    })
                })
        });
        let headers = with_extra(headers, self.data.extra_headers(at));
        OutRecord {
            key: self.data.key_at(at),
            value: Some(self.data.value_at(at)),
            headers,
            partition: None,
        }
    }

    fn put_back(&mut self, _i: usize, _headers: Option<OwnedHeaders>) {
        // Built again from the batch when the record is asked for again.
    }
}

/// `headers` plus the record's extra headers (a trace context, ...), if it has any.
fn with_extra(headers: Option<OwnedHeaders>, extra: &[(String, Vec<u8>)]) -> Option<OwnedHeaders> {
    if extra.is_empty() {
        return headers;
    }
    let start = headers.unwrap_or_else(|| OwnedHeaders::new_with_capacity(extra.len()));
    Some(extra.iter().fold(start, |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value.as_slice()),
        })
    }))
}

/// Settles a batch send's future with its `Deliveries` straight from the thread that
/// received the broker's last answer.
fn settle_with_deliveries(producer: &KafkaProducer, pending: PendingSend, settler: Settler) {
    producer.on_finished(pending, move |result| {
        settler.settle(result.map(Deliveries).map_err(Failure::from))
    });
}
