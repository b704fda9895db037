//! `OffsetTracker`: the at-least-once bookkeeping of `kafka::offsets`, shared with the
//! in-memory transport so both commit by exactly the same rule.

use pyo3::prelude::*;
use std::sync::Mutex;

use crate::kafka::offsets::OffsetTracker;

#[pyclass(name = "OffsetTracker", module = "tradecore_eventbus._core", frozen)]
#[derive(Default)]
pub struct PyOffsetTracker {
    inner: Mutex<OffsetTracker>,
}

impl PyOffsetTracker {
    fn tracker(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyOffsetTracker {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn assign(&self, topic: &str, partition: i32) {
        self.tracker().assign(topic, partition);
    }

    /// Forgets a partition; returns its committable offset (next offset to read), if any.
    fn revoke(&self, topic: &str, partition: i32) -> Option<i64> {
        self.tracker().revoke(topic, partition)
    }

    fn delivered(&self, topic: &str, partition: i32, offset: i64) {
        self.tracker().delivered(topic, partition, offset);
    }

    /// Marks (topic, partition, offset) triples processed; returns how many counted.
    fn processed(&self, items: Vec<(String, i32, i64)>) -> usize {
        self.tracker()
            .processed(items.iter().map(|(t, p, o)| (t.as_str(), *p, *o)))
    }

    /// Committable offsets that moved since the last call.
    fn take_dirty(&self) -> Vec<(String, i32, i64)> {
        self.tracker().take_dirty()
    }

    fn committable(&self) -> Vec<(String, i32, i64)> {
        self.tracker().committable()
    }

    fn marked_since_commit(&self) -> usize {
        self.tracker().marked_since_commit()
    }

    fn reset_marked_since_commit(&self) {
        self.tracker().reset_marked_since_commit();
    }
}
