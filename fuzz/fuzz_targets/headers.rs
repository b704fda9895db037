//! Consumed header lists (names that are not UTF-8, values that are absent) and values, as
//! the record hands them to Python, through `event_id_of` and the dead-letter path: writing
//! a failed record to the DLQ and reading a DLQ record back for replay
//! (`harness.check_headers`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tradecore_eventbus_fuzz::wire::headers::{self, Header};
use tradecore_eventbus_fuzz::{check, fail, wire};

/// A header's name and value as they arrive (None: no value).
type RawHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// The input, laid out so that seeds are easy to write by hand (fuzz/seeds.py): a count
/// byte (low 3 bits: headers; bit 7: the record has no value), then per header a name length,
/// the name, a value length (255: no value) and the value, then the record value (the rest).
fn parse(data: &[u8]) -> (Vec<RawHeader<'_>>, Option<&[u8]>) {
    let (&count, mut rest) = data.split_first().unwrap_or((&0, &[]));
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    let mut list = Vec::new();
    for _ in 0..count & 7 {
        let name_len = take(1).first().copied().unwrap_or(0);
        let name = take(name_len.into());
        let value = match take(1).first().copied() {
            Some(255) | None => None,
            Some(n) => Some(take(n.into())),
        };
        list.push((name, value));
    }
    let value = take(usize::MAX);
    (list, (count & 0x80 == 0).then_some(value))
}

fuzz_target!(|data: &[u8]| {
    let (raw, value) = parse(data);
    Python::attach(|py| {
        let list: Vec<Header> = raw
            .iter()
            // librdkafka hands names over NUL-terminated: a name ends at its first NUL.
            .map(|(name, value)| {
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                headers::from_raw(name, *value)
            })
            .collect();
        let py_list = headers::to_list(py, &list).unwrap_or_else(|e| fail(py, "to_list", &e));
        let first = headers::first(py, &list, "event_id");
        let event = value.and_then(|v| wire::event::decode_event(py, v));
        let value = value.map(|v| PyBytes::new(py, v));
        check(py, "check_headers", (py_list, first, value, event));
    });
});
