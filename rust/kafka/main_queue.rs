//! Serves the main queue of a client that nobody else polls: the admin client.
//!
//! rust-rdkafka routes a client's logs (`log.queue=true`) and errors to its main queue and
//! serves them when the client is polled. Producers and consumers are polled; the admin
//! client is not (its thread polls only the queue of admin results), so its log lines and
//! error reports (among them the authentication failure the gate waits for) stayed queued.
//! One thread per admin client waits on that queue and hands what arrives to the context.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka_sys as rdsys;

struct QueuePtr(NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are thread-safe.
unsafe impl Send for QueuePtr {}
unsafe impl Sync for QueuePtr {}

pub struct MainQueueServer {
    queue: Arc<QueuePtr>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MainQueueServer {
    /// Starts serving the main queue of `client`. Drop the server before the client.
    pub fn start<C: ClientContext + 'static>(client: &Client<C>) -> std::io::Result<Self> {
        let context = Arc::clone(client.context());
        // SAFETY: `client` is a live handle; the reference is released in `drop`.
        let queue = NonNull::new(unsafe { rdsys::rd_kafka_queue_get_main(client.native_ptr()) })
            .map(|q| Arc::new(QueuePtr(q)))
            .ok_or_else(|| std::io::Error::other("librdkafka gave no main queue"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("tradecore-admin-events".into())
                .spawn(move || serve(&queue, &stop, &*context))?
        };
        Ok(MainQueueServer {
            queue,
            stop,
            thread: Some(thread),
        })
    }
}

fn serve<C: ClientContext>(queue: &QueuePtr, stop: &AtomicBool, context: &C) {
    loop {
        // SAFETY: the queue reference lives until `drop`, which joins this thread first.
        // Waits without a timeout: `drop` wakes it with `rd_kafka_queue_yield`.
        let event = unsafe { rdsys::rd_kafka_queue_poll(queue.0.as_ptr(), -1) };
        if stop.load(Ordering::Acquire) {
            if !event.is_null() {
                // SAFETY: an event we own.
                unsafe { rdsys::rd_kafka_event_destroy(event) };
            }
            return;
        }
        if event.is_null() {
            continue;
        }
        // SAFETY: `event` is a live event we own until destroyed below; the strings it
        // hands out live as long as it does.
        unsafe {
            match rdsys::rd_kafka_event_type(event) {
                rdsys::RD_KAFKA_EVENT_LOG => {
                    let mut fac = std::ptr::null();
                    let mut text = std::ptr::null();
                    let mut level = 0;
                    if rdsys::rd_kafka_event_log(event, &mut fac, &mut text, &mut level) == 0 {
                        context.log(log_level(level), lossy(fac).trim(), lossy(text).trim());
                    }
                }
                rdsys::RD_KAFKA_EVENT_ERROR => {
                    let code = rdsys::rd_kafka_event_error(event);
                    let reason = lossy(rdsys::rd_kafka_event_error_string(event));
                    context.error(KafkaError::Global(code.into()), &reason);
                }
                _ => {}
            }
            rdsys::rd_kafka_event_destroy(event);
        }
    }
}

/// librdkafka's syslog level as the enum the contexts take.
fn log_level(level: i32) -> RDKafkaLogLevel {
    match level {
        0 => RDKafkaLogLevel::Emerg,
        1 => RDKafkaLogLevel::Alert,
        2 => RDKafkaLogLevel::Critical,
        3 => RDKafkaLogLevel::Error,
        4 => RDKafkaLogLevel::Warning,
        5 => RDKafkaLogLevel::Notice,
        6 => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    }
}

/// A C string from librdkafka as text (empty for NULL).
///
/// # Safety
/// `s` is NULL or a valid NUL-terminated string.
unsafe fn lossy(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::ffi::CStr::from_ptr(s) }
        .to_string_lossy()
        .into_owned()
}

impl Drop for MainQueueServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the queue reference is still held; yield makes the pending (or next) poll
        // return at once.
        unsafe { rdsys::rd_kafka_queue_yield(self.queue.0.as_ptr()) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // SAFETY: obtained from rd_kafka_queue_get_main, released exactly once, after the
        // thread that polled it was joined.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.0.as_ptr()) };
    }
}
