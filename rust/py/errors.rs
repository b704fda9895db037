//! The boundary between the Rust error enum and Python's exception hierarchy, which lives in
//! `tradecore_eventbus.exceptions` (Python classes can mix in builtins such as TimeoutError).
//!
//! The classes are looked up once, when `_core` is imported ([`bind`]): every [`ErrorKind`]
//! must name a class there that derives from `EventBusError`, or the import fails. The match
//! in [`class_name`] is exhaustive, so a new kind without a class does not compile.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::kafka::delivery::{DeliveryFailure, Outcome};
use crate::kafka::error::{Error, ErrorKind};

/// The exception classes, by `ErrorKind as usize`, and `CircuitBreakerOpenError`.
struct Classes {
    by_kind: Vec<Py<PyType>>,
    breaker_open: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

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
        ErrorKind::Authentication => "AuthenticationError",
        ErrorKind::Authorization => "AuthorizationError",
        ErrorKind::FencedInstance => "FencedInstanceError",
        ErrorKind::Kafka => "KafkaError",
        ErrorKind::Internal => "InternalError",
    }
}

fn load(py: Python<'_>) -> PyResult<Classes> {
    let module = py.import("tradecore_eventbus.exceptions")?;
    let root = module.getattr("EventBusError")?.cast_into::<PyType>()?;
    let class = |name: &str| -> PyResult<Py<PyType>> {
        let missing = || {
            pyo3::exceptions::PyImportError::new_err(format!(
                "tradecore_eventbus.exceptions has no exception class {name} deriving from \
                 EventBusError (the Rust core raises it)"
            ))
        };
        let obj = module.getattr(name).map_err(|_| missing())?;
        let cls = obj.cast_into::<PyType>().map_err(|_| missing())?;
        if !cls.is_subclass(&root)? {
            return Err(missing());
        }
        Ok(cls.unbind())
    };
    let by_kind = ErrorKind::ALL
        .iter()
        .map(|kind| class(class_name(*kind)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Classes {
        by_kind,
        breaker_open: class("CircuitBreakerOpenError")?,
    })
}

/// Looks the exception classes up; called when `_core` is imported, so that a kind without
/// its class fails the import instead of the first error of that kind.
pub fn bind(py: Python<'_>) -> PyResult<()> {
    classes(py).map(|_| ())
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || load(py))
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
    let class = classes(py)?.by_kind[err.kind() as usize].bind(py);
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
            let class = classes(py)?.breaker_open.bind(py);
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
