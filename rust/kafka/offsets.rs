//! At-least-once bookkeeping for one consumer: which offsets were handed to the application
//! and which of them it marked processed. The offset that may be committed for a partition is
//! the one after the longest processed prefix, so a record that was never marked processed
//! (its handler failed, or the process died) is delivered again after a restart or rebalance.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub struct PartitionOffsets {
    /// Offsets handed out and not yet committable, ascending, with their processed flag.
    outstanding: VecDeque<(i64, bool)>,
    /// Next offset to commit (last processed prefix + 1), when it moved since the last take.
    committable: Option<i64>,
    dirty: bool,
}

impl PartitionOffsets {
    pub fn delivered(&mut self, offset: i64) {
        if let Some(&(last, _)) = self.outstanding.back() {
            if offset <= last {
                // A seek back or a redelivery: forget what lies at or after it.
                while matches!(self.outstanding.back(), Some(&(o, _)) if o >= offset) {
                    self.outstanding.pop_back();
                }
            }
        }
        self.outstanding.push_back((offset, false));
    }

    /// Marks `offset` processed; returns false when it was not outstanding (unknown, or
    /// already marked).
    pub fn processed(&mut self, offset: i64) -> bool {
        let Ok(pos) = self.outstanding.binary_search_by_key(&offset, |&(o, _)| o) else {
            return false;
        };
        if self.outstanding[pos].1 {
            return false;
        }
        self.outstanding[pos].1 = true;
        while let Some(&(o, true)) = self.outstanding.front() {
            self.outstanding.pop_front();
            self.committable = Some(o + 1);
            self.dirty = true;
        }
        true
    }

    pub fn committable(&self) -> Option<i64> {
        self.committable
    }

    /// Returns the committable offset if it changed since the last call.
    pub fn take_dirty(&mut self) -> Option<i64> {
        if self.dirty {
            self.dirty = false;
            self.committable
        } else {
            None
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

/// Offsets of every partition currently assigned to the consumer, by topic then partition
/// (so that lookups borrow the topic name instead of allocating a key per record).
#[derive(Debug, Default)]
pub struct OffsetTracker {
    topics: HashMap<String, HashMap<i32, PartitionOffsets>>,
    marked_since_commit: usize,
}

impl OffsetTracker {
    pub fn assign(&mut self, topic: &str, partition: i32) {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.to_owned(), HashMap::new());
        }
        if let Some(parts) = self.topics.get_mut(topic) {
            parts.entry(partition).or_default();
        }
    }

    /// Forgets a revoked partition and returns its committable offset.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let parts = self.topics.get_mut(topic)?;
        let removed = parts.remove(&partition);
        if parts.is_empty() {
            self.topics.remove(topic);
        }
        removed.and_then(|p| p.committable())
    }

    fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionOffsets> {
        self.topics.get_mut(topic)?.get_mut(&partition)
    }

    /// Records that `offset` was handed to the application. Ignored for partitions that are
    /// no longer assigned.
    pub fn delivered(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.delivered(offset);
        }
    }

    /// Marks records processed; returns how many were outstanding on an assigned partition.
    pub fn processed<'a>(&mut self, items: impl IntoIterator<Item = (&'a str, i32, i64)>) -> usize {
        let mut known = 0;
        for (topic, partition, offset) in items {
            if let Some(p) = self.get_mut(topic, partition) {
                if p.processed(offset) {
                    known += 1;
                }
            }
        }
        self.marked_since_commit += known;
        known
    }

    /// Committable offsets that moved since the last call, to be stored for the next commit.
    pub fn take_dirty(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for (topic, parts) in &mut self.topics {
            for (partition, p) in parts.iter_mut() {
                if let Some(o) = p.take_dirty() {
                    out.push((topic.clone(), *partition, o));
                }
            }
        }
        out
    }

    /// All committable offsets (for a synchronous commit on close).
    pub fn committable(&self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for (topic, parts) in &self.topics {
            for (partition, p) in parts {
                if let Some(o) = p.committable() {
                    out.push((topic.clone(), *partition, o));
                }
            }
        }
        out
    }

    pub fn marked_since_commit(&self) -> usize {
        self.marked_since_commit
    }

    pub fn reset_marked_since_commit(&mut self) {
        self.marked_since_commit = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committable_offset_is_after_the_processed_prefix() {
        let mut p = PartitionOffsets::default();
        for o in [10, 11, 12, 13] {
            p.delivered(o);
        }
        assert!(p.processed(11));
        assert_eq!(
            p.committable(),
            None,
            "11 done but 10 is not: nothing to commit yet"
        );
        assert!(p.processed(10));
        assert_eq!(p.committable(), Some(12));
        assert!(p.processed(13));
        assert_eq!(p.committable(), Some(12));
        assert!(
            !p.processed(13),
            "a second mark of the same record is not counted"
        );
        assert!(p.processed(12));
        assert_eq!(p.committable(), Some(14));
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn an_unprocessed_record_holds_back_the_commit() {
        let mut p = PartitionOffsets::default();
        for o in 0..100 {
            p.delivered(o);
        }
        for o in (0..100).filter(|o| *o != 40) {
            p.processed(o);
        }
        assert_eq!(p.committable(), Some(40));
    }

    #[test]
    fn gaps_in_offsets_are_fine() {
        // Compacted topics and transaction markers leave holes in the offsets.
        let mut p = PartitionOffsets::default();
        for o in [3, 7, 8, 20] {
            p.delivered(o);
        }
        for o in [3, 7, 8, 20] {
            p.processed(o);
        }
        assert_eq!(p.committable(), Some(21));
    }

    #[test]
    fn redelivery_after_a_seek_back_replaces_later_offsets() {
        let mut p = PartitionOffsets::default();
        for o in [5, 6, 7] {
            p.delivered(o);
        }
        p.processed(5);
        p.delivered(6); // seek back to 6
        assert_eq!(p.outstanding(), 1);
        p.processed(6);
        assert_eq!(p.committable(), Some(7));
    }

    #[test]
    fn take_dirty_reports_each_move_once() {
        let mut t = OffsetTracker::default();
        t.assign("orders", 0);
        t.delivered("orders", 0, 0);
        t.delivered("orders", 0, 1);
        assert_eq!(t.processed([("orders", 0, 0), ("orders", 0, 1)]), 2);
        let dirty = t.take_dirty();
        assert_eq!(dirty, vec![("orders".to_string(), 0, 2)]);
        assert!(t.take_dirty().is_empty());
        assert_eq!(t.marked_since_commit(), 2);
    }

    #[test]
    fn revoked_partitions_are_forgotten_and_their_marks_ignored() {
        let mut t = OffsetTracker::default();
        t.assign("orders", 1);
        t.delivered("orders", 1, 4);
        t.processed([("orders", 1, 4)]);
        assert_eq!(t.revoke("orders", 1), Some(5));
        assert_eq!(t.revoke("orders", 1), None, "still known after its revoke");
        assert_eq!(t.processed([("orders", 1, 5)]), 0);
        assert!(t.take_dirty().is_empty());
    }
}
