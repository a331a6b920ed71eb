//! `RateLimiter` / `ManualClock`: the keyed limiter of the `rate_limiter` crate.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use rate_limiter::{
    Algorithm, Clock, Decision, FailMode, KeyedLimiter, Limit, MonotonicClock, Outcome, Quota,
    RedisLimiter, Unit,
};

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

/// What a check decided.
#[pyclass(frozen, get_all, module = "litellm_rust._native")]
pub struct RateLimitResult {
    allowed: bool,
    /// What is left per limit after this decision, in limit order.
    remaining: Py<PyDict>,
    /// The first limit that refused, if any.
    refused_by: Option<Py<PyString>>,
    /// Seconds until the refused request could be admitted.
    retry_after: f64,
    /// Why Redis could not decide (the fail mode did), for limits shared through Redis.
    error: Option<String>,
}

impl RateLimitResult {
    /// `names`: the limits' names, built once per limiter so a check allocates no strings.
    fn decided(py: Python<'_>, decision: Decision, names: &[Py<PyString>]) -> PyResult<Self> {
        let remaining = PyDict::new(py);
        for (name, left) in names.iter().zip(decision.remaining) {
            remaining.set_item(name.bind(py), left)?;
        }
        Ok(RateLimitResult {
            allowed: decision.allowed,
            remaining: remaining.unbind(),
            refused_by: decision
                .refused_by
                .and_then(|index| names.get(index))
                .map(|name| name.clone_ref(py)),
            retry_after: decision.retry_after_ns as f64 / NANOS,
            error: None,
        })
    }
}

#[pymethods]
impl RateLimitResult {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let refused_by = match &self.refused_by {
            Some(name) => name.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        let error = match &self.error {
            Some(error) => PyString::new(py, error).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "RateLimitResult(allowed={}, remaining={}, refused_by={}, retry_after={}, error={})",
            if self.allowed { "True" } else { "False" },
            self.remaining.bind(py).repr()?,
            refused_by,
            self.retry_after,
            error
        ))
    }
}

fn unit(name: &str) -> PyResult<Unit> {
    match name {
        "requests" => Ok(Unit::Requests),
        "tokens" => Ok(Unit::Tokens),
        other => Err(PyValueError::new_err(format!(
            "unit must be 'requests' or 'tokens', got {other:?}"
        ))),
    }
}

#[pyclass(frozen, module = "litellm_rust._native")]
pub struct RateLimiter {
    inner: KeyedLimiter,
    names: Vec<Py<PyString>>,
}

fn names(py: Python<'_>, limits: &[Limit]) -> Vec<Py<PyString>> {
    limits
        .iter()
        .map(|limit| PyString::intern(py, &limit.name).unbind())
        .collect()
}

#[pymethods]
impl RateLimiter {
    /// `limits`: `(name, unit, amount, period_seconds)` with unit `requests` or `tokens`.
    #[new]
    #[pyo3(signature = (limits, *, algorithm, max_parallel_requests, idle_seconds, clock=None))]
    fn new(
        py: Python<'_>,
        limits: Vec<(String, String, u64, f64)>,
        algorithm: &str,
        max_parallel_requests: Option<u64>,
        idle_seconds: f64,
        clock: Option<Py<ManualClock>>,
    ) -> PyResult<Self> {
        let algorithm = match algorithm {
            "fixed_window" => Algorithm::FixedWindow,
            "gcra" => Algorithm::Gcra,
            other => {
                return Err(PyValueError::new_err(format!(
                    "algorithm must be 'fixed_window' or 'gcra', got {other:?}"
                )))
            }
        };
        let limits = parse_limits(limits)?;
        let clock: Arc<dyn Clock> = match clock {
            Some(manual) => Arc::new(manual.get().clock.clone()),
            None => Arc::new(MonotonicClock::default()),
        };
        let inner = KeyedLimiter::new(
            limits,
            algorithm,
            max_parallel_requests,
            (idle_seconds.max(0.0) * NANOS) as u64,
            clock,
        )
        .map_err(|error| PyValueError::new_err(error.to_string()))?;
        Ok(RateLimiter {
            names: names(py, inner.limits()),
            inner,
        })
    }

    /// Admit one request carrying `tokens` (charged to token limits), or refuse it.
    #[pyo3(signature = (key, tokens=0))]
    fn check(&self, py: Python<'_>, key: &str, tokens: u64) -> PyResult<RateLimitResult> {
        guarded(|| RateLimitResult::decided(py, self.inner.check(key, tokens), &self.names))
    }

    #[pyo3(signature = (key, unit_name, amount, name=None))]
    fn record_usage(
        &self,
        key: &str,
        unit_name: &str,
        amount: i64,
        name: Option<&str>,
    ) -> PyResult<()> {
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
    names: Vec<Py<PyString>>,
}

fn parse_limits(limits: Vec<(String, String, u64, f64)>) -> PyResult<Vec<Limit>> {
    limits
        .into_iter()
        .map(|(name, unit_name, amount, period)| {
            let quota = Quota::from_seconds(amount, period)
                .map_err(|error| PyValueError::new_err(format!("{name}: {error}")))?;
            Ok(Limit {
                unit: unit(&unit_name)?,
                quota,
                name,
            })
        })
        .collect()
}

#[pymethods]
impl RedisRateLimiter {
    #[new]
    #[pyo3(signature = (url, limits, *, prefix, timeout_seconds, fail_open))]
    fn new(
        py: Python<'_>,
        url: &str,
        limits: Vec<(String, String, u64, f64)>,
        prefix: &str,
        timeout_seconds: f64,
        fail_open: bool,
    ) -> PyResult<Self> {
        if !(timeout_seconds.is_finite() && timeout_seconds > 0.0) {
            return Err(PyValueError::new_err(
                "the Redis timeout must be a positive number of seconds",
            ));
        }
        let fail_mode = if fail_open {
            FailMode::Open
        } else {
            FailMode::Closed
        };
        let inner = RedisLimiter::new(
            url,
            parse_limits(limits)?,
            prefix,
            Duration::from_secs_f64(timeout_seconds),
            fail_mode,
        )
        .map_err(PyValueError::new_err)?;
        Ok(RedisRateLimiter {
            names: names(py, inner.limits()),
            inner,
        })
    }

    /// Like `RateLimiter.check`; when Redis cannot decide, the fail mode does and `error` says why.
    /// The GIL is released for the round trip.
    #[pyo3(signature = (key, tokens=0))]
    fn check(&self, py: Python<'_>, key: &str, tokens: u64) -> PyResult<RateLimitResult> {
        guarded(|| match py.detach(|| self.inner.check(key, tokens)) {
            Outcome::Decided(decision) => RateLimitResult::decided(py, decision, &self.names),
            Outcome::Unavailable { allowed, error } => Ok(RateLimitResult {
                allowed,
                remaining: PyDict::new(py).unbind(),
                refused_by: None,
                retry_after: 0.0,
                error: Some(error),
            }),
        })
    }

    /// Whether Redis was asked (no limit counting the unit: not asked), and the Redis error if
    /// the usage could not be recorded.
    #[pyo3(signature = (key, unit_name, amount, name=None))]
    fn record_usage(
        &self,
        py: Python<'_>,
        key: &str,
        unit_name: &str,
        amount: i64,
        name: Option<&str>,
    ) -> PyResult<(bool, Option<String>)> {
        let unit = unit(unit_name)?;
        guarded(|| {
            Ok(
                match py.detach(|| self.inner.record_usage(key, unit, amount, name)) {
                    Ok(asked) => (asked, None),
                    Err(error) => (true, Some(error)),
                },
            )
        })
    }

    #[getter]
    fn errors(&self) -> u64 {
        self.inner.errors()
    }

    #[getter]
    fn connections(&self) -> u64 {
        self.inner.connections()
    }
}
