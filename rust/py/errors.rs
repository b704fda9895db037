//! The boundary between the Rust error enum and Python's exception hierarchy, which lives in
//! `tradecore_eventbus.exceptions` (Python classes can mix in builtins such as TimeoutError).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::kafka::delivery::{DeliveryFailure, Outcome};
use crate::kafka::error::{Error, ErrorKind};

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BrokerUnavailable => "BrokerUnavailableError",
        ErrorKind::Timeout => "TransportTimeoutError",
        ErrorKind::QueueFull => "QueueFullError",
        ErrorKind::UnknownTopic => "UnknownTopicError",
        ErrorKind::InvalidTopic => "InvalidTopicError",
        ErrorKind::Config => "ConfigError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Closed => "ClosedError",
        ErrorKind::Batch => "BatchDeliveryError",
        ErrorKind::FencedInstance => "FencedInstanceError",
        ErrorKind::Kafka => "KafkaError",
    }
}

/// The error of one failed record, as a standalone error.
pub fn failure_error(failure: &DeliveryFailure) -> Error {
    Error::Kafka {
        code: failure.code,
        operation: "produce",
        detail: failure.detail.clone(),
        fatal: false,
    }
}

fn build<'py>(
    py: Python<'py>,
    err: &Error,
    possibly_persisted: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let module = EXCEPTIONS
        .get_or_try_init(py, || {
            py.import("tradecore_eventbus.exceptions")
                .map(Bound::unbind)
        })?
        .bind(py);
    let class = module.getattr(class_name(err.kind()))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("retriable", err.retriable())?;
    match err {
        Error::Kafka { fatal, .. } => {
            kwargs.set_item("code", err.code())?;
            kwargs.set_item("code_name", err.code_name())?;
            kwargs.set_item("fatal", *fatal)?;
            if let Some(p) = possibly_persisted {
                kwargs.set_item("possibly_persisted", p)?;
            }
        }
        Error::Batch(outcomes) => {
            kwargs.set_item("code", err.code())?;
            kwargs.set_item("code_name", err.code_name())?;
            let results = PyList::empty(py);
            for outcome in outcomes {
                match outcome {
                    Outcome::Delivered(d) => {
                        results.append(PyTuple::new(py, [d.partition as i64, d.offset])?)?
                    }
                    Outcome::Failed(f) => {
                        results.append(build(py, &failure_error(f), Some(f.possibly_persisted))?)?
                    }
                }
            }
            kwargs.set_item("results", results)?;
        }
        _ => {}
    }
    class.call((err.to_string(),), Some(&kwargs))
}

/// Converts an error of one failed record, keeping whether it may have been written.
pub fn delivery_failure_to_pyerr(failure: &DeliveryFailure) -> PyErr {
    Python::attach(|py| {
        match build(
            py,
            &failure_error(failure),
            Some(failure.possibly_persisted),
        ) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    })
}

/// `CircuitBreakerOpenError` for a refused call on `channel`.
pub fn breaker_open_error(channel: &str, state: &str, retry_after: std::time::Duration) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let module = EXCEPTIONS
                .get_or_try_init(py, || {
                    py.import("tradecore_eventbus.exceptions")
                        .map(Bound::unbind)
                })?
                .bind(py);
            let class = module.getattr("CircuitBreakerOpenError")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("channel", channel)?;
            kwargs.set_item("retry_after", retry_after.as_secs_f64())?;
            let message = if state == "OPEN" {
                format!(
                    "circuit breaker of channel {channel:?} is OPEN: call refused; a trial call is allowed in {:.3}s",
                    retry_after.as_secs_f64()
                )
            } else {
                format!("circuit breaker of channel {channel:?} is HALF_OPEN and every trial slot is taken: call refused; retry shortly")
            };
            Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
        };
        build().unwrap_or_else(|e| e)
    })
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| match build(py, &err, None) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        })
    }
}
