//! The consumer: a librdkafka group consumer drained without blocking (`drain`) and woken
//! through librdkafka's queue callback (`wait`), so the caller never parks a thread and a
//! cancelled wait loses nothing. Offsets are committed only for records marked processed.
//!
//! One job per file: this one creates, polls and closes the client; `record` copies a
//! consumed message out of librdkafka, `handle` owns the librdkafka handle and its queue,
//! `waiting` holds the waits, `commit` the at-least-once commits, `assignment` the
//! partitions (pause, resume, reading from a time).

mod assignment;
mod commit;
mod handle;
mod lag;
mod record;
mod waiting;

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rdkafka_sys as rdsys;

use super::auth_gate::{probe_interval, probe_timeout, ProbeResult};
use super::consumer_context::{ConsumerCtx, ConsumerStats};
use super::context::ClientHealth;
use super::error::{code_refuses_joining, Error, ErrorKind, Result};
use super::rebalancer::HandOverHere;
use super::settings::ConsumerSettings;
use crate::runtime::wake::Wake;
use handle::{Handle, QueueRef};
pub use record::RecordData;

pub struct KafkaConsumer {
    handle: RwLock<Option<Arc<Handle>>>,
    ctx: Arc<ConsumerCtx>,
    wake: Arc<Wake>,
    stash: Mutex<VecDeque<RecordData>>,
    closed: AtomicBool,
    /// The fatal error librdkafka reported (e.g. FENCED_INSTANCE_ID): the client can no
    /// longer consume or commit, and every later call reports it again.
    fatal: OnceLock<Error>,
    commit_batch_size: usize,
    commit_enabled: bool,
    max_poll_records: usize,
    bootstrap_servers: String,
}

impl KafkaConsumer {
    pub fn new(settings: &ConsumerSettings) -> Result<Arc<Self>> {
        let config = settings.client_config()?;
        let wake = Arc::new(Wake::default());
        let ctx = ConsumerCtx::new(settings, &config, wake.clone());
        let mut consumer = BaseConsumer::from_config_and_context(&config, ctx)
            .map_err(|e| Error::from_kafka("create consumer", e))?;
        {
            let wake = wake.clone();
            consumer.set_nonempty_callback(move || wake.wake());
        }
        // SAFETY: the client pointer is valid; the returned reference is owned by QueueRef.
        let queue = NonNull::new(unsafe {
            rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr())
        })
        .map(QueueRef)
        // Not a setting the caller can fix: librdkafka failing here is a fault of the core.
        .ok_or_else(|| Error::Internal("librdkafka gave no consumer queue".into()))?;
        let ctx = consumer.context().clone();
        let handle = Arc::new(Handle { queue, consumer });
        {
            // While the credentials are refused, a metadata request now and then tells when
            // they work again (decision 48).
            let weak = Arc::downgrade(&handle);
            let timeout = probe_timeout(&config);
            ctx.health
                .auth
                .set_probe(probe_interval(&config), move || match weak.upgrade() {
                    None => ProbeResult::Gone,
                    Some(handle) => match handle.consumer.fetch_metadata(None, timeout) {
                        Ok(_) => ProbeResult::Authenticated,
                        Err(_) => ProbeResult::Failed,
                    },
                });
        }
        Ok(Arc::new(KafkaConsumer {
            handle: RwLock::new(Some(handle)),
            ctx,
            wake,
            stash: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            fatal: OnceLock::new(),
            commit_batch_size: settings.commit.batch_size.max(1),
            commit_enabled: settings.commit.enabled,
            max_poll_records: settings.max_poll_records,
            bootstrap_servers: settings.bootstrap_servers.clone(),
        }))
    }

    fn handle(&self) -> Result<Arc<Handle>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("consumer"));
        }
        self.handle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(Error::Closed("consumer"))
    }

    pub fn health(&self) -> &ClientHealth {
        &self.ctx.health
    }

    /// The librdkafka context (tests hand it the reports librdkafka would make).
    #[cfg(test)]
    pub(crate) fn context(&self) -> &ConsumerCtx {
        &self.ctx
    }

    pub fn stats(&self) -> &ConsumerStats {
        &self.ctx.stats
    }

    pub fn max_poll_records(&self) -> usize {
        self.max_poll_records
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the group has assigned this consumer its partitions (possibly none) since it
    /// subscribed, with their start offsets fixed.
    pub fn is_assigned(&self) -> bool {
        self.ctx.assigned.load(Ordering::Acquire)
    }

    /// The fatal error that ended this consumer, if any.
    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.get()
    }

    fn check_fatal(&self) -> Result<()> {
        match self.fatal.get() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Keeps the first fatal error, with librdkafka's underlying code: a fatal consumer error
    /// arrives as `_FATAL`, and `rd_kafka_fatal_error` tells which (FENCED_INSTANCE_ID, ...).
    fn set_fatal(&self, handle: &Handle, err: Error) -> Error {
        let err = match handle.consumer.client().fatal_error() {
            Some((code, reason)) => Error::Kafka {
                code,
                operation: "consume",
                detail: Some(reason),
                fatal: true,
            },
            None => err,
        };
        self.ctx.health.record(err.to_string());
        self.fatal.get_or_init(|| err).clone()
    }

    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        if topics.is_empty() {
            return Err(Error::InvalidArgument(
                "subscribe needs at least one topic".into(),
            ));
        }
        self.handle()?
            .consumer
            .subscribe(topics)
            .map_err(|e| Error::from_kafka("subscribe", e))
    }

    /// Returns up to `max` records that are already here, without waiting. Serves rebalance
    /// and commit events on the way. With nothing to return while the broker refuses the
    /// client's credentials, fails with the authentication error (decision 48).
    pub fn drain(&self, max: usize) -> Result<Vec<RecordData>> {
        self.check_fatal()?;
        let max = max.clamp(1, self.max_poll_records);
        let mut out: Vec<RecordData> = {
            let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
            let n = stash.len().min(max);
            stash.drain(..n).collect()
        };
        if out.len() < max {
            let handle = self.handle()?;
            // While a rebalance is being applied, nothing new is handed out (decision 127).
            if !self.ctx.rebalancer.busy() {
                let _hand_over = HandOverHere::begin(&self.ctx.rebalancer, handle.clone());
                self.poll_into(&handle, &mut out, max, false)?;
            }
        }
        if out.is_empty() {
            self.health().auth.check("consume")?;
        }
        Ok(out)
    }

    /// Polls up to `max` records into `out`. A fatal error ends it (and is kept); with
    /// `refuse_on_join_errors`, so does an error that keeps the consumer out of its group
    /// (authorization, an unusable group id), which otherwise is only recorded for health.
    fn poll_into(
        &self,
        handle: &Handle,
        out: &mut Vec<RecordData>,
        max: usize,
        refuse_on_join_errors: bool,
    ) -> Result<()> {
        let first_new = out.len();
        let mut topic: Option<Arc<str>> = None;
        let mut failed = None;
        while out.len() < max {
            match handle.consumer.poll(Duration::ZERO) {
                Some(Ok(msg)) => {
                    let t = match &topic {
                        Some(t) if &**t == msg.topic() => t.clone(),
                        _ => {
                            let t: Arc<str> = Arc::from(msg.topic());
                            topic = Some(t.clone());
                            t
                        }
                    };
                    out.push(RecordData::from_message(&msg, t));
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    let mut err = Error::from_kafka("consume", e);
                    if err.kind() == ErrorKind::Authentication {
                        // The context saw it first and kept librdkafka's reason with it.
                        if let Some(explained) = self.ctx.health.auth.error("consume") {
                            err = explained;
                        }
                    }
                    self.ctx
                        .stats
                        .consume_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if matches!(err, Error::Kafka { fatal: true, .. })
                        || matches!(
                            err,
                            Error::Kafka {
                                code: RDKafkaErrorCode::Fatal,
                                ..
                            }
                        )
                    {
                        failed = Some(self.set_fatal(handle, err));
                        break;
                    }
                    if refuse_on_join_errors
                        && matches!(&err, Error::Kafka { code, .. } if code_refuses_joining(*code))
                    {
                        self.ctx.health.record(err.to_string());
                        failed = Some(err);
                        break;
                    }
                    // Not fatal (unknown topic while it is being created, a broker that went
                    // away): librdkafka recovers by itself; keep the record of it for health.
                    if self.ctx.health.record(err.to_string()) {
                        log::warn!(target: "tradecore_eventbus.kafka", "{err}");
                    }
                }
                None => {
                    // A rebalance handed over: what follows it in the queue waits for it.
                    if handle.queue.len() == 0 || self.ctx.rebalancer.busy() {
                        break;
                    }
                }
            }
        }
        let new = &out[first_new..];
        if !new.is_empty() {
            if self.ctx.health.auth.is_latched() {
                self.ctx.health.auth.clear(); // fetched: the credentials work
            }
            self.ctx
                .stats
                .received
                .fetch_add(new.len() as u64, Ordering::Relaxed);
            if self.commit_enabled {
                let mut tracker = self.ctx.tracker();
                for r in new {
                    tracker.delivered(&r.topic, r.partition, r.offset);
                }
            }
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Commits what was processed, leaves the group and releases the client. Blocking;
    /// idempotent. A static member (`group.instance.id`) does not leave: its partitions wait
    /// for it to come back until its session times out (KIP-345). Records handed out but not marked processed will be delivered again to
    /// the partitions' next owner.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wake.wake_all();
        // A rebalance handed over is applied first: its revoke commits, and the close below
        // is then the real one (nothing is handed over once `closed` is set).
        self.ctx.rebalancer.wait_idle();
        let handle = self
            .handle
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        // A fatal consumer (fenced) cannot commit: its partitions belong to another member now.
        let committed = if self.commit_enabled && self.fatal.get().is_none() {
            let offsets = self.ctx.tracker().committable();
            if offsets.is_empty() {
                Ok(())
            } else {
                let mut tpl = TopicPartitionList::with_capacity(offsets.len());
                for (topic, partition, next) in &offsets {
                    let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
                }
                match handle.consumer.commit(&tpl, CommitMode::Sync) {
                    Err(e) => match Error::from_kafka("commit on close", e) {
                        // The group moved on while this member was leaving (a rebalance in
                        // progress): the partitions are another member's now, and what was
                        // handled here but not committed is handled again there
                        // (at-least-once). Not the caller's error to handle.
                        Error::Kafka { code, .. } if lost_membership(code) => {
                            log::warn!(
                                "commit on close refused ({code:?}): the group rebalanced while \
                                 this consumer left; its uncommitted records are redelivered"
                            );
                            Ok(())
                        }
                        other => Err(other),
                    },
                    Ok(()) => Ok(()),
                }
            }
        } else {
            Ok(())
        };
        // Dropping the last reference closes the consumer: librdkafka revokes the partitions
        // (our rebalance callback commits), leaves the group and destroys the client. A
        // concurrent `drain` still holding the handle finishes first.
        drop(handle);
        self.stash.lock().unwrap_or_else(|e| e.into_inner()).clear();
        committed
    }
}

/// Commit errors that mean this member no longer owns its partitions in the current
/// generation of the group.
fn lost_membership(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::UnknownMemberId
    )
}
