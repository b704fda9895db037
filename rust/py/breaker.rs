//! `CircuitBreaker`, its `BreakerPermit` and the `ManualClock` tests drive it with.

use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::seconds;
use super::errors::breaker_open_error;
use crate::reliability::backoff::RetrySchedule;
use crate::reliability::breaker::{BreakerConfig, CircuitBreaker, Permit};
use crate::reliability::clock::{Clock, ManualClock, SystemClock};

#[pyclass(name = "ManualClock", module = "tradecore_eventbus._core", frozen)]
pub struct PyManualClock {
    inner: Arc<ManualClock>,
}

#[pymethods]
impl PyManualClock {
    #[new]
    fn new() -> Self {
        PyManualClock {
            inner: Arc::new(ManualClock::default()),
        }
    }

    /// Moves the clock forward by `seconds`.
    fn advance(&self, seconds: f64) -> PyResult<()> {
        self.inner
            .advance(super::convert::seconds(seconds, "seconds")?);
        Ok(())
    }
}

#[pyclass(name = "CircuitBreaker", module = "tradecore_eventbus._core", frozen)]
pub struct PyCircuitBreaker {
    name: String,
    inner: Arc<CircuitBreaker>,
}

#[pymethods]
impl PyCircuitBreaker {
    #[new]
    #[pyo3(signature = (
        name,
        *,
        failure_threshold = 5,
        success_threshold = 3,
        timeout_seconds = 30.0,
        half_open_calls = 3,
        clock = None,
    ))]
    fn new(
        name: String,
        failure_threshold: u32,
        success_threshold: u32,
        timeout_seconds: f64,
        half_open_calls: u32,
        clock: Option<PyRef<'_, PyManualClock>>,
    ) -> PyResult<Self> {
        let clock: Arc<dyn Clock> = match clock {
            Some(c) => c.inner.clone(),
            None => SystemClock::shared(),
        };
        let config = BreakerConfig {
            failure_threshold,
            success_threshold,
            timeout: seconds(timeout_seconds, "timeout_seconds")?,
            half_open_calls,
        };
        Ok(PyCircuitBreaker {
            name,
            inner: CircuitBreaker::new(config, clock),
        })
    }

    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// A permit for one call, or CircuitBreakerOpenError at once (naming the channel and
    /// when it may retry). Report the outcome with `success()` / `failure()`; leaving the
    /// `with` block without one releases the permit.
    fn acquire(&self) -> PyResult<PyBreakerPermit> {
        match self.inner.try_acquire() {
            Ok(permit) => Ok(PyBreakerPermit {
                inner: Mutex::new(Some(permit)),
            }),
            Err(rejected) => Err(breaker_open_error(
                &self.name,
                rejected.state.as_str(),
                rejected.retry_after,
            )),
        }
    }

    /// state, failure_count, consecutive_successes, total_failures, total_success,
    /// last_failure_time (seconds since the epoch or None), retry_after (seconds or None).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("state", s.state.as_str())?;
        d.set_item("failure_count", s.failure_count)?;
        d.set_item("consecutive_successes", s.consecutive_successes)?;
        d.set_item("total_failures", s.total_failures)?;
        d.set_item("total_success", s.total_success)?;
        d.set_item(
            "last_failure_time",
            s.last_failure_time
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
        )?;
        d.set_item("half_open_in_flight", s.half_open_in_flight)?;
        d.set_item("retry_after", s.retry_after.map(|d| d.as_secs_f64()))?;
        Ok(d)
    }
}

#[pyclass(name = "BreakerPermit", module = "tradecore_eventbus._core", frozen)]
pub struct PyBreakerPermit {
    inner: Mutex<Option<Permit>>,
}

impl PyBreakerPermit {
    fn take(&self) -> Option<Permit> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[pymethods]
impl PyBreakerPermit {
    /// The call succeeded. Only the first outcome of a permit counts.
    fn success(&self) {
        if let Some(p) = self.take() {
            p.success();
        }
    }

    fn failure(&self) {
        if let Some(p) = self.take() {
            p.failure();
        }
    }

    /// Gives the permit back without an outcome (cancelled call).
    fn release(&self) {
        drop(self.take());
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.release();
        false
    }
}

/// The cap of the delay before retry `retry` (1-based), in milliseconds: the schedule the
/// Python `RetryConfig` jitters below.
#[pyfunction]
pub fn backoff_cap_ms(
    retry: u32,
    initial_delay_ms: f64,
    max_delay_ms: f64,
    backoff_factor: f64,
) -> PyResult<f64> {
    let schedule = RetrySchedule {
        max_attempts: u32::MAX,
        initial_delay: seconds(initial_delay_ms.max(0.0) / 1000.0, "initial_delay_ms")?,
        max_delay: seconds(max_delay_ms.max(0.0) / 1000.0, "max_delay_ms")?,
        backoff_factor,
    };
    Ok(schedule.cap(retry).as_secs_f64() * 1000.0)
}
