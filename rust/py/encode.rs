//! Event enrichment and JSON encoding in one pass over the Python dicts, without building
//! any intermediate Python object: the publish path's per-event work in Rust.
//!
//! The output equals `json.dumps(enrich(event), separators=(",", ":"), ensure_ascii=False,
//! allow_nan=False)` up to float formatting (both are the shortest round-trip form).
//! Values JSON has no type for (datetime, UUID, Decimal, Enum, models, ...) are handed to
//! the Python `default` callable, as `json.dumps` would.

use std::time::SystemTime;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use std::sync::Arc;

use crate::events::{utc_timestamp, uuid4_strings};

const MAX_DEPTH: usize = 64;

/// Byte strings stored end to end in one buffer: a batch of 1,000 events costs a handful of
/// allocations instead of thousands (the publish path was spending a quarter of its time in
/// malloc and free).
#[derive(Default)]
pub struct Arena {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Arena {
    fn with_capacity(items: usize, bytes: usize) -> Self {
        Arena {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(items),
        }
    }

    fn push(&mut self, item: &[u8]) {
        self.data.extend_from_slice(item);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }

    /// Item `i` of an arena that only ever received `&str`s.
    fn str(&self, i: usize) -> Option<&str> {
        self.get(i)
            .map(|b| std::str::from_utf8(b).unwrap_or_default())
    }
}

enum Keys {
    /// One key (or none) for every event.
    Shared(Option<Vec<u8>>),
    /// One per event; `None` items have no key.
    Each(Vec<Option<Vec<u8>>>),
}

/// The bytes of encoded events, shared between the Python object and the producer's enqueue
/// thread (which reads them without the GIL).
pub struct EncodedData {
    values: Arena,
    ids: Arena,
    types: Arena,
    keys: Keys,
    /// Whether records carry the event_type / event_id / content-type headers.
    with_headers: bool,
}

impl EncodedData {
    pub fn count(&self) -> usize {
        self.values.len()
    }

    pub fn value_at(&self, i: usize) -> &[u8] {
        self.values.get(i).unwrap_or_default()
    }

    pub fn key_at(&self, i: usize) -> Option<&[u8]> {
        match &self.keys {
            Keys::Shared(k) => k.as_deref(),
            Keys::Each(ks) => ks.get(i).and_then(|k| k.as_deref()),
        }
    }

    /// The headers of record `i`, if the batch was encoded with them.
    pub fn headers(&self, i: usize) -> Option<[(&'static str, &[u8]); 3]> {
        self.with_headers.then(|| {
            [
                ("event_type", self.types.get(i).unwrap_or_default()),
                ("event_id", self.ids.get(i).unwrap_or_default()),
                ("content-type", b"application/json"),
            ]
        })
    }
}

/// Encoded events, kept in Rust until the producer copies them into librdkafka.
#[pyclass(name = "EncodedBatch", module = "tradecore_eventbus._core", frozen)]
pub struct EncodedBatch {
    data: Arc<EncodedData>,
    /// What enrichment added to each event (for `event(i)`): id, timestamp, version.
    added: Vec<(bool, bool, bool)>,
    /// The timestamp given to events that had none.
    now: String,
    originals: Vec<Py<PyAny>>,
}

impl EncodedBatch {
    pub fn data(&self) -> &Arc<EncodedData> {
        &self.data
    }

    pub fn count(&self) -> usize {
        self.data.count()
    }

    pub fn value_at(&self, i: usize) -> &[u8] {
        self.data.value_at(i)
    }

    pub fn key_at(&self, i: usize) -> Option<&[u8]> {
        self.data.key_at(i)
    }

    pub fn id_at(&self, i: usize) -> Option<&str> {
        self.data.ids.str(i)
    }

    pub fn type_at(&self, i: usize) -> Option<&str> {
        self.data.types.str(i)
    }

    pub fn headers(&self, i: usize) -> Option<[(&'static str, &[u8]); 3]> {
        self.data.headers(i)
    }
}

fn no_event(i: usize) -> PyErr {
    pyo3::exceptions::PyIndexError::new_err(format!("no event {i} in the batch"))
}

#[pymethods]
impl EncodedBatch {
    fn __len__(&self) -> usize {
        self.count()
    }

    fn event_id(&self, i: usize) -> PyResult<&str> {
        self.id_at(i).ok_or_else(|| no_event(i))
    }

    fn event_type(&self, i: usize) -> PyResult<&str> {
        self.type_at(i).ok_or_else(|| no_event(i))
    }

    /// Event `i` as (key, value, headers), the shape the producers take.
    fn record<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyTuple>> {
        let value = self.data.values.get(i).ok_or_else(|| no_event(i))?;
        let headers = PyList::empty(py);
        for (name, v) in self.headers(i).into_iter().flatten() {
            headers.append((name, pyo3::types::PyBytes::new(py, v)))?;
        }
        PyTuple::new(
            py,
            [
                self.key_at(i)
                    .map(|k| pyo3::types::PyBytes::new(py, k).into_any())
                    .unwrap_or_else(|| py.None().into_bound(py)),
                pyo3::types::PyBytes::new(py, value).into_any(),
                headers.into_any(),
            ],
        )
    }

    /// Event `i` as a dict: the caller's fields plus what enrichment added (built on demand).
    fn event<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        let original = self
            .originals
            .get(i)
            .ok_or_else(|| no_event(i))?
            .bind(py)
            .cast::<PyDict>()?;
        let out = original.copy()?;
        let (id_added, timestamp_added, version_added) = self.added[i];
        if id_added {
            out.set_item("event_id", self.id_at(i))?;
        }
        if timestamp_added {
            out.set_item("timestamp", &self.now)?;
        }
        if version_added {
            out.set_item("version", 1)?;
        }
        Ok(out)
    }
}

struct Encoder<'a, 'py> {
    default: &'a Bound<'py, PyAny>,
    buf: Vec<u8>,
}

impl<'py> Encoder<'_, 'py> {
    fn string(&mut self, s: &str) {
        // serde_json's escaping is exactly JSON's (UTF-8 kept as is).
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    fn value(&mut self, v: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        if depth > MAX_DEPTH {
            return Err(PyTypeError::new_err(
                "the event is nested too deeply to encode",
            ));
        }
        if let Ok(s) = v.cast_exact::<PyString>() {
            self.string(s.to_str()?);
        } else if v.is_none() {
            self.buf.extend_from_slice(b"null");
        } else if let Ok(b) = v.cast_exact::<PyBool>() {
            self.buf
                .extend_from_slice(if b.is_true() { b"true" } else { b"false" });
        } else if let Ok(i) = v.cast_exact::<PyInt>() {
            match i.extract::<i64>() {
                Ok(n) => self
                    .buf
                    .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                Err(_) => self.buf.extend_from_slice(i.str()?.to_str()?.as_bytes()),
            }
        } else if let Ok(f) = v.cast_exact::<PyFloat>() {
            let x = f.value();
            if !x.is_finite() {
                return Err(PyTypeError::new_err(format!(
                    "{x} is not a JSON number (NaN and infinities are refused)"
                )));
            }
            let _ = serde_json::to_writer(&mut self.buf, &x);
        } else if let Ok(d) = v.cast_exact::<PyDict>() {
            self.dict(d, depth, None)?;
        } else if let Ok(l) = v.cast_exact::<PyList>() {
            self.buf.push(b'[');
            for (n, item) in l.iter().enumerate() {
                if n > 0 {
                    self.buf.push(b',');
                }
                self.value(&item, depth + 1)?;
            }
            self.buf.push(b']');
        } else if let Ok(t) = v.cast_exact::<PyTuple>() {
            self.buf.push(b'[');
            for (n, item) in t.iter().enumerate() {
                if n > 0 {
                    self.buf.push(b',');
                }
                self.value(&item, depth + 1)?;
            }
            self.buf.push(b']');
        } else {
            // datetime, UUID, Decimal, Enum, models, subclasses of the builtins, ...
            let converted = self.default.call1((v,))?;
            self.value(&converted, depth + 1)?;
        }
        Ok(())
    }

    fn key(&mut self, k: &Bound<'py, PyAny>) -> PyResult<()> {
        if let Ok(s) = k.cast::<PyString>() {
            self.string(s.to_str()?);
        } else if k.is_none() {
            self.string("null");
        } else if let Ok(b) = k.cast_exact::<PyBool>() {
            self.string(if b.is_true() { "true" } else { "false" });
        } else if let Ok(f) = k.cast::<PyFloat>() {
            // As json.dumps(allow_nan=False) has it: no NaN or infinite keys either.
            if !f.value().is_finite() {
                return Err(PyTypeError::new_err(format!(
                    "{} is not a JSON number (NaN and infinities are refused)",
                    f.value()
                )));
            }
            self.string(k.str()?.to_str()?);
        } else if k.cast::<PyInt>().is_ok() {
            self.string(k.str()?.to_str()?);
        } else {
            return Err(PyTypeError::new_err(format!(
                "keys must be str, int, float, bool or None, not {}",
                k.get_type().name()?
            )));
        }
        Ok(())
    }

    /// Writes a dict. With `enrich`, the top-level event: `event_id` / `timestamp` that are
    /// falsy and a `version` that is None are replaced where they stand, and missing ones
    /// are appended (what Python's `enrich` does to a dict copy).
    fn dict(
        &mut self,
        d: &Bound<'py, PyDict>,
        depth: usize,
        enrich: Option<&Enrichment<'_>>,
    ) -> PyResult<()> {
        self.buf.push(b'{');
        let mut first = true;
        let mut seen = [false; 3];
        for (k, v) in d.iter() {
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.key(&k)?;
            self.buf.push(b':');
            let slot = match enrich {
                Some(_) => k.cast::<PyString>().ok().and_then(|s| match s.to_str() {
                    Ok("event_id") => Some(0),
                    Ok("timestamp") => Some(1),
                    Ok("version") => Some(2),
                    _ => None,
                }),
                None => None,
            };
            match (slot, enrich) {
                (Some(slot), Some(e)) => {
                    seen[slot] = true;
                    match e.replacement(slot) {
                        Some(ExtraValue::Str(s)) => self.string(s),
                        Some(ExtraValue::One) => self.buf.push(b'1'),
                        None => self.value(&v, depth + 1)?,
                    }
                }
                _ => self.value(&v, depth + 1)?,
            }
        }
        if let Some(e) = enrich {
            for (slot, name) in ["event_id", "timestamp", "version"].iter().enumerate() {
                if seen[slot] {
                    continue;
                }
                if let Some(value) = e.replacement(slot) {
                    if !first {
                        self.buf.push(b',');
                    }
                    first = false;
                    self.string(name);
                    self.buf.push(b':');
                    match value {
                        ExtraValue::Str(s) => self.string(s),
                        ExtraValue::One => self.buf.push(b'1'),
                    }
                }
            }
        }
        self.buf.push(b'}');
        Ok(())
    }
}

/// What enrichment puts in place of (or after) the event's own fields.
struct Enrichment<'a> {
    event_id: Option<&'a str>,
    timestamp: Option<&'a str>,
    version: bool,
}

impl Enrichment<'_> {
    fn replacement(&self, slot: usize) -> Option<ExtraValue<'_>> {
        match slot {
            0 => self.event_id.map(ExtraValue::Str),
            1 => self.timestamp.map(ExtraValue::Str),
            _ => self.version.then_some(ExtraValue::One),
        }
    }
}

enum ExtraValue<'a> {
    Str(&'a str),
    One,
}

/// What enrichment reads from an event before encoding it.
struct Fields<'py> {
    /// Non-empty, and encodable as UTF-8.
    event_type: Bound<'py, PyString>,
    /// `str()` of a truthy `event_id`, encodable as UTF-8.
    given_id: Option<Bound<'py, PyString>>,
    has_timestamp: bool,
    has_version: bool,
}

/// The event's fields, or its problem. Errors raised while reading them (text with a lone
/// surrogate, an `event_id` whose `str()` fails) are this event's problem, not the batch's:
/// `encode_events` raising would reach the caller as an untyped exception.
fn fields<'py>(dict: &Bound<'py, PyDict>) -> Result<Fields<'py>, String> {
    const MISSING: &str = "event_type is required (a non-empty string); the event was not sent";
    let unreadable = |field: &str, e: PyErr| format!("{field} cannot be encoded as JSON: {e}");
    let event_type = dict
        .get_item("event_type")
        .map_err(|e| unreadable("event_type", e))?
        .and_then(|t| t.cast_into::<PyString>().ok())
        .ok_or(MISSING)?;
    if event_type
        .to_str()
        .map_err(|e| unreadable("event_type", e))?
        .is_empty()
    {
        return Err(MISSING.into());
    }
    let id = |e| unreadable("event_id", e);
    let given_id = match truthy(dict.get_item("event_id").map_err(id)?).map_err(id)? {
        Some(v) => {
            let text = v.str().map_err(id)?;
            text.to_str().map_err(id)?;
            Some(text)
        }
        None => None,
    };
    let timestamp = |e| unreadable("timestamp", e);
    let has_timestamp = truthy(dict.get_item("timestamp").map_err(timestamp)?)
        .map_err(timestamp)?
        .is_some();
    let has_version = matches!(
        dict.get_item("version").map_err(|e| unreadable("version", e))?,
        Some(v) if !v.is_none()
    );
    Ok(Fields {
        event_type,
        given_id,
        has_timestamp,
        has_version,
    })
}

fn truthy(v: Option<Bound<'_, PyAny>>) -> PyResult<Option<Bound<'_, PyAny>>> {
    match v {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// Enriches and encodes `events` (dicts). Returns the batch and the failures as
/// [(index, message)]; the batch holds only the events that succeeded when there are none.
/// `keys`: one key for every event, or one per event (None: no key). `event_headers`: the
/// records carry event_type / event_id / content-type headers.
#[pyfunction]
#[pyo3(signature = (events, keys, default, *, event_headers = false))]
pub fn encode_events<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    default: &Bound<'py, PyAny>,
    event_headers: bool,
) -> PyResult<(EncodedBatch, Vec<(usize, String)>)> {
    let items: Vec<Bound<'py, PyAny>> = events.try_iter()?.collect::<PyResult<_>>()?;
    let n = items.len();
    let per_event_keys: Option<Vec<Option<String>>> =
        if keys.is_none() || keys.cast::<PyString>().is_ok() {
            None
        } else {
            Some(keys.extract()?)
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
    };
    let mut added = Vec::with_capacity(n);
    let mut originals = Vec::with_capacity(n);
    let mut failures = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Ok(dict) = item.cast::<PyDict>() else {
            failures.push((
                i,
                format!("an event must be a dict, not {}", item.get_type().name()?),
            ));
            continue;
        };
        let f = match fields(dict) {
            Ok(f) => f,
            Err(message) => {
                failures.push((i, message));
                continue;
            }
        };
        // Both checked by `fields` (and their UTF-8 cached by Python): no error here.
        let event_type = f.event_type.to_str().unwrap_or_default();
        let given_id = f
            .given_id
            .as_ref()
            .map(|id| id.to_str().unwrap_or_default());
        let (has_timestamp, has_version) = (f.has_timestamp, f.has_version);
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
            failures.push((
                i,
                format!("event {event_type:?} cannot be encoded as JSON: {e}"),
            ));
            continue;
        }
        data.values.push(&enc.buf);
        if let (Keys::Each(each), Some(ks)) = (&mut data.keys, &per_event_keys) {
            each.push(ks.get(i).cloned().flatten().map(String::into_bytes));
        }
        match given_id {
            Some(id) => data.ids.push(id.as_bytes()),
            None => data.ids.push(fresh_ids[i].as_bytes()),
        }
        data.types.push(event_type.as_bytes());
        added.push((id_added, !has_timestamp, !has_version));
        originals.push(dict.clone().into_any().unbind());
    }
    let _ = py;
    let batch = EncodedBatch {
        data: Arc::new(data),
        added,
        now,
        originals,
    };
    Ok((batch, failures))
}
