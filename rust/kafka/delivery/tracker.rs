//! Delivery tracking: every record of one send call has a slot in the same [`BatchTracker`];
//! librdkafka's delivery reports fill in the outcomes and the last one wakes the single
//! waiter of the batch. One wake-up per batch, not one per record.
//!
//! librdkafka carries, for each record, a pointer to its slot (no allocation per record,
//! and the report touches one cache line). The slots live as long as the tracker, and the
//! tracker keeps itself alive until the last record has its outcome.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::util::IntoOpaque;
use rdkafka_sys as rdsys;
use tokio::sync::Notify;

use super::super::context::{observe_error, observe_log, ClientHealth};
use super::outcome::{Delivery, DeliveryFailure, Outcome};
use crate::kafka::error::{Error, Result};

/// One record's place in its batch.
#[derive(Debug)]
struct Slot {
    tracker: *const BatchTracker,
    outcome: OnceLock<Outcome>,
}

pub struct BatchTracker {
    remaining: AtomicUsize,
    slots: Box<[Slot]>,
    done: Notify,
    /// The producer's count of records without an outcome, decremented here before the
    /// waiter can wake: whoever saw the send done sees it counted out.
    unresolved: Option<Arc<AtomicUsize>>,
    /// A strong reference to this tracker (from `Arc::into_raw`), released by whoever ends
    /// the batch: librdkafka holds pointers to the slots until their reports.
    keep_alive: AtomicPtr<BatchTracker>,
    /// Called once, by whoever ends the batch (see [`on_done`](Self::on_done)).
    on_done: Mutex<Option<DoneCallback>>,
}

type DoneCallback = Box<dyn FnOnce(&BatchTracker) + Send>;

impl std::fmt::Debug for BatchTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchTracker")
            .field("len", &self.slots.len())
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

// SAFETY: `Slot::tracker` points at the tracker that owns the slot, which is `Sync`.
unsafe impl Send for Slot {}
unsafe impl Sync for Slot {}

impl BatchTracker {
    fn build(len: usize, remaining: usize, unresolved: Option<Arc<AtomicUsize>>) -> Arc<Self> {
        let tracker = Arc::new_cyclic(|me| BatchTracker {
            remaining: AtomicUsize::new(remaining),
            slots: (0..len)
                .map(|_| Slot {
                    tracker: me.as_ptr(),
                    outcome: OnceLock::new(),
                })
                .collect(),
            done: Notify::new(),
            unresolved,
            keep_alive: AtomicPtr::new(std::ptr::null_mut()),
            on_done: Mutex::new(None),
        });
        if remaining > 0 {
            let me = Arc::into_raw(Arc::clone(&tracker)).cast_mut();
            tracker.keep_alive.store(me, Ordering::Release);
        }
        tracker
    }

    pub fn new(len: usize) -> Arc<Self> {
        Self::build(len, len, None)
    }

    /// A tracker that is also done only once [`handed_over`](Self::handed_over) was called:
    /// the producer's enqueue thread calls it after the last record of the send left its
    /// count of queued records, so a caller that sees the send done never sees it queued.
    /// `unresolved` is the producer's count of records without an outcome; it must already
    /// include these `len` records.
    pub fn with_handover(len: usize, unresolved: Arc<AtomicUsize>) -> Arc<Self> {
        Self::build(len, len + 1, Some(unresolved))
    }

    /// See [`with_handover`](Self::with_handover); call exactly once.
    pub fn handed_over(&self) {
        self.count_down();
    }

    /// Calls `f` once every record has its outcome: on the thread that completes the batch
    /// (librdkafka's delivery-report thread, usually), or now if it is already complete.
    /// Keep `f` short: it runs inside librdkafka's callback. At most one callback.
    pub fn on_done(&self, f: impl FnOnce(&BatchTracker) + Send + 'static) {
        let mut slot = self.on_done.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_done() {
            drop(slot);
            f(self);
        } else {
            *slot = Some(Box::new(f));
        }
    }

    fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
            let callback = self
                .on_done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(callback) = callback {
                callback(self);
            }
            let me = self.keep_alive.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !me.is_null() {
                // SAFETY: made by `Arc::into_raw` in `build`, taken once (the swap).
                drop(unsafe { Arc::from_raw(me.cast_const()) });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// What librdkafka carries for record `index` until its delivery report.
    pub fn tag(&self, index: usize) -> DeliveryTag {
        DeliveryTag(NonNull::from(&self.slots[index]))
    }

    /// Records the outcome of record `index`; the first outcome of a record wins.
    pub fn complete(&self, index: usize, outcome: Outcome) {
        self.complete_slot(&self.slots[index], outcome);
    }

    fn complete_slot(&self, slot: &Slot, outcome: Outcome) {
        if slot.outcome.set(outcome).is_ok() {
            if let Some(unresolved) = &self.unresolved {
                unresolved.fetch_sub(1, Ordering::AcqRel);
            }
            self.count_down();
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

    /// The deliveries in record order, or (if any record failed) every outcome; call once
    /// done. One pass over the slots: the outcomes are copied only when something failed.
    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        let mut deliveries = Vec::with_capacity(self.slots.len());
        for slot in self.slots.iter() {
            match slot.outcome.get() {
                Some(Outcome::Delivered(d)) => deliveries.push(*d),
                Some(Outcome::Failed(_)) => return Err(Error::Batch(self.outcomes())),
                None => panic!("deliveries read before the batch completed"),
            }
        }
        Ok(deliveries)
    }

    /// The outcomes in record order; call after [`wait`](Self::wait).
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.slots
            .iter()
            .map(|s| {
                s.outcome
                    .get()
                    .cloned()
                    .expect("outcome read before the batch completed")
            })
            .collect()
    }
}

/// The opaque pointer librdkafka carries for each record until its delivery report: the
/// record's slot in its tracker.
pub struct DeliveryTag(NonNull<Slot>);

// SAFETY: a slot is `Sync`; the tag only gives shared access to it.
unsafe impl Send for DeliveryTag {}
unsafe impl Sync for DeliveryTag {}

impl IntoOpaque for DeliveryTag {
    fn into_ptr(self) -> *mut std::ffi::c_void {
        self.0.as_ptr().cast()
    }

    unsafe fn from_ptr(ptr: *mut std::ffi::c_void) -> Self {
        // SAFETY: librdkafka hands back what `into_ptr` gave it, never null.
        DeliveryTag(unsafe { NonNull::new_unchecked(ptr.cast()) })
    }
}

impl DeliveryTag {
    /// Records the outcome of the tagged record.
    pub fn complete(self, outcome: Outcome) {
        // SAFETY: the tracker keeps itself (and so the slot) alive until every slot has an
        // outcome, and this record's slot has none yet: its report comes once.
        let slot = unsafe { self.0.as_ref() };
        let tracker = unsafe { &*slot.tracker };
        tracker.complete_slot(slot, outcome);
    }
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
    /// The librdkafka handle this context belongs to, set right after it was created; only
    /// read from librdkafka's callbacks, which run while the handle lives.
    client: AtomicPtr<rdsys::rd_kafka_t>,
}

impl ProducerCtx {
    /// Tells the context its handle, so that an authentication failure can purge the queue.
    pub fn set_client(&self, client: *mut rdsys::rd_kafka_t) {
        self.client.store(client, Ordering::Release);
    }

    /// Fails every record still waiting in librdkafka's queues at once (their delivery
    /// reports come with `_PURGE_QUEUE` and are reported as the authentication failure):
    /// without it they would wait for `message.timeout.ms`. Records already sent to a broker
    /// are left to their answer.
    pub fn purge_queued(&self) {
        let client = self.client.load(Ordering::Acquire);
        if client.is_null() {
            return;
        }
        // SAFETY: set from a live handle; callers are librdkafka's callbacks or hold the
        // producer, so the handle is alive. NON_BLOCKING: never wait for broker threads here.
        let err = unsafe {
            rdsys::rd_kafka_purge(
                client,
                rdsys::RD_KAFKA_PURGE_F_QUEUE | rdsys::RD_KAFKA_PURGE_F_NON_BLOCKING,
            )
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            log::warn!(target: "tradecore_eventbus.kafka", "purging the producer queue failed: {err:?}");
        }
    }
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        observe_log(&self.health, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if observe_error(&self.health, "producer", &error, reason) {
            self.purge_queued();
        }
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = DeliveryTag;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: DeliveryTag) {
        let outcome = match result {
            Ok(msg) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if self.health.auth.is_latched() {
                    self.health.auth.clear();
                }
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
                let possibly_persisted =
                    status != rdsys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
                match self.health.auth.current_failure() {
                    // Purged because the credentials were refused (see `purge_queued`).
                    Some(reason)
                        if matches!(
                            code,
                            RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
                        ) =>
                    {
                        Outcome::Failed(DeliveryFailure {
                            code: RDKafkaErrorCode::Authentication,
                            possibly_persisted,
                            detail: Some(reason),
                        })
                    }
                    _ => Outcome::Failed(DeliveryFailure {
                        code,
                        possibly_persisted,
                        detail: self.health.last_error(),
                    }),
                }
            }
        };
        tag.complete(outcome);
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

    #[tokio::test]
    async fn tags_complete_their_records_and_the_tracker_lets_go_when_done() {
        let tracker = BatchTracker::new(2);
        assert_eq!(
            Arc::strong_count(&tracker),
            2,
            "alive while records are out"
        );
        let first = tracker.tag(0).into_ptr();
        let second = tracker.tag(1).into_ptr();
        // SAFETY: pointers made by `into_ptr` above, each used once.
        unsafe { DeliveryTag::from_ptr(second) }.complete(delivered(11));
        assert!(!tracker.is_done());
        unsafe { DeliveryTag::from_ptr(first) }.complete(delivered(10));
        tracker.wait().await;
        assert_eq!(tracker.outcomes(), vec![delivered(10), delivered(11)]);
        assert_eq!(Arc::strong_count(&tracker), 1, "released once done");
    }

    #[tokio::test]
    async fn a_handover_tracker_ends_after_both_the_handover_and_the_outcomes() {
        let unresolved = Arc::new(AtomicUsize::new(1));
        let tracker = BatchTracker::with_handover(1, unresolved.clone());
        tracker.complete(0, delivered(5));
        assert_eq!(unresolved.load(Ordering::Acquire), 0);
        assert!(!tracker.is_done(), "done before the handover");
        assert_eq!(Arc::strong_count(&tracker), 2);
        tracker.handed_over();
        tracker.wait().await;
        assert_eq!(Arc::strong_count(&tracker), 1);
    }

    #[test]
    fn the_done_callback_runs_once_when_the_last_record_completes_or_at_once_if_done() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tracker = BatchTracker::new(2);
        let seen = calls.clone();
        tracker.on_done(move |t| {
            assert!(t.is_done());
            assert_eq!(t.outcomes().len(), 2);
            seen.fetch_add(1, Ordering::AcqRel);
        });
        tracker.complete(0, delivered(1));
        assert_eq!(calls.load(Ordering::Acquire), 0);
        tracker.complete(1, delivered(2));
        tracker.complete(1, delivered(3));
        assert_eq!(calls.load(Ordering::Acquire), 1);

        let seen = calls.clone();
        tracker.on_done(move |_| {
            seen.fetch_add(1, Ordering::AcqRel);
        });
        assert_eq!(
            calls.load(Ordering::Acquire),
            2,
            "already done: called at once"
        );
    }

    #[test]
    fn deliveries_are_read_in_record_order_or_every_outcome_if_one_failed() {
        let ok = BatchTracker::new(2);
        ok.complete(1, delivered(8));
        ok.complete(0, delivered(7));
        let got: Vec<i64> = ok.deliveries().unwrap().iter().map(|d| d.offset).collect();
        assert_eq!(got, vec![7, 8]);

        let failed = Outcome::not_sent(rdkafka::error::RDKafkaErrorCode::QueueFull, "full");
        let partly = BatchTracker::new(2);
        partly.complete(0, delivered(1));
        partly.complete(1, failed.clone());
        match partly.deliveries() {
            Err(Error::Batch(outcomes)) => assert_eq!(outcomes, vec![delivered(1), failed]),
            other => panic!("expected the batch's outcomes, got {other:?}"),
        }
    }
}
