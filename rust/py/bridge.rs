//! Rust futures awaited from asyncio.
//!
//! Built on pyo3-async-runtimes (its shared tokio runtime and its running-loop lookup), with
//! two things of our own:
//!
//! * Completions are batched. A finished future does not take the GIL on a runtime thread:
//!   it goes into a channel read by one completer thread, which takes the GIL once for every
//!   completion waiting and schedules one `call_soon_threadsafe` per event loop for all of
//!   them, so a burst of deliveries costs one GIL hand-over and one loop wake-up.
//! * Interpreter exit is safe. On Python < 3.14 a thread that re-takes the GIL while the
//!   interpreter finalizes is killed with `pthread_exit`, which aborts the process when it
//!   unwinds through Rust frames (a script that awaited a future and returned could die with
//!   SIGABRT). Every call into Python from our own threads goes through [`with_python`],
//!   which refuses once [`before_exit`] (an `atexit` hook) has run, and `before_exit` waits
//!   for the calls already inside Python to leave.

use std::future::Future;
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
use crate::kafka::error::{DeliveryFailure, Error};

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
/// Python; waits (GIL released, at most 2 s) for those inside to leave.
#[pyfunction]
pub fn before_exit(py: Python<'_>) {
    EXITING.store(true, SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while CALLS_IN_PYTHON.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
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
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    outcome: Result<Convert, Failure>,
}

/// The completer's inbox. Unbounded, but it never holds more than one entry per awaitable
/// that Python created and that finished, so the callers bound it.
static COMPLETER: OnceLock<Sender<Completion>> = OnceLock::new();

fn completer() -> &'static Sender<Completion> {
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

fn complete_forever(rx: Receiver<Completion>) {
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

fn deliver(py: Python<'_>, batch: Vec<Completion>) {
    // One `call_soon_threadsafe` per event loop (almost always a single one).
    let mut groups: Vec<(Py<PyAny>, Bound<'_, PyList>)> = Vec::new();
    for c in batch {
        let (ok, value) = match c.outcome {
            Ok(convert) => match convert(py) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            },
            Err(f) => (false, f.into_pyerr().into_value(py).into_any()),
        };
        let item = (c.future, ok, value);
        match groups
            .iter()
            .find(|(event_loop, _)| event_loop.is(&c.event_loop))
        {
            Some((_, list)) => {
                let _ = list.append(item);
            }
            None => {
                let list = PyList::empty(py);
                let _ = list.append(item);
                groups.push((c.event_loop, list));
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
fn resolve_on_loop(py: Python<'_>, items: Vec<(Bound<'_, PyAny>, bool, Bound<'_, PyAny>)>) {
    for (future, ok, value) in items {
        let settle = || -> PyResult<()> {
            if future.call_method0("done")?.is_truthy()? {
                return Ok(());
            }
            let method = if ok { "set_result" } else { "set_exception" };
            future.call_method1(method, (value,))?;
            Ok(())
        };
        if let Err(e) = settle() {
            e.write_unraisable(py, Some(&future));
        }
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

/// An asyncio future of the running loop that resolves to what `fut` returns, converted to
/// Python by the completer. Cancelling it drops `fut`.
pub fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
    let py_future = event_loop.call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    py_future.call_method1(
        "add_done_callback",
        (CancelOnDone {
            tx: Mutex::new(Some(cancel_tx)),
        },),
    )?;
    let future = py_future.clone().unbind();
    let event_loop = event_loop.unbind();
    let inbox = completer();
    pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        let outcome = tokio::select! {
            biased;
            // Only an explicit cancel counts: a dropped sender means the future is done.
            Ok(()) = cancel_rx => return,
            r = fut => r,
        };
        let outcome = outcome.map(|value| -> Convert { Box::new(move |py| value.into_py_any(py)) });
        let _ = inbox.send(Completion {
            event_loop,
            future,
            outcome,
        });
    });
    Ok(py_future)
}
