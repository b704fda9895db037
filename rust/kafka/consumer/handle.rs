//! The librdkafka handle of a consumer and its consumer queue.

use std::ptr::NonNull;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;
use rdkafka_sys as rdsys;

use super::super::consumer_context::ConsumerCtx;
use super::super::error::{Error, Result};
use super::super::rebalancer::Applies;

/// librdkafka's consumer queue, referenced only to read its length: a `poll` that returns
/// nothing may have served a rebalance or commit event while messages still wait.
pub(super) struct QueueRef(pub(super) NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are thread-safe; we only read the length.
unsafe impl Send for QueueRef {}
unsafe impl Sync for QueueRef {}

impl QueueRef {
    pub(super) fn len(&self) -> usize {
        // SAFETY: the pointer stays valid until `drop`.
        unsafe { rdsys::rd_kafka_queue_length(self.0.as_ptr()) }
    }
}

impl Drop for QueueRef {
    fn drop(&mut self) {
        // SAFETY: obtained from rd_kafka_queue_get_consumer, released exactly once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

/// The librdkafka handle and the queue reference; fields drop in order, the queue first.
pub(super) struct Handle {
    pub(super) queue: QueueRef,
    pub(super) consumer: BaseConsumer<ConsumerCtx>,
}

impl Applies for Handle {
    fn apply(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList) {
        self.consumer
            .context()
            .apply_rebalance(&self.consumer, err, tpl);
    }

    fn apply_plainly(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList) {
        self.consumer
            .context()
            .apply_plainly(&self.consumer, err, tpl);
    }
}

impl Handle {
    /// Commits the stored offsets without waiting. librdkafka answers an asynchronous
    /// `rd_kafka_commit` only to an `offset_commit_cb`, which rust-rdkafka does not set (it
    /// uses events), so the commit names our consumer queue as its reply queue: the answer
    /// then arrives as an offset-commit event on the next poll and reaches `commit_callback`,
    /// which frees the commit gate.
    pub(super) fn commit_stored_async(&self) -> Result<()> {
        // SAFETY: both pointers stay valid while `self` lives; NULL offsets means the stored
        // offsets of the current assignment; no callback, so the reply is returned as an event.
        let err = unsafe {
            rdsys::rd_kafka_commit_queue(
                self.consumer.client().native_ptr(),
                std::ptr::null(),
                self.queue.0.as_ptr(),
                None,
                std::ptr::null_mut(),
            )
        };
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            code => Err(Error::from_kafka(
                "commit",
                KafkaError::ConsumerCommit(code.into()),
            )),
        }
    }
}
