//! `RateLimiter` / `ManualClock`: the keyed limiter of the `rate_limiter` crate.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use rate_limiter::{Algorithm, Clock, KeyedLimiter, Limit, MonotonicClock, Quota, Unit};

use crate::faults::guarded;

const NANOS: f64 = 1e9;

/// A clock for tests and replays: time moves only through `advance` / `set`.
#[pyclass(frozen, module = "litellm_rust._native")]
#[derive(Default)]
pub struct ManualClock {
    clock: rate_limiter::ManualClock,
}

#[pymethods]
impl ManualClock {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn advance(&self, seconds: f64) {
        self.clock.advance((seconds * NANOS) as u64);
    }

    fn set(&self, seconds: f64) {
        self.clock.set((seconds * NANOS) as u64);
    }

    fn now(&self) -> f64 {
        self.clock.now() as f64 / NANOS
    }
}

fn unit(name: &str) -> PyResult<Unit> {
    match name {
        "requests" => Ok(Unit::Requests),
        "tokens" => Ok(Unit::Tokens),
        other => Err(PyValueError::new_err(format!("unit must be 'requests' or 'tokens', got {other:?}"))),
    }
}

#[pyclass(frozen, module = "litellm_rust._native")]
pub struct RateLimiter {
    inner: KeyedLimiter,
}

#[pymethods]
impl RateLimiter {
    /// `limits`: `(name, unit, amount, period_seconds)` with unit `requests` or `tokens`.
    #[new]
    #[pyo3(signature = (limits, *, algorithm, max_parallel_requests, idle_seconds, clock=None))]
    fn new(
        limits: Vec<(String, String, u64, f64)>,
        algorithm: &str,
        max_parallel_requests: Option<u64>,
        idle_seconds: f64,
        clock: Option<Py<ManualClock>>,
    ) -> PyResult<Self> {
        let algorithm = match algorithm {
            "fixed_window" => Algorithm::FixedWindow,
            "gcra" => Algorithm::Gcra,
            other => return Err(PyValueError::new_err(format!("algorithm must be 'fixed_window' or 'gcra', got {other:?}"))),
        };
        let limits = limits
            .into_iter()
            .map(|(name, unit_name, amount, period)| {
                if !(period.is_finite() && period > 0.0) {
                    return Err(PyValueError::new_err(format!("{name}: the period must be a positive number of seconds")));
                }
                Ok(Limit { unit: unit(&unit_name)?, quota: Quota { amount, period_ns: (period * NANOS) as u64 }, name })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let clock: Arc<dyn Clock> = match clock {
            Some(manual) => Arc::new(manual.get().clock.clone()),
            None => Arc::new(MonotonicClock::default()),
        };
        let inner = KeyedLimiter::new(limits, algorithm, max_parallel_requests, (idle_seconds.max(0.0) * NANOS) as u64, clock)
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
        Ok(RateLimiter { inner })
    }

    /// `(allowed, [(limit, remaining)] in limit order, the limit that refused or None, retry-after seconds)`.
    fn check(&self, key: &str, tokens: u64) -> PyResult<(bool, Vec<(String, u64)>, Option<String>, f64)> {
        guarded(|| {
            let decision = self.inner.check(key, tokens);
            Ok((decision.allowed, decision.remaining, decision.refused_by, decision.retry_after_ns as f64 / NANOS))
        })
    }

    #[pyo3(signature = (key, unit_name, amount, name=None))]
    fn record_usage(&self, key: &str, unit_name: &str, amount: i64, name: Option<&str>) -> PyResult<()> {
        let unit = unit(unit_name)?;
        guarded(|| {
            self.inner.record_usage(key, unit, amount, name);
            Ok(())
        })
    }

    fn acquire(&self, key: &str) -> PyResult<bool> {
        guarded(|| Ok(self.inner.acquire(key)))
    }

    fn release(&self, key: &str) -> PyResult<()> {
        guarded(|| {
            self.inner.release(key);
            Ok(())
        })
    }

    fn slots_in_use(&self, key: &str) -> u64 {
        self.inner.slots_in_use(key)
    }

    fn evict_idle(&self) -> usize {
        self.inner.evict_idle()
    }

    fn key_count(&self) -> usize {
        self.inner.key_count()
    }
}
