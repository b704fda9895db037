//! Rust and librdkafka log records reach Python's `logging` through one forwarder thread.
//!
//! librdkafka logs from its own threads, sometimes while holding its internal locks. Taking
//! the GIL there could deadlock against a Python thread that holds the GIL and waits on one
//! of those locks (or joins that thread). So the logging threads only push into a bounded
//! channel (dropping records when it is full, never blocking) and a dedicated thread, which
//! holds no other lock, takes the GIL to call `logging`. How many were dropped is said in a
//! warning of its own once the forwarder has caught up.
//!
//! Records below INFO are dropped at the source, except librdkafka's DEBUG lines when a client
//! asked for them with its `debug` property (`KAFKA_DEBUG`): they go to the
//! `tradecore_eventbus.librdkafka` logger at DEBUG, which Python's `logging` keeps or drops by
//! that logger's level. Every line is scrubbed of secrets here, debug lines included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;

const CAPACITY: usize = 4096;

struct Entry {
    target: String,
    level: log::Level,
    message: String,
}

struct Bridge {
    tx: SyncSender<Entry>,
    /// Records dropped since the forwarder last reported drops.
    dropped: Arc<AtomicU64>,
}

static BRIDGE: OnceLock<Bridge> = OnceLock::new();

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // DEBUG only from librdkafka, which sends it only when a client's `debug` property
        // asks for some contexts (`kafka::context::apply_log_level`, decision 89); the crates'
        // own debug lines stay out.
        let level = metadata.level();
        level <= log::Level::Info
            || (level == log::Level::Debug && metadata.target() == "librdkafka")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        // The one place every Rust and librdkafka log line passes (decision 50).
        let message = match crate::kafka::secrets::redact(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(clean) => clean,
        };
        let entry = Entry {
            target: record.target().to_owned(),
            level: demoted(record.target(), &message).unwrap_or(record.level()),
            message,
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(entry) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// rust-rdkafka logs at ERROR when the consumer it drops cannot close its queue, which is
/// always so after a fatal error (a fenced static member); that error was already raised as
/// a typed exception and logged once by its subscriber.
fn demoted(target: &str, message: &str) -> Option<log::Level> {
    (target.starts_with("rdkafka::consumer")
        && message.starts_with("Failed to close consumer queue on drop"))
    .then_some(log::Level::Info)
}

fn python_logger_name(target: &str) -> String {
    if target.starts_with("tradecore_eventbus") {
        target.to_owned()
    } else {
        // librdkafka and crate internals, e.g. "librdkafka" or "rdkafka::client".
        format!("tradecore_eventbus.{}", target.replace("::", "."))
    }
}

fn levelno(level: log::Level) -> i32 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug | log::Level::Trace => 10,
    }
}

/// The warning that `n` records were dropped, as an entry of its own.
fn drops_reported(n: u64) -> Entry {
    Entry {
        target: "tradecore_eventbus".to_owned(),
        level: log::Level::Warn,
        message: format!(
            "{n} log records of the Rust core and librdkafka were dropped: more arrived than \
             Python's logging took in time"
        ),
    }
}

fn forward(rx: Receiver<Entry>, dropped: Arc<AtomicU64>) {
    let mut loggers: HashMap<String, Py<PyAny>> = HashMap::new();
    while let Ok(entry) = rx.recv() {
        // Reported once the queue has room again, after the record that found it: the drops
        // happened before this record was queued.
        let drops = match dropped.swap(0, Ordering::Relaxed) {
            0 => None,
            n => Some(drops_reported(n)),
        };
        // Never enter Python while the interpreter exits (see bridge::with_python).
        let delivered = super::bridge::with_python(|py| -> PyResult<()> {
            for entry in drops.into_iter().chain([entry]) {
                let name = python_logger_name(&entry.target);
                if !loggers.contains_key(&name) {
                    let logger = py
                        .import("logging")?
                        .call_method1("getLogger", (name.as_str(),))?;
                    loggers.insert(name.clone(), logger.unbind());
                }
                let logger = loggers[&name].bind(py);
                logger.call_method1("log", (levelno(entry.level), entry.message))?;
            }
            Ok(())
        });
        if delivered.is_none() {
            return;
        }
    }
}

/// Installs the bridge as the `log` backend (once per process).
pub fn install() {
    let mut created = false;
    let bridge = BRIDGE.get_or_init(|| {
        created = true;
        let (tx, rx) = sync_channel(CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let _ = std::thread::Builder::new()
            .name("tradecore-log-forwarder".into())
            .spawn(move || forward(rx, counted));
        Bridge { tx, dropped }
    });
    if created && log::set_logger(bridge).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
