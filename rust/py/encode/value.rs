//! One Python value to JSON: the encoder `json.dumps` would be for an event's fields, with
//! the field path of whatever cannot be encoded.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

const MAX_DEPTH: usize = 64;

/// One step of the way from the event to a value: a field name or a list position.
#[derive(Debug, Clone)]
pub(super) enum PathPart {
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
pub(super) struct EncodeError {
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
    pub(super) fn loc(&self) -> Vec<PathPart> {
        self.path.iter().rev().cloned().collect()
    }

    pub(super) fn message(&self, py: Python<'_>) -> String {
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
pub(super) fn format_path(path: &[PathPart]) -> String {
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

pub(super) type Encoded = Result<(), EncodeError>;

pub(super) struct Encoder<'a, 'py> {
    pub(super) default: &'a Bound<'py, PyAny>,
    pub(super) buf: Vec<u8>,
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
    pub(super) fn dict(
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
pub(super) struct Enrichment<'a> {
    pub(super) event_id: Option<&'a str>,
    pub(super) timestamp: Option<&'a str>,
    pub(super) version: bool,
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
