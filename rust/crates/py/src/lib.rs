//! `litellm_rust._native`: the PyO3 glue over the pure-Rust component crates.
//!
//! The glue converts Python objects, releases the GIL for large inputs and turns every Rust
//! failure (including a panic) into an ordinary Python exception the adapter can catch and fall
//! back from. Component logic lives in the crates.

mod candidate_plans;
mod candidates;
mod counter_keys;
mod errors;
mod faults;
mod in_memory_cache;
mod latency_map;
mod latency_mirror;
mod numbers;
mod object_layout;
mod parallel_slots;
mod pick_inputs;
mod proxy_limits;
mod rate_limiter;
mod router_limits;
mod routing;
mod stats;
mod token_counter;
mod usage_mirror;

use pyo3::prelude::*;

use crate::errors::{RustPanic, Unsupported};

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Unsupported", m.py().get_type::<Unsupported>())?;
    m.add("RustPanic", m.py().get_type::<RustPanic>())?;
    m.add_class::<token_counter::TokenCounter>()?;
    m.add_class::<stats::CallStats>()?;
    m.add_class::<rate_limiter::RateLimiter>()?;
    m.add_class::<rate_limiter::ManualClock>()?;
    m.add_class::<rate_limiter::RedisRateLimiter>()?;
    m.add_class::<rate_limiter::RateLimitResult>()?;
    m.add_class::<router_limits::ModelRateLimits>()?;
    m.add_class::<proxy_limits::MemoryRateLimits>()?;
    m.add_function(wrap_pyfunction!(proxy_limits::text_within, m)?)?;
    m.add_class::<parallel_slots::ParallelSlots>()?;
    m.add_class::<parallel_slots::Slot>()?;
    m.add_function(wrap_pyfunction!(faults::inject_fault, m)?)?;
    m.add_function(wrap_pyfunction!(object_layout::dict_version, m)?)?;
    pick_inputs::register(m)?;
    routing::register(m)?;
    m.add_class::<usage_mirror::UsageMirror>()?;
    m.add_class::<latency_mirror::LatencyMirror>()?;
    Ok(())
}
