//! `RateLimiter` / `ManualClock`: the keyed limiter of the `rate_limiter` crate.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use rate_limiter::{Algorithm, Clock, FailMode, KeyedLimiter, Limit, MonotonicClock, Outcome, Quota, RedisLimiter, Unit};

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
        let limits = parse_limits(limits)?;
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

/// The same limits shared through Redis (see the `rate_limiter::distributed` module).
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct RedisRateLimiter {
    inner: RedisLimiter,
}

fn parse_limits(limits: Vec<(String, String, u64, f64)>) -> PyResult<Vec<Limit>> {
    limits
        .into_iter()
        .map(|(name, unit_name, amount, period)| {
            if !(period.is_finite() && period > 0.0) {
                return Err(PyValueError::new_err(format!("{name}: the period must be a positive number of seconds")));
            }
            Ok(Limit { unit: unit(&unit_name)?, quota: Quota { amount, period_ns: (period * NANOS) as u64 }, name })
        })
        .collect()
}

#[pymethods]
impl RedisRateLimiter {
    #[new]
    #[pyo3(signature = (url, limits, *, prefix, timeout_seconds, fail_open))]
    fn new(url: &str, limits: Vec<(String, String, u64, f64)>, prefix: &str, timeout_seconds: f64, fail_open: bool) -> PyResult<Self> {
        if !(timeout_seconds.is_finite() && timeout_seconds > 0.0) {
            return Err(PyValueError::new_err("the Redis timeout must be a positive number of seconds"));
        }
        let fail_mode = if fail_open { FailMode::Open } else { FailMode::Closed };
        let inner = RedisLimiter::new(url, parse_limits(limits)?, prefix, Duration::from_secs_f64(timeout_seconds), fail_mode)
            .map_err(PyValueError::new_err)?;
        Ok(RedisRateLimiter { inner })
    }

    /// Like `RateLimiter.check`, plus the Redis error when the fail mode decided (else None).
    /// The GIL is released for the round trip.
    #[allow(clippy::type_complexity)]
    fn check(&self, py: Python<'_>, key: &str, tokens: u64) -> PyResult<(bool, Vec<(String, u64)>, Option<String>, f64, Option<String>)> {
        guarded(|| {
            Ok(match py.detach(|| self.inner.check(key, tokens)) {
                Outcome::Decided(decision) => {
                    (decision.allowed, decision.remaining, decision.refused_by, decision.retry_after_ns as f64 / NANOS, None)
                }
                Outcome::Unavailable { allowed, error } => (allowed, Vec::new(), None, 0.0, Some(error)),
            })
        })
    }

    /// Returns the Redis error if the usage could not be recorded.
    #[pyo3(signature = (key, unit_name, amount, name=None))]
    fn record_usage(&self, py: Python<'_>, key: &str, unit_name: &str, amount: i64, name: Option<&str>) -> PyResult<Option<String>> {
        let unit = unit(unit_name)?;
        guarded(|| Ok(py.detach(|| self.inner.record_usage(key, unit, amount, name)).err()))
    }

    #[getter]
    fn errors(&self) -> u64 {
        self.inner.errors()
    }
}
