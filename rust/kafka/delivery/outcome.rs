//! What became of each record of a send: the types the delivery tracker fills in and the
//! bindings turn into results.

use rdkafka::error::RDKafkaErrorCode;

/// Where a delivered record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// Why one record of a send was not persisted by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub code: RDKafkaErrorCode,
    /// librdkafka could not tell whether the broker wrote the record (POSSIBLY_PERSISTED):
    /// resending it may produce a duplicate.
    pub possibly_persisted: bool,
    pub detail: Option<String>,
}

/// The outcome of one record of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered(Delivery),
    Failed(DeliveryFailure),
}

impl Outcome {
    /// A record that never left this process (so it certainly was not written).
    pub fn not_sent(code: RDKafkaErrorCode, detail: impl Into<String>) -> Self {
        Outcome::Failed(DeliveryFailure {
            code,
            possibly_persisted: false,
            detail: Some(detail.into()),
        })
    }
}
