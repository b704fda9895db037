//! `PublishResult`: what one published event became, built for a whole batch in one call.
//!
//! A batch of 1,000 events returns 1,000 results; building them as Python dataclasses cost
//! more than encoding the events. Here each result is a small Rust object that keeps the
//! batch and its index, so the event id, type and the enriched event are read from the batch
//! only when asked for.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::encode::EncodedBatch;

#[pyclass(name = "PublishResult", module = "tradecore_eventbus._core", frozen)]
pub struct PublishResult {
    /// The channel as the caller named it.
    #[pyo3(get)]
    channel: Py<PyString>,
    /// The Kafka topic (the channel with the prefix applied).
    #[pyo3(get)]
    topic: Py<PyString>,
    #[pyo3(get)]
    partition: i32,
    #[pyo3(get)]
    offset: i64,
    /// The partition key the event was sent with, if any.
    #[pyo3(get)]
    key: Option<Py<PyAny>>,
    /// The prepared batch: an `EncodedBatch`, or any object with `event_id(i)`,
    /// `event_type(i)` and `event(i)`.
    source: Py<PyAny>,
    index: usize,
}

impl PublishResult {
    fn batch<'py>(&self, source: &Bound<'py, PyAny>) -> Option<PyRef<'py, EncodedBatch>> {
        source.cast::<EncodedBatch>().ok().map(|b| b.borrow())
    }

    fn fields(&self, py: Python<'_>) -> PyResult<(String, String, String, String, i32, i64)> {
        Ok((
            self.channel.bind(py).to_str()?.to_owned(),
            self.topic.bind(py).to_str()?.to_owned(),
            self.event_id(py)?.extract()?,
            self.event_type(py)?.extract()?,
            self.partition,
            self.offset,
        ))
    }
}

#[pymethods]
impl PublishResult {
    #[getter]
    fn event_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = self.source.bind(py);
        match self.batch(source) {
            Some(b) => Ok(PyString::new(py, b.id_at(self.index).unwrap_or_default()).into_any()),
            None => source.call_method1("event_id", (self.index,)),
        }
    }

    #[getter]
    fn event_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = self.source.bind(py);
        match self.batch(source) {
            Some(b) => Ok(PyString::new(py, b.type_at(self.index).unwrap_or_default()).into_any()),
            None => source.call_method1("event_type", (self.index,)),
        }
    }

    /// The enriched event as sent (a new dict on every access).
    #[getter]
    fn event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.source.bind(py).call_method1("event", (self.index,))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (channel, topic, event_id, event_type, partition, offset) = self.fields(py)?;
        let key = match &self.key {
            Some(k) => k.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "PublishResult(channel={channel:?}, topic={topic:?}, event_id={event_id:?}, \
             event_type={event_type:?}, partition={partition}, offset={offset}, key={key})"
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<PublishResult>() else {
            return Ok(false);
        };
        let other = other.get();
        let keys_equal = match (&self.key, &other.key) {
            (None, None) => true,
            (Some(a), Some(b)) => a.bind(py).eq(b.bind(py))?,
            _ => false,
        };
        Ok(keys_equal && self.fields(py)? == other.fields(py)?)
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        (self.topic.bind(py), self.partition, self.offset)
            .into_pyobject(py)?
            .hash()
    }
}

/// Results for a sent batch: `deliveries[j]` is the (partition, offset) of the event at
/// `indices[j]` of `source` (or at `j` when `indices` is None). `keys` is one key for all
/// events or a list with one per delivery.
#[pyfunction]
#[pyo3(signature = (channel, topic, keys, source, deliveries, indices = None))]
pub fn publish_results<'py>(
    py: Python<'py>,
    channel: Bound<'py, PyString>,
    topic: Bound<'py, PyString>,
    keys: Bound<'py, PyAny>,
    source: Bound<'py, PyAny>,
    deliveries: Vec<(i32, i64)>,
    indices: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyList>> {
    if let Some(ix) = &indices {
        if ix.len() != deliveries.len() {
            return Err(PyIndexError::new_err(format!(
                "{} deliveries for {} indices",
                deliveries.len(),
                ix.len()
            )));
        }
    }
    let per_event_keys = keys.cast::<PyList>().ok();
    if let Some(list) = &per_event_keys {
        if list.len() != deliveries.len() {
            return Err(PyIndexError::new_err(format!(
                "{} keys for {} deliveries",
                list.len(),
                deliveries.len()
            )));
        }
    }
    let shared_key = if keys.is_none() || per_event_keys.is_some() {
        None
    } else {
        Some(keys.clone().unbind())
    };
    let channel = channel.unbind();
    let topic = topic.unbind();
    let source = source.unbind();
    let mut out = Vec::with_capacity(deliveries.len());
    for (j, (partition, offset)) in deliveries.into_iter().enumerate() {
        let key = match &per_event_keys {
            Some(list) => {
                let k = list.get_item(j)?;
                (!k.is_none()).then(|| k.unbind())
            }
            None => shared_key.as_ref().map(|k| k.clone_ref(py)),
        };
        out.push(PublishResult {
            channel: channel.clone_ref(py),
            topic: topic.clone_ref(py),
            partition,
            offset,
            key,
            source: source.clone_ref(py),
            index: indices.as_ref().map_or(j, |ix| ix[j]),
        });
    }
    PyList::new(py, out)
}
