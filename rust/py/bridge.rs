//! Rust futures awaited from asyncio.
//!
//! Built on pyo3-async-runtimes (its shared tokio runtime and its running-loop lookup), with
//! two things of our own:
//!
//! * Completions never wait for the GIL. A finished future goes into its event loop's inbox
//!   (a Rust queue) and, if the inbox was empty, one byte is written to a socket the loop
//!   watches (`add_reader`); the loop's own thread then settles every completion waiting, in
//!   one callback. A thread that had to take the GIL instead would wait up to the interpreter's
//!   switch interval (5 ms by default) whenever the loop is busy running Python, and publish
//!   latency showed it (decision 22). Loops without `add_reader` fall back to a completer
//!   thread that takes the GIL once per burst and calls `call_soon_threadsafe`.
//! * Interpreter exit is safe. On Python < 3.14 a thread that re-takes the GIL while the
//!   interpreter finalizes is killed with `pthread_exit`, which aborts the process when it
//!   unwinds through Rust frames (a script that awaited a future and returned could die with
//!   SIGABRT). Every call into Python from our own threads goes through [`with_python`],
//!   which refuses once [`before_exit`] (an `atexit` hook) has run, and `before_exit` waits
//!   for the calls already inside Python to leave.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use pyo3::sync::PyOnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::IntoPyObjectExt;
use tokio::sync::oneshot;

use super::errors::delivery_failure_to_pyerr;
use crate::kafka::delivery::DeliveryFailure;
use crate::kafka::error::Error;

static CALLS_IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the GIL, unless the interpreter is exiting (then `None`).
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // Count first, then check: `before_exit` sets the flag, then waits for the count, so a
    // call either sees the flag or is waited for.
    CALLS_IN_PYTHON.fetch_add(1, SeqCst);
    let out = if EXITING.load(SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    CALLS_IN_PYTHON.fetch_sub(1, SeqCst);
    out
}

/// Registered with `atexit` by the Python package: from now on our threads stay out of
/// Python; waits (GIL released, at most `timeout` seconds, the close timeout) for those
/// inside to leave. A bound too large for a deadline (up to infinity) means no deadline.
#[pyfunction]
pub fn before_exit(py: Python<'_>, timeout: f64) -> PyResult<()> {
    if timeout.is_nan() || timeout < 0.0 {
        return Err(Error::InvalidArgument(format!(
            "timeout must be a non-negative number of seconds, not {timeout}"
        ))
        .into());
    }
    EXITING.store(true, SeqCst);
    let deadline = Duration::try_from_secs_f64(timeout)
        .ok()
        .and_then(|t| Instant::now().checked_add(t));
    py.detach(|| {
        while CALLS_IN_PYTHON.load(SeqCst) > 0 && deadline.is_none_or(|d| Instant::now() < d) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    Ok(())
}

/// Why an awaitable failed, kept as Rust data until the completer holds the GIL.
pub enum Failure {
    Error(Error),
    /// One record's delivery failed (keeps whether it may have been written).
    Delivery(DeliveryFailure),
    Python(PyErr),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Python(e)
    }
}

impl Failure {
    fn into_pyerr(self) -> PyErr {
        match self {
            Failure::Error(e) => e.into(),
            Failure::Delivery(f) => delivery_failure_to_pyerr(&f),
            Failure::Python(e) => e,
        }
    }
}

type Convert = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

struct Completion {
    future: Py<PyAny>,
    outcome: Result<Convert, Failure>,
}

impl Completion {
    /// The result (or exception) as Python sees it.
    fn into_python(self, py: Python<'_>) -> (Py<PyAny>, bool, Py<PyAny>) {
        let (ok, value) = match self.outcome {
            Ok(convert) => match convert(py) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            },
            Err(f) => (false, f.into_pyerr().into_value(py).into_any()),
        };
        (self.future, ok, value)
    }
}

/// Sets the result of `future` unless it is already done (cancelled by its caller).
fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, ok: bool, value: Py<PyAny>) {
    let set = || -> PyResult<()> {
        if future.call_method0("done")?.is_truthy()? {
            return Ok(());
        }
        let method = if ok { "set_result" } else { "set_exception" };
        future.call_method1(method, (value,))?;
        Ok(())
    };
    if let Err(e) = set() {
        e.write_unraisable(py, Some(future));
    }
}

/// Where completions for one event loop wait until that loop's thread settles them.
#[pyclass(frozen)]
struct LoopInbox {
    pending: Mutex<Vec<Completion>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl LoopInbox {
    fn new() -> std::io::Result<Self> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(LoopInbox {
            pending: Mutex::new(Vec::new()),
            wake_tx,
            wake_rx,
        })
    }

    /// Any thread, no GIL.
    fn push(&self, completion: Completion) {
        let was_empty = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.push(completion);
            pending.len() == 1
        };
        if was_empty {
            // A full socket means a wake-up is already pending: nothing is lost.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// The inbox of `event_loop`, created and registered with it on first use; `None` if the
    /// loop cannot watch a socket (or keep an attribute).
    fn of(event_loop: &Bound<'_, PyAny>) -> Option<Py<LoopInbox>> {
        const ATTR: &str = "_tradecore_inbox";
        if let Ok(inbox) = event_loop.getattr(ATTR) {
            return inbox.extract::<Py<LoopInbox>>().ok();
        }
        let py = event_loop.py();
        let inbox = Py::new(py, LoopInbox::new().ok()?).ok()?;
        let fd = inbox.get().wake_rx.as_raw_fd();
        let drain = inbox.bind(py).getattr("drain").ok()?;
        let registered = event_loop.setattr(ATTR, &inbox).is_ok()
            && event_loop.call_method1("add_reader", (fd, drain)).is_ok();
        if !registered {
            // Remember the refusal so that the next awaitable does not try again.
            let _ = event_loop.setattr(ATTR, py.None());
            return None;
        }
        Some(inbox)
    }
}

#[pymethods]
impl LoopInbox {
    /// Called by the event loop when the wake socket is readable: settles everything waiting.
    fn drain(&self, py: Python<'_>) {
        // Read the wake bytes first, then take the queue: a completion pushed in between is
        // taken now, one pushed after finds the queue empty and wakes the loop again.
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for completion in batch {
            let (future, ok, value) = completion.into_python(py);
            settle(py, future.bind(py), ok, value);
        }
    }
}

/// Where a finished future goes.
enum Destination {
    Inbox(Py<LoopInbox>),
    /// The fallback: the completer thread, which takes the GIL for the loop.
    Completer(Py<PyAny>),
}

impl Destination {
    fn send(self, completion: Completion) {
        match self {
            Destination::Inbox(inbox) => inbox.get().push(completion),
            Destination::Completer(event_loop) => {
                let _ = completer().send((event_loop, completion));
            }
        }
    }
}

/// The completer's inbox. Unbounded, but it never holds more than one entry per awaitable
/// that Python created and that finished, so the callers bound it.
static COMPLETER: OnceLock<Sender<(Py<PyAny>, Completion)>> = OnceLock::new();

fn completer() -> &'static Sender<(Py<PyAny>, Completion)> {
    COMPLETER.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("tradecore-completer".into())
            .spawn(move || complete_forever(rx))
            .expect("cannot start the completer thread");
        tx
    })
}

/// Most completions handed to one event loop in one wake-up.
const MAX_BATCH: usize = 4096;

fn complete_forever(rx: Receiver<(Py<PyAny>, Completion)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        // When the interpreter is exiting the results have nobody left to read them; they
        // are dropped (pyo3 defers the reference counting).
        let _ = with_python(|py| deliver(py, batch));
    }
}

fn deliver(py: Python<'_>, batch: Vec<(Py<PyAny>, Completion)>) {
    // One `call_soon_threadsafe` per event loop (almost always a single one).
    let mut groups: Vec<(Py<PyAny>, Bound<'_, PyList>)> = Vec::new();
    for (event_loop, c) in batch {
        let item = c.into_python(py);
        match groups.iter().find(|(l, _)| l.is(&event_loop)) {
            Some((_, list)) => {
                let _ = list.append(item);
            }
            None => {
                let list = PyList::empty(py);
                let _ = list.append(item);
                groups.push((event_loop, list));
            }
        }
    }
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let resolve = match RESOLVE.get_or_try_init(py, || {
        wrap_pyfunction!(resolve_on_loop, py).map(|f| f.into_any().unbind())
    }) {
        Ok(f) => f,
        Err(e) => return e.write_unraisable(py, None),
    };
    for (event_loop, list) in groups {
        // A closed loop raises RuntimeError: nobody awaits those futures any more.
        let _ = event_loop.call_method1(py, "call_soon_threadsafe", (resolve, list));
    }
}

/// Runs on the event loop's thread: settles each future unless it is already done
/// (cancelled by its caller meanwhile).
#[pyfunction]
fn resolve_on_loop(py: Python<'_>, items: Vec<(Bound<'_, PyAny>, bool, Py<PyAny>)>) {
    for (future, ok, value) in items {
        settle(py, &future, ok, value);
    }
}

/// The asyncio future's done-callback: when the caller cancels, the Rust future is dropped.
#[pyclass(frozen)]
struct CancelOnDone {
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
        }
        Ok(())
    }
}

/// A new asyncio future of the running loop, and where its completion must go.
fn new_future<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Destination)> {
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
    let py_future = event_loop.call_method0("create_future")?;
    let destination = match LoopInbox::of(&event_loop) {
        Some(inbox) => Destination::Inbox(inbox),
        None => Destination::Completer(event_loop.unbind()),
    };
    Ok((py_future, destination))
}

/// Settles one asyncio future from any thread, without the GIL. See [`settle_later`].
pub struct Settler {
    future: Py<PyAny>,
    destination: Destination,
}

impl Settler {
    /// Hands the outcome to the future's event loop; a future cancelled meanwhile is left
    /// as it is.
    pub fn settle<T>(self, outcome: Result<T, Failure>)
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let outcome = outcome.map(|value| -> Convert { Box::new(move |py| value.into_py_any(py)) });
        self.destination.send(Completion {
            future: self.future,
            outcome,
        });
    }
}

/// An asyncio future of the running loop that whoever finishes the work settles directly
/// (the thread of a librdkafka callback, say), with no tokio task in between: one thread
/// hop less between the broker's answer and the awaiting coroutine. Cancelling the future
/// only stops the waiting; the work goes on.
pub fn settle_later<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Settler)> {
    let (py_future, destination) = new_future(py)?;
    let future = py_future.clone().unbind();
    Ok((
        py_future,
        Settler {
            future,
            destination,
        },
    ))
}

/// An asyncio future of the running loop that resolves to what `fut` returns, converted to
/// Python by the completer. Cancelling it drops `fut`.
pub fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let (py_future, settler) = settle_later(py)?;
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    py_future.call_method1(
        "add_done_callback",
        (CancelOnDone {
            tx: Mutex::new(Some(cancel_tx)),
        },),
    )?;
    pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        let outcome = tokio::select! {
            biased;
            // Only an explicit cancel counts: a dropped sender means the future is done.
            Ok(()) = cancel_rx => return,
            r = fut => r,
        };
        settler.settle(outcome);
    });
    Ok(py_future)
}
