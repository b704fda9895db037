//! `Record`: one consumed Kafka record as Python sees it.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::kafka::consumer::RecordData;

#[pyclass(name = "Record", module = "tradecore_eventbus._core", frozen)]
pub struct PyRecord {
    #[pyo3(get)]
    topic: Py<PyString>,
    #[pyo3(get)]
    partition: i32,
    #[pyo3(get)]
    offset: i64,
    #[pyo3(get)]
    key: Option<Py<PyBytes>>,
    #[pyo3(get)]
    value: Option<Py<PyBytes>>,
    /// Milliseconds since the epoch, when the broker reported one.
    #[pyo3(get)]
    timestamp: Option<i64>,
    // Built into Python objects only when asked for: most consumers read one header at most.
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl PyRecord {
    pub fn from_data(py: Python<'_>, data: RecordData, topic: &Bound<'_, PyString>) -> Self {
        PyRecord {
            topic: topic.clone().unbind(),
            partition: data.partition,
            offset: data.offset,
            key: data.key.map(|k| PyBytes::new(py, &k).unbind()),
            value: data.value.map(|v| PyBytes::new(py, &v).unbind()),
            timestamp: data.timestamp_ms,
            headers: data.headers,
        }
    }

    pub fn position(&self, py: Python<'_>) -> PyResult<(String, i32, i64)> {
        Ok((
            self.topic.bind(py).to_str()?.to_owned(),
            self.partition,
            self.offset,
        ))
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
    /// The headers as a list of (name, value) pairs, in the order they were sent.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (name, value) in &self.headers {
            let value = value.as_ref().map(|v| PyBytes::new(py, v));
            list.append(PyTuple::new(
                py,
                [
                    name.into_pyobject(py)?.into_any(),
                    value.into_pyobject(py)?.into_any(),
                ],
            )?)?;
        }
        Ok(list)
    }

    /// The value of the first header called `name`, or None.
    fn header<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyBytes>> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_ref().map(|v| PyBytes::new(py, v)))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Record(topic={:?}, partition={}, offset={}, value_len={})",
            self.topic.bind(py).to_string(),
            self.partition,
            self.offset,
            self.value
                .as_ref()
                .map(|v| v.bind(py).as_bytes().len())
                .unwrap_or(0)
        )
    }
}
