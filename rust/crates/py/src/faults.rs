//! Fault injection for the degradation tests: makes the Rust side of every component fail the
//! way a real bug would (an error, a panic, or a wrong answer), so fallback, breaker, shadow
//! comparison and alerting are exercised against the real boundary rather than a Python mock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::RustPanic;

const NONE: u8 = 0;
const ERROR: u8 = 1;
const PANIC: u8 = 2;
const WRONG_RESULT: u8 = 3;

static FAULT: AtomicU8 = AtomicU8::new(NONE);

/// Set (`"error"`, `"panic"` or `"wrong_result"`) or clear (`None`) the injected fault.
#[pyfunction]
#[pyo3(signature = (kind))]
pub fn inject_fault(kind: Option<&str>) -> PyResult<()> {
    let value = match kind {
        None => NONE,
        Some("error") => ERROR,
        Some("panic") => PANIC,
        Some("wrong_result") => WRONG_RESULT,
        Some(other) => return Err(PyValueError::new_err(format!("unknown fault {other:?}"))),
    };
    FAULT.store(value, Ordering::Relaxed);
    Ok(())
}

/// What a component adds to its numeric result: 1 while `"wrong_result"` is injected, else 0.
pub fn result_skew() -> i64 {
    i64::from(FAULT.load(Ordering::Relaxed) == WRONG_RESULT)
}

/// Runs `work` with panics caught, raising `RustPanic` instead of unwinding into Python.
pub fn guarded<T>(work: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(|| {
        match FAULT.load(Ordering::Relaxed) {
            ERROR => return Err(PyRuntimeError::new_err("injected Rust fault")),
            PANIC => panic!("injected Rust panic"),
            _ => {}
        }
        work()
    })) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            Err(RustPanic::new_err(message))
        }
    }
}

/// Under an injected `wrong_result` fault, every chosen index moves to its neighbour.
pub(crate) fn skewed(indices: Vec<usize>, count: usize) -> Vec<usize> {
    let skew = result_skew() as usize;
    indices
        .into_iter()
        .map(|index| (index + skew) % count.max(1))
        .collect()
}
