//! Consumed headers as other clients may send them: names that are not UTF-8, values that
//! are absent or empty. Produced through librdkafka's C API, which (unlike rust-rdkafka's
//! `&str` names) takes any bytes, as a Java or C producer may.

use std::ffi::{c_char, c_void, CString};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka_sys as rdsys;
use rdsys::rd_kafka_vtype_t as VType;

use super::consumer::KafkaConsumer;
use super::settings::ConsumerSettings;

/// One record on `topic` with these headers (a NUL-terminated name each; None: no value).
fn produce_with_raw_headers(bootstrap: &str, topic: &str, headers: &[(&[u8], Option<&[u8]>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let topic = CString::new(topic).unwrap();
    let value = b"{\"event_type\":\"T\"}";
    let mut vus = vec![
        rdsys::rd_kafka_vu_t {
            vtype: VType::RD_KAFKA_VTYPE_TOPIC,
            u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                cstr: topic.as_ptr(),
            },
        },
        rdsys::rd_kafka_vu_t {
            vtype: VType::RD_KAFKA_VTYPE_VALUE,
            u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                mem: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                    ptr: value.as_ptr() as *mut c_void,
                    size: value.len(),
                },
            },
        },
    ];
    for (name, value) in headers {
        assert_eq!(
            name.last(),
            Some(&0),
            "header names are NUL-terminated here"
        );
        vus.push(rdsys::rd_kafka_vu_t {
            vtype: VType::RD_KAFKA_VTYPE_HEADER,
            u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                header: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                    name: name.as_ptr().cast::<c_char>(),
                    val: value.map_or(std::ptr::null(), |v| v.as_ptr().cast::<c_void>()),
                    size: value.map_or(0, |v| v.len() as isize),
                },
            },
        });
    }
    // SAFETY: every pointer in `vus` outlives the call, which copies what it points to.
    let error = unsafe {
        rdsys::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len())
    };
    assert!(error.is_null(), "produceva failed");
    producer.flush(Duration::from_secs(10)).expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_that_are_not_utf8_are_read_lossily_instead_of_panicking() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("raw-headers", 1, 1).unwrap();
    produce_with_raw_headers(
        &mock.bootstrap_servers(),
        "raw-headers",
        &[
            (b"event_id\0", Some(b"e-1")),
            (b"bad\xff\xfename\0", Some(b"\xff")),
            (b"no-value\0", None),
            (b"empty\0", Some(b"")),
        ],
    );

    let consumer =
        KafkaConsumer::new(&ConsumerSettings::new(mock.bootstrap_servers(), "raw")).unwrap();
    consumer.subscribe(&["raw-headers"]).unwrap();
    consumer
        .wait_assigned(Duration::from_secs(20))
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.is_empty() && std::time::Instant::now() < deadline {
        got.extend(consumer.drain(10).unwrap());
        if got.is_empty() {
            consumer.wait(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(got.len(), 1, "the record arrives");
    assert_eq!(
        got[0].headers,
        vec![
            ("event_id".to_owned(), Some(b"e-1".to_vec())),
            ("bad\u{fffd}\u{fffd}name".to_owned(), Some(b"\xff".to_vec())),
            ("no-value".to_owned(), None),
            ("empty".to_owned(), Some(Vec::new())),
        ]
    );
    tokio::task::spawn_blocking(move || consumer.close())
        .await
        .unwrap()
        .unwrap();
}
