//! The consumer: a librdkafka group consumer drained without blocking (`drain`) and woken
//! through librdkafka's queue callback (`wait`), so the caller never parks a thread and a
//! cancelled wait loses nothing. Offsets are committed only for records marked processed.

use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use rdkafka_sys as rdsys;

use super::auth_gate::{probe_interval, probe_timeout, ProbeResult};
use super::consumer_context::{ConsumerCtx, ConsumerStats};
use super::context::ClientHealth;
use super::error::{code_refuses_joining, Error, ErrorKind, Result};
use super::settings::ConsumerSettings;
use crate::runtime::timers::{TimerId, Timers};
use crate::runtime::wake::{Wake, WakeCallback};
use crate::wire::headers::{self, Header};

/// A Python `wait()` in progress: its callback until the wake-up or the deadline takes it.
struct Waiter {
    f: Option<WakeCallback>,
    timer: Option<TimerId>,
}

/// A consumed record, owning its bytes.
#[derive(Debug, Clone)]
pub struct RecordData {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch (create or log-append time).
    pub timestamp_ms: Option<i64>,
}

impl RecordData {
    fn from_message(msg: &BorrowedMessage<'_>, topic: Arc<str>) -> Self {
        let headers = headers_of(msg);
        RecordData {
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: msg.timestamp().to_millis(),
        }
    }
}

/// The headers of `msg`, read through librdkafka's C API: rust-rdkafka's header iterator
/// unwraps the name as UTF-8 and so panics on a record whose header name is not (any client
/// can send one; the broker does not check). See `wire::headers::from_raw`.
fn headers_of(msg: &BorrowedMessage<'_>) -> Vec<Header> {
    let mut hdrs: *mut rdsys::rd_kafka_headers_t = ptr::null_mut();
    // SAFETY: the message pointer is valid while `msg` is; the headers it returns belong to
    // the message and are only read here, before `msg` goes.
    let err = unsafe { rdsys::rd_kafka_message_headers(msg.ptr(), &mut hdrs) };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return Vec::new();
    }
    // SAFETY: as above.
    let count = unsafe { rdsys::rd_kafka_header_cnt(hdrs) };
    let mut out = Vec::with_capacity(count);
    for idx in 0..count {
        let mut name: *const c_char = ptr::null();
        let mut value: *const c_void = ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx` is below the count; librdkafka fills in pointers into its own copy
        // of the header (a NUL-terminated name, `size` bytes of value or NULL for none).
        let err =
            unsafe { rdsys::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: pointers as librdkafka documents them, valid while the message is.
        let (name, value) = unsafe {
            (
                CStr::from_ptr(name).to_bytes(),
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            )
        };
        out.push(headers::from_raw(name, value));
    }
    out
}

/// librdkafka's consumer queue, referenced only to read its length: a `poll` that returns
/// nothing may have served a rebalance or commit event while messages still wait.
struct QueueRef(NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are thread-safe; we only read the length.
unsafe impl Send for QueueRef {}
unsafe impl Sync for QueueRef {}

impl QueueRef {
    fn len(&self) -> usize {
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
struct Handle {
    queue: QueueRef,
    consumer: BaseConsumer<ConsumerCtx>,
}

impl Handle {
    /// Commits the stored offsets without waiting. librdkafka answers an asynchronous
    /// `rd_kafka_commit` only to an `offset_commit_cb`, which rust-rdkafka does not set (it
    /// uses events), so the commit names our consumer queue as its reply queue: the answer
    /// then arrives as an offset-commit event on the next poll and reaches `commit_callback`,
    /// which frees the commit gate.
    fn commit_stored_async(&self) -> Result<()> {
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
        let ctx = ConsumerCtx::new(settings, wake.clone());
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
            self.poll_into(&handle, &mut out, max, false)?;
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
                    if handle.queue.len() == 0 {
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

    /// Waits until librdkafka has something for us (records or events), the consumer is
    /// closed, or `timeout` passes. Returns whether it was woken. Cancel-safe.
    pub async fn wait(&self, timeout: Duration) -> bool {
        if self.is_closed() {
            return false;
        }
        if self.health().auth.is_latched()
            || !self
                .stash
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            return true;
        }
        tokio::select! {
            _ = self.wake.notified() => true,
            _ = tokio::time::sleep(timeout) => false,
        }
    }

    /// [`wait`](Self::wait) with a callback: `f(true)` from the thread that sees records or
    /// events arrive (at once if some are here already) and when the consumer closes during
    /// the wait (the next `drain` says it is closed), or `f(false)` once `timeout` passed or
    /// at once if it was closed already. Called exactly once. The Python `wait` settles its future
    /// from `f`, so an arriving record reaches the event loop without a tokio task's hop.
    pub fn wait_then(&self, timeout: Duration, f: impl FnOnce(bool) + Send + 'static) {
        if self.is_closed() {
            return f(false);
        }
        if self.fatal.get().is_some() {
            return f(true); // `drain` reports it
        }
        let queued = self.handle().map(|h| h.queue.len()).unwrap_or(0);
        // Refused credentials: no waiting, the next `drain` says why.
        if queued > 0
            || self.health().auth.is_latched()
            || !self
                .stash
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            return f(true);
        }
        // Exactly one of the wake-up and the deadline calls `f`; the winner disarms the other.
        let waiter = Arc::new(Mutex::new(Waiter {
            f: Some(Box::new(f)),
            timer: None,
        }));
        let by_wake = Arc::clone(&waiter);
        let wake_id = self.wake.on_next(Box::new(move |woken| {
            let (f, timer) = {
                let mut w = by_wake.lock().unwrap_or_else(|e| e.into_inner());
                (w.f.take(), w.timer.take())
            };
            if let Some(timer) = timer {
                Timers::shared().cancel(timer);
            }
            if let Some(f) = f {
                f(woken);
            }
        }));
        let wake = Arc::clone(&self.wake);
        let by_timer = Arc::clone(&waiter);
        let timer = Timers::shared().after(
            timeout,
            Box::new(move || {
                let f = by_timer.lock().unwrap_or_else(|e| e.into_inner()).f.take();
                if let Some(f) = f {
                    wake.forget(wake_id);
                    f(false);
                }
            }),
        );
        let mut w = waiter.lock().unwrap_or_else(|e| e.into_inner());
        if w.f.is_some() {
            w.timer = Some(timer);
        } else {
            // Woken before the deadline was armed (on_next can call back at once).
            drop(w);
            Timers::shared().cancel(timer);
        }
    }

    /// Waits until the group has given this consumer its partitions (possibly none) and
    /// their start offsets are fixed. Records arriving meanwhile are kept for `drain`. Fails
    /// at once on a fatal error (a fenced static member) or a refusal (authorization, an
    /// unusable group id); after `timeout` with `Error::Timeout`.
    pub async fn wait_assigned(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            self.check_fatal()?;
            {
                let handle = self.handle()?;
                let mut fetched = Vec::new();
                self.poll_into(&handle, &mut fetched, usize::MAX, true)?;
                if !fetched.is_empty() {
                    self.stash
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(fetched);
                }
            }
            if self.is_assigned() {
                return Ok(());
            }
            // Refused credentials: the group cannot be joined, say so now (decision 48).
            self.health().auth.check("joining the consumer group")?;
            let now = Instant::now();
            if now >= deadline {
                let mut detail = format!(
                    "no partition assignment within {timeout:?} (bootstrap servers {})",
                    self.bootstrap_servers
                );
                if let Some(e) = self.health().last_error_since(started) {
                    detail.push_str(&format!("; recent client errors: {e}"));
                }
                return Err(Error::Timeout {
                    operation: "joining the consumer group",
                    detail,
                });
            }
            let step = (deadline - now).min(Duration::from_millis(100));
            tokio::select! {
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(step) => {},
            }
        }
    }

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

    fn partition_list(&self, partitions: Option<&[(String, i32)]>) -> Result<TopicPartitionList> {
        let handle = self.handle()?;
        match partitions {
            Some(list) => {
                let mut tpl = TopicPartitionList::with_capacity(list.len());
                for (topic, partition) in list {
                    tpl.add_partition(topic, *partition);
                }
                Ok(tpl)
            }
            None => handle
                .consumer
                .assignment()
                .map_err(|e| Error::from_kafka("assignment", e)),
        }
    }

    /// Reads a topic without a group: assigns every partition at the first offset whose
    /// timestamp is at or after `since_ms` and returns, per partition, that start offset and
    /// the end offset at the time of the call (what is to be read). Blocking.
    pub fn assign_from_time(
        &self,
        topic: &str,
        since_ms: i64,
        timeout: Duration,
    ) -> Result<Vec<(i32, i64, i64)>> {
        let handle = self.handle()?;
        let consumer = &handle.consumer;
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Error::from_kafka("metadata", e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(
                Error::kafka("read topic", RDKafkaErrorCode::UnknownTopicOrPartition)
                    .with_detail(format!("topic {topic:?}")),
            );
        }
        let mut query = TopicPartitionList::with_capacity(partitions.len());
        for p in &partitions {
            let _ = query.add_partition_offset(topic, *p, Offset::Offset(since_ms));
        }
        let starts = consumer
            .offsets_for_times(query, timeout)
            .map_err(|e| Error::from_kafka("offsets for times", e))?;
        let mut plan = Vec::with_capacity(partitions.len());
        let mut assign = TopicPartitionList::with_capacity(partitions.len());
        for p in partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .map_err(|e| Error::from_kafka("watermarks", e))?;
            // No record at or after the time: nothing to read in this partition.
            let start = match starts.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => o,
                _ => high,
            };
            let _ = assign.add_partition_offset(topic, p, Offset::Offset(start));
            plan.push((p, start, high));
        }
        consumer
            .assign(&assign)
            .map_err(|e| Error::from_kafka("assign", e))?;
        Ok(plan)
    }

    /// Stops fetching from the given partitions (all assigned ones by default).
    pub fn pause(&self, partitions: Option<&[(String, i32)]>) -> Result<()> {
        let tpl = self.partition_list(partitions)?;
        self.handle()?
            .consumer
            .pause(&tpl)
            .map_err(|e| Error::from_kafka("pause", e))
    }

    pub fn resume(&self, partitions: Option<&[(String, i32)]>) -> Result<()> {
        let tpl = self.partition_list(partitions)?;
        self.handle()?
            .consumer
            .resume(&tpl)
            .map_err(|e| Error::from_kafka("resume", e))
    }

    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        let tpl = self.partition_list(None)?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
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
