//! `Record`: one consumed Kafka record as Python sees it.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::kafka::consumer::RecordData;
use crate::wire::event::decode_event;
use crate::wire::headers::{self, Header};

#[pyclass(name = "Record", module = "tradecore_eventbus._core", frozen)]
pub struct PyRecord {
    #[pyo3(get)]
    topic: Py<PyString>,
    #[pyo3(get)]
    partition: i32,
    #[pyo3(get)]
    offset: i64,
    // Key and value stay Rust bytes until read: the subscription reads `event` instead, and
    // a bytes object per field would be an allocation and a copy per record for nothing.
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Milliseconds since the epoch, when the broker reported one.
    #[pyo3(get)]
    timestamp: Option<i64>,
    // Built into Python objects only when asked for: most consumers read one header at most.
    headers: Vec<Header>,
    /// The value decoded as an event object, when the batch was taken with
    /// `decode_events=True` and the value is one (see `decode_event`).
    #[pyo3(get)]
    event: Option<Py<PyDict>>,
}

impl PyRecord {
    pub fn from_data(
        py: Python<'_>,
        data: RecordData,
        topic: &Bound<'_, PyString>,
        decode_events: bool,
    ) -> Self {
        let event = match (&data.value, decode_events) {
            (Some(v), true) => decode_event(py, v).map(Bound::unbind),
            _ => None,
        };
        PyRecord {
            event,
            topic: topic.clone().unbind(),
            partition: data.partition,
            offset: data.offset,
            key: data.key,
            value: data.value,
            timestamp: data.timestamp_ms,
            headers: data.headers,
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }

    pub fn topic<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        self.topic.bind(py)
    }
}

#[pymethods]
impl PyRecord {
    /// The key (a new bytes object on each read), or None.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.key.as_deref().map(|k| PyBytes::new(py, k))
    }

    /// The value (a new bytes object on each read), or None for a tombstone.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.value.as_deref().map(|v| PyBytes::new(py, v))
    }

    /// The headers as a list of (name, value) pairs, in the order they were sent.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        headers::to_list(py, &self.headers)
    }

    /// The value of the first header called `name`, or None.
    fn header<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyBytes>> {
        headers::first(py, &self.headers, name)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Record(topic={:?}, partition={}, offset={}, value_len={})",
            self.topic.bind(py).to_string(),
            self.partition,
            self.offset,
            self.value.as_ref().map_or(0, Vec::len)
        )
    }
}
