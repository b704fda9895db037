//! The producer: each send call becomes one job for the producer's enqueue thread, which
//! hands its records to librdkafka in call order; the call resolves once, when the broker
//! acknowledged (or refused) every record of it.
//!
//! Why a thread: copying records into librdkafka (headers, key, value) is a sizeable part of
//! a batch publish (decision 57), and on the thread that holds the GIL it would hold up
//! encoding the next batch; on its own thread the two overlap. One thread per producer, one
//! FIFO: records are enqueued in the order of the send calls, including when librdkafka's
//! queue is full (then the thread waits, and every later job waits behind it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::auth_gate::{probe_interval, probe_timeout, ProbeResult};
use super::context::ClientHealth;
use super::delivery::{BatchTracker, DeliveryTag, ProducerCtx};
use super::delivery::{Delivery, Outcome};
use super::error::{Error, Result};
use super::flusher::Flusher;
use super::settings::ProducerSettings;

/// Sends of at most this many records may be handed to librdkafka on the caller's thread.
const DIRECT_MAX_RECORDS: usize = 16;

/// One record to send, borrowing its bytes.
#[derive(Default)]
pub struct OutRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Option<OwnedHeaders>,
    pub partition: Option<i32>,
}

/// The records of one send call, read by the enqueue thread.
pub trait RecordSource: Send + 'static {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Record `i`; called once per record, in order (again for a record put back).
    fn record(&mut self, i: usize) -> OutRecord<'_>;
    /// Takes back the headers of record `i`, which librdkafka refused for now (queue full):
    /// it will be asked for again.
    fn put_back(&mut self, i: usize, headers: Option<OwnedHeaders>);
}

/// Records that own their bytes (copied from the caller).
struct OwnedRecords(Vec<OwnedRecord>);

struct OwnedRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    partition: Option<i32>,
}

impl RecordSource for OwnedRecords {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn record(&mut self, i: usize) -> OutRecord<'_> {
        let r = &mut self.0[i];
        OutRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: r.headers.take(),
            partition: r.partition,
        }
    }

    fn put_back(&mut self, i: usize, headers: Option<OwnedHeaders>) {
        self.0[i].headers = headers;
    }
}

/// A send whose records are queued for librdkafka; finish it with
/// [`KafkaProducer::finish`].
pub struct PendingSend {
    tracker: Arc<BatchTracker>,
}

impl PendingSend {
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Whether every record has its outcome (tests: register a callback after the end).
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        self.tracker.is_done()
    }
}

/// Builds librdkafka headers from (name, value) pairs.
pub fn make_headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> OwnedHeaders {
    let iter = pairs.into_iter();
    let mut headers = OwnedHeaders::new_with_capacity(iter.size_hint().0);
    for (key, value) in iter {
        headers = headers.insert(Header { key, value });
    }
    headers
}

struct Job {
    topic: String,
    source: Box<dyn RecordSource>,
    /// The first record not handed over yet.
    start: usize,
    tracker: Arc<BatchTracker>,
    /// Records still waiting for room in librdkafka's queue fail at this point.
    deadline: Instant,
}

/// What the caller's side and the enqueue thread share.
struct Shared {
    producer: ThreadedProducer<ProducerCtx>,
    /// Records of jobs the enqueue thread has not finished handing to librdkafka.
    queued: AtomicUsize,
    /// Records sent through this producer that have no outcome yet.
    unresolved: Arc<AtomicUsize>,
    /// Whose turn it is to hand records to librdkafka: the enqueue thread holds it for each
    /// job, a caller handing a small send over itself holds it for that send.
    turn: Mutex<()>,
    /// Jobs sent to the enqueue thread and not finished; changed only while holding `turn`
    /// (or before sending the job). A caller may hand over itself only when it is zero:
    /// then nothing sent earlier is still waiting, and the call order is kept.
    jobs_pending: AtomicUsize,
    /// Sends immediate sends' lingering records at once; None when nothing lingers
    /// (linger.ms 0).
    flusher: Option<Flusher>,
}

pub struct KafkaProducer {
    shared: Arc<Shared>,
    /// The enqueue thread's inbox. Unbounded, but it holds only the records of send calls
    /// whose awaitables are still pending, as librdkafka's own queue would: the callers bound
    /// it, and a full librdkafka queue makes them wait for their deliveries.
    jobs: Sender<Job>,
    closed: AtomicBool,
    delivery_timeout: Duration,
}

/// The enqueue thread: jobs in order, records in order; waits while librdkafka's queue is
/// full, at most until the job's deadline.
fn enqueue_forever(shared: Arc<Shared>, jobs: Receiver<Job>) {
    while let Ok(mut job) = jobs.recv() {
        let _turn = shared.turn.lock().unwrap_or_else(|e| e.into_inner());
        let end = shared.hand_over(&mut job, true);
        debug_assert_eq!(end, job.source.len());
        shared.purge_if_refused();
        // Counted out per job, not per record: `flush` only needs to see zero at the end.
        shared
            .queued
            .fetch_sub(job.source.len() - job.start, Ordering::AcqRel);
        shared.jobs_pending.fetch_sub(1, Ordering::AcqRel);
        shared.handed_over(&job);
    }
}

impl Shared {
    /// Every record of `job` is in librdkafka's queue (or has its outcome).
    fn handed_over(&self, job: &Job) {
        job.tracker.handed_over();
    }

    /// Hands the job's records from `job.start` on to librdkafka, in order. When its queue
    /// is full: with `wait`, retries until there is room (a record still waiting at the
    /// deadline fails); without, stops. Returns the index of the first record not handed
    /// over (the job's length when all were).
    fn hand_over(&self, job: &mut Job, wait: bool) -> usize {
        for index in job.start..job.source.len() {
            if let Some(reason) = self.health().auth.current_failure() {
                // The credentials were refused since this send was accepted: the rest of
                // it fails now rather than after the delivery timeout (decision 48).
                for rest in index..job.source.len() {
                    job.tracker.complete(
                        rest,
                        Outcome::not_sent(RDKafkaErrorCode::Authentication, reason.clone()),
                    );
                }
                break;
            }
            let OutRecord {
                key,
                value,
                mut headers,
                partition,
            } = job.source.record(index);
            let mut backoff = Duration::from_micros(200);
            loop {
                match self.try_send(
                    &job.topic,
                    &job.tracker,
                    index,
                    key,
                    value,
                    headers,
                    partition,
                ) {
                    None => break,
                    Some(returned) => {
                        if !wait {
                            job.source.put_back(index, returned);
                            return index;
                        }
                        if Instant::now() >= job.deadline {
                            job.tracker.complete(
                                index,
                                Outcome::not_sent(
                                    RDKafkaErrorCode::QueueFull,
                                    "the producer queue stayed full for the whole delivery timeout",
                                ),
                            );
                            break;
                        }
                        headers = returned;
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_millis(20));
                    }
                }
            }
        }
        job.source.len()
    }

    fn health(&self) -> &ClientHealth {
        &self.producer.context().health
    }

    /// Purges librdkafka's queue if the credentials were refused. Called after records were
    /// handed over: a failure reported while they were being handed over may have purged
    /// before they arrived; the gate is set before that purge, so one of the two sees them.
    fn purge_if_refused(&self) {
        if self.health().auth.is_latched() {
            self.producer.context().purge_queued();
        }
    }

    /// Tries to put one record in librdkafka's queue. Returns `Some(headers)` when the queue
    /// is full (the record must be retried); any other refusal becomes the record's outcome.
    #[allow(clippy::too_many_arguments)]
    fn try_send(
        &self,
        topic: &str,
        tracker: &Arc<BatchTracker>,
        index: usize,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        partition: Option<i32>,
    ) -> Option<Option<OwnedHeaders>> {
        let mut record: BaseRecord<'_, [u8], [u8], DeliveryTag> =
            BaseRecord::with_opaque_to(topic, tracker.tag(index));
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        match self.producer.send(record) {
            Ok(()) => None,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                Some(record.headers)
            }
            Err((err, _record)) => {
                let code = err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                tracker.complete(
                    index,
                    Outcome::not_sent(code, format!("refused before sending: {err}")),
                );
                None
            }
        }
    }
}

impl KafkaProducer {
    pub fn new(settings: &ProducerSettings) -> Result<Arc<Self>> {
        let config = settings.client_config()?;
        let linger = lingers(&config);
        let producer = ThreadedProducer::from_config_and_context(&config, ProducerCtx::default())
            .map_err(|e| Error::from_kafka("create producer", e))?;
        producer
            .context()
            .set_client(producer.client().native_ptr());
        let shared = Arc::new(Shared {
            producer,
            queued: AtomicUsize::new(0),
            unresolved: Arc::new(AtomicUsize::new(0)),
            turn: Mutex::new(()),
            jobs_pending: AtomicUsize::new(0),
            flusher: linger.map(|_| Flusher::default()),
        });
        {
            // While the credentials are refused, a metadata request now and then tells when
            // they work again (decision 48).
            let weak = Arc::downgrade(&shared);
            let timeout = probe_timeout(&config);
            shared
                .health()
                .auth
                .set_probe(probe_interval(&config), move || match weak.upgrade() {
                    None => ProbeResult::Gone,
                    Some(shared) => match shared.producer.client().fetch_metadata(None, timeout) {
                        Ok(_) => ProbeResult::Authenticated,
                        Err(_) => ProbeResult::Failed,
                    },
                });
        }
        if let Some(step) = linger {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tradecore-flush".into())
                .spawn(move || {
                    let client = shared.producer.client().native_ptr();
                    let step_ms = i32::try_from(step.as_millis()).unwrap_or(i32::MAX);
                    if let Some(flusher) = &shared.flusher {
                        // SAFETY: `client` is the producer's handle, alive as long as
                        // `shared`, which this thread holds until `run` returns.
                        flusher.run(|| unsafe {
                            rdkafka_sys::rd_kafka_flush(client, step_ms);
                        });
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start the flush thread: {e}")))?;
        }
        let (jobs, inbox) = channel();
        {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tradecore-enqueue".into())
                .spawn(move || enqueue_forever(shared, inbox))
                // The OS refused a thread (a resource limit): no setting of ours is wrong.
                .map_err(|e| Error::Internal(format!("cannot start the enqueue thread: {e}")))?;
        }
        Ok(Arc::new(KafkaProducer {
            shared,
            jobs,
            closed: AtomicBool::new(false),
            delivery_timeout: Duration::from_millis(u64::from(settings.delivery_timeout_ms)),
        }))
    }

    pub fn health(&self) -> &ClientHealth {
        &self.shared.producer.context().health
    }

    /// The librdkafka context (tests hand it the reports librdkafka would make).
    #[cfg(test)]
    pub(crate) fn context(&self) -> &ProducerCtx {
        self.shared.producer.context()
    }

    pub fn delivered_count(&self) -> u64 {
        self.shared
            .producer
            .context()
            .stats
            .delivered
            .load(Ordering::Relaxed)
    }

    pub fn failed_count(&self) -> u64 {
        self.shared
            .producer
            .context()
            .stats
            .failed
            .load(Ordering::Relaxed)
    }

    /// Records sent through this producer whose outcome is not known yet: waiting for the
    /// enqueue thread, in librdkafka's queue, or in flight to the broker.
    pub fn in_flight(&self) -> usize {
        self.shared.unresolved.load(Ordering::Acquire)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues `records` (copied) for the enqueue thread; never blocks.
    pub fn enqueue<'a>(
        &self,
        topic: &str,
        records: impl ExactSizeIterator<Item = OutRecord<'a>>,
    ) -> Result<PendingSend> {
        self.enqueue_with(topic, records, false)
    }

    /// [`enqueue`](Self::enqueue); `immediate` as in [`enqueue_source`](Self::enqueue_source).
    pub fn enqueue_with<'a>(
        &self,
        topic: &str,
        records: impl ExactSizeIterator<Item = OutRecord<'a>>,
        immediate: bool,
    ) -> Result<PendingSend> {
        let owned = records
            .map(|r| OwnedRecord {
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r.headers,
                partition: r.partition,
            })
            .collect();
        self.enqueue_source(topic, Box::new(OwnedRecords(owned)), immediate)
    }

    /// Hands the records of `source` to librdkafka in call order; never blocks. `immediate`:
    /// the records do not wait for linger.ms (an explicit batch, complete as it is; decision
    /// 95). A small send
    /// made while the enqueue thread has nothing waiting goes in on the caller's thread: a
    /// hop to another thread costs more than copying a few records, and such hops made the
    /// latency tail (decision 35). Anything else (or the rest, if librdkafka's queue is
    /// full) becomes a job for the enqueue thread.
    pub fn enqueue_source(
        &self,
        topic: &str,
        source: Box<dyn RecordSource>,
        immediate: bool,
    ) -> Result<PendingSend> {
        if self.is_closed() {
            return Err(Error::Closed("producer"));
        }
        // Refused credentials: fail now, not after the delivery timeout (decision 48).
        self.health().auth.check("produce")?;
        let len = source.len();
        self.shared.unresolved.fetch_add(len, Ordering::AcqRel);
        let tracker = BatchTracker::with_handover(len, self.shared.unresolved.clone());
        if immediate {
            if let Some(flusher) = &self.shared.flusher {
                // From now on, not once all are handed over: librdkafka starts sending the
                // first records while the others are still being handed over, as with
                // linger.ms 0 (measured: a quarter faster per awaited batch; decision 95).
                flusher.watch(Arc::clone(&tracker));
            }
        }
        let mut job = Job {
            topic: topic.to_owned(),
            source,
            start: 0,
            tracker: Arc::clone(&tracker),
            deadline: Instant::now() + self.delivery_timeout,
        };
        if len <= DIRECT_MAX_RECORDS {
            if let Ok(_turn) = self.shared.turn.try_lock() {
                if self.shared.jobs_pending.load(Ordering::Acquire) == 0 {
                    job.start = self.shared.hand_over(&mut job, false);
                    self.shared.purge_if_refused();
                    if job.start == len {
                        self.shared.handed_over(&job);
                        return Ok(PendingSend { tracker });
                    }
                    // librdkafka's queue is full: the rest waits in line, first in line
                    // since the turn is still ours.
                    return self.queue_job(job);
                }
            }
        }
        self.queue_job(job)
    }

    fn queue_job(&self, job: Job) -> Result<PendingSend> {
        let n = job.source.len() - job.start;
        let tracker = Arc::clone(&job.tracker);
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
        self.shared.jobs_pending.fetch_add(1, Ordering::AcqRel);
        if let Err(returned) = self.jobs.send(job) {
            // Only if the thread died (a panic): these records never reached librdkafka.
            let job = returned.0;
            self.shared.queued.fetch_sub(n, Ordering::AcqRel);
            self.shared.jobs_pending.fetch_sub(1, Ordering::AcqRel);
            for index in job.start..job.source.len() {
                job.tracker.complete(
                    index,
                    Outcome::not_sent(
                        RDKafkaErrorCode::Fail,
                        "the producer's enqueue thread is gone",
                    ),
                );
            }
            self.shared.handed_over(&job);
            // A bug, not a close: the caller did not close this producer.
            return Err(Error::Internal(
                "the producer's enqueue thread is gone (it panicked); the records were not sent"
                    .into(),
            ));
        }
        Ok(PendingSend { tracker })
    }

    /// Waits until the broker answered for every record of the send.
    pub async fn finish(&self, pending: PendingSend) -> Result<Vec<Delivery>> {
        pending.tracker.wait().await;
        pending.tracker.deliveries()
    }

    /// Calls `f` with the send's deliveries once the broker answered for every record, on
    /// the thread that received the last answer (see [`BatchTracker::on_done`]).
    pub fn on_finished(
        &self,
        pending: PendingSend,
        f: impl FnOnce(Result<Vec<Delivery>>) + Send + 'static,
    ) {
        pending
            .tracker
            .on_done(move |tracker| f(tracker.deliveries()));
    }

    /// Blocks until everything handed to this producer was answered by the broker, or the
    /// timeout passed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let step = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let flushed = self.shared.producer.flush(step);
            if flushed.is_ok() && self.shared.queued.load(Ordering::Acquire) == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let detail = format!(
                    "{} records still waiting for the broker{}",
                    self.in_flight(),
                    self.health()
                        .last_error()
                        .map(|e| format!("; last client error: {e}"))
                        .unwrap_or_default()
                );
                return Err(Error::Timeout {
                    operation: "flush",
                    detail,
                });
            }
            if flushed.is_ok() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Refuses new sends, then flushes. Idempotent.
    pub fn close(&self, timeout: Duration) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.flush(timeout)
    }
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        if let Some(flusher) = &self.shared.flusher {
            flusher.stop();
        }
        // librdkafka purges what is still queued when the handle goes; give it a last chance,
        // as long as a delivery may take (each one has an outcome by then). Not after an
        // explicit `close(timeout)`: that already waited as long as its caller allowed, and
        // waiting again here would keep the client (and its threads) alive past it.
        if self.in_flight() > 0 && !self.is_closed() {
            let _ = self.flush(self.delivery_timeout);
        }
    }
}

/// How long librdkafka lingers, if it does: `linger.ms` (or its alias
/// `queue.buffering.max.ms`), librdkafka's 5 ms when neither is set.
fn lingers(config: &rdkafka::ClientConfig) -> Option<Duration> {
    let ms = config
        .get("linger.ms")
        .or_else(|| config.get("queue.buffering.max.ms"))
        .map(|v| v.trim().parse::<f64>().unwrap_or(5.0))
        .unwrap_or(5.0);
    (ms > 0.0).then(|| Duration::from_secs_f64(ms / 1000.0).max(Duration::from_millis(1)))
}
