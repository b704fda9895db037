//! Waiting for records without parking a thread: `wait` for async Rust, `wait_then` for the
//! Python `wait()` (a callback that settles its future), `wait_assigned` for the group.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::KafkaConsumer;
use crate::kafka::error::{Error, Result};
use crate::runtime::timers::{TimerId, Timers};
use crate::runtime::wake::WakeCallback;

/// A Python `wait()` in progress: its callback until the wake-up or the deadline takes it.
struct Waiter {
    f: Option<WakeCallback>,
    timer: Option<TimerId>,
}

impl KafkaConsumer {
    /// Waits until librdkafka has something for us (records or events), the consumer is
    /// closed, or `timeout` passes. Returns whether it was woken. Cancel-safe.
    pub async fn wait(&self, timeout: Duration) -> bool {
        if self.is_closed() {
            return false;
        }
        if self.health().auth.is_latched()
            || !self
                .stash
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            return true;
        }
        tokio::select! {
            _ = self.wake.notified() => true,
            _ = tokio::time::sleep(timeout) => false,
        }
    }

    /// [`wait`](Self::wait) with a callback: `f(true)` from the thread that sees records or
    /// events arrive (at once if some are here already) and when the consumer closes during
    /// the wait (the next `drain` says it is closed), or `f(false)` once `timeout` passed or
    /// at once if it was closed already. Called exactly once. The Python `wait` settles its future
    /// from `f`, so an arriving record reaches the event loop without a tokio task's hop.
    pub fn wait_then(&self, timeout: Duration, f: impl FnOnce(bool) + Send + 'static) {
        if self.is_closed() {
            return f(false);
        }
        if self.fatal.get().is_some() {
            return f(true); // `drain` reports it
        }
        // While a rebalance is being applied `drain` leaves the queue alone: wait for the
        // wake-up that ends it rather than spin on what is queued.
        let queued = if self.ctx.rebalancer.busy() {
            0
        } else {
            self.handle().map(|h| h.queue.len()).unwrap_or(0)
        };
        // Refused credentials: no waiting, the next `drain` says why.
        if queued > 0
            || self.health().auth.is_latched()
            || !self
                .stash
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            return f(true);
        }
        // Exactly one of the wake-up and the deadline calls `f`; the winner disarms the other.
        let waiter = Arc::new(Mutex::new(Waiter {
            f: Some(Box::new(f)),
            timer: None,
        }));
        let by_wake = Arc::clone(&waiter);
        let wake_id = self.wake.on_next(Box::new(move |woken| {
            let (f, timer) = {
                let mut w = by_wake.lock().unwrap_or_else(|e| e.into_inner());
                (w.f.take(), w.timer.take())
            };
            if let Some(timer) = timer {
                Timers::shared().cancel(timer);
            }
            if let Some(f) = f {
                f(woken);
            }
        }));
        let wake = Arc::clone(&self.wake);
        let by_timer = Arc::clone(&waiter);
        let timer = Timers::shared().after(
            timeout,
            Box::new(move || {
                let f = by_timer.lock().unwrap_or_else(|e| e.into_inner()).f.take();
                if let Some(f) = f {
                    wake.forget(wake_id);
                    f(false);
                }
            }),
        );
        let mut w = waiter.lock().unwrap_or_else(|e| e.into_inner());
        if w.f.is_some() {
            w.timer = Some(timer);
        } else {
            // Woken before the deadline was armed (on_next can call back at once).
            drop(w);
            Timers::shared().cancel(timer);
        }
    }

    /// Waits until the group has given this consumer its partitions (possibly none) and
    /// their start offsets are fixed. Records arriving meanwhile are kept for `drain`. Fails
    /// at once on a fatal error (a fenced static member) or a refusal (authorization, an
    /// unusable group id); after `timeout` with `Error::Timeout`.
    pub async fn wait_assigned(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            self.check_fatal()?;
            {
                let handle = self.handle()?;
                let mut fetched = Vec::new();
                self.poll_into(&handle, &mut fetched, usize::MAX, true)?;
                if !fetched.is_empty() {
                    self.stash
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(fetched);
                }
            }
            if self.is_assigned() {
                return Ok(());
            }
            // Refused credentials: the group cannot be joined, say so now (decision 48).
            self.health().auth.check("joining the consumer group")?;
            let now = Instant::now();
            if now >= deadline {
                let mut detail = format!(
                    "no partition assignment within {timeout:?} (bootstrap servers {})",
                    self.bootstrap_servers
                );
                if let Some(e) = self.health().last_error_since(started) {
                    detail.push_str(&format!("; recent client errors: {e}"));
                }
                return Err(Error::Timeout {
                    operation: "joining the consumer group",
                    detail,
                });
            }
            let step = (deadline - now).min(Duration::from_millis(100));
            tokio::select! {
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(step) => {},
            }
        }
    }
}
