//! Record headers: owned as Rust bytes until Python asks, then built into Python objects.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

/// One header as a consumed record keeps it: name and value (None: a header without value).
pub type Header = (String, Option<Vec<u8>>);

/// A header as librdkafka hands it over. Kafka names are meant to be UTF-8 but nothing on
/// the way checks that; a name that is not is read with U+FFFD for the bad bytes, as the
/// Java client reads it, instead of failing the whole batch.
pub fn from_raw(name: &[u8], value: Option<&[u8]>) -> Header {
    (
        String::from_utf8_lossy(name).into_owned(),
        value.map(<[u8]>::to_vec),
    )
}

/// The headers as a list of (name, value) pairs, in the order they were sent.
pub fn to_list<'py>(py: Python<'py>, headers: &[Header]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
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

/// The value of the first header called `name`, or None (also when that header has none).
pub fn first<'py>(py: Python<'py>, headers: &[Header], name: &str) -> Option<Bound<'py, PyBytes>> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_ref().map(|v| PyBytes::new(py, v)))
}
