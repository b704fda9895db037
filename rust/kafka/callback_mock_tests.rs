//! The callbacks production uses, against librdkafka's mock cluster: `Consumer::wait_then`
//! settles the Python `wait()` future and `Producer::on_finished` settles a send's future.
//! Each must call back exactly once, with the right answer, whichever way the wait ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::consumer::KafkaConsumer;
use super::delivery::{Delivery, Outcome};
use super::error::{Error, Result};
use super::mock_tests::{cluster_with_events, producer, records, take_all, values};
use super::producer::{KafkaProducer, OutRecord};
use super::settings::ConsumerSettings;

/// Every call a callback got, with its argument and when it came.
#[derive(Clone)]
struct Calls<T>(Arc<Mutex<Vec<(T, Instant)>>>);

impl<T: Clone + Send + 'static> Calls<T> {
    fn new() -> Self {
        Calls(Arc::new(Mutex::new(Vec::new())))
    }

    fn callback(&self) -> impl FnOnce(T) + Send + 'static {
        let calls = self.clone();
        move |value| calls.0.lock().unwrap().push((value, Instant::now()))
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The first call, waiting up to `within` for it.
    async fn first(&self, within: Duration) -> (T, Instant) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.0.lock().unwrap().first().cloned() {
                return first;
            }
            assert!(Instant::now() < deadline, "no call back within {within:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A group consumer of "events" that has been assigned and has read all `n` records.
async fn idle_consumer(
    mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    group: &str,
    n: usize,
) -> Arc<KafkaConsumer> {
    let consumer = KafkaConsumer::new(&ConsumerSettings::new(mock.bootstrap_servers(), group))
        .expect("consumer");
    consumer.subscribe(&["events"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    take_all(&consumer, n).await;
    consumer
}

/// Waits until a `wait_then` with `timeout` ends by its deadline, which is what an idle
/// consumer's waits do once the wake-ups of what it already read are used up (a wake-up
/// nobody waited for is kept for the next waiter). Returns that wait's call and start.
async fn until_a_wait_times_out(
    consumer: &KafkaConsumer,
    timeout: Duration,
) -> (Calls<bool>, Instant) {
    for _ in 0..20 {
        let calls = Calls::new();
        let started = Instant::now();
        consumer.wait_then(timeout, calls.callback());
        let (woken, _) = calls.first(timeout + Duration::from_secs(5)).await;
        if !woken {
            return (calls, started);
        }
        assert!(consumer.drain(100).unwrap().is_empty(), "nothing was sent");
    }
    panic!("an idle consumer's wait never timed out");
}

async fn close(consumer: Arc<KafkaConsumer>) {
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_then_calls_back_false_once_when_nothing_arrives_by_the_timeout() {
    let mock = cluster_with_events(1, 3).await;
    let consumer = idle_consumer(&mock, "idle", 3).await;
    let timeout = Duration::from_millis(300);
    let (calls, started) = until_a_wait_times_out(&consumer, timeout).await;
    let (_, at) = calls.first(Duration::ZERO).await;
    assert!(
        at.duration_since(started) >= timeout,
        "called back after {:?}, before the timeout",
        at.duration_since(started)
    );
    // A record arriving after the deadline wakes nobody that has already been answered.
    let p = producer(&mock, 10_000);
    p.finish(p.enqueue("events", records(&values(1))).unwrap())
        .await
        .unwrap();
    take_all(&consumer, 1).await;
    tokio::time::sleep(timeout).await;
    assert_eq!(calls.count(), 1, "called back more than once");
    close(consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_then_calls_back_true_once_when_a_record_arrives_before_the_timeout() {
    let mock = cluster_with_events(1, 3).await;
    let consumer = idle_consumer(&mock, "woken", 3).await;
    until_a_wait_times_out(&consumer, Duration::from_millis(200)).await;

    let timeout = Duration::from_secs(3);
    let calls = Calls::new();
    let started = Instant::now();
    consumer.wait_then(timeout, calls.callback());
    let p = producer(&mock, 10_000);
    let sent_at = Instant::now();
    p.finish(p.enqueue("events", records(&values(1))).unwrap())
        .await
        .unwrap();
    let (woken, at) = calls.first(timeout).await;
    assert!(woken, "called back false although a record arrived");
    assert!(at >= sent_at, "called back before anything was sent");
    assert!(
        at.duration_since(started) < timeout,
        "called back only at the deadline"
    );
    assert_eq!(take_all(&consumer, 1).await.len(), 1);
    // The deadline passing afterwards must not call back a second time.
    tokio::time::sleep_until((started + timeout + Duration::from_millis(300)).into()).await;
    assert_eq!(calls.count(), 1, "called back more than once");
    close(consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_then_answers_a_closed_consumer_at_once_and_ends_a_wait_in_progress_at_close() {
    let mock = cluster_with_events(1, 1).await;
    let consumer = idle_consumer(&mock, "closing", 1).await;
    until_a_wait_times_out(&consumer, Duration::from_millis(200)).await;

    // In progress when the consumer closes: called back at close, not at its deadline, and
    // told to look (`drain` then says the consumer is closed).
    let timeout = Duration::from_secs(5);
    let in_progress = Calls::new();
    consumer.wait_then(timeout, in_progress.callback());
    let closing = Arc::clone(&consumer);
    let closed_at = Instant::now();
    close(closing).await;
    let (woken, at) = in_progress.first(timeout).await;
    assert!(woken);
    assert!(
        at.duration_since(closed_at) < timeout,
        "waited for the deadline"
    );
    assert!(matches!(consumer.drain(1), Err(Error::Closed(_))));

    // Called after close: false, before wait_then returns.
    let after = Calls::new();
    consumer.wait_then(timeout, after.callback());
    assert_eq!(after.count(), 1, "not called back at once");
    assert!(!after.first(Duration::ZERO).await.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(in_progress.count(), 1, "called back more than once");
    assert_eq!(after.count(), 1, "called back more than once");
}

type Finished = Calls<Result<Vec<Delivery>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_finished_calls_back_once_with_every_delivery_when_the_last_report_arrives() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    // Big enough to go through the enqueue thread and several produce requests.
    let vals = values(300);
    let pending = p.enqueue("orders", records(&vals)).unwrap();
    let calls = Finished::new();
    p.on_finished(pending, calls.callback());
    let (result, _) = calls.first(Duration::from_secs(10)).await;
    let offsets: Vec<i64> = result.unwrap().iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());
    p.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(calls.count(), 1, "called back more than once");
}

/// Sends `batch` to `topic`; returns the calls of its `on_finished` once there is one.
async fn finished(p: &KafkaProducer, topic: &str, batch: Vec<OutRecord<'_>>) -> Finished {
    let pending = p.enqueue(topic, batch.into_iter()).unwrap();
    let calls = Finished::new();
    p.on_finished(pending, calls.callback());
    let _ = calls.first(Duration::from_secs(15)).await;
    calls
}

fn failures(calls: &Finished) -> Vec<Outcome> {
    let (result, _) = calls.0.lock().unwrap()[0].clone();
    match result {
        Err(Error::Batch(outcomes)) => outcomes,
        other => panic!("expected a batch error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_finished_calls_back_once_when_the_broker_refuses_the_records() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    // Warm up: the idempotent producer id is acquired before the fault is injected.
    p.finish(p.enqueue("orders", records(&values(1))).unwrap())
        .await
        .unwrap();
    // One per produce request the batch may take.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 3],
    );
    let vals = values(3);
    let calls = finished(&p, "orders", records(&vals).collect()).await;
    let outcomes = failures(&calls);
    assert_eq!(outcomes.len(), 3);
    for o in &outcomes {
        match o {
            Outcome::Failed(f) => assert_eq!(f.code, RDKafkaErrorCode::TopicAuthorizationFailed),
            other => panic!("delivered despite the refusal: {other:?}"),
        }
    }
    p.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(calls.count(), 1, "called back more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_finished_calls_back_once_when_a_record_names_an_unknown_partition() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    let vals = values(3);
    let batch: Vec<OutRecord<'_>> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| OutRecord {
            value: Some(v),
            // The middle one: a partition the one-partition topic does not have.
            partition: Some(if i == 1 { 7 } else { 0 }),
            ..OutRecord::default()
        })
        .collect();
    let calls = finished(&p, "orders", batch).await;
    let outcomes = failures(&calls);
    assert!(matches!(outcomes[0], Outcome::Delivered(_)), "{outcomes:?}");
    assert!(
        matches!(&outcomes[1], Outcome::Failed(f) if f.code == RDKafkaErrorCode::UnknownPartition),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[2], Outcome::Delivered(_)), "{outcomes:?}");
    p.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(calls.count(), 1, "called back more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_finished_calls_back_once_when_deliveries_time_out() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 1_500);
    p.finish(p.enqueue("orders", records(&values(1))).unwrap())
        .await
        .unwrap();
    mock.broker_down(1).unwrap();
    let vals = values(3);
    let calls = finished(&p, "orders", records(&vals).collect()).await;
    for o in failures(&calls) {
        match o {
            Outcome::Failed(f) => assert_eq!(f.code, RDKafkaErrorCode::MessageTimedOut),
            other => panic!("delivered while the broker was down: {other:?}"),
        }
    }
    assert_eq!(p.in_flight(), 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.count(), 1, "called back more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_finished_registered_after_the_batch_finished_calls_back_at_once() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    let vals = values(5);
    let pending = p.enqueue("orders", records(&vals)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pending.is_done() {
        assert!(Instant::now() < deadline, "the batch never finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls = Finished::new();
    p.on_finished(pending, calls.callback());
    // On this thread, before on_finished returned: no delivery report is left to do it.
    assert_eq!(calls.count(), 1);
    let (result, _) = calls.first(Duration::ZERO).await;
    let offsets: Vec<i64> = result.unwrap().iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..5).collect::<Vec<i64>>());
}
