//! Consumer lag from what librdkafka already knows: no request is sent to measure it, so an
//! observer may ask as often as it likes.

use std::collections::HashMap;
use std::ffi::CString;

use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::Offset;
use rdkafka_sys as rdsys;

use super::handle::Handle;
use super::KafkaConsumer;
use crate::kafka::consumer_context::Start;
use crate::kafka::error::{Error, Result};

/// A partition's (low, high) watermarks as librdkafka last saw them in a fetch response
/// (`rd_kafka_get_watermark_offsets`: cached, unlike rust-rdkafka's `fetch_watermarks`,
/// which asks the broker). None before the first fetch response of the partition.
fn cached_watermarks(handle: &Handle, topic: &str, partition: i32) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client pointer is valid while `handle` lives; librdkafka only reads the
    // NUL-terminated topic name and writes the two offsets.
    let err = unsafe {
        rdsys::rd_kafka_get_watermark_offsets(
            handle.consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR).then_some((low, high))
}

impl KafkaConsumer {
    /// Per assigned partition, (topic, partition, lag): how many records are behind the
    /// next one this consumer will hand out. That is the high watermark of librdkafka's
    /// last fetch response minus this consumer's position, which is the offset after the
    /// last record handed out, the first record still held back for `drain` (while
    /// `wait_assigned` ran), or, before anything was handed out since the assignment, where
    /// the partition started (its committed offset, the resolved `latest` end, or its low
    /// watermark for `earliest`). A partition whose watermark or position is not known
    /// yet (not fetched from yet, or a start librdkafka resolves itself) is left out.
    ///
    /// Sends nothing to the broker; reading the assignment waits for librdkafka's main
    /// thread.
    pub fn lag(&self) -> Result<Vec<(String, i32, i64)>> {
        let handle = self.handle()?;
        let positions = handle
            .consumer
            .position()
            .map_err(|e| Error::from_kafka("position", e))?;
        // The records of `stash` came out of librdkafka (and count in its position) but
        // were not handed out yet.
        let mut held: HashMap<(&str, i32), i64> = HashMap::new();
        let stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        for r in stash.iter() {
            held.entry((&*r.topic, r.partition))
                .and_modify(|o| *o = (*o).min(r.offset))
                .or_insert(r.offset);
        }
        let mut out = Vec::with_capacity(positions.count());
        for elem in positions.elements() {
            let (topic, partition) = (elem.topic(), elem.partition());
            let Some((low, high)) = cached_watermarks(&handle, topic, partition) else {
                continue;
            };
            if high < 0 {
                continue;
            }
            let position = match (held.get(&(topic, partition)), elem.offset()) {
                (Some(first_held), _) => *first_held,
                (None, Offset::Offset(o)) if o >= 0 => o,
                (None, _) => match self.ctx.starts.of(topic, partition) {
                    Some(Start::At(o)) => o,
                    Some(Start::Beginning) if low >= 0 => low,
                    _ => continue,
                },
            };
            // The watermark is from the last fetch response, the position may be newer.
            out.push((topic.to_owned(), partition, (high - position).max(0)));
        }
        Ok(out)
    }
}
