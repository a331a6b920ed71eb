//! Per-component call accounting kept in atomics: counting a call costs a relaxed add, and the
//! telemetry layer reads a snapshot at collection time instead of recording per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;

#[pyclass(frozen, module = "litellm_rust._native")]
#[derive(Default)]
pub struct CallStats {
    rust_calls: AtomicU64,
    python_calls: AtomicU64,
    fallbacks: AtomicU64,
    // Fallbacks are the rare path; a mutex there keeps the common path lock-free.
    fallback_reasons: Mutex<HashMap<String, u64>>,
}

impl CallStats {
    pub fn rust_call(&self) {
        self.rust_calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[pymethods]
impl CallStats {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// A call served by the Python implementation by choice (mode `python`).
    fn python_call(&self) {
        self.python_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call the Rust path handed back to Python, and why.
    fn fallback(&self, reason: &str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.python_calls.fetch_add(1, Ordering::Relaxed);
        let mut reasons = self.fallback_reasons.lock().unwrap_or_else(|e| e.into_inner());
        *reasons.entry(reason.to_owned()).or_default() += 1;
    }

    #[getter]
    fn rust_calls(&self) -> u64 {
        self.rust_calls.load(Ordering::Relaxed)
    }

    #[getter]
    fn python_calls(&self) -> u64 {
        self.python_calls.load(Ordering::Relaxed)
    }

    #[getter]
    fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    #[getter]
    fn fallback_reasons(&self) -> HashMap<String, u64> {
        self.fallback_reasons.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
