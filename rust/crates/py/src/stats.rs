//! Per-component call accounting kept in atomics: counting a call costs a relaxed add, and the
//! telemetry layer reads a snapshot at collection time instead of recording per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

const MODES: [&str; 3] = ["python", "shadow", "rust"];
const IMPLEMENTATIONS: [&str; 2] = ["python", "rust"];
const PYTHON: usize = 0;
const RUST: usize = 1;

#[pyclass(frozen, module = "litellm_rust._native")]
#[derive(Default)]
pub struct CallStats {
    /// The component's mode, so calls are attributed to the mode they ran under.
    mode: AtomicUsize,
    calls: [[AtomicU64; 2]; 3],
    fallbacks: AtomicU64,
    comparisons: AtomicU64,
    mismatches: AtomicU64,
    // Fallbacks are the rare path; a mutex there keeps the common path lock-free.
    fallback_reasons: Mutex<HashMap<String, u64>>,
}

impl CallStats {
    fn count(&self, implementation: usize) {
        self.calls[self.mode.load(Ordering::Relaxed)][implementation]
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn rust_call(&self) {
        self.count(RUST);
    }

    fn total(&self, implementation: usize) -> u64 {
        self.calls
            .iter()
            .map(|by_mode| by_mode[implementation].load(Ordering::Relaxed))
            .sum()
    }
}

#[pymethods]
impl CallStats {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// The mode subsequent calls are attributed to (`python`, `shadow` or `rust`).
    fn set_mode(&self, mode: &str) -> PyResult<()> {
        let index = MODES
            .iter()
            .position(|m| *m == mode)
            .ok_or_else(|| PyValueError::new_err(format!("unknown mode {mode:?}")))?;
        self.mode.store(index, Ordering::Relaxed);
        Ok(())
    }

    /// A call served by the Python implementation.
    fn python_call(&self) {
        self.count(PYTHON);
    }

    /// The Rust path declined or failed a call, and why. Whoever then runs Python counts that call
    /// (`python_call`), so a shadow comparison Rust declines is not counted as a second Python call.
    fn fallback(&self, reason: &str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        let mut reasons = self
            .fallback_reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *reasons.entry(reason.to_owned()).or_default() += 1;
    }

    /// A shadow comparison of the Rust result with Python's.
    fn comparison(&self, matched: bool) {
        self.comparisons.fetch_add(1, Ordering::Relaxed);
        if !matched {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls by `(mode, implementation)`, every pair present (zero included).
    fn calls(&self) -> HashMap<(&'static str, &'static str), u64> {
        let mut calls = HashMap::new();
        for (m, mode) in MODES.iter().enumerate() {
            for (i, implementation) in IMPLEMENTATIONS.iter().enumerate() {
                calls.insert(
                    (*mode, *implementation),
                    self.calls[m][i].load(Ordering::Relaxed),
                );
            }
        }
        calls
    }

    #[getter]
    fn rust_calls(&self) -> u64 {
        self.total(RUST)
    }

    #[getter]
    fn python_calls(&self) -> u64 {
        self.total(PYTHON)
    }

    #[getter]
    fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    #[getter]
    fn comparisons(&self) -> u64 {
        self.comparisons.load(Ordering::Relaxed)
    }

    #[getter]
    fn mismatches(&self) -> u64 {
        self.mismatches.load(Ordering::Relaxed)
    }

    #[getter]
    fn fallback_reasons(&self) -> HashMap<String, u64> {
        self.fallback_reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
