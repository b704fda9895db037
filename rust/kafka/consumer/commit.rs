//! At-least-once commits: only offsets of records marked processed, batched by count.

use std::sync::atomic::Ordering;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaConsumer;
use crate::kafka::error::{Error, Result};

impl KafkaConsumer {
    /// Marks records processed. Their offsets become committable once every earlier record of
    /// the same partition is processed too; a commit is requested every
    /// `commit_batch_size` marks when no earlier commit is still unanswered (see
    /// `commit_gate`; librdkafka also commits on its interval, on revoke and on close).
    /// Returns how many marks counted.
    pub fn mark_processed<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, i32, i64)>,
    ) -> Result<usize> {
        if !self.commit_enabled {
            return Ok(0);
        }
        self.check_fatal()?;
        let handle = self.handle()?;
        let (known, dirty, commit_now) = {
            let mut tracker = self.ctx.tracker();
            let known = tracker.processed(records);
            let dirty = tracker.take_dirty();
            let commit_now = tracker.marked_since_commit() >= self.commit_batch_size
                && self.ctx.commit_gate.try_acquire();
            if commit_now {
                tracker.reset_marked_since_commit();
            }
            (known, dirty, commit_now)
        };
        self.ctx
            .stats
            .processed
            .fetch_add(known as u64, Ordering::Relaxed);
        if !dirty.is_empty() {
            let mut tpl = TopicPartitionList::with_capacity(dirty.len());
            for (topic, partition, next) in &dirty {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
            }
            if let Err(e) = handle.consumer.store_offsets(&tpl) {
                // A partition revoked in between: its new owner starts from the last commit.
                log::debug!(target: "tradecore_eventbus.kafka", "storing offsets failed: {e}");
            }
        }
        if commit_now {
            self.ctx
                .stats
                .commit_requests
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = handle.commit_stored_async() {
                self.ctx.commit_gate.release();
                self.ctx
                    .stats
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                log::warn!(target: "tradecore_eventbus.kafka", "offset commit failed: {e}");
            }
        }
        Ok(known)
    }

    /// Commits every processed offset now and waits for the broker's answer.
    pub fn commit_sync(&self) -> Result<()> {
        if !self.commit_enabled {
            return Ok(());
        }
        self.check_fatal()?;
        let handle = self.handle()?;
        let offsets = self.ctx.tracker().committable();
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (topic, partition, next) in &offsets {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        match handle.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                self.ctx.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.ctx.tracker().reset_marked_since_commit();
                Ok(())
            }
            Err(e) => {
                self.ctx
                    .stats
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                Err(Error::from_kafka("commit", e))
            }
        }
    }
}
