//! Client-wide state every librdkafka client reports into: the last error librdkafka raised
//! (used to explain timeouts, e.g. "Connect to ipv4#127.0.0.1:1 failed: Connection refused").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;

#[derive(Debug, Default)]
pub struct ClientHealth {
    last_error: Mutex<Option<(String, Instant)>>,
    error_count: AtomicU64,
}

impl ClientHealth {
    pub fn record_error(&self, error: &KafkaError, reason: &str) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let text = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_string()
        };
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some((text, Instant::now()));
        }
    }

    /// The last error reported by librdkafka, if it is more recent than `since`.
    pub fn last_error_since(&self, since: Instant) -> Option<String> {
        let last = self.last_error.lock().ok()?;
        match &*last {
            Some((text, at)) if *at >= since => Some(text.clone()),
            _ => None,
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|(t, _)| t.clone()))
    }

    pub fn error_count(&self) -> u64 {
        self.error_count.load(Ordering::Relaxed)
    }
}

/// The context of clients that need nothing beyond error tracking (the admin client).
#[derive(Debug, Default)]
pub struct BasicContext {
    pub health: ClientHealth,
}

impl ClientContext for BasicContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.health.record_error(&error, reason);
        log::warn!(target: "tradecore_eventbus.kafka", "librdkafka error: {error}: {reason}");
    }
}
