//! How a consumer tells its waiter that records (or events) arrived.
//!
//! Two kinds of waiter: async Rust code awaits [`Wake::notified`] (a tokio `Notify`), and a
//! Python `wait()` registers a callback with [`Wake::on_next`] that the thread which saw the
//! records arrive (librdkafka's) calls directly. The callback settles the asyncio future
//! without waking a tokio task first: one thread hop less on the way to the handler.

use std::sync::Mutex;

use tokio::sync::Notify;

pub type WakeCallback = Box<dyn FnOnce(bool) + Send>;

#[derive(Default)]
pub struct Wake {
    notify: Notify,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A wake-up came while no callback was registered: the next one is called at once.
    pending: bool,
    next_id: u64,
    callbacks: Vec<(u64, WakeCallback)>,
}

impl Wake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes one async waiter (or the next) and calls every registered callback with
    /// `true` (each waiter then looks for records; some may find none).
    pub fn wake(&self) {
        self.notify.notify_one();
        let callbacks = {
            let mut state = self.state();
            let callbacks = std::mem::take(&mut state.callbacks);
            state.pending = callbacks.is_empty();
            callbacks
        };
        for (_, callback) in callbacks {
            callback(true);
        }
    }

    /// Wakes every async waiter and the callback (the consumer is closing).
    pub fn wake_all(&self) {
        self.notify.notify_waiters();
        self.wake();
    }

    /// Resolves at the next [`wake`](Self::wake) (or at once if one came unanswered).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Calls `f(true)` at the next wake-up, or now if one came since the last callbacks were
    /// called. Returns an id for [`forget`](Self::forget).
    pub fn on_next(&self, f: WakeCallback) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        if std::mem::take(&mut state.pending) {
            drop(state);
            f(true);
        } else {
            state.callbacks.push((id, f));
        }
        id
    }

    /// Forgets callback `id` if it was not called (its waiter timed out).
    pub fn forget(&self, id: u64) {
        let old = {
            let mut state = self.state();
            state
                .callbacks
                .iter()
                .position(|(i, _)| *i == id)
                .map(|at| state.callbacks.swap_remove(at))
        };
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counter() -> (Arc<AtomicUsize>, WakeCallback) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (
            n,
            Box::new(move |woken| {
                assert!(woken);
                m.fetch_add(1, Ordering::AcqRel);
            }),
        )
    }

    #[test]
    fn a_registered_callback_is_called_once_at_the_next_wake() {
        let wake = Wake::default();
        let (calls, f) = counter();
        wake.on_next(f);
        assert_eq!(calls.load(Ordering::Acquire), 0);
        wake.wake();
        wake.wake();
        assert_eq!(calls.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_wake_with_nobody_registered_is_kept_for_the_next_callback() {
        let wake = Wake::default();
        wake.wake();
        let (calls, f) = counter();
        wake.on_next(f);
        assert_eq!(calls.load(Ordering::Acquire), 1, "called at once");
        let (later, g) = counter();
        wake.on_next(g);
        assert_eq!(
            later.load(Ordering::Acquire),
            0,
            "the kept wake-up was used up"
        );
    }

    #[test]
    fn a_forgotten_callback_is_not_called_and_the_others_are() {
        let wake = Wake::default();
        let (first, f) = counter();
        let (second, g) = counter();
        let id = wake.on_next(f);
        wake.on_next(g);
        wake.forget(id);
        wake.wake();
        assert_eq!(first.load(Ordering::Acquire), 0);
        assert_eq!(second.load(Ordering::Acquire), 1);
    }
}
