//! The producer: records are handed to librdkafka in one pass per send call and the call
//! resolves once, when the broker acknowledged (or refused) every record of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::context::ClientHealth;
use super::delivery::{BatchTracker, DeliveryTag, ProducerCtx};
use super::error::{Delivery, DeliveryFailure, Error, Outcome, Result};
use super::settings::ProducerSettings;

/// One record to send, borrowing its bytes from the caller.
#[derive(Default)]
pub struct OutRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Option<OwnedHeaders>,
    pub partition: Option<i32>,
}

/// A record that librdkafka's queue had no room for yet; it owns its bytes.
struct DeferredRecord {
    index: usize,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    partition: Option<i32>,
}

/// A send whose records are (partly) in librdkafka's queue; finish it with
/// [`KafkaProducer::finish`].
pub struct PendingSend {
    topic: String,
    tracker: Arc<BatchTracker>,
    deferred: Vec<DeferredRecord>,
}

impl PendingSend {
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
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

pub struct KafkaProducer {
    producer: ThreadedProducer<ProducerCtx>,
    closed: AtomicBool,
    /// Records waiting for room in librdkafka's queue: `flush` waits for them too.
    deferred: AtomicUsize,
    delivery_timeout: Duration,
}

impl KafkaProducer {
    pub fn new(settings: &ProducerSettings) -> Result<Arc<Self>> {
        let config = settings.client_config()?;
        let producer = ThreadedProducer::from_config_and_context(&config, ProducerCtx::default())
            .map_err(|e| Error::from_kafka("create producer", e))?;
        Ok(Arc::new(KafkaProducer {
            producer,
            closed: AtomicBool::new(false),
            deferred: AtomicUsize::new(0),
            delivery_timeout: Duration::from_millis(u64::from(settings.delivery_timeout_ms)),
        }))
    }

    pub fn health(&self) -> &ClientHealth {
        &self.producer.context().health
    }

    pub fn delivered_count(&self) -> u64 {
        self.producer
            .context()
            .stats
            .delivered
            .load(Ordering::Relaxed)
    }

    pub fn failed_count(&self) -> u64 {
        self.producer.context().stats.failed.load(Ordering::Relaxed)
    }

    /// Records in librdkafka's queue or in flight to the broker, plus deferred ones.
    pub fn in_flight(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize + self.deferred.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Hands `records` to librdkafka without blocking. Records that do not fit in its queue
    /// are copied and enqueued later by [`finish`](Self::finish), in order.
    pub fn enqueue<'a>(
        &self,
        topic: &str,
        records: impl ExactSizeIterator<Item = OutRecord<'a>>,
    ) -> Result<PendingSend> {
        if self.is_closed() {
            return Err(Error::Closed("producer"));
        }
        let tracker = BatchTracker::new(records.len());
        let mut deferred = Vec::new();
        for (index, record) in records.enumerate() {
            if !deferred.is_empty() {
                // Once one record waits, all later ones wait behind it to keep their order.
                deferred.push(DeferredRecord {
                    index,
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.map(<[u8]>::to_vec),
                    headers: record.headers,
                    partition: record.partition,
                });
                continue;
            }
            if let Some(headers) = self.try_send(
                topic,
                &tracker,
                index,
                record.key,
                record.value,
                record.headers,
                record.partition,
            ) {
                deferred.push(DeferredRecord {
                    index,
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.map(<[u8]>::to_vec),
                    headers,
                    partition: record.partition,
                });
            }
        }
        self.deferred.fetch_add(deferred.len(), Ordering::Relaxed);
        Ok(PendingSend {
            topic: topic.to_owned(),
            tracker,
            deferred,
        })
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
        let tag = Box::new(DeliveryTag {
            tracker: tracker.clone(),
            index,
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<DeliveryTag>> =
            BaseRecord::with_opaque_to(topic, tag);
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
                    Outcome::Failed(DeliveryFailure {
                        code,
                        possibly_persisted: false,
                        detail: Some(format!("refused before sending: {err}")),
                    }),
                );
                None
            }
        }
    }

    /// Enqueues what was deferred (waiting for room, at most the delivery timeout) and waits
    /// until the broker answered for every record of the send.
    pub async fn finish(&self, mut pending: PendingSend) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + self.delivery_timeout;
        let mut backoff = Duration::from_micros(500);
        while !pending.deferred.is_empty() {
            self.enqueue_deferred(&mut pending);
            if pending.deferred.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for rec in pending.deferred.drain(..) {
                    self.deferred.fetch_sub(1, Ordering::Relaxed);
                    pending.tracker.complete(
                        rec.index,
                        Outcome::Failed(DeliveryFailure {
                            code: RDKafkaErrorCode::QueueFull,
                            possibly_persisted: false,
                            detail: Some(
                                "the producer queue stayed full for the whole delivery timeout"
                                    .into(),
                            ),
                        }),
                    );
                }
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
        pending.tracker.wait().await;
        let outcomes = pending.tracker.outcomes();
        let mut deliveries = Vec::with_capacity(outcomes.len());
        for outcome in &outcomes {
            match outcome {
                Outcome::Delivered(d) => deliveries.push(*d),
                Outcome::Failed(_) => return Err(Error::Batch(outcomes)),
            }
        }
        Ok(deliveries)
    }

    fn enqueue_deferred(&self, pending: &mut PendingSend) {
        let mut sent = 0;
        while sent < pending.deferred.len() {
            let rec = &mut pending.deferred[sent];
            let headers = rec.headers.take();
            match self.try_send(
                &pending.topic,
                &pending.tracker,
                rec.index,
                rec.key.as_deref(),
                rec.value.as_deref(),
                headers,
                rec.partition,
            ) {
                None => sent += 1,
                Some(headers) => {
                    pending.deferred[sent].headers = headers;
                    break;
                }
            }
        }
        pending.deferred.drain(..sent);
        self.deferred.fetch_sub(sent, Ordering::Relaxed);
    }

    /// Blocks until everything handed to this producer was answered by the broker, or the
    /// timeout passed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let step = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let flushed = self.producer.flush(step);
            if flushed.is_ok() && self.deferred.load(Ordering::Acquire) == 0 {
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
        // librdkafka purges what is still queued when the handle goes; give it a last chance.
        if self.in_flight() > 0 {
            let _ = self.flush(Duration::from_secs(5));
        }
    }
}
