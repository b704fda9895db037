//! Retry schedules: exponential backoff with full jitter.

use std::time::Duration;

/// `attempts` counts every attempt (the first included). The delay before retry `n`
/// (1-based) is drawn from `[0, cap(n)]` with `cap(n) = min(max, initial * factor^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub backoff_factor: f64,
}

impl RetrySchedule {
    /// The upper bound of the delay before retry `retry` (1-based); zero for 0.
    pub fn cap(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let grown = self.initial_delay.as_secs_f64() * self.backoff_factor.powi(retry as i32 - 1);
        if !grown.is_finite() || grown >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(grown.max(0.0))
        }
    }

    /// The jittered delay before retry `retry`, given a uniform draw in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit_draw: f64) -> Duration {
        self.cap(retry).mul_f64(unit_draw.clamp(0.0, 1.0))
    }

    /// Whether another attempt may follow attempt number `attempt` (1-based).
    pub fn allows_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_millis(5000),
            backoff_factor: 2.0,
        }
    }

    #[test]
    fn caps_grow_geometrically_up_to_the_maximum() {
        let s = schedule();
        let caps: Vec<u128> = (0..=7).map(|n| s.cap(n).as_millis()).collect();
        assert_eq!(caps, vec![0, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn jitter_stays_within_zero_and_the_cap() {
        let s = schedule();
        assert_eq!(s.delay(3, 0.0), Duration::ZERO);
        assert_eq!(s.delay(3, 0.5).as_millis(), 400);
        assert_eq!(s.delay(3, 1.0).as_millis(), 800);
        assert_eq!(s.delay(3, 7.0).as_millis(), 800, "draws are clamped");
    }

    #[test]
    fn attempts_count_the_first_one() {
        let s = schedule();
        assert!(s.allows_retry_after(4));
        assert!(!s.allows_retry_after(5));
        let once = RetrySchedule {
            max_attempts: 1,
            ..s
        };
        assert!(!once.allows_retry_after(1));
    }

    #[test]
    fn huge_exponents_saturate_at_the_maximum() {
        let s = schedule();
        assert_eq!(s.cap(10_000), s.max_delay);
        let flat = RetrySchedule {
            backoff_factor: 1.0,
            ..s
        };
        assert_eq!(flat.cap(9).as_millis(), 200);
    }
}
