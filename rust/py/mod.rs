//! Python bindings of the transport, one module per domain; each registers its classes.

mod admin;
mod consumer;
mod convert;
pub mod errors;
mod producer;
mod record;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<producer::PyProducer>()?;
    m.add_class::<consumer::PyConsumer>()?;
    m.add_class::<record::PyRecord>()?;
    m.add_class::<admin::PyAdmin>()?;
    Ok(())
}
