//! tradecore-eventbus core: the Kafka transport (producer, consumer, admin) behind the
//! Python `EventBus`. `kafka` is plain Rust; `py` holds the bindings.

pub mod events;
pub mod kafka;
// Public for the criterion benches (event encoding from Python dicts); not a Rust API.
#[doc(hidden)]
pub mod py;
pub mod reliability;
pub mod runtime;
pub mod wire;

use pyo3::prelude::*;

/// librdkafka's version string, as linked into this module.
#[pyfunction]
fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust and librdkafka log records go to Python's `logging`, via a forwarder thread.
    py::logging::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(librdkafka_version, m)?)?;
    py::register(m)?;
    // Every error kind must have its exception class: checked now, not at the first error.
    py::errors::bind(m.py())?;
    // `before_exit` (py::bridge) is registered with atexit by the Python package, which
    // knows the close timeout that bounds it.
    Ok(())
}
