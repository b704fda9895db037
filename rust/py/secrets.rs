//! The secret rules of `kafka::secrets`, for the Python side (config reprs, DLQ metadata).

use pyo3::prelude::*;

/// `text` with every secret a client of this process was configured with (SASL and key
/// passwords, OAuth secrets) replaced by `***`: for text that may quote them, such as an
/// exception message written to the DLQ.
#[pyfunction]
pub fn redact(text: &str) -> String {
    crate::kafka::secrets::redact(text).into_owned()
}

/// Whether a librdkafka property holds a secret (its value is masked wherever it is shown).
#[pyfunction]
pub fn is_secret_setting(key: &str) -> bool {
    crate::kafka::secrets::is_sensitive(key)
}
