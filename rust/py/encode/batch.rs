//! The encoded events of one publish call, held in Rust: the bytes the producer's enqueue
//! thread copies into librdkafka; `event(i)` decodes them again on demand.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// Byte strings stored end to end in one buffer: a batch of 1,000 events costs a handful of
/// allocations instead of thousands, on a path where malloc and free showed (decision 57).
#[derive(Default)]
pub(super) struct Arena {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Arena {
    pub(super) fn with_capacity(items: usize, bytes: usize) -> Self {
        Arena {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(items),
        }
    }

    pub(super) fn push(&mut self, item: &[u8]) {
        self.data.extend_from_slice(item);
        self.ends.push(self.data.len());
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
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

pub(super) enum Keys {
    /// One key (or none) for every event.
    Shared(Option<Vec<u8>>),
    /// One per event; `None` items have no key.
    Each(Vec<Option<Vec<u8>>>),
}

/// The bytes of encoded events, shared between the Python object and the producer's enqueue
/// thread (which reads them without the GIL).
pub struct EncodedData {
    pub(super) values: Arena,
    pub(super) ids: Arena,
    pub(super) types: Arena,
    pub(super) keys: Keys,
    /// Whether records carry the event_type / event_id / content-type headers.
    pub(super) with_headers: bool,
    /// Headers of each record beyond those (e.g. a trace context), when the caller gave any:
    /// one list per encoded event.
    pub(super) extra: Option<Vec<ExtraHeaders>>,
}

/// The extra headers of one record: (name, value) pairs, added after the event headers.
pub type ExtraHeaders = Vec<(String, Vec<u8>)>;

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

    /// The extra headers of record `i` (none unless the batch was encoded with some).
    pub fn extra_headers(&self, i: usize) -> &[(String, Vec<u8>)] {
        self.extra
            .as_ref()
            .and_then(|each| each.get(i))
            .map_or(&[], Vec::as_slice)
    }
}

/// Encoded events, kept in Rust until the producer copies them into librdkafka.
#[pyclass(name = "EncodedBatch", module = "tradecore_eventbus._core", frozen)]
pub struct EncodedBatch {
    pub(super) data: Arc<EncodedData>,
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
        for (name, v) in self.data.extra_headers(i) {
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

    /// Event `i` as a dict, decoded from the bytes that were sent: a snapshot, whatever
    /// the caller does with its own dict afterwards (decision 65).
    fn event<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        if i >= self.count() {
            return Err(no_event(i));
        }
        crate::wire::event::decode_event(py, self.value_at(i)).ok_or_else(|| no_event(i))
    }
}
