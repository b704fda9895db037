//! Record values as a consumer reads them: the Rust per-batch decoder (jiter straight into
//! Python objects), then `envelope.decode` for what it leaves. Either an event dict or a
//! `DeserializationError`, and the same event `json.loads` reads (`harness.check_decode`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tradecore_eventbus_fuzz::{check, wire};

fuzz_target!(|data: &[u8]| {
    Python::attach(|py| {
        let event = wire::event::decode_event(py, data);
        check(py, "check_decode", (PyBytes::new(py, data), event));
    });
});
