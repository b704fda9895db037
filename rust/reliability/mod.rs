//! Reliability building blocks in plain Rust: circuit breakers, retry schedules, clocks.

pub mod backoff;
pub mod breaker;
pub mod clock;
