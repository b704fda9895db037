//! Event enrichment and JSON encoding in one pass over the Python dicts, without building
//! any intermediate Python object: the publish path's per-event work in Rust.
//!
//! The output equals `json.dumps(enrich(event), separators=(",", ":"), ensure_ascii=False,
//! allow_nan=False)` up to float formatting (both are the shortest round-trip form).
//! Values JSON has no type for (datetime, UUID, Decimal, Enum, models, ...) are handed to
//! the Python `default` callable, as `json.dumps` would.
//!
//! An event that cannot be sent is reported with the field it failed at (`loc`), never
//! raised for the whole batch: the caller of each bad event gets its own error and the other
//! events go out (decision 51). NaN and infinities are refused (decision 52); so is nesting
//! deeper than `MAX_DEPTH`, which also bounds the recursion.
//!
//! `value` encodes one value (and says where it failed), `batch` holds the result; this
//! module checks each event's own fields and builds the batch.

mod batch;
mod value;

use std::sync::Arc;
use std::time::SystemTime;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::events::{utc_timestamp, uuid4_strings};
use batch::{Arena, Keys};
pub use batch::{EncodedBatch, EncodedData, ExtraHeaders};
use value::{Encoder, Enrichment, PathPart};

/// A str that cannot be sent as UTF-8 (it holds a lone surrogate).
const NOT_UTF8: &str = "{} must be valid UTF-8 text (it holds a lone surrogate)";

/// Why one event cannot be sent: (message, the field it is about).
type Problem = (String, Vec<PathPart>);

/// The events that could not be encoded: (index, message, loc as a Python tuple).
type Failures<'py> = Vec<(usize, String, Bound<'py, PyTuple>)>;

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

fn field(name: &str) -> Vec<PathPart> {
    vec![PathPart::Key(name.into())]
}

/// The event's `event_type`: a non-empty str.
fn event_type_of<'py>(
    dict: &Bound<'py, PyDict>,
) -> PyResult<Result<Bound<'py, PyString>, Problem>> {
    Ok(match dict.get_item("event_type")? {
        None => Err((
            "event_type is required (a non-empty str); the event was not sent".into(),
            field("event_type"),
        )),
        Some(t) => match t.cast_into::<PyString>() {
            Ok(s) => match s.to_str() {
                Ok(text) if !text.is_empty() => Ok(s),
                Ok(_) => Err((
                    "event_type must be a non-empty str, got an empty string".into(),
                    field("event_type"),
                )),
                Err(_) => Err((NOT_UTF8.replace("{}", "event_type"), field("event_type"))),
            },
            Err(e) => Err((
                format!(
                    "event_type must be a non-empty str, got {}",
                    type_name(e.into_inner().as_any())
                ),
                field("event_type"),
            )),
        },
    })
}

/// The caller's `event_id`: None when missing or None (one is generated), else a non-empty
/// str. Anything else is refused rather than replaced or sent as a non-string.
fn event_id_of<'py>(
    dict: &Bound<'py, PyDict>,
) -> PyResult<Result<Option<Bound<'py, PyString>>, Problem>> {
    Ok(match dict.get_item("event_id")? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.cast_into::<PyString>() {
            Ok(s) => match s.to_str() {
                Ok(text) if !text.is_empty() => Ok(Some(s)),
                Ok(_) => Err((
                    "event_id must be a non-empty str (or left out), got an empty string".into(),
                    field("event_id"),
                )),
                Err(_) => Err((NOT_UTF8.replace("{}", "event_id"), field("event_id"))),
            },
            Err(e) => Err((
                format!(
                    "event_id must be a non-empty str (or left out), got {}",
                    type_name(e.into_inner().as_any())
                ),
                field("event_id"),
            )),
        },
    })
}

fn loc_tuple<'py>(py: Python<'py>, loc: &[PathPart]) -> PyResult<Bound<'py, PyTuple>> {
    let parts: Vec<Bound<'py, PyAny>> = loc
        .iter()
        .map(|p| match p {
            PathPart::Key(k) => PyString::new(py, k).into_any(),
            PathPart::Index(i) => (*i)
                .into_pyobject(py)
                .map(|i| i.into_any())
                .unwrap_or_else(|_| py.None().into_bound(py)),
        })
        .collect();
    PyTuple::new(py, parts)
}

/// Enriches and encodes `events` (dicts). Returns the batch of the events that could be
/// encoded and the failures as [(index, message, loc)], `loc` being the field path the
/// failure is about (`()` for the event itself). A bad event never fails the call.
/// `keys`: one key for every event, or one per event (None: no key). `event_headers`: the
/// records carry event_type / event_id / content-type headers. `extra_headers`: one item per
/// event, None or a dict of more headers for its record (name: str or bytes value), such as
/// a trace context; read in this same call, so they cost no crossing of their own.
#[pyfunction]
#[pyo3(signature = (events, keys, default, *, event_headers = false, extra_headers = None))]
pub fn encode_events<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    default: &Bound<'py, PyAny>,
    event_headers: bool,
    extra_headers: Option<&Bound<'py, PyAny>>,
) -> PyResult<(EncodedBatch, Failures<'py>)> {
    let items: Vec<Bound<'py, PyAny>> = events.try_iter()?.collect::<PyResult<_>>()?;
    let n = items.len();
    let extra_items: Option<Vec<Bound<'py, PyAny>>> = match extra_headers {
        Some(given) if !given.is_none() => {
            let each: Vec<Bound<'py, PyAny>> = given.try_iter()?.collect::<PyResult<_>>()?;
            if each.len() != n {
                return Err(PyValueError::new_err(format!(
                    "extra_headers must have one item per event ({n}), got {}",
                    each.len()
                )));
            }
            Some(each)
        }
        _ => None,
    };
    // One key for all, or one per event; a key that is not a str fails only its event.
    let per_event_keys: Option<Vec<Result<Option<Vec<u8>>, String>>> =
        if keys.is_none() || keys.cast::<PyString>().is_ok() {
            None
        } else {
            let mut each = Vec::with_capacity(n);
            for k in keys.try_iter()? {
                let k = k?;
                each.push(if k.is_none() {
                    Ok(None)
                } else if let Ok(s) = k.cast::<PyString>() {
                    s.to_str()
                        .map(|text| Some(text.as_bytes().to_vec()))
                        .map_err(|_| NOT_UTF8.replace("{}", "partition_key"))
                } else {
                    Err(format!(
                        "partition_key must be a str, got {}",
                        type_name(&k)
                    ))
                });
            }
            Some(each)
        };
    let shared_key: Option<Vec<u8>> = if per_event_keys.is_none() && !keys.is_none() {
        Some(keys.cast::<PyString>()?.to_str()?.as_bytes().to_vec())
    } else {
        None
    };
    // Ids for events that come without one, made on first need (most callers set them).
    let mut fresh_ids: Vec<String> = Vec::new();
    let now = utc_timestamp(SystemTime::now());
    let mut enc = Encoder {
        default,
        buf: Vec::with_capacity(256),
    };
    let mut data = EncodedData {
        values: Arena::with_capacity(n, n * 256),
        ids: Arena::with_capacity(n, n * 36),
        types: Arena::with_capacity(n, n * 16),
        keys: match per_event_keys {
            Some(_) => Keys::Each(Vec::with_capacity(n)),
            None => Keys::Shared(shared_key),
        },
        with_headers: event_headers,
        extra: extra_items.as_ref().map(|_| Vec::with_capacity(n)),
    };
    let mut failures: Failures<'py> = Vec::new();
    let mut fail = |i: usize, (message, loc): Problem| -> PyResult<()> {
        failures.push((i, message, loc_tuple(py, &loc)?));
        Ok(())
    };
    for (i, item) in items.into_iter().enumerate() {
        let Ok(dict) = item.cast::<PyDict>() else {
            fail(
                i,
                (
                    format!("an event must be a dict, got {}", type_name(&item)),
                    Vec::new(),
                ),
            )?;
            continue;
        };
        let key = match &per_event_keys {
            Some(each) => match each.get(i) {
                Some(Ok(k)) => k.clone(),
                Some(Err(message)) => {
                    fail(i, (message.clone(), Vec::new()))?;
                    continue;
                }
                None => None,
            },
            None => None,
        };
        let event_type = match event_type_of(dict)? {
            Ok(t) => t,
            Err(problem) => {
                fail(i, problem)?;
                continue;
            }
        };
        let event_type = event_type.to_str()?;
        let given_id = match event_id_of(dict)? {
            Ok(id) => id,
            Err(problem) => {
                fail(i, problem)?;
                continue;
            }
        };
        let has_timestamp = truthy(dict.get_item("timestamp")?)?.is_some();
        let has_version = matches!(dict.get_item("version")?, Some(v) if !v.is_none());
        let id_added = given_id.is_none();
        if id_added && fresh_ids.is_empty() {
            fresh_ids = uuid4_strings(n);
        }
        let enrichment = Enrichment {
            event_id: id_added.then(|| fresh_ids[i].as_str()),
            timestamp: (!has_timestamp).then_some(now.as_str()),
            version: !has_version,
        };
        enc.buf.clear();
        if let Err(e) = enc.dict(dict, 0, Some(&enrichment)) {
            let message = format!(
                "event {event_type:?} cannot be encoded as JSON: {}",
                e.message(py)
            );
            fail(i, (message, e.loc()))?;
            continue;
        }
        data.values.push(&enc.buf);
        if let Keys::Each(each) = &mut data.keys {
            each.push(key);
        }
        match &given_id {
            Some(id) => data.ids.push(id.to_str()?.as_bytes()),
            None => data.ids.push(fresh_ids[i].as_bytes()),
        }
        data.types.push(event_type.as_bytes());
        if let (Some(each), Some(given)) = (&mut data.extra, &extra_items) {
            each.push(extra_headers_of(&given[i])?);
        }
    }
    let batch = EncodedBatch {
        data: Arc::new(data),
    };
    Ok((batch, failures))
}

/// One event's extra headers: None, or a dict of name (str) to value (str or bytes).
fn extra_headers_of(given: &Bound<'_, PyAny>) -> PyResult<ExtraHeaders> {
    if given.is_none() {
        return Ok(Vec::new());
    }
    let dict = given.cast::<PyDict>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "each item of extra_headers must be None or a dict, got {}",
            type_name(given)
        ))
    })?;
    let mut out = Vec::with_capacity(dict.len());
    for (name, value) in dict.iter() {
        let name = name
            .cast::<PyString>()
            .map_err(|_| pyo3::exceptions::PyTypeError::new_err("header names must be str"))?
            .to_str()?
            .to_owned();
        let value = match value.cast::<PyString>() {
            Ok(text) => text.to_str()?.as_bytes().to_vec(),
            Err(_) => value
                .cast::<pyo3::types::PyBytes>()
                .map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "header {name:?} must be str or bytes, got {}",
                        type_name(&value)
                    ))
                })?
                .as_bytes()
                .to_vec(),
        };
        out.push((name, value));
    }
    Ok(out)
}

fn truthy(v: Option<Bound<'_, PyAny>>) -> PyResult<Option<Bound<'_, PyAny>>> {
    match v {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}
