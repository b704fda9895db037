//! A consumed record copied out of librdkafka, headers included.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka_sys as rdsys;

use crate::wire::headers::{self, Header};

/// A consumed record, owning its bytes.
#[derive(Debug, Clone)]
pub struct RecordData {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch (create or log-append time).
    pub timestamp_ms: Option<i64>,
}

impl RecordData {
    pub(super) fn from_message(msg: &BorrowedMessage<'_>, topic: Arc<str>) -> Self {
        let headers = headers_of(msg);
        RecordData {
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: msg.timestamp().to_millis(),
        }
    }
}

/// The headers of `msg`, read through librdkafka's C API: rust-rdkafka's header iterator
/// unwraps the name as UTF-8 and so panics on a record whose header name is not (any client
/// can send one; the broker does not check). See `wire::headers::from_raw`.
fn headers_of(msg: &BorrowedMessage<'_>) -> Vec<Header> {
    let mut hdrs: *mut rdsys::rd_kafka_headers_t = ptr::null_mut();
    // SAFETY: the message pointer is valid while `msg` is; the headers it returns belong to
    // the message and are only read here, before `msg` goes.
    let err = unsafe { rdsys::rd_kafka_message_headers(msg.ptr(), &mut hdrs) };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return Vec::new();
    }
    // SAFETY: as above.
    let count = unsafe { rdsys::rd_kafka_header_cnt(hdrs) };
    let mut out = Vec::with_capacity(count);
    for idx in 0..count {
        let mut name: *const c_char = ptr::null();
        let mut value: *const c_void = ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx` is below the count; librdkafka fills in pointers into its own copy
        // of the header (a NUL-terminated name, `size` bytes of value or NULL for none).
        let err =
            unsafe { rdsys::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: pointers as librdkafka documents them, valid while the message is.
        let (name, value) = unsafe {
            (
                CStr::from_ptr(name).to_bytes(),
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            )
        };
        out.push(headers::from_raw(name, value));
    }
    out
}
