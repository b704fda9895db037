//! The publish path's encoder on events built from the input (nested dicts, lists, tuples,
//! big and small numbers, NaN, text with lone surrogates, datetimes, Decimals, enums, values
//! JSON has no type for, ...; `harness.build_events`): each event is either a per-event
//! problem or JSON that `json.loads` reads back as `json.dumps` writes the enriched event,
//! and `encode_events` itself never raises (`harness.check_encoded`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tradecore_eventbus_fuzz::{check, encode, fail, harness};

fuzz_target!(|data: &[u8]| {
    Python::attach(|py| {
        let h = harness(py);
        let built = h
            .getattr("build_events")
            .and_then(|f| f.call1((PyBytes::new(py, data),)))
            .unwrap_or_else(|e| fail(py, "build_events", &e));
        let built = built
            .cast::<PyTuple>()
            .expect("build_events returns a tuple");
        let (events, keys, with_headers) = (
            built.get_item(0).expect("events"),
            built.get_item(1).expect("keys"),
            built
                .get_item(2)
                .expect("headers")
                .is_truthy()
                .expect("bool"),
        );
        let default = h.getattr("json_default").expect("json_default");
        match encode::encode_events(py, &events, &keys, &default, with_headers, None) {
            Ok((batch, problems)) => {
                let batch = Bound::new(py, batch).expect("EncodedBatch");
                check(
                    py,
                    "check_encoded",
                    (events, keys, batch, problems, with_headers),
                );
            }
            Err(e) => fail(
                py,
                "encode_events raised instead of reporting a problem",
                &e,
            ),
        }
    });
});
