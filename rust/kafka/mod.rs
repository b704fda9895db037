//! The Kafka transport in plain Rust (no Python types): used by the bindings in `crate::py`,
//! by `cargo test` against librdkafka's mock cluster, and by the Rust benchmarks.

pub mod admin;
pub mod auth_gate;
pub mod commit_gate;
pub mod consumer;
pub mod consumer_context;
pub mod context;
pub mod delivery;
pub mod error;
pub mod flusher;
pub mod main_queue;
pub mod offsets;
pub mod producer;
pub mod rebalancer;
pub mod secrets;
pub mod settings;

#[cfg(test)]
mod auth_mock_tests;
#[cfg(test)]
mod callback_mock_tests;
#[cfg(test)]
mod header_tests;
#[cfg(test)]
mod lookup_mock_tests;
#[cfg(test)]
mod mock_tests;
#[cfg(test)]
mod rebalance_mock_tests;

pub use error::{Error, ErrorKind, Result};
