//! The limit of this broker and machine: a pure-Rust rdkafka producer and consumer doing
//! the workloads of the Python contenders (same events, serde_json, same settings), with no
//! Python at all. Prints one JSON line.
//!
//!     cargo bench --bench rdkafka_peer -- produce <topic> <records> [linger_ms]
//!     cargo bench --bench rdkafka_peer -- produce_awaited <topic> <records> [linger_ms]
//!     cargo bench --bench rdkafka_peer -- consume <topic> <records>

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct OrderPlaced {
    event_type: String,
    event_id: String,
    order_id: String,
    account_id: String,
    symbol: String,
    quantity: u32,
    price: f64,
    timestamp: String,
}

fn events(n: usize) -> Vec<OrderPlaced> {
    const SYMBOLS: [&str; 8] = [
        "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "JPM",
    ];
    let ids = tradecore_eventbus_core::uuids(n);
    let now = tradecore_eventbus_core::now();
    (0..n)
        .map(|i| OrderPlaced {
            event_type: "OrderPlaced".into(),
            event_id: ids[i].clone(),
            order_id: format!("ord-{i:09}"),
            account_id: format!("acct-{:05}", (i * 7919) % 10_000),
            symbol: SYMBOLS[i % SYMBOLS.len()].into(),
            quantity: (i % 999 + 1) as u32,
            price: 10.0 + (i % 99_000) as f64 / 100.0,
            timestamp: now.clone(),
        })
        .collect()
}

mod tradecore_eventbus_core {
    pub fn uuids(n: usize) -> Vec<String> {
        _core::events::uuid4_strings(n)
    }
    pub fn now() -> String {
        _core::events::utc_timestamp(std::time::SystemTime::now())
    }
}

/// CPU seconds on `clock`: `CLOCK_PROCESS_CPUTIME_ID` counts every thread of the process
/// (librdkafka's included), `CLOCK_THREAD_CPUTIME_ID` the calling one.
fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write into.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Wall time and CPU of the measured part of a run, as the Python contenders report them.
struct Measured {
    seconds: f64,
    cpu_s: f64,
    main_thread_cpu_s: f64,
}

struct Clocks {
    wall: Instant,
    cpu: f64,
    main: f64,
}

impl Clocks {
    fn start() -> Self {
        Clocks {
            wall: Instant::now(),
            cpu: cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID),
            main: cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID),
        }
    }

    fn stop(&self) -> Measured {
        Measured {
            seconds: self.wall.elapsed().as_secs_f64(),
            cpu_s: cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID) - self.cpu,
            main_thread_cpu_s: cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID) - self.main,
        }
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn producer_config(linger_ms: u32) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", "127.0.0.1:19092")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "16384")
        .set("enable.idempotence", "true");
    config
}

/// `batch`: 0 sends everything and flushes once at the end; N flushes after every N
/// records (each batch acknowledged before the next is sent, like an awaited publish).
fn produce(topic: &str, n: usize, linger_ms: u32, batch: usize) -> Measured {
    let evs = events(n);
    let producer: ThreadedProducer<DefaultProducerContext> =
        producer_config(linger_ms).create().expect("producer");
    let clocks = Clocks::start();
    for (i, e) in evs.iter().enumerate() {
        if batch > 0 && i > 0 && i % batch == 0 {
            flush(&producer);
        }
        let value = serde_json::to_vec(e).expect("encode");
        let mut record = BaseRecord::to(topic)
            .payload(&value)
            .key(e.account_id.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    flush(&producer);
    clocks.stop()
}

/// librdkafka's own flush, which returns when the last delivery report was served (by the
/// producer's thread). rust-rdkafka's `flush` calls `rd_kafka_flush(rk, 0)` and then polls
/// for up to 100 ms, and its `poll` always waits out its timeout: every flush lasted at
/// least 100 ms (awaited batches of 1,000: 9.6k events/s; decision 110).
fn flush(producer: &ThreadedProducer<DefaultProducerContext>) {
    // SAFETY: the pointer is the producer's own handle, alive for the whole call.
    let err = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), 120_000) };
    assert_eq!(
        err,
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        "flush"
    );
}

fn consume(topic: &str, n: usize) -> Measured {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:19092")
        .set("group.id", format!("bench-rust-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let clocks = Clocks::start();
    let mut seen = 0usize;
    let mut since_commit = 0usize;
    let mut last_commit = Instant::now();
    while seen < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let _event: OrderPlaced =
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("decode");
            seen += 1;
            since_commit += 1;
            // Like the EventBus, never more commits than the coordinator answers (it takes
            // a few ms per commit): queued commits would make the final one wait for all.
            if since_commit >= 500 && last_commit.elapsed() >= Duration::from_millis(20) {
                let _ = consumer.commit_consumer_state(CommitMode::Async);
                since_commit = 0;
                last_commit = Instant::now();
            }
        }
    }
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    clocks.stop()
}

fn linger(args: &[String]) -> u32 {
    args.get(3)
        .map(|s| s.parse().expect("linger"))
        .unwrap_or(10)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (what, topic, n) = (
        args[0].as_str(),
        args[1].as_str(),
        args[2].parse::<usize>().expect("records"),
    );
    let m = match what {
        "produce" => produce(topic, n, linger(&args), 0),
        "produce_awaited" => produce(topic, n, linger(&args), 1000),
        "consume" => consume(topic, n),
        other => panic!("unknown workload {other}"),
    };
    println!(
        "{{\"contender\": \"rust\", \"workload\": \"{what}\", \"records\": {n}, \"seconds\": {}, \"cpu_s\": {}, \"main_thread_cpu_s\": {}, \"rate\": {}, \"peak_rss_mb\": {}}}",
        m.seconds,
        m.cpu_s,
        m.main_thread_cpu_s,
        n as f64 / m.seconds,
        peak_rss_mb()
    );
}
