//! Refused credentials against librdkafka's mock cluster. The mock has no SASL, so the
//! failure librdkafka would report (`_AUTHENTICATION` through the error callback) is handed
//! to each client's own context, while the broker is down so that work waits as it would
//! behind a failing handshake. The real SASL_SSL listener is covered by the Python suite
//! (tests/security).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;

use super::admin::{KafkaAdmin, TopicSpec};
use super::consumer::KafkaConsumer;
use super::delivery::Outcome;
use super::error::{Error, ErrorKind};
use super::producer::{KafkaProducer, OutRecord};
use super::settings::{ConsumerSettings, ProducerSettings};

const REFUSED: &str = "sasl_ssl://127.0.0.1:19094/bootstrap: SASL authentication error: \
     Authentication failed during authentication due to invalid credentials with SASL \
     mechanism SCRAM-SHA-512 (after 12ms in state AUTH_REQ)";

/// librdkafka's report of a failed SASL handshake.
fn refused() -> KafkaError {
    KafkaError::Global(RDKafkaErrorCode::Authentication)
}

/// The probe looks again this often (reconnect.backoff.max.ms), so recovery is quick here.
fn fast_probe() -> Vec<(String, String)> {
    vec![("reconnect.backoff.max.ms".into(), "100".into())]
}

fn records(values: &[Vec<u8>]) -> impl ExactSizeIterator<Item = OutRecord<'_>> {
    values.iter().map(|v| OutRecord {
        value: Some(v),
        ..OutRecord::default()
    })
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_new_sends_fail_at_once_then_work_when_the_credentials_do() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let mut settings = ProducerSettings::new(mock.bootstrap_servers());
    settings.linger_ms = 0;
    // Without the gate, the waiting records would fail only after this long.
    settings.delivery_timeout_ms = 300_000;
    settings.extra = fast_probe();
    let p = KafkaProducer::new(&settings).unwrap();
    let warm = vec![b"warm".to_vec()];
    p.finish(p.enqueue("orders", records(&warm)).unwrap())
        .await
        .unwrap();

    mock.broker_down(1).unwrap();
    let vals: Vec<Vec<u8>> = (0..20).map(|i| format!("v{i}").into_bytes()).collect();
    let pending = p.enqueue("orders", records(&vals)).unwrap();
    p.context().error(refused(), REFUSED);

    let err = tokio::time::timeout(Duration::from_secs(60), p.finish(pending))
        .await
        .expect("queued records waited for the delivery timeout")
        .unwrap_err();
    let Error::Batch(outcomes) = &err else {
        panic!("expected per-record outcomes, got {err:?}");
    };
    for o in outcomes {
        match o {
            Outcome::Failed(f) => {
                assert_eq!(f.code, RDKafkaErrorCode::Authentication);
                assert!(!f.possibly_persisted, "purged from the queue: never sent");
                assert!(f
                    .detail
                    .as_deref()
                    .unwrap_or("")
                    .contains("invalid credentials"));
            }
            other => panic!("delivered while refused: {other:?}"),
        }
    }
    assert!(!err.retriable());
    assert_eq!(p.in_flight(), 0);

    let refused_now = p.enqueue("orders", records(&vals)).err().expect("refused");
    assert_eq!(refused_now.kind(), ErrorKind::Authentication);
    assert!(
        refused_now.to_string().contains("invalid credentials"),
        "{refused_now}"
    );

    // The broker accepts the client again: the probe notices and sends go through.
    mock.broker_up(1).unwrap();
    until("the producer accepts sends again", || {
        !p.health().auth.is_latched()
    })
    .await;
    let deliveries = p
        .finish(p.enqueue("orders", records(&vals)).unwrap())
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stops_waiting_for_its_group_and_recovers() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("events", 1, 1).unwrap();
    mock.broker_down(1).unwrap();
    let mut settings = ConsumerSettings::new(mock.bootstrap_servers(), "workers");
    settings.extra = fast_probe();
    let c = KafkaConsumer::new(&settings).unwrap();
    c.subscribe(&["events"]).unwrap();

    let joining = {
        let c = std::sync::Arc::clone(&c);
        tokio::spawn(async move { c.wait_assigned(Duration::from_secs(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.context().error(refused(), REFUSED);
    let err = tokio::time::timeout(Duration::from_secs(60), joining)
        .await
        .expect("the group join waited for its timeout")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);

    assert_eq!(c.drain(10).unwrap_err().kind(), ErrorKind::Authentication);
    let (tx, rx) = mpsc::channel();
    c.wait_then(Duration::from_secs(300), move |woken| {
        let _ = tx.send(woken);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "a wait while refused returns at once (the next drain says why)"
    );

    mock.broker_up(1).unwrap();
    until("the consumer accepts work again", || {
        !c.health().auth.is_latched()
    })
    .await;
    c.wait_assigned(Duration::from_secs(30)).await.unwrap();
    c.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_end_when_the_credentials_are_refused() {
    let mock = MockCluster::new(1).unwrap();
    mock.broker_down(1).unwrap();
    let admin = KafkaAdmin::new(mock.bootstrap_servers().as_str(), "admin", &fast_probe()).unwrap();
    let creating = {
        let admin = std::sync::Arc::clone(&admin);
        tokio::spawn(async move {
            let spec = TopicSpec {
                name: "orders".into(),
                partitions: 1,
                replication_factor: 1,
                configs: Vec::new(),
            };
            admin.create_topics(&[spec], Duration::from_secs(300)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.context().error(refused(), REFUSED);
    let err = tokio::time::timeout(Duration::from_secs(60), creating)
        .await
        .expect("topic creation waited for its timeout")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    let err = admin
        .guarded("metadata ping", |a| a.ping(Duration::from_secs(300)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);

    mock.broker_up(1).unwrap();
    until("the admin client accepts work again", || {
        !admin.health().auth.is_latched()
    })
    .await;
    assert_eq!(
        admin
            .guarded("metadata ping", |a| a.ping(Duration::from_secs(30)))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_hears_what_librdkafka_reports() {
    // Nothing listens on port 1: librdkafka reports the refused connections through the
    // admin client's main queue, which only the admin's event thread serves.
    let admin = KafkaAdmin::new("127.0.0.1:1", "admin", &[]).unwrap();
    let err = admin
        .guarded("metadata ping", |a| a.ping(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Authentication);
    until("a client error was reported", || {
        admin.health().error_count() > 0
    })
    .await;
    let last = admin.health().last_error().unwrap_or_default();
    assert!(
        last.contains("127.0.0.1:1") || last.contains("brokers are down"),
        "{last}"
    );
}
