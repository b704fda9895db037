//! What the fuzz targets share: the main crate's modules under test, included by path (they
//! need pyo3, jiter and serde_json, not librdkafka), and the embedded interpreter that runs
//! the package's Python side of each path (`fuzz/harness.py`).

#![allow(dead_code)]

use pyo3::call::PyCallArgs;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

#[path = "../../rust/events.rs"]
pub mod events;

#[path = "../../rust/py/encode/mod.rs"]
pub mod encode;

#[path = "../../rust/wire/mod.rs"]
pub mod wire;

/// The repository root (this crate is `fuzz/` in it).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

static HARNESS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `harness.py` (read at run time: editing a check needs no rebuild), imported once per
/// process after putting it, the package source and the project's virtualenv on `sys.path`
/// (the interpreter is the one the crate was built for: `make fuzz` builds with the
/// virtualenv's Python).
pub fn harness(py: Python<'_>) -> &Bound<'_, PyModule> {
    HARNESS
        .get_or_init(py, || {
            let globals = PyDict::new(py);
            globals.set_item("repo", REPO).expect("globals");
            py.run(
                c"import glob, sys\n\
                  sys.path[:0] = [repo + '/fuzz', repo + '/python', \
                  *glob.glob(repo + '/.venv/lib/python3*/site-packages')]\n",
                Some(&globals),
                None,
            )
            .unwrap_or_else(|e| fail(py, "setting sys.path", &e));
            py.import("harness")
                .unwrap_or_else(|e| fail(py, "importing fuzz/harness.py", &e))
                .unbind()
        })
        .bind(py)
}

/// Runs `harness.<check>(*args)`; anything it raises is a finding: printed with its
/// traceback, then a panic, which libFuzzer reports as a crash with the input that caused it.
pub fn check<'py>(py: Python<'py>, name: &str, args: impl PyCallArgs<'py>) {
    let result = harness(py).getattr(name).and_then(|f| f.call1(args));
    if let Err(e) = result {
        fail(py, name, &e);
    }
}

pub fn fail(py: Python<'_>, what: &str, e: &PyErr) -> ! {
    e.display(py);
    panic!("{what}: {e}");
}
