//! The per-channel circuit breaker.
//!
//! CLOSED -> OPEN after `failure_threshold` consecutive failures; OPEN -> HALF_OPEN once
//! `timeout` has passed since it opened; HALF_OPEN lets at most `half_open_calls` trial calls
//! run at once and closes after `success_threshold` successes; any failure in HALF_OPEN opens
//! it again. Every call holds a [`Permit`]; a permit dropped without an outcome (the call was
//! cancelled or timed out) gives its trial slot back, so the breaker can never stay
//! HALF_OPEN with no slot left. Outcomes of calls admitted before the last transition only
//! update the totals: a slow call from the CLOSED era cannot close a breaker that opened
//! since.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::clock::Clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub timeout: Duration,
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            success_threshold: 3,
            timeout: Duration::from_secs(30),
            half_open_calls: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerStats {
    pub state: State,
    /// Consecutive failures (what trips the breaker).
    pub failure_count: u32,
    pub consecutive_successes: u32,
    pub total_failures: u64,
    pub total_success: u64,
    /// Wall-clock time of the last failure.
    pub last_failure_time: Option<SystemTime>,
    /// Trial calls running now (HALF_OPEN).
    pub half_open_in_flight: u32,
    /// How long until an OPEN breaker admits a trial call.
    pub retry_after: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Incremented on every transition; permits remember the one they were granted in.
    generation: u64,
    opened_at: Duration,
    failure_count: u32,
    consecutive_successes: u32,
    half_open_successes: u32,
    half_open_in_flight: u32,
    total_failures: u64,
    total_success: u64,
    last_failure_time: Option<SystemTime>,
}

pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

/// Refused: the breaker is OPEN (or HALF_OPEN with every trial slot taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub state: State,
    pub retry_after: Duration,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(CircuitBreaker {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                success_threshold: config.success_threshold.max(1),
                half_open_calls: config.half_open_calls.max(1),
                timeout: config.timeout,
            },
            clock,
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                opened_at: Duration::ZERO,
                failure_count: 0,
                consecutive_successes: 0,
                half_open_successes: 0,
                half_open_in_flight: 0,
                total_failures: 0,
                total_success: 0,
                last_failure_time: None,
            }),
        })
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters only: a panic while holding the lock cannot leave them unusable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// OPEN becomes HALF_OPEN once the timeout passed (checked lazily, on every read).
    fn refresh(&self, inner: &mut Inner) {
        if inner.state == State::Open
            && self.clock.now().saturating_sub(inner.opened_at) >= self.config.timeout
        {
            Self::transition(inner, State::HalfOpen);
        }
    }

    fn transition(inner: &mut Inner, to: State) {
        inner.state = to;
        inner.generation += 1;
        inner.half_open_successes = 0;
        inner.half_open_in_flight = 0;
    }

    fn open(&self, inner: &mut Inner) {
        Self::transition(inner, State::Open);
        inner.opened_at = self.clock.now();
    }

    /// Admits a call or refuses it at once.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let trial = match inner.state {
            State::Closed => false,
            State::Open => {
                let waited = self.clock.now().saturating_sub(inner.opened_at);
                return Err(Rejected {
                    state: State::Open,
                    retry_after: self.config.timeout.saturating_sub(waited),
                });
            }
            State::HalfOpen => {
                if inner.half_open_in_flight >= self.config.half_open_calls {
                    return Err(Rejected {
                        state: State::HalfOpen,
                        retry_after: Duration::ZERO,
                    });
                }
                inner.half_open_in_flight += 1;
                true
            }
        };
        Ok(Permit {
            breaker: Arc::clone(self),
            generation: inner.generation,
            trial,
            settled: false,
        })
    }

    fn settle(&self, permit_generation: u64, trial: bool, outcome: Option<bool>) {
        let mut inner = self.lock();
        let current = inner.generation == permit_generation;
        if trial && current {
            inner.half_open_in_flight = inner.half_open_in_flight.saturating_sub(1);
        }
        match outcome {
            None => {}
            Some(true) => {
                inner.total_success += 1;
                inner.consecutive_successes = inner.consecutive_successes.saturating_add(1);
                if current {
                    match inner.state {
                        State::Closed => inner.failure_count = 0,
                        State::HalfOpen => {
                            inner.half_open_successes += 1;
                            if inner.half_open_successes >= self.config.success_threshold {
                                Self::transition(&mut inner, State::Closed);
                                inner.failure_count = 0;
                            }
                        }
                        State::Open => {}
                    }
                }
            }
            Some(false) => {
                inner.total_failures += 1;
                inner.consecutive_successes = 0;
                inner.last_failure_time = Some(SystemTime::now());
                if current {
                    match inner.state {
                        State::Closed => {
                            inner.failure_count += 1;
                            if inner.failure_count >= self.config.failure_threshold {
                                self.open(&mut inner);
                            }
                        }
                        State::HalfOpen => {
                            inner.failure_count += 1;
                            self.open(&mut inner);
                        }
                        State::Open => {}
                    }
                }
            }
        }
    }

    pub fn state(&self) -> State {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        inner.state
    }

    pub fn stats(&self) -> BreakerStats {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let retry_after = (inner.state == State::Open).then(|| {
            self.config
                .timeout
                .saturating_sub(self.clock.now().saturating_sub(inner.opened_at))
        });
        BreakerStats {
            state: inner.state,
            failure_count: inner.failure_count,
            consecutive_successes: inner.consecutive_successes,
            total_failures: inner.total_failures,
            total_success: inner.total_success,
            last_failure_time: inner.last_failure_time,
            half_open_in_flight: inner.half_open_in_flight,
            retry_after,
        }
    }
}

/// The right to make one call. Report its outcome with [`success`](Self::success) or
/// [`failure`](Self::failure); dropping it without either releases it (cancellation).
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    generation: u64,
    trial: bool,
    settled: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.settle(self.generation, self.trial, Some(true));
    }

    pub fn failure(mut self) {
        self.settled = true;
        self.breaker
            .settle(self.generation, self.trial, Some(false));
    }

    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.settle(self.generation, self.trial, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reliability::clock::ManualClock;

    fn breaker() -> (Arc<CircuitBreaker>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let b = CircuitBreaker::new(BreakerConfig::default(), clock.clone());
        (b, clock)
    }

    fn fail(b: &Arc<CircuitBreaker>, n: u32) {
        for _ in 0..n {
            b.try_acquire().unwrap().failure();
        }
    }

    fn succeed(b: &Arc<CircuitBreaker>, n: u32) {
        for _ in 0..n {
            b.try_acquire().unwrap().success();
        }
    }

    #[test]
    fn closed_opens_after_the_threshold_of_consecutive_failures() {
        let (b, _) = breaker();
        fail(&b, 4);
        assert_eq!(b.state(), State::Closed);
        succeed(&b, 1);
        assert_eq!(
            b.stats().failure_count,
            0,
            "a success resets the consecutive count"
        );
        fail(&b, 4);
        assert_eq!(b.state(), State::Closed);
        fail(&b, 1);
        assert_eq!(b.state(), State::Open);
        let s = b.stats();
        assert_eq!((s.total_failures, s.total_success), (9, 1));
        assert!(s.last_failure_time.is_some());
    }

    #[test]
    fn open_refuses_with_the_time_left_then_half_opens_after_the_timeout() {
        let (b, clock) = breaker();
        fail(&b, 5);
        clock.advance(Duration::from_secs(10));
        let rejected = b.try_acquire().err().unwrap();
        assert_eq!(rejected.state, State::Open);
        assert_eq!(rejected.retry_after, Duration::from_secs(20));
        clock.advance(Duration::from_secs(20));
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn half_open_admits_a_bounded_number_of_trials_and_closes_after_successes() {
        let (b, clock) = breaker();
        fail(&b, 5);
        clock.advance(Duration::from_secs(30));
        let trials: Vec<Permit> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
        assert!(trials.iter().all(Permit::is_trial));
        assert_eq!(b.try_acquire().err().unwrap().state, State::HalfOpen);
        let mut trials = trials.into_iter();
        trials.next().unwrap().success();
        trials.next().unwrap().success();
        assert_eq!(b.state(), State::HalfOpen);
        trials.next().unwrap().success();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.stats().failure_count, 0);
    }

    #[test]
    fn any_failure_in_half_open_reopens_and_restarts_the_timeout() {
        let (b, clock) = breaker();
        fail(&b, 5);
        clock.advance(Duration::from_secs(30));
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
        clock.advance(Duration::from_secs(29));
        assert_eq!(
            b.state(),
            State::Open,
            "the timeout counts from the reopening"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn a_dropped_trial_permit_gives_its_slot_back() {
        let (b, clock) = breaker();
        fail(&b, 5);
        clock.advance(Duration::from_secs(30));
        for _ in 0..10 {
            let permits: Vec<Permit> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
            drop(permits); // cancelled or timed out
        }
        assert_eq!(b.stats().half_open_in_flight, 0);
        succeed(&b, 3);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn late_outcomes_from_before_a_transition_only_count_in_totals() {
        let (b, clock) = breaker();
        let slow = b.try_acquire().unwrap(); // admitted while CLOSED
        fail(&b, 5);
        clock.advance(Duration::from_secs(30));
        assert_eq!(b.state(), State::HalfOpen);
        slow.success();
        let s = b.stats();
        assert_eq!(
            s.state,
            State::HalfOpen,
            "a CLOSED-era success is not a trial"
        );
        assert_eq!(s.total_success, 1);
        let late_failure = b.try_acquire().unwrap();
        succeed(&b, 2);
        late_failure.success();
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn concurrent_callers_keep_every_count_and_never_leak_a_slot() {
        let (b, clock) = breaker();
        fail(&b, 5);
        clock.advance(Duration::from_secs(30));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut admitted = 0u32;
                    for j in 0..1000 {
                        if let Ok(p) = b.try_acquire() {
                            admitted += 1;
                            match (i + j) % 3 {
                                0 => drop(p),
                                _ => p.success(),
                            }
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let s = b.stats();
        assert_eq!(s.state, State::Closed);
        assert_eq!(s.half_open_in_flight, 0);
        assert!(admitted > 0);
        assert!(s.total_success >= 3);
    }
}
