//! `PublishResult`: what one published event became, built for a whole batch in one call.
//!
//! A batch of 1,000 events returns 1,000 results, and building them as Python objects up
//! front cost more than encoding the events (decision 23). Here each result is a small Rust
//! object that keeps the batch and its index, so the event id, type and the enriched event
//! are read from the batch only when asked for.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice, PyString};

use super::encode::EncodedBatch;
use crate::kafka::delivery::Delivery;

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

/// Where the events of one encoded batch landed: (partition, offset) per event, in order.
///
/// A read-only sequence of tuples, kept as Rust data: `publish_results` reads it without
/// Python objects in between, and a tuple is made only for an item that is asked for: a list
/// of tuples per batch, and the garbage collector rescanning it, weighed on the publishing
/// thread (decision 33).
#[pyclass(
    name = "Deliveries",
    module = "tradecore_eventbus._core",
    frozen,
    sequence
)]
pub struct Deliveries(pub Vec<Delivery>);

fn pair(d: &Delivery) -> (i32, i64) {
    (d.partition, d.offset)
}

impl Deliveries {
    fn as_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.iter().map(pair))
    }
}

#[pymethods]
impl Deliveries {
    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(slice) = index.cast::<PySlice>() {
            return Ok(self.as_list(py)?.as_any().get_item(slice)?.unbind());
        }
        let i: isize = index.extract()?;
        let len = self.0.len() as isize;
        let at = if i < 0 { i + len } else { i };
        if !(0..len).contains(&at) {
            return Err(PyIndexError::new_err("delivery index out of range"));
        }
        Ok(pair(&self.0[at as usize])
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.as_list(py)?.try_iter().map(Bound::into_any)
    }

    /// Equal to any sequence with the same (partition, offset) pairs, lists included.
    fn __eq__<'py>(&self, py: Python<'py>, other: &Bound<'py, PyAny>) -> PyResult<bool> {
        if let Ok(other) = other.cast::<Deliveries>() {
            return Ok(self.0 == other.get().0);
        }
        match other.extract::<Vec<(i32, i64)>>() {
            Ok(pairs) => Ok(self.0.iter().map(pair).eq(pairs)),
            Err(_) => Ok(other.is_instance_of::<PyList>() && self.as_list(py)?.eq(other)?),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Deliveries({})", self.as_list(py)?.repr()?))
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
    deliveries: Bound<'py, PyAny>,
    indices: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyList>> {
    let owned: Vec<Delivery>;
    let deliveries: &[Delivery] = match deliveries.cast::<Deliveries>() {
        Ok(d) => &d.get().0,
        Err(_) => {
            owned = deliveries
                .extract::<Vec<(i32, i64)>>()?
                .into_iter()
                .map(|(partition, offset)| Delivery { partition, offset })
                .collect();
            &owned
        }
    };
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
    for (j, &Delivery { partition, offset }) in deliveries.iter().enumerate() {
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
