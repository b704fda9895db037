//! Threads and wake-ups that are not Kafka-specific: the one tokio runtime shared by every
//! client (pyo3-async-runtimes owns it), the shared timer thread, and one-shot wake-ups.

pub mod timers;
pub mod wake;

use crate::kafka::error::{Error, Result};

/// Runs blocking librdkafka work (flush, metadata, close) off the runtime's worker threads.
pub async fn spawn_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    pyo3_async_runtimes::tokio::get_runtime()
        .spawn_blocking(f)
        .await
        .map_err(|e| Error::InvalidArgument(format!("background task failed: {e}")))?
}
