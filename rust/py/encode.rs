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

use std::time::SystemTime;

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

/// One step of the way from the event to a value: a field name or a list position.
#[derive(Debug, Clone)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// Why a value could not be encoded.
enum Reason {
    /// A float JSON has no number for.
    NonFinite(f64),
    /// More than `MAX_DEPTH` levels of dicts and lists.
    TooDeep,
    /// A dict key that is not str, int, float, bool or None.
    BadKey(String),
    /// The `default` callable (or reading a value) raised.
    Python(PyErr),
}

/// A value that could not be encoded, and where: `path` is filled innermost first while the
/// error travels up (only on failure; the success path pays nothing for it).
struct EncodeError {
    path: Vec<PathPart>,
    reason: Reason,
}

impl EncodeError {
    fn new(reason: Reason) -> Self {
        EncodeError {
            path: Vec::new(),
            reason,
        }
    }

    fn at(mut self, part: PathPart) -> Self {
        self.path.push(part);
        self
    }

    /// The path outermost first.
    fn loc(&self) -> Vec<PathPart> {
        self.path.iter().rev().cloned().collect()
    }

    fn message(&self, py: Python<'_>) -> String {
        let what = match &self.reason {
            Reason::NonFinite(x) => format!(
                "{} is not a JSON number (NaN and infinities are refused: other clients cannot \
                 read them)",
                python_float_name(*x)
            ),
            Reason::TooDeep => format!("nested more than {MAX_DEPTH} levels deep"),
            Reason::BadKey(t) => {
                format!("dict keys must be str, int, float, bool or None, not {t}")
            }
            Reason::Python(e) => {
                let name = e
                    .get_type(py)
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "Exception".into());
                format!("{name}: {}", e.value(py))
            }
        };
        if self.path.is_empty() {
            what
        } else {
            format!("field {}: {what}", format_path(&self.loc()))
        }
    }
}

impl From<PyErr> for EncodeError {
    fn from(e: PyErr) -> Self {
        EncodeError::new(Reason::Python(e))
    }
}

fn python_float_name(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// `a.b[2].c`; a long path (too deep) keeps its first and last steps.
pub fn format_path(path: &[PathPart]) -> String {
    const KEEP: usize = 4;
    let mut out = String::new();
    let push = |out: &mut String, part: &PathPart, first: bool| match part {
        PathPart::Key(k) => {
            if !first {
                out.push('.');
            }
            out.push_str(k);
        }
        PathPart::Index(i) => {
            out.push('[');
            out.push_str(itoa::Buffer::new().format(*i));
            out.push(']');
        }
    };
    if path.len() <= 2 * KEEP {
        for (n, part) in path.iter().enumerate() {
            push(&mut out, part, n == 0);
        }
    } else {
        for (n, part) in path[..KEEP].iter().enumerate() {
            push(&mut out, part, n == 0);
        }
        out.push_str("...");
        for (n, part) in path[path.len() - KEEP..].iter().enumerate() {
            push(&mut out, part, n == 0);
        }
    }
    out
}

type Encoded = Result<(), EncodeError>;

struct Encoder<'a, 'py> {
    default: &'a Bound<'py, PyAny>,
    buf: Vec<u8>,
}

impl<'py> Encoder<'_, 'py> {
    fn string(&mut self, s: &str) {
        // serde_json's escaping is exactly JSON's (UTF-8 kept as is).
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    fn value(&mut self, v: &Bound<'py, PyAny>, depth: usize) -> Encoded {
        if depth > MAX_DEPTH {
            return Err(EncodeError::new(Reason::TooDeep));
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
                return Err(EncodeError::new(Reason::NonFinite(x)));
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
                self.value(&item, depth + 1)
                    .map_err(|e| e.at(PathPart::Index(n)))?;
            }
            self.buf.push(b']');
        } else if let Ok(t) = v.cast_exact::<PyTuple>() {
            self.buf.push(b'[');
            for (n, item) in t.iter().enumerate() {
                if n > 0 {
                    self.buf.push(b',');
                }
                self.value(&item, depth + 1)
                    .map_err(|e| e.at(PathPart::Index(n)))?;
            }
            self.buf.push(b']');
        } else {
            // datetime, UUID, Decimal, Enum, models, subclasses of the builtins, ...
            let converted = self.default.call1((v,))?;
            self.value(&converted, depth + 1)?;
        }
        Ok(())
    }

    fn key(&mut self, k: &Bound<'py, PyAny>) -> Encoded {
        if let Ok(s) = k.cast::<PyString>() {
            self.string(s.to_str()?);
        } else if k.is_none() {
            self.string("null");
        } else if let Ok(b) = k.cast_exact::<PyBool>() {
            self.string(if b.is_true() { "true" } else { "false" });
        } else if let Ok(f) = k.cast::<PyFloat>() {
            let x = f.value();
            if !x.is_finite() {
                return Err(EncodeError::new(Reason::NonFinite(x)));
            }
            self.string(k.str()?.to_str()?);
        } else if k.cast::<PyInt>().is_ok() {
            self.string(k.str()?.to_str()?);
        } else {
            return Err(EncodeError::new(Reason::BadKey(
                k.get_type().name()?.to_string(),
            )));
        }
        Ok(())
    }

    /// Writes a dict. With `enrich`, the top-level event: a missing or None `event_id`,
    /// a falsy `timestamp` and a None `version` are replaced where they stand, and missing
    /// ones are appended (what Python's `enrich` does to a dict copy).
    fn dict(
        &mut self,
        d: &Bound<'py, PyDict>,
        depth: usize,
        enrich: Option<&Enrichment<'_>>,
    ) -> Encoded {
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
            let written = match (slot, enrich) {
                (Some(slot), Some(e)) => {
                    seen[slot] = true;
                    match e.replacement(slot) {
                        Some(ExtraValue::Str(s)) => {
                            self.string(s);
                            Ok(())
                        }
                        Some(ExtraValue::One) => {
                            self.buf.push(b'1');
                            Ok(())
                        }
                        None => self.value(&v, depth + 1),
                    }
                }
                _ => self.value(&v, depth + 1),
            };
            written.map_err(|e| e.at(PathPart::Key(key_name(&k))))?;
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

/// A dict key as it appears in an error's path.
fn key_name(k: &Bound<'_, PyAny>) -> String {
    match k.cast::<PyString>() {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => k
            .str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into()),
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

fn truthy(v: Option<Bound<'_, PyAny>>) -> PyResult<Option<Bound<'_, PyAny>>> {
    match v {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}

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
/// records carry event_type / event_id / content-type headers.
#[pyfunction]
#[pyo3(signature = (events, keys, default, *, event_headers = false))]
pub fn encode_events<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    default: &Bound<'py, PyAny>,
    event_headers: bool,
) -> PyResult<(EncodedBatch, Failures<'py>)> {
    let items: Vec<Bound<'py, PyAny>> = events.try_iter()?.collect::<PyResult<_>>()?;
    let n = items.len();
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
    };
    let mut added = Vec::with_capacity(n);
    let mut originals = Vec::with_capacity(n);
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
        added.push((id_added, !has_timestamp, !has_version));
        originals.push(dict.clone().into_any().unbind());
    }
    let batch = EncodedBatch {
        data: Arc::new(data),
        added,
        now,
        originals,
    };
    Ok((batch, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<PathPart> {
        names.iter().map(|k| PathPart::Key((*k).into())).collect()
    }

    #[test]
    fn a_path_names_fields_and_positions() {
        let mut path = keys(&["p"]);
        path.push(PathPart::Index(1));
        path.push(PathPart::Key("q".into()));
        assert_eq!(format_path(&path), "p[1].q");
        assert_eq!(format_path(&[PathPart::Index(0)]), "[0]");
    }

    #[test]
    fn a_long_path_keeps_its_ends() {
        let names: Vec<String> = (0..70).map(|n| format!("k{n}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(format_path(&keys(&refs)), "k0.k1.k2.k3...k66.k67.k68.k69");
    }
}
