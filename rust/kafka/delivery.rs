//! Delivery tracking: every record of one send call points at the same [`BatchTracker`];
//! librdkafka's delivery reports fill in the outcomes and the last one wakes the single
//! waiter of the batch. One wake-up per batch, not one per record.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka_sys as rdsys;
use tokio::sync::Notify;

use super::context::{observe_error, observe_log, ClientHealth};
use super::error::{Delivery, DeliveryFailure, Outcome};

#[derive(Debug)]
pub struct BatchTracker {
    remaining: AtomicUsize,
    outcomes: Box<[OnceLock<Outcome>]>,
    done: Notify,
    /// The producer's count of records without an outcome, decremented here before the
    /// waiter can wake: whoever saw the send done sees it counted out.
    unresolved: Option<Arc<AtomicUsize>>,
}

impl BatchTracker {
    pub fn new(len: usize) -> Arc<Self> {
        Arc::new(BatchTracker {
            remaining: AtomicUsize::new(len),
            outcomes: (0..len).map(|_| OnceLock::new()).collect(),
            done: Notify::new(),
            unresolved: None,
        })
    }

    /// A tracker that is also done only once [`handed_over`](Self::handed_over) was called:
    /// the producer's enqueue thread calls it after the last record of the send left its
    /// count of queued records, so a caller that sees the send done never sees it queued.
    /// `unresolved` is the producer's count of records without an outcome; it must already
    /// include these `len` records.
    pub fn with_handover(len: usize, unresolved: Arc<AtomicUsize>) -> Arc<Self> {
        Arc::new(BatchTracker {
            remaining: AtomicUsize::new(len + 1),
            outcomes: (0..len).map(|_| OnceLock::new()).collect(),
            done: Notify::new(),
            unresolved: Some(unresolved),
        })
    }

    /// See [`with_handover`](Self::with_handover); call exactly once.
    pub fn handed_over(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Records the outcome of record `index`; the first outcome of a record wins.
    pub fn complete(&self, index: usize, outcome: Outcome) {
        if self.outcomes[index].set(outcome).is_ok() {
            if let Some(unresolved) = &self.unresolved {
                unresolved.fetch_sub(1, Ordering::AcqRel);
            }
            if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.done.notify_one();
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// Waits until every record has an outcome. Cancel-safe.
    pub async fn wait(&self) {
        while !self.is_done() {
            self.done.notified().await;
        }
    }

    /// The outcomes in record order; call after [`wait`](Self::wait).
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes
            .iter()
            .map(|o| {
                o.get()
                    .cloned()
                    .expect("outcome read before the batch completed")
            })
            .collect()
    }
}

/// The opaque pointer librdkafka carries for each record until its delivery report.
pub struct DeliveryTag {
    pub tracker: Arc<BatchTracker>,
    pub index: usize,
}

#[derive(Debug, Default)]
pub struct ProducerStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug, Default)]
pub struct ProducerCtx {
    pub health: ClientHealth,
    pub stats: ProducerStats,
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        observe_log(&self.health, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        observe_error(&self.health, "producer", &error, reason);
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<DeliveryTag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<DeliveryTag>) {
        let outcome = match result {
            Ok(msg) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                Outcome::Delivered(Delivery {
                    partition: msg.partition(),
                    offset: msg.offset(),
                })
            }
            Err((err, msg)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                // SAFETY: the message pointer is valid for the duration of the callback.
                let status = unsafe { rdsys::rd_kafka_message_status(msg.ptr()) };
                let code = err
                    .rdkafka_error_code()
                    .unwrap_or(rdkafka::error::RDKafkaErrorCode::Fail);
                Outcome::Failed(DeliveryFailure {
                    code,
                    possibly_persisted: status
                        != rdsys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED,
                    detail: self.health.last_error(),
                })
            }
        };
        tag.tracker.complete(tag.index, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn delivered(offset: i64) -> Outcome {
        Outcome::Delivered(Delivery {
            partition: 0,
            offset,
        })
    }

    #[tokio::test]
    async fn waiter_wakes_once_every_record_has_an_outcome() {
        let tracker = BatchTracker::new(3);
        let waiter = {
            let t = tracker.clone();
            tokio::spawn(async move {
                t.wait().await;
                t.outcomes()
            })
        };
        tracker.complete(2, delivered(12));
        tracker.complete(0, delivered(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "woke before the last record");
        tracker.complete(1, delivered(11));
        let outcomes = waiter.await.unwrap();
        assert_eq!(outcomes, vec![delivered(10), delivered(11), delivered(12)]);
    }

    #[tokio::test]
    async fn a_second_outcome_for_the_same_record_is_ignored() {
        let tracker = BatchTracker::new(2);
        tracker.complete(0, delivered(1));
        tracker.complete(0, delivered(99));
        assert!(!tracker.is_done());
        tracker.complete(1, delivered(2));
        tracker.wait().await;
        assert_eq!(tracker.outcomes(), vec![delivered(1), delivered(2)]);
    }
}
