//! Reading a topic from a point in time (`assign_from_time`) when the broker fails single
//! partitions, on librdkafka's mock cluster (decision 126).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::consumer::KafkaConsumer;
use super::error::Error;
use super::mock_tests::cluster_with_events;
use super::settings::ConsumerSettings;

const TIMEOUT: Duration = Duration::from_secs(10);
const PARTITIONS: i32 = 2;

/// Right after its leader comes back a partition answers UNKNOWN_LEADER_EPOCH. librdkafka
/// retries, the retry succeeds, and the call reports no error, but the partition keeps the
/// first, failed answer (offset -1 with the error): read as "no record at or after the
/// time", the lookup would skip the partition and the spool would resend what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_failed_in_a_retried_time_lookup_is_an_error_not_an_empty_partition() {
    let mock = cluster_with_events(PARTITIONS, 40).await;
    let reader = KafkaConsumer::new(&ConsumerSettings::new(mock.bootstrap_servers(), "lookup"))
        .expect("consumer");
    // The plan's ListOffsets requests, in order: two per partition for its end offsets
    // (first and last), then the time lookup, which is answered with the error once.
    let mut errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR; 2 * PARTITIONS as usize];
    errors.push(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH);
    mock.request_errors(RDKafkaApiKey::ListOffsets, &errors);
    let r = Arc::clone(&reader);
    let first = tokio::task::spawn_blocking(move || r.assign_from_time("events", 1, TIMEOUT))
        .await
        .unwrap();
    match first {
        Err(
            e @ Error::Kafka {
                code, operation, ..
            },
        ) => {
            assert_eq!(code, RDKafkaErrorCode::UnknownLeaderEpoch, "{e}");
            assert_eq!(operation, "offsets for times", "{e}");
            assert!(e.retriable(), "the caller retries: {e}");
        }
        other => panic!("expected the partitions' error, got {other:?}"),
    }
    // The injected error is spent: the same question is answered now. (The mock answers
    // every time lookup with "no record", so each partition is planned from its end.)
    let r = Arc::clone(&reader);
    let plan = tokio::task::spawn_blocking(move || r.assign_from_time("events", 1, TIMEOUT))
        .await
        .unwrap()
        .expect("plan");
    let total: i64 = plan.iter().map(|(_, _, end)| end).sum();
    assert_eq!(total, 40);
    assert!(plan.iter().all(|(_, start, end)| start == end), "{plan:?}");
    let r = Arc::clone(&reader);
    tokio::task::spawn_blocking(move || r.close())
        .await
        .unwrap()
        .unwrap();
}
