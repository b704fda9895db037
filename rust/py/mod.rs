//! Python bindings of the transport, one module per domain; each registers its classes.

mod admin;
mod breaker;
pub mod bridge;
mod consumer;
mod convert;
pub mod encode;
pub mod errors;
pub mod logging;
mod offsets;
mod producer;
mod record;
mod results;
mod secrets;

use pyo3::prelude::*;

/// Drops a client without holding the GIL: closing librdkafka joins its threads and may wait
/// for the network, and other Python threads should keep running meanwhile.
pub(crate) fn release<T: Send>(value: T) {
    Python::attach(|py| py.detach(move || drop(value)));
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<producer::PyProducer>()?;
    m.add_class::<consumer::PyConsumer>()?;
    m.add_class::<record::PyRecord>()?;
    m.add_class::<admin::PyAdmin>()?;
    m.add_class::<offsets::PyOffsetTracker>()?;
    m.add_class::<encode::EncodedBatch>()?;
    m.add_class::<results::PublishResult>()?;
    m.add_class::<results::Deliveries>()?;
    m.add_function(wrap_pyfunction!(results::publish_results, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_events, m)?)?;
    m.add_class::<breaker::PyCircuitBreaker>()?;
    m.add_class::<breaker::PyBreakerPermit>()?;
    m.add_class::<breaker::PyManualClock>()?;
    m.add_function(wrap_pyfunction!(breaker::backoff_cap_ms, m)?)?;
    m.add_function(wrap_pyfunction!(secrets::redact, m)?)?;
    m.add_function(wrap_pyfunction!(secrets::is_secret_setting, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::before_exit, m)?)?;
    Ok(())
}
