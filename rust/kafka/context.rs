//! Client-wide state every librdkafka client reports into: its recent errors, used to explain
//! timeouts (e.g. "Connect to ipv4#127.0.0.1:1 failed: Connection refused") and for health,
//! and its authentication gate (`auth_gate`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

use super::auth_gate::{is_authentication_failure, AuthGate};
use super::secrets;

/// How many distinct recent errors are kept to explain a failure.
const RECENT: usize = 6;
/// The same warning is logged at most once per this interval.
const LOG_REPEAT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Recent {
    errors: VecDeque<(String, Instant)>,
    /// When each recent text was last logged (as many entries as `errors`).
    logged: VecDeque<(String, Instant)>,
}

#[derive(Debug, Default)]
pub struct ClientHealth {
    recent: Mutex<Recent>,
    error_count: AtomicU64,
    /// Set by an authentication failure: the client then refuses work at once.
    pub auth: AuthGate,
}

impl ClientHealth {
    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers an error; returns whether it is worth logging (not a repeat of the last
    /// logged one within the last half minute).
    pub fn record(&self, text: String) -> bool {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        // These texts end up in error messages and health reports (decision 50).
        let text = match secrets::redact(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(clean) => clean,
        };
        let now = Instant::now();
        let mut recent = self.recent();
        recent.errors.retain(|(t, _)| *t != text);
        recent.errors.push_back((text.clone(), now));
        while recent.errors.len() > RECENT {
            recent.errors.pop_front();
        }
        let repeat = recent
            .logged
            .iter()
            .any(|(t, at)| *t == text && now.duration_since(*at) < LOG_REPEAT);
        if !repeat {
            recent.logged.retain(|(t, _)| *t != text);
            recent.logged.push_back((text, now));
            while recent.logged.len() > RECENT {
                recent.logged.pop_front();
            }
        }
        !repeat
    }

    pub fn record_error(&self, error: &KafkaError, reason: &str) -> bool {
        let text = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_string()
        };
        self.record(text)
    }

    /// The distinct errors reported since `since`, oldest first, joined with "; ".
    pub fn last_error_since(&self, since: Instant) -> Option<String> {
        let recent = self.recent();
        let texts: Vec<&str> = recent
            .errors
            .iter()
            .filter(|(_, at)| *at >= since)
            .map(|(t, _)| t.as_str())
            .collect();
        (!texts.is_empty()).then(|| texts.join("; "))
    }

    pub fn last_error(&self) -> Option<String> {
        self.recent().errors.back().map(|(t, _)| t.clone())
    }

    pub fn error_count(&self) -> u64 {
        self.error_count.load(Ordering::Relaxed)
    }
}

/// Errors and librdkafka log lines of level error and above become health records: they
/// carry the reason ("Connection refused") that the error codes alone do not.
pub fn observe_log(health: &ClientHealth, level: RDKafkaLogLevel, fac: &str, message: &str) {
    if (level as i32) <= (RDKafkaLogLevel::Error as i32) && !health.record(message.to_string()) {
        return; // the same line was logged moments ago
    }
    let lvl = match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => log::Level::Error,
        RDKafkaLogLevel::Warning => log::Level::Warn,
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => log::Level::Info,
        RDKafkaLogLevel::Debug => log::Level::Debug,
    };
    log::log!(target: "librdkafka", lvl, "{fac}: {message}");
}

/// Sets the client's log level from its `debug` property (`KAFKA_DEBUG`): librdkafka's
/// debug lines are asked for only when some debug contexts are, and only then does the `log`
/// facade let DEBUG records of target `librdkafka` through (the forwarder's filter). Without
/// it the client logs at INFO as before and nothing else changes. Call after every property
/// is set.
pub fn apply_log_level(cfg: &mut ClientConfig) {
    let debug = cfg.get("debug").is_some_and(|v| !v.trim().is_empty());
    if debug {
        cfg.set_log_level(RDKafkaLogLevel::Debug);
        if log::max_level() < log::LevelFilter::Debug {
            log::set_max_level(log::LevelFilter::Debug);
        }
    } else if (cfg.log_level as i32) > (RDKafkaLogLevel::Info as i32) {
        // Another client asked for debug lines, which raised the facade's level that
        // rust-rdkafka derives a new client's level from: this one did not ask.
        cfg.set_log_level(RDKafkaLogLevel::Info);
    }
}

/// Logs a client error unless the same one was logged moments ago. An authentication
/// failure sets the client's gate (and is logged as an error: it will not go away by itself).
/// Returns whether it was one.
pub fn observe_error(health: &ClientHealth, who: &str, error: &KafkaError, reason: &str) -> bool {
    let refused = error
        .rdkafka_error_code()
        .is_some_and(is_authentication_failure);
    let fresh = health.record_error(error, reason);
    if refused {
        let reason = secrets::redact(reason);
        health.auth.fail(&reason);
        if fresh {
            log::error!(target: "tradecore_eventbus.kafka", "{who}: the broker refused the client's credentials: {reason}");
        }
    } else if fresh {
        let reason = secrets::redact(reason);
        log::warn!(target: "tradecore_eventbus.kafka", "{who} error: {error}: {reason}");
    }
    refused
}

/// The context of clients that need nothing beyond error tracking (the admin client).
#[derive(Debug, Default)]
pub struct BasicContext {
    pub health: ClientHealth,
}

impl ClientContext for BasicContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        observe_log(&self.health, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        observe_error(&self.health, "admin", &error, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_few_distinct_recent_errors_in_order() {
        let h = ClientHealth::default();
        let start = Instant::now();
        assert!(h.record("Connection refused".into()));
        assert!(h.record("1/1 brokers are down".into()));
        assert!(
            !h.record("1/1 brokers are down".into()),
            "an immediate repeat is not logged"
        );
        assert_eq!(
            h.last_error_since(start).as_deref(),
            Some("Connection refused; 1/1 brokers are down")
        );
        assert_eq!(h.error_count(), 3);
        for i in 0..8 {
            h.record(format!("e{i}"));
        }
        assert_eq!(
            h.last_error_since(start).as_deref(),
            Some("e2; e3; e4; e5; e6; e7")
        );
    }
}
