//! One thread that runs callbacks at deadlines, for timeouts that are almost always
//! cancelled before they fire.
//!
//! Not a tokio timer per `wait(timeout)`: starting and stopping one wakes a tokio worker
//! twice per wait, and at low rates a consumer waits once per record (decision 36). Here
//! arming and cancelling a deadline is a map insert and remove under a lock; the thread is
//! woken only when a new deadline is earlier than the one it sleeps until, so with a steady
//! timeout it wakes about once per timeout, not once per call.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub type TimerCallback = Box<dyn FnOnce() + Send>;

/// An armed deadline, for [`Timers::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(Instant, u64);

#[derive(Clone, Copy)]
enum Sleep {
    /// Running callbacks or about to look at the map again: new deadlines need no wake-up.
    Awake,
    Until(Instant),
    Forever,
}

struct State {
    due: BTreeMap<TimerId, TimerCallback>,
    next_id: u64,
    sleep: Sleep,
}

pub struct Timers {
    state: Mutex<State>,
    changed: Condvar,
}

impl Timers {
    /// The process-wide timer thread, started on first use.
    pub fn shared() -> &'static Timers {
        static SHARED: OnceLock<&'static Timers> = OnceLock::new();
        SHARED.get_or_init(Timers::start)
    }

    /// A timer thread of its own (lives as long as the process).
    fn start() -> &'static Timers {
        let timers: &'static Timers = Box::leak(Box::new(Timers::new()));
        std::thread::Builder::new()
            .name("tradecore-timers".into())
            .spawn(move || timers.run())
            .expect("cannot start the timer thread");
        timers
    }

    fn new() -> Self {
        Timers {
            state: Mutex::new(State {
                due: BTreeMap::new(),
                next_id: 0,
                sleep: Sleep::Awake,
            }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` on the timer thread once `timeout` has passed, unless cancelled first.
    pub fn after(&self, timeout: Duration, f: TimerCallback) -> TimerId {
        let at = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        let mut state = self.state();
        state.next_id += 1;
        let id = TimerId(at, state.next_id);
        state.due.insert(id, f);
        let wake = match state.sleep {
            Sleep::Awake => false,
            Sleep::Until(t) => at < t,
            Sleep::Forever => true,
        };
        if wake {
            state.sleep = Sleep::Awake;
            drop(state);
            self.changed.notify_one();
        }
        id
    }

    /// Disarms `id`. True if its callback will not run (false: it ran or is running).
    pub fn cancel(&self, id: TimerId) -> bool {
        // The thread is not woken: at worst it wakes at the old deadline and finds nothing.
        self.state().due.remove(&id).is_some()
    }

    fn run(&self) {
        let mut state = self.state();
        loop {
            let now = Instant::now();
            let mut fire = Vec::new();
            while let Some(entry) = state.due.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                fire.push(entry.remove());
            }
            if !fire.is_empty() {
                state.sleep = Sleep::Awake;
                drop(state);
                for f in fire {
                    // A panicking callback must not stop every later timeout in the process.
                    let _ = catch_unwind(AssertUnwindSafe(f));
                }
                state = self.state();
                continue;
            }
            state = match state.due.keys().next().map(|id| id.0) {
                Some(at) => {
                    state.sleep = Sleep::Until(at);
                    self.changed
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => {
                    state.sleep = Sleep::Forever;
                    self.changed.wait(state).unwrap_or_else(|e| e.into_inner())
                }
            };
            state.sleep = Sleep::Awake;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::channel;
    use std::sync::Arc;

    // Each test starts a timer thread of its own: another test's deadlines must not wake
    // the thread that a test expects to be asleep.

    /// A callback that counts its calls, and the count.
    fn counter() -> (Arc<AtomicUsize>, TimerCallback) {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&fired);
        (
            fired,
            Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    #[test]
    fn fires_after_the_timeout_in_deadline_order() {
        let timers = Timers::start();
        let (tx, rx) = channel();
        let started = Instant::now();
        for (name, ms) in [("late", 80u64), ("early", 20), ("middle", 50)] {
            let tx = tx.clone();
            timers.after(
                Duration::from_millis(ms),
                Box::new(move || tx.send((name, started.elapsed())).unwrap()),
            );
        }
        let got: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(
            got.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["early", "middle", "late"]
        );
        assert!(got[0].1 >= Duration::from_millis(20));
        assert!(got[2].1 >= Duration::from_millis(80));
    }

    #[test]
    fn an_earlier_deadline_wakes_a_thread_sleeping_until_a_later_one() {
        let timers = Timers::start();
        let (fired, count) = counter();
        let late = timers.after(Duration::from_secs(60), count);
        std::thread::sleep(Duration::from_millis(20)); // the thread now sleeps until +60 s
        let (tx, rx) = channel();
        let started = Instant::now();
        timers.after(
            Duration::from_millis(10),
            Box::new(move || tx.send(()).unwrap()),
        );
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the 10 ms deadline fired");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(timers.cancel(late));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_cancelled_deadline_never_fires_and_cancel_reports_it() {
        let timers = Timers::start();
        let (fired, count) = counter();
        let id = timers.after(Duration::from_millis(30), count);
        assert!(timers.cancel(id));
        assert!(!timers.cancel(id), "a second cancel finds nothing");
        let (tx, rx) = channel();
        let done = timers.after(
            Duration::from_millis(60),
            Box::new(move || tx.send(()).unwrap()),
        );
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!timers.cancel(done), "a fired deadline cannot be cancelled");
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_thread() {
        let timers = Timers::start();
        timers.after(
            Duration::from_millis(1),
            Box::new(|| panic!("callback bug")),
        );
        let (tx, rx) = channel();
        timers.after(
            Duration::from_millis(20),
            Box::new(move || tx.send(()).unwrap()),
        );
        rx.recv_timeout(Duration::from_secs(5))
            .expect("later deadlines still fire");
    }
}
