//! At most one offset commit in flight per consumer.
//!
//! The broker answers an OffsetCommit only after its group coordinator has written it (Kafka
//! 4 lingers a few milliseconds to batch those writes), and it serves one request per
//! connection at a time. Committing every `batch_size` marks regardless would, at high rates,
//! queue commits faster than the coordinator answers them, and the final commit would wait
//! behind all of them (decisions 26 and 57). So a commit is only requested when the previous
//! one has been answered; marks that arrive meanwhile are stored (librdkafka keeps the newest
//! stored offset per partition) and go out with the next one.
//! Nothing is committed that was not processed, so at-least-once is unchanged; fewer, larger
//! commits only mean fewer round trips.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const IDLE: u64 = u64::MAX;

/// Milliseconds since the first use, for a lock-free timestamp.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Debug)]
pub struct CommitGate {
    /// When the commit in flight was requested, or `IDLE`.
    issued_at_ms: AtomicU64,
    /// A commit whose answer never came (the client closed under it) stops blocking after
    /// this long.
    stale_after_ms: u64,
}

impl CommitGate {
    pub fn new(stale_after: Duration) -> Self {
        CommitGate {
            issued_at_ms: AtomicU64::new(IDLE),
            stale_after_ms: stale_after.as_millis() as u64,
        }
    }

    /// Takes the slot if no commit is in flight (or the one in flight went stale).
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(now_ms())
    }

    fn try_acquire_at(&self, now: u64) -> bool {
        let current = self.issued_at_ms.load(Ordering::Acquire);
        let free = current == IDLE || now.saturating_sub(current) >= self.stale_after_ms;
        free && self
            .issued_at_ms
            .compare_exchange(current, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The commit in flight was answered (or could not be requested).
    pub fn release(&self) {
        self.issued_at_ms.store(IDLE, Ordering::Release);
    }

    pub fn in_flight(&self) -> bool {
        self.issued_at_ms.load(Ordering::Acquire) != IDLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_commit_at_a_time_until_answered() {
        let gate = CommitGate::new(Duration::from_secs(5));
        assert!(gate.try_acquire_at(100));
        assert!(gate.in_flight());
        assert!(!gate.try_acquire_at(101));
        assert!(!gate.try_acquire_at(4_000));
        gate.release();
        assert!(!gate.in_flight());
        assert!(gate.try_acquire_at(4_001));
    }

    #[test]
    fn an_unanswered_commit_stops_blocking_once_stale() {
        let gate = CommitGate::new(Duration::from_millis(5_000));
        assert!(gate.try_acquire_at(1_000));
        assert!(!gate.try_acquire_at(5_999));
        assert!(gate.try_acquire_at(6_000));
        assert!(!gate.try_acquire_at(6_001));
    }

    #[test]
    fn concurrent_callers_get_one_slot() {
        let gate = std::sync::Arc::new(CommitGate::new(Duration::from_secs(60)));
        let winners: usize = (0..8)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || usize::from(gate.try_acquire()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
    }
}
