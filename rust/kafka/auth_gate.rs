//! Authentication failures make a client refuse work at once instead of waiting for a
//! timeout (decision 48).
//!
//! librdkafka reports a failed SASL handshake once through the error callback
//! (`_AUTHENTICATION`) and then keeps reconnecting in the background, reporting identical
//! failures again only every 30 s; meanwhile produce calls queue until `message.timeout.ms`
//! and group joins until the caller's timeout, as if the broker were down. The gate turns the
//! first report into a latch: while it is set, the client's operations fail at once with the
//! authentication error (the producer also purges what it had queued).
//!
//! The latch is cleared by evidence that the credentials work: a delivered record, an
//! assignment or fetched records, a successful metadata request. Since a refusing client does
//! no work that could produce such evidence, a probe (a metadata request, set by the client)
//! runs in the background while the latch is set, every `reconnect.backoff.max.ms`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tokio::sync::Notify;

use super::error::Error;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// A request succeeded: the credentials work.
    Authenticated,
    /// The request failed; try again later.
    Failed,
    /// The client is gone: stop probing.
    Gone,
}

type ProbeFn = Box<dyn Fn() -> ProbeResult + Send + Sync>;

struct Probe {
    check: ProbeFn,
    interval: Duration,
}

/// The gate's state, shared with its probe thread (which must not keep the client alive:
/// the probe holds only a weak reference to it).
#[derive(Default)]
struct State {
    latched: AtomicBool,
    failure: Mutex<Option<String>>,
    changed: Notify,
    probe: OnceLock<Probe>,
    probing: AtomicBool,
}

#[derive(Default)]
pub struct AuthGate {
    state: Arc<State>,
}

impl std::fmt::Debug for AuthGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGate")
            .field("latched", &self.is_latched())
            .finish_non_exhaustive()
    }
}

/// Whether a Kafka error code says the client's credentials were refused.
pub fn is_authentication_failure(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed
    )
}

/// How long the probe waits between metadata requests: librdkafka's longest wait between
/// connection attempts (`reconnect.backoff.max.ms`, default 10 s).
pub fn probe_interval(config: &ClientConfig) -> Duration {
    ms_setting(config, "reconnect.backoff.max.ms", 10_000)
}

/// How long one probe request may take: librdkafka's bound on connecting, the TLS handshake
/// and SASL authentication (`socket.connection.setup.timeout.ms`, default 30 s).
pub fn probe_timeout(config: &ClientConfig) -> Duration {
    ms_setting(config, "socket.connection.setup.timeout.ms", 30_000)
}

fn ms_setting(config: &ClientConfig, key: &str, default: u64) -> Duration {
    let ms = config
        .get(key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_millis(ms.max(1))
}

impl AuthGate {
    /// Fast check for hot paths (one atomic load).
    pub fn is_latched(&self) -> bool {
        self.state.latched.load(Ordering::SeqCst)
    }

    /// Sets the latch (or refreshes its explanation); starts the probe if there is one.
    pub fn fail(&self, text: &str) {
        *self.state.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.to_owned());
        let was = self.state.latched.swap(true, Ordering::SeqCst);
        self.state.changed.notify_waiters();
        if !was {
            start_probe(&self.state);
        }
    }

    /// Clears the latch: something succeeded that needs working credentials.
    pub fn clear(&self) {
        self.state.clear();
    }

    /// The authentication error `operation` fails with while the latch is set.
    pub fn error(&self, operation: &'static str) -> Option<Error> {
        if !self.is_latched() {
            return None;
        }
        Some(Error::kafka(operation, RDKafkaErrorCode::Authentication).with_detail(self.reason()))
    }

    /// Why the latch is set (the last authentication failure librdkafka reported).
    pub fn reason(&self) -> String {
        self.state
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the broker refused the client's credentials".into())
    }

    /// The reason while the latch is set, else `None` (for health reports).
    pub fn current_failure(&self) -> Option<String> {
        self.is_latched().then(|| self.reason())
    }

    /// `Err` with the authentication error while the latch is set.
    pub fn check(&self, operation: &'static str) -> Result<(), Error> {
        match self.error(operation) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Resolves with the authentication error once the latch is set (at once if it is).
    pub async fn failed(&self, operation: &'static str) -> Error {
        loop {
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(e) = self.error(operation) {
                return e;
            }
            changed.await;
        }
    }

    /// Runs `fut`, or fails with the authentication error as soon as the latch is set.
    pub async fn guard<T>(
        &self,
        operation: &'static str,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::select! {
            biased;
            e = self.failed(operation) => Err(e),
            r = fut => r,
        }
    }

    /// Sets the probe run while the latch is set (once per client, right after the client
    /// was created). `check` must hold only a weak reference to its client.
    pub fn set_probe(
        &self,
        interval: Duration,
        check: impl Fn() -> ProbeResult + Send + Sync + 'static,
    ) {
        let _ = self.state.probe.set(Probe {
            check: Box::new(check),
            interval,
        });
        if self.is_latched() {
            start_probe(&self.state);
        }
    }
}

impl State {
    fn clear(&self) {
        if self.latched.swap(false, Ordering::SeqCst) {
            log::info!(target: "tradecore_eventbus.kafka", "the broker accepts the client's credentials again");
        }
    }
}

/// One probe thread per latched client: every `interval`, a request that needs working
/// credentials; stops when one succeeds, the latch was cleared otherwise, or the client is
/// gone.
fn start_probe(state: &Arc<State>) {
    let Some(interval) = state.probe.get().map(|p| p.interval) else {
        return;
    };
    if state.probing.swap(true, Ordering::SeqCst) {
        return;
    }
    let state = Arc::clone(state);
    let spawned = std::thread::Builder::new()
        .name("tradecore-auth-probe".into())
        .spawn({
            let state = Arc::clone(&state);
            move || probe_until_done(&state, interval)
        });
    if spawned.is_err() {
        state.probing.store(false, Ordering::SeqCst);
    }
}

fn probe_until_done(state: &State, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        let result = if state.latched.load(Ordering::SeqCst) {
            match state.probe.get() {
                Some(probe) => (probe.check)(),
                None => ProbeResult::Gone,
            }
        } else {
            ProbeResult::Authenticated
        };
        match result {
            ProbeResult::Failed => continue,
            ProbeResult::Authenticated => state.clear(),
            ProbeResult::Gone => {}
        }
        state.probing.store(false, Ordering::SeqCst);
        // A failure reported after the latch was read saw `probing` still set and started
        // no probe of its own: go on for it.
        if result == ProbeResult::Gone
            || !state.latched.load(Ordering::SeqCst)
            || state.probing.swap(true, Ordering::SeqCst)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::error::ErrorKind;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    #[test]
    fn a_failure_latches_until_something_succeeds() {
        let gate = AuthGate::default();
        assert!(gate.check("produce").is_ok());
        gate.fail("SASL authentication error: invalid credentials");
        let err = gate.check("produce").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert!(!err.retriable());
        assert!(err.to_string().contains("invalid credentials"), "{err}");
        assert_eq!(
            gate.current_failure().as_deref(),
            Some("SASL authentication error: invalid credentials")
        );
        gate.clear();
        assert!(gate.check("produce").is_ok());
        assert_eq!(gate.current_failure(), None);
    }

    #[tokio::test]
    async fn a_guarded_wait_ends_when_the_latch_is_set() {
        let gate = Arc::new(AuthGate::default());
        let waiting = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                gate.guard("create topics", std::future::pending::<Result<(), Error>>())
                    .await
            })
        };
        tokio::task::yield_now().await;
        gate.fail("SASL authentication error");
        let err = waiting.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        // Already latched: refused at once.
        let err = gate.guard("ping", async { Ok(1) }).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
    }

    #[test]
    fn the_probe_clears_the_latch_once_the_credentials_work() {
        let gate = AuthGate::default();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let calls = Arc::clone(&calls);
            gate.set_probe(Duration::from_millis(20), move || {
                // Refused twice, then accepted.
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    ProbeResult::Failed
                } else {
                    ProbeResult::Authenticated
                }
            });
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "no probe while not latched"
        );
        gate.fail("SASL authentication error");
        let deadline = Instant::now() + Duration::from_secs(10);
        while gate.is_latched() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!gate.is_latched());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_probe_stops_when_its_client_is_gone() {
        let gate = AuthGate::default();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let calls = Arc::clone(&calls);
            gate.set_probe(Duration::from_millis(10), move || {
                calls.fetch_add(1, Ordering::SeqCst);
                ProbeResult::Gone
            });
        }
        gate.fail("SASL authentication error");
        let deadline = Instant::now() + Duration::from_secs(10);
        while gate.state.probing.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(gate.is_latched(), "a gone client stays refused");
    }

    #[test]
    fn probe_timing_comes_from_the_client_settings() {
        let mut cfg = ClientConfig::new();
        assert_eq!(probe_interval(&cfg), Duration::from_secs(10));
        assert_eq!(probe_timeout(&cfg), Duration::from_secs(30));
        cfg.set("reconnect.backoff.max.ms", "2500")
            .set("socket.connection.setup.timeout.ms", "4000");
        assert_eq!(probe_interval(&cfg), Duration::from_millis(2500));
        assert_eq!(probe_timeout(&cfg), Duration::from_secs(4));
    }
}
