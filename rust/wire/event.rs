//! A record value decoded as an event, per batch, straight into Python objects.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Parses a record value the way the EventBus reads events: a JSON object with a non-empty
/// string `event_type`. `None` means "not that": the caller decodes the value itself
/// (`envelope.decode`), which accepts the same JSON and gives the precise error otherwise, so
/// nothing is ever dropped here. The parser is jiter (pydantic's): `NaN`/`Infinity`, big
/// integers, key order and last-duplicate-wins all as `json.loads` has them.
pub fn decode_event<'py>(py: Python<'py>, value: &[u8]) -> Option<Bound<'py, PyDict>> {
    let parse = jiter::PythonParse {
        allow_inf_nan: true,
        // Keys repeat from event to event; values (ids, timestamps) mostly do not, and
        // caching them costs a hash and a lock each.
        cache_mode: jiter::StringCacheMode::Keys,
        ..jiter::PythonParse::default()
    };
    let object = parse
        .python_parse(py, value)
        .ok()?
        .cast_into::<PyDict>()
        .ok()?;
    let event_type = object.get_item("event_type").ok()??;
    let event_type = event_type.cast::<PyString>().ok()?;
    if event_type.to_str().map_or(true, str::is_empty) {
        return None;
    }
    Some(object)
}
