//! A rebalance met by `drain` is applied on a thread of its own (decision 127): the thread
//! that drains (the asyncio event loop's, in the package) never waits for the broker's
//! answers to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::consumer::KafkaConsumer;
use super::mock_tests::{cluster_with_events, producer, records, take_all};
use super::settings::{ConsumerSettings, OffsetReset};

/// How long every answer of the mock broker takes once the consumer subscribed.
const ROUND_TRIP: Duration = Duration::from_millis(800);

/// A consumer of "events" in `group`, subscribed, with every answer of the broker taking
/// [`ROUND_TRIP`] from now on. `latest` asks for each new partition's end offset on top of
/// the committed offsets: three round trips on the way to an assignment of two partitions.
fn subscribed_with_slow_answers(
    mock: &MockCluster<'static, DefaultProducerContext>,
    group: &str,
) -> Arc<KafkaConsumer> {
    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), group);
    settings.auto_offset_reset = OffsetReset::Latest;
    settings.session_timeout_ms = 10_000;
    settings.heartbeat_interval_ms = 500;
    let consumer = KafkaConsumer::new(&settings).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    mock.broker_round_trip_time(1, ROUND_TRIP).unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_never_waits_for_the_broker_while_an_assignment_is_fixed() {
    let mock = cluster_with_events(2, 40).await;
    let consumer = subscribed_with_slow_answers(&mock, "slow-answers");

    let started = Instant::now();
    let mut drains = 0;
    let mut slowest = Duration::ZERO;
    while !consumer.is_assigned() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never assigned"
        );
        let drain = Instant::now();
        assert!(
            consumer.drain(100).unwrap().is_empty(),
            "nothing new was produced"
        );
        slowest = slowest.max(drain.elapsed());
        drains += 1;
        consumer.wait(Duration::from_millis(50)).await;
    }
    assert!(drains > 1);
    // Before decision 127 the drain that met the assignment took three round trips.
    assert!(
        slowest < ROUND_TRIP / 2,
        "a drain waited {slowest:?} with answers taking {ROUND_TRIP:?}"
    );

    // The start offsets were fixed before the consumer reported itself assigned: what is
    // produced now is read, and nothing from before.
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    let p = producer(&mock, 10_000);
    let vals: Vec<Vec<u8>> = (0..10).map(|i| format!("new{i}").into_bytes()).collect();
    p.finish(p.enqueue("events", records(&vals)).unwrap())
        .await
        .unwrap();
    let got = take_all(&consumer, 10).await;
    let mut read: Vec<Vec<u8>> = got.iter().filter_map(|r| r.value.clone()).collect();
    read.sort_unstable();
    let mut want = vals.clone();
    want.sort_unstable();
    assert_eq!(read, want);
    consumer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_applies_a_handed_over_rebalance_before_it_closes() {
    let mock = cluster_with_events(2, 10).await;
    let consumer = subscribed_with_slow_answers(&mock, "closing-early");

    // Drain until the assignment is handed over, then close at once.
    let started = Instant::now();
    while !consumer.context().rebalancer.busy() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never handed over"
        );
        assert!(!consumer.is_assigned());
        consumer.drain(100).unwrap();
        consumer.wait(Duration::from_millis(20)).await;
    }
    let closing = Instant::now();
    let closer = Arc::clone(&consumer);
    tokio::task::spawn_blocking(move || closer.close())
        .await
        .unwrap()
        .unwrap();
    // The close waited for the assignment (its lookups take round trips) instead of
    // returning while the rebalance thread still held the consumer.
    assert!(!consumer.context().rebalancer.busy());
    assert!(consumer.is_assigned());
    assert!(
        closing.elapsed() >= ROUND_TRIP / 2,
        "{:?}",
        closing.elapsed()
    );
    assert!(matches!(
        consumer.drain(1),
        Err(super::error::Error::Closed(_))
    ));
}
