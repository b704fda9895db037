//! Threads and wake-ups that are not Kafka-specific: the one tokio runtime shared by every
//! client (pyo3-async-runtimes owns it), the shared timer thread, and one-shot wake-ups.

pub mod timers;
pub mod wake;

use tokio::task::JoinError;

use crate::kafka::error::{Error, Result};
use crate::kafka::secrets;

/// Runs blocking librdkafka work (flush, metadata, close) off the runtime's worker threads.
pub async fn spawn_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    pyo3_async_runtimes::tokio::get_runtime()
        .spawn_blocking(f)
        .await
        .map_err(join_error)?
}

/// A background task that did not return: a panic is a bug of the core (`Internal`, with the
/// panic's message so that the report says where); a cancelled task means the runtime shut
/// down before running it, as it does while the interpreter exits.
fn join_error(e: JoinError) -> Error {
    if !e.is_panic() {
        return Error::Closed("runtime");
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    // A panic message may quote any value, a setting among them: never a secret in an error.
    Error::Internal(format!(
        "background task panicked: {}",
        secrets::redact(message)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::error::ErrorKind;

    #[tokio::test]
    async fn a_panicking_background_task_is_an_internal_error_with_its_message() {
        let err = spawn_blocking(|| -> Result<()> { panic!("flush went wrong at step {}", 3) })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(!err.retriable());
        let text = err.to_string();
        assert!(text.contains("flush went wrong at step 3"), "{text}");
    }

    #[tokio::test]
    async fn a_background_task_that_returns_keeps_its_own_result_and_error() {
        assert_eq!(spawn_blocking(|| Ok(7)).await.unwrap(), 7);
        let err = spawn_blocking(|| -> Result<()> { Err(Error::InvalidArgument("bad".into())) })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[tokio::test]
    async fn a_panic_quoting_a_secret_does_not_carry_it() {
        crate::kafka::secrets::remember([("sasl.password", "pw-in-a-panic-message")]);
        let err = spawn_blocking(|| -> Result<()> {
            panic!("could not use sasl.password=pw-in-a-panic-message")
        })
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("pw-in-a-panic-message"), "{text}");
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
