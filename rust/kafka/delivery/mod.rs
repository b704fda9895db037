//! Delivery reports: the per-batch tracker librdkafka reports into, and the outcome types
//! it produces.

mod outcome;
mod tracker;

pub use outcome::{Delivery, DeliveryFailure, Outcome};
pub use tracker::{BatchTracker, DeliveryTag, ProducerCtx, ProducerStats};
