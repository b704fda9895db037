//! The transport against librdkafka's in-process mock cluster, with injected faults. The
//! real-broker behaviour is covered by the Python suite; these pin the Rust layer itself.

use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::consumer::KafkaConsumer;
use super::delivery::Outcome;
use super::error::{Error, ErrorKind};
use super::producer::{KafkaProducer, OutRecord};
use super::settings::{ConsumerSettings, ProducerSettings};

pub(super) fn producer(
    mock: &MockCluster<'_, impl rdkafka::ClientContext>,
    timeout_ms: u32,
) -> std::sync::Arc<KafkaProducer> {
    let mut settings = ProducerSettings::new(mock.bootstrap_servers());
    settings.linger_ms = 0;
    settings.delivery_timeout_ms = timeout_ms;
    KafkaProducer::new(&settings).expect("producer")
}

pub(super) fn records(values: &[Vec<u8>]) -> impl ExactSizeIterator<Item = OutRecord<'_>> {
    values.iter().map(|v| OutRecord {
        value: Some(v),
        ..OutRecord::default()
    })
}

pub(super) fn values(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("v{i}").into_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_resolves_once_with_every_offset_in_order() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    let vals = values(200);
    let pending = p.enqueue("orders", records(&vals)).unwrap();
    let deliveries = p.finish(pending).await.unwrap();
    let offsets: Vec<i64> = deliveries.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
    assert_eq!(p.delivered_count(), 200);
    p.flush(Duration::from_secs(1)).unwrap();
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_retriable_produce_errors_are_retried_without_loss_or_duplicates() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let p = producer(&mock, 10_000);
    let vals = values(50);
    let pending = p.enqueue("orders", records(&vals)).unwrap();
    let deliveries = p.finish(pending).await.unwrap();
    // Idempotence keeps the retried records in order and written once.
    let offsets: Vec<i64> = deliveries.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retriable_broker_error_fails_the_record_with_its_code() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 10_000);
    // Warm up: the idempotent producer id is acquired before the fault is injected.
    let warm = values(1);
    p.finish(p.enqueue("orders", records(&warm)).unwrap())
        .await
        .unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let vals = values(1);
    let err = p
        .finish(p.enqueue("orders", records(&vals)).unwrap())
        .await
        .unwrap_err();
    let Error::Batch(outcomes) = &err else {
        panic!("expected a batch error, got {err:?}");
    };
    match &outcomes[0] {
        Outcome::Failed(f) => assert_eq!(f.code, RDKafkaErrorCode::TopicAuthorizationFailed),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!err.retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downed_broker_times_deliveries_out_and_recovers_when_up() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let p = producer(&mock, 1_500);
    let warm = values(1);
    p.finish(p.enqueue("orders", records(&warm)).unwrap())
        .await
        .unwrap();

    mock.broker_down(1).unwrap();
    let vals = values(3);
    let err = p
        .finish(p.enqueue("orders", records(&vals)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Batch);
    let Error::Batch(outcomes) = &err else {
        unreachable!()
    };
    for o in outcomes {
        match o {
            Outcome::Failed(f) => assert_eq!(f.code, RDKafkaErrorCode::MessageTimedOut),
            other => panic!("delivered while the broker was down: {other:?}"),
        }
    }
    assert!(err.retriable());

    mock.broker_up(1).unwrap();
    let again = values(3);
    let mut delivered = None;
    for _ in 0..10 {
        match p
            .finish(p.enqueue("orders", records(&again)).unwrap())
            .await
        {
            Ok(d) => {
                delivered = Some(d);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(
        delivered
            .expect("no delivery after the broker came back")
            .len(),
        3
    );
}

/// A one-broker mock cluster whose topic "events" holds `n` records.
pub(super) async fn cluster_with_events(
    partitions: i32,
    n: usize,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("events", partitions, 1).unwrap();
    let p = producer(&mock, 10_000);
    let vals = values(n);
    p.finish(p.enqueue("events", records(&vals)).unwrap())
        .await
        .unwrap();
    mock
}

/// Drains `consumer` until `n` records arrived.
pub(super) async fn take_all(
    consumer: &KafkaConsumer,
    n: usize,
) -> Vec<super::consumer::RecordData> {
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(consumer.drain(100).unwrap());
        if got.len() < n {
            consumer.wait(Duration::from_millis(200)).await;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_after_what_it_committed() {
    let mock = cluster_with_events(2, 40).await;

    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "workers");
    // The mock coordinator waits for departed members' sessions to expire before the next
    // join completes; a short session keeps the test quick.
    settings.session_timeout_ms = 6_000;
    settings.heartbeat_interval_ms = 500;
    let first = KafkaConsumer::new(&settings).unwrap();
    first.subscribe(&["events"]).unwrap();
    first.wait_assigned(Duration::from_secs(20)).await.unwrap();
    let got = take_all(&first, 40).await;
    // Mark all but the last five of partition 0 processed.
    let p0_last: Vec<i64> = {
        let mut offs: Vec<i64> = got
            .iter()
            .filter(|r| r.partition == 0)
            .map(|r| r.offset)
            .collect();
        offs.sort_unstable();
        offs.split_off(offs.len().saturating_sub(5))
    };
    let marked = first
        .mark_processed(
            got.iter()
                .filter(|r| !(r.partition == 0 && p0_last.contains(&r.offset)))
                .map(|r| (&*r.topic, r.partition, r.offset)),
        )
        .unwrap();
    assert_eq!(marked, 35);
    first.commit_sync().unwrap();
    tokio::task::spawn_blocking(move || first.close())
        .await
        .unwrap()
        .unwrap();

    let second = KafkaConsumer::new(&settings).unwrap();
    second.subscribe(&["events"]).unwrap();
    second.wait_assigned(Duration::from_secs(30)).await.unwrap();
    let mut again = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while again.len() < 5 && std::time::Instant::now() < deadline {
        again.extend(second.drain(100).unwrap());
        second.wait(Duration::from_millis(200)).await;
    }
    again.extend(second.drain(100).unwrap());
    let offsets: Vec<(i32, i64)> = again.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(offsets, p0_last.iter().map(|o| (0, *o)).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || second.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_made_while_a_commit_is_unanswered_wait_for_the_next_commit() {
    use std::sync::atomic::Ordering::Relaxed;

    let mock = cluster_with_events(1, 40).await;

    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "gated");
    settings.commit.batch_size = 1;
    let consumer = KafkaConsumer::new(&settings).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    let got = take_all(&consumer, 40).await;
    // The commit's answer is served only by a poll (drain), so all 39 marks below happen
    // while the first commit is unanswered.
    for r in &got[..39] {
        consumer
            .mark_processed([(&*r.topic, r.partition, r.offset)])
            .unwrap();
    }
    let stats = consumer.stats();
    assert_eq!(
        stats.commit_requests.load(Relaxed),
        1,
        "one commit in flight"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.commits.load(Relaxed) < 1 && std::time::Instant::now() < deadline {
        consumer.drain(100).unwrap();
        consumer.wait(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.commits.load(Relaxed), 1);
    let last = &got[39];
    consumer
        .mark_processed([(&*last.topic, last.partition, last.offset)])
        .unwrap();
    assert_eq!(
        stats.commit_requests.load(Relaxed),
        2,
        "the next mark commits"
    );
    assert_eq!(stats.commit_failures.load(Relaxed), 0);
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}

/// A producer whose librdkafka queue has room for 10 records, for topic `topic` (one
/// partition) on a fresh mock cluster.
fn tiny_queue_producer(
    topic: &str,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    std::sync::Arc<KafkaProducer>,
) {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(topic, 1, 1).unwrap();
    let mut settings = ProducerSettings::new(mock.bootstrap_servers());
    settings.linger_ms = 5;
    settings
        .extra
        .push(("queue.buffering.max.messages".into(), "10".into()));
    let p = KafkaProducer::new(&settings).unwrap();
    (mock, p)
}

/// Queues every batch before awaiting any (as concurrent callers would), then returns the
/// offsets in call order.
async fn send_all_then_offsets(
    p: &KafkaProducer,
    topic: &str,
    batches: &[Vec<Vec<u8>>],
) -> Vec<i64> {
    let pending: Vec<_> = batches
        .iter()
        .map(|vals| p.enqueue(topic, records(vals)).unwrap())
        .collect();
    let mut offsets = Vec::new();
    for send in pending {
        offsets.extend(p.finish(send).await.unwrap().into_iter().map(|d| d.offset));
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_keep_call_order_when_librdkafkas_queue_is_full() {
    // Every send below fills the queue and has to wait for room.
    let (_mock, p) = tiny_queue_producer("ordered");
    let batches: Vec<Vec<Vec<u8>>> = (0..5)
        .map(|b| (0..50).map(|i| format!("b{b}-{i}").into_bytes()).collect())
        .collect();
    let offsets = send_all_then_offsets(&p, "ordered", &batches).await;
    assert_eq!(
        offsets,
        (0..250).collect::<Vec<i64>>(),
        "records out of call order"
    );
    assert_eq!(p.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_sends_handed_over_directly_keep_call_order_with_queued_jobs() {
    // Small sends find the queue full part of the way and leave the rest to the enqueue
    // thread; later small sends must not overtake it.
    let (mock, p) = tiny_queue_producer("mixed");
    // 9 + 5 > 10: the second send is handed over partly, the rest queued.
    let sizes = [9usize, 5, 3, 50, 1, 12, 40, 7, 16, 2, 9, 30, 1, 1];
    let mut next = 0;
    let batches: Vec<Vec<Vec<u8>>> = sizes
        .iter()
        .map(|&n| {
            let b = (next..next + n)
                .map(|i| i.to_string().into_bytes())
                .collect();
            next += n;
            b
        })
        .collect();
    let offsets = send_all_then_offsets(&p, "mixed", &batches).await;
    let total = sizes.iter().sum::<usize>() as i64;
    assert_eq!(
        offsets,
        (0..total).collect::<Vec<i64>>(),
        "records out of call order"
    );
    let consumer =
        KafkaConsumer::new(&ConsumerSettings::new(mock.bootstrap_servers(), "check")).unwrap();
    consumer.subscribe(&["mixed"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    let values: Vec<Vec<u8>> = take_all(&consumer, total as usize)
        .await
        .into_iter()
        .map(|r| r.value.unwrap_or_default())
        .collect();
    let expected: Vec<Vec<u8>> = (0..total).map(|i| i.to_string().into_bytes()).collect();
    assert_eq!(values, expected);
    assert_eq!(p.in_flight(), 0);
}

/// Polls until the consumer reports an error (records are dropped), for at most 20 s.
async fn first_error(consumer: &KafkaConsumer) -> Error {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match consumer.drain(100) {
            Err(e) => return e,
            Ok(_) if std::time::Instant::now() > deadline => panic!("no error within 20 s"),
            Ok(_) => {
                consumer.wait(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_static_member_reports_fenced_instance_and_stays_stopped() {
    let mock = cluster_with_events(2, 10).await;
    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "static");
    settings.group_instance_id = Some("static.events.worker-1".into());
    settings.session_timeout_ms = 6_000;
    settings.heartbeat_interval_ms = 100;
    let consumer = KafkaConsumer::new(&settings).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    assert!(!consumer.is_assigned());
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(consumer.is_assigned());
    take_all(&consumer, 10).await;

    // What the coordinator answers once another live process joined with the same
    // group.instance.id: librdkafka makes it a fatal consumer error.
    mock.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID],
    );
    let err = first_error(&consumer).await;
    assert_eq!(err.kind(), ErrorKind::FencedInstance, "{err}");
    assert!(!err.retriable());
    assert!(matches!(err, Error::Kafka { fatal: true, .. }), "{err:?}");
    // Every later call says so again, instead of an empty poll that looks healthy.
    assert_eq!(
        consumer.drain(1).unwrap_err().kind(),
        ErrorKind::FencedInstance
    );
    assert_eq!(
        consumer
            .mark_processed([("events", 0, 0)])
            .unwrap_err()
            .kind(),
        ErrorKind::FencedInstance
    );
    assert_eq!(
        consumer
            .wait_assigned(Duration::from_secs(1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::FencedInstance
    );
    assert!(consumer.fatal_error().is_some());
    // Closing does not try to commit for partitions that now belong to the other member.
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_join_fails_wait_assigned_at_once_instead_of_timing_out() {
    let mock = cluster_with_events(1, 1).await;
    mock.request_errors(
        RDKafkaApiKey::FindCoordinator,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED; 50],
    );
    let consumer =
        KafkaConsumer::new(&ConsumerSettings::new(mock.bootstrap_servers(), "refused")).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    let started = std::time::Instant::now();
    let err = consumer
        .wait_assigned(Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed as i32),
        "{err}"
    );
    assert!(!err.retriable());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited {:?} for a refusal",
        started.elapsed()
    );
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_succeeds_when_the_group_moved_on_while_the_member_left() {
    // Seen in the chaos suite's rebalance storm: a member unsubscribing while the group
    // rebalances gets IllegalGeneration for its final commit. Its partitions are another
    // member's now (they get its uncommitted records again); close must not fail for it.
    let mock = cluster_with_events(1, 10).await;
    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "leavers");
    settings.session_timeout_ms = 6_000;
    settings.heartbeat_interval_ms = 500;
    let consumer = KafkaConsumer::new(&settings).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    let got = take_all(&consumer, 10).await;
    consumer
        .mark_processed(got.iter().map(|r| (&*r.topic, r.partition, r.offset)))
        .unwrap();
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION; 4],
    );
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}

/// Polls `lag()` until it reports `partitions` partitions lagging `total` records in all
/// (the watermarks come with fetch responses), for at most 10 s; returns the last report.
async fn lag_settles_at(
    consumer: &KafkaConsumer,
    partitions: usize,
    total: i64,
) -> Vec<(String, i32, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lag = consumer.lag().unwrap();
        if lag.len() == partitions && lag.iter().map(|(_, _, l)| l).sum::<i64>() == total {
            return lag;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lag {lag:?}, expected {total} records over {partitions} partitions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_the_records_behind_what_was_handed_out() {
    let mock = cluster_with_events(2, 40).await;
    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "lagging");
    settings.session_timeout_ms = 6_000;
    settings.heartbeat_interval_ms = 500;
    let consumer = KafkaConsumer::new(&settings).unwrap();
    consumer.subscribe(&["events"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    // Nothing handed out yet: all of it is behind, whatever was fetched meanwhile.
    lag_settles_at(&consumer, 2, 40).await;

    let mut taken = Vec::new();
    while taken.len() < 15 {
        taken.extend(consumer.drain(15 - taken.len()).unwrap());
        if taken.len() < 15 {
            consumer.wait(Duration::from_millis(200)).await;
        }
    }
    let lag = lag_settles_at(&consumer, 2, 25).await;

    let rest = take_all(&consumer, 25).await;
    // Per partition: behind by what it holds beyond what was handed out.
    let count = |records: &[super::consumer::RecordData], partition: i32| {
        records.iter().filter(|r| r.partition == partition).count() as i64
    };
    for (topic, partition, behind) in &lag {
        assert_eq!(topic, "events");
        assert_eq!(*behind, count(&rest, *partition), "partition {partition}");
    }
    assert_eq!(
        count(&taken, 0) + count(&rest, 0) + count(&taken, 1) + count(&rest, 1),
        40
    );
    lag_settles_at(&consumer, 2, 0).await;
    consumer
        .mark_processed(
            taken
                .iter()
                .chain(&rest)
                .map(|r| (&*r.topic, r.partition, r.offset)),
        )
        .unwrap();
    consumer.commit_sync().unwrap();
    // Produced after everything was read: behind again once a fetch response says so.
    let p = producer(&mock, 10_000);
    p.finish(p.enqueue("events", records(&values(5))).unwrap())
        .await
        .unwrap();
    lag_settles_at(&consumer, 2, 5).await;
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();

    // A new member starts at the committed offsets: behind by what was produced since.
    let second = KafkaConsumer::new(&settings).unwrap();
    second.subscribe(&["events"]).unwrap();
    second.wait_assigned(Duration::from_secs(30)).await.unwrap();
    lag_settles_at(&second, 2, 5).await;
    tokio::task::spawn_blocking(move || second.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_send_does_not_wait_for_linger_and_keeps_the_order() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let mut settings = ProducerSettings::new(mock.bootstrap_servers());
    // A linger no test could wait for: only the immediate send can make these go out.
    settings.linger_ms = 600_000;
    settings.delivery_timeout_ms = 900_000;
    let p = KafkaProducer::new(&settings).expect("producer");
    let first = values(10);
    let lingering = p.enqueue("orders", records(&first)).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!lingering.is_done(), "a plain send waits for linger.ms");
    let second = values(10);
    let immediate = p.enqueue_with("orders", records(&second), true).unwrap();
    let wait = Duration::from_secs(30);
    let now = tokio::time::timeout(wait, p.finish(immediate))
        .await
        .expect("the immediate send was held back")
        .unwrap();
    // What was queued before it went out with it, in call order, not later.
    let earlier = tokio::time::timeout(wait, p.finish(lingering))
        .await
        .expect("the earlier send was held back")
        .unwrap();
    let offsets: Vec<i64> = earlier.iter().chain(&now).map(|d| d.offset).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<i64>>());
}
