//! Criterion benches of the Rust hot paths: the breaker permit every publish takes, event
//! encoding (1,000 Python dicts enriched and encoded to JSON, as `publish_batch` does), event
//! decoding (1,000 JSON values into Python dicts, as the consumer does),
//! enrichment pieces (ids, timestamps), batch building (delivery tracking, headers) and the
//! per-record commit bookkeeping.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use _core::events::{utc_timestamp, uuid4_strings};
use _core::kafka::delivery::{BatchTracker, Delivery, DeliveryTag, Outcome};
use _core::kafka::offsets::OffsetTracker;
use _core::kafka::producer::make_headers;
use _core::py::encode::encode_events;
use _core::reliability::breaker::{BreakerConfig, CircuitBreaker};
use _core::reliability::clock::{ManualClock, SystemClock};
use _core::wire::event::decode_event;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rdkafka::util::IntoOpaque;

fn breaker(c: &mut Criterion) {
    let closed = CircuitBreaker::new(BreakerConfig::default(), SystemClock::shared());
    c.bench_function("breaker: permit + success (CLOSED)", |b| {
        b.iter(|| closed.try_acquire().map(|p| p.success()))
    });
    let open = CircuitBreaker::new(BreakerConfig::default(), Arc::new(ManualClock::default()));
    for _ in 0..5 {
        open.try_acquire().unwrap().failure();
    }
    c.bench_function("breaker: refused (OPEN)", |b| {
        b.iter(|| black_box(open.try_acquire().is_err()))
    });
}

/// The events of the Python benchmarks (`benches/bench_events.py`): ~220 bytes of JSON each.
fn python_events<'py>(
    py: Python<'py>,
    n: usize,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    const SYMBOLS: [&str; 8] = [
        "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "JPM",
    ];
    let ids = uuid4_strings(n);
    let now = utc_timestamp(SystemTime::now());
    let events = PyList::empty(py);
    let keys = PyList::empty(py);
    for (i, id) in ids.iter().enumerate() {
        let e = PyDict::new(py);
        let account = format!("acct-{:05}", (i * 7919) % 10_000);
        e.set_item("event_type", "OrderPlaced")?;
        e.set_item("event_id", id)?;
        e.set_item("order_id", format!("ord-{i:09}"))?;
        e.set_item("account_id", &account)?;
        e.set_item("symbol", SYMBOLS[i % SYMBOLS.len()])?;
        e.set_item("quantity", i % 999 + 1)?;
        e.set_item("price", 10.0 + (i % 99_000) as f64 / 100.0)?;
        e.set_item("timestamp", &now)?;
        events.append(e)?;
        keys.append(account)?;
    }
    Ok((events, keys))
}

fn event_encoding(c: &mut Criterion) {
    Python::initialize();
    Python::attach(|py| {
        let (events, keys) = python_events(py, 1000).expect("events");
        let default = py.None().into_bound(py);
        let mut g = c.benchmark_group("event encoding");
        g.throughput(Throughput::Elements(1000));
        g.bench_function("1000 Python dicts -> enriched JSON batch", |b| {
            b.iter(|| {
                let (batch, failures) =
                    encode_events(py, events.as_any(), keys.as_any(), &default, false, None)
                        .expect("encode");
                assert!(failures.is_empty());
                black_box(batch)
            })
        });
        g.finish();
    });
}

/// What `Consumer.take(decode_events=True)` does per record: the value's JSON into a Python
/// dict (jiter), on the values the encoder above produces.
fn event_decoding(c: &mut Criterion) {
    Python::initialize();
    Python::attach(|py| {
        let (events, keys) = python_events(py, 1000).expect("events");
        let default = py.None().into_bound(py);
        let (batch, _) = encode_events(py, events.as_any(), keys.as_any(), &default, false, None)
            .expect("encode");
        let values: Vec<Vec<u8>> = (0..batch.count())
            .map(|i| batch.value_at(i).to_vec())
            .collect();
        let mut g = c.benchmark_group("event decoding");
        g.throughput(Throughput::Elements(1000));
        g.bench_function("1000 JSON values -> Python dicts", |b| {
            b.iter(|| {
                for v in &values {
                    black_box(decode_event(py, v).expect("an event"));
                }
            })
        });
        g.finish();
    });
}

fn enrichment(c: &mut Criterion) {
    let mut g = c.benchmark_group("enrichment");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 uuid4 ids", |b| {
        b.iter(|| uuid4_strings(black_box(1000)))
    });
    g.finish();
    c.bench_function("utc timestamp", |b| {
        b.iter(|| utc_timestamp(black_box(SystemTime::now())))
    });
}

fn batch_building(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch building");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 delivery tags + headers + outcomes", |b| {
        b.iter(|| {
            let tracker = BatchTracker::new(1000);
            for i in 0..1000usize {
                // What librdkafka carries per record, as it carries it.
                let tag = tracker.tag(i).into_ptr();
                let headers = make_headers([
                    ("event_type", Some(&b"OrderPlaced"[..])),
                    (
                        "event_id",
                        Some(&b"6513270e-269e-4d37-b2a7-4de452e6b438"[..]),
                    ),
                    ("content-type", Some(&b"application/json"[..])),
                ]);
                black_box(headers);
                // SAFETY: made by `into_ptr` above, used once, as a delivery report does.
                unsafe { DeliveryTag::from_ptr(tag) }.complete(Outcome::Delivered(Delivery {
                    partition: 0,
                    offset: i as i64,
                }));
            }
            black_box(tracker.outcomes())
        })
    });
    g.finish();
}

fn commit_bookkeeping(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit bookkeeping");
    g.throughput(Throughput::Elements(500));
    g.bench_function("deliver + mark 500 records", |b| {
        let mut tracker = OffsetTracker::default();
        tracker.assign("orders", 0);
        let mut next = 0i64;
        b.iter(|| {
            for o in next..next + 500 {
                tracker.delivered("orders", 0, o);
            }
            tracker.processed((next..next + 500).map(|o| ("orders", 0, o)));
            next += 500;
            black_box(tracker.take_dirty())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = breaker, event_encoding, event_decoding, enrichment, batch_building, commit_bookkeeping
}
criterion_main!(benches);
