//! Small conversions shared by the bindings.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyString, PyTuple};
use rdkafka::message::{Header, OwnedHeaders};

use crate::kafka::error::Error;

/// Extra librdkafka properties from a dict; values may be str, int, float or bool.
pub fn extra_config(config: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(config) = config {
        for (k, v) in config.iter() {
            let key: String = k.extract()?;
            let value = if let Ok(b) = v.cast::<PyBool>() {
                if b.is_true() { "true" } else { "false" }.to_owned()
            } else {
                v.str()?.to_str()?.to_owned()
            };
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Seconds from Python as a Duration; negative, non-finite or unrepresentable values are
/// refused (`Duration::from_secs_f64` would panic on the last).
pub fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::InvalidArgument(format!(
            "{what} must be a non-negative number of seconds, not {value}"
        ))
        .into());
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::InvalidArgument(format!("{what} is too large: {value} seconds")).into())
}

/// Bytes of an optional key or value: bytes, or str (sent as UTF-8), or None.
pub fn optional_bytes<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Option<&'a [u8]>> {
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(s.to_str()?.as_bytes()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be bytes, str or None, not {}",
        obj.get_type().name()?
    )))
}

/// Record headers from a dict or a sequence of (name, value) pairs.
pub fn headers(obj: &Bound<'_, PyAny>) -> PyResult<Option<OwnedHeaders>> {
    if obj.is_none() {
        return Ok(None);
    }
    let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = if let Ok(d) = obj.cast::<PyDict>() {
        d.iter().collect()
    } else {
        let mut v = Vec::new();
        for item in obj.try_iter()? {
            let item = item?;
            let pair = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err("headers must be a dict or a sequence of (name, value) tuples")
            })?;
            if pair.len() != 2 {
                return Err(PyTypeError::new_err(
                    "each header must be a (name, value) pair",
                ));
            }
            v.push((pair.get_item(0)?, pair.get_item(1)?));
        }
        v
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut out = OwnedHeaders::new_with_capacity(pairs.len());
    for (name, value) in &pairs {
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("header names must be str"))?
            .to_str()?;
        let value = optional_bytes(value, "a header value")?;
        out = out.insert(Header { key: name, value });
    }
    Ok(Some(out))
}
