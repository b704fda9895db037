//! Sends at once what a complete send left lingering in librdkafka (decision 95).
//!
//! librdkafka holds each partition's last, partial message set for `linger.ms`, waiting for
//! more records to fill it. A send marked immediate (an explicit batch: its caller awaits it
//! and nothing more is coming for it) would spend most of its time in that wait. librdkafka
//! has no per-record or per-partition "do not linger"; its only way is the flushing state
//! that `rd_kafka_flush` holds for as long as the call lasts (`rk_flushing`: the broker
//! threads then treat linger as 1 µs, and the call wakes them). A one-shot
//! `rd_kafka_flush(rk, 0)` would clear it again before a broker thread runs, so a thread of
//! its own holds it, in calls of at most `step`, while an immediate send has records
//! without an outcome.
//!
//! Nobody waits for the flusher: callers wait for their own records only. Records of other
//! sends queued meanwhile go out early too (not later); acks, ordering and idempotence are
//! librdkafka's as before, only the moment a request is made changes.

use std::sync::{Arc, Condvar, Mutex};

use super::delivery::BatchTracker;

#[derive(Default)]
pub struct Flusher {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Immediate sends handed to librdkafka; dropped from here once done.
    waiting: Vec<Arc<BatchTracker>>,
    stopped: bool,
}

impl Flusher {
    /// Holds the flushing state until every record of `tracker` has its outcome.
    pub fn watch(&self, tracker: Arc<BatchTracker>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let idle = state.waiting.is_empty();
        state.waiting.push(tracker);
        drop(state);
        if idle {
            self.wake.notify_one();
        }
    }

    /// Makes [`run`](Self::run) return (after its current flush call).
    pub fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stopped = true;
        self.wake.notify_one();
    }

    /// Until stopped: calls `flush` (which holds librdkafka's flushing state for a while)
    /// again and again while a watched send is not done, and sleeps otherwise.
    pub fn run(&self, mut flush: impl FnMut()) {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if state.stopped {
                        return;
                    }
                    state.waiting.retain(|t| !t.is_done());
                    if !state.waiting.is_empty() {
                        break;
                    }
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
            flush();
        }
    }
}
