//! `ModelRateLimits`: the usage store of litellm's router `enforce_model_rate_limits` check.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use rate_limiter::router_limits::{
    minute_name, minute_of_day, CheckOrder, DeploymentLimits, ModelRateLimits as Store, UsageKeys,
};
use rate_limiter::Algorithm;

use crate::errors::Unsupported;
use crate::faults::{guarded, result_skew};
use crate::stats::CallStats;

/// litellm reads a deployment's limits from the deployment, then its `litellm_params`, then its
/// `model_info` (the first that is not None).
struct Deployment<'py> {
    top: Bound<'py, PyDict>,
    params: Bound<'py, PyDict>,
    info: Bound<'py, PyDict>,
}

fn unsupported(reason: &str) -> PyErr {
    Unsupported::new_err(reason.to_owned())
}

impl<'py> Deployment<'py> {
    /// The deployment as litellm's check reads it without failing (on anything else it admits
    /// silently, which the Python path reproduces).
    fn read(deployment: &Bound<'py, PyAny>) -> PyResult<Self> {
        let top = deployment
            .cast::<PyDict>()
            .map_err(|_| unsupported("unusual_deployment"))?
            .clone();
        let py = deployment.py();
        let section = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyDict>> {
            match top.get_item(name)? {
                None => Ok(PyDict::new(top.py())),
                Some(value) => Ok(value
                    .cast_into::<PyDict>()
                    .map_err(|_| unsupported("unusual_deployment"))?),
            }
        };
        let (params, info) = (
            section(intern!(py, "litellm_params"))?,
            section(intern!(py, "model_info"))?,
        );
        Ok(Deployment { top, params, info })
    }

    fn first(&self, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        for section in [&self.top, &self.params, &self.info] {
            if let Some(value) = section.get_item(name)? {
                if !value.is_none() {
                    return Ok(Some(value));
                }
            }
        }
        Ok(None)
    }

    fn minute_limit(&self, name: &Bound<'py, PyString>) -> PyResult<Option<i64>> {
        limit(self.first(name)?)
    }

    fn daily_setting(&self, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(self.params.get_item(name)?.filter(|value| !value.is_none()))
    }

    /// `{id}:{model}` as litellm formats it (`None` for a missing one).
    fn usage_key(&self) -> PyResult<String> {
        let py = self.top.py();
        let text =
            |section: &Bound<'py, PyDict>, name: &Bound<'py, PyString>| -> PyResult<String> {
                match section.get_item(name)? {
                    Some(value) if !value.is_none() => Ok(value
                        .cast_into::<PyString>()
                        .map_err(|_| unsupported("unusual_deployment"))?
                        .to_str()?
                        .to_owned()),
                    _ => Ok("None".to_owned()),
                }
            };
        if let Some(group) = self.top.get_item(intern!(py, "model_name"))? {
            if !group.is_instance_of::<PyString>() {
                return Err(unsupported("unusual_deployment"));
            }
        }
        Ok(format!(
            "{}:{}",
            text(&self.info, intern!(py, "id"))?,
            text(&self.params, intern!(py, "model"))?
        ))
    }
}

/// A limit litellm compares as given: a plain int (not a bool, float or numeric string).
fn limit(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    match value {
        None => Ok(None),
        Some(value) if value.is_exact_instance_of::<PyInt>() => value
            .extract()
            .map(Some)
            .map_err(|_| unsupported("unusual_limits")),
        Some(_) => Err(unsupported("unusual_limits")),
    }
}

/// A refusal as the component builds litellm's error from it: the limit's name, the limit, the
/// usage, and a bucket's retry-after in whole seconds (`None`: litellm's own).
type Refused = (&'static str, i64, i64, Option<u64>);

#[pyclass(frozen, module = "litellm_rust._native")]
pub struct ModelRateLimits {
    store: Store,
    /// The component's accounting: each check Rust decides counts as a Rust call.
    stats: Py<CallStats>,
}

#[pymethods]
impl ModelRateLimits {
    #[new]
    fn new(stats: Py<CallStats>) -> Self {
        ModelRateLimits {
            store: Store::default(),
            stats,
        }
    }

    /// Check a deployment dict the way litellm's pre-call check does. `now`: the check's clock
    /// reading (a datetime), or None for UTC at `seconds`; `seconds`: the clock of the cache
    /// litellm would count in; `day_of(deployment, now, seconds)`: litellm's name for the day,
    /// called only for a deployment with daily settings; `gcra`: rpm and tpm from token buckets
    /// instead of litellm's minutes. Returns `None` when admitted, else `(limit name, limit,
    /// usage, retry-after)`, the retry-after in whole seconds from a bucket or `None` (litellm's
    /// own); raises `Unsupported` for what litellm would not check (itpm/otpm limits, odd limits
    /// or deployments).
    #[pyo3(signature = (deployment, now, is_async, seconds, day_of, gcra))]
    fn check(
        &self,
        deployment: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
        is_async: bool,
        seconds: f64,
        day_of: &Bound<'_, PyAny>,
        gcra: bool,
    ) -> PyResult<Option<Refused>> {
        let py = deployment.py();
        guarded(|| {
            let read = Deployment::read(deployment)?;
            if read.first(intern!(py, "itpm"))?.is_some()
                || read.first(intern!(py, "otpm"))?.is_some()
            {
                return Err(unsupported("io_token_limits"));
            }
            let tpd = read.daily_setting(intern!(py, "tpd"))?;
            let rpd = read.daily_setting(intern!(py, "rpd"))?;
            let limits = DeploymentLimits {
                tpm: read.minute_limit(intern!(py, "tpm"))?,
                rpm: read.minute_limit(intern!(py, "rpm"))?,
                tpd: limit(tpd.clone())?,
                rpd: limit(rpd.clone())?,
            };
            let daily = tpd.is_some()
                || rpd.is_some()
                || read
                    .daily_setting(intern!(py, "daily_reset_time"))?
                    .is_some();
            let day: Option<String> = if daily {
                Some(day_of.call1((deployment, now, seconds))?.extract()?)
            } else {
                None
            };
            let minute_of_day = if now.is_none() {
                minute_of_day(seconds)
            } else {
                now.getattr(intern!(py, "hour"))?.extract::<u32>()? * 60
                    + now.getattr(intern!(py, "minute"))?.extract::<u32>()?
            };
            let usage_key = read.usage_key()?;
            let minute = minute_name(minute_of_day);
            let keys = UsageKeys {
                deployment: &usage_key,
                minute: &minute,
                day: day.as_deref(),
            };
            let order = if is_async {
                CheckOrder::Async
            } else {
                CheckOrder::Sync
            };
            let algorithm = if gcra {
                Algorithm::Gcra
            } else {
                Algorithm::FixedWindow
            };
            let decided = self.store.check(&keys, limits, order, algorithm, seconds);
            self.stats.get().rust_call();
            Ok(match (decided, result_skew()) {
                (Err(refusal), skew) => Some((
                    refusal.kind.name(),
                    refusal.limit,
                    refusal.usage + skew,
                    refusal.retry_after_seconds(),
                )),
                (Ok(()), 0) => None,
                (Ok(()), _) => Some(("rpm", -1, -1, None)),
            })
        })
    }

    fn record_tokens(
        &self,
        deployment: &str,
        minute_of_day: u32,
        day: &str,
        tokens: i64,
        now: f64,
    ) -> PyResult<()> {
        guarded(|| {
            let minute = minute_name(minute_of_day);
            self.store.record_tokens(
                &UsageKeys {
                    deployment,
                    minute: &minute,
                    day: Some(day),
                },
                tokens,
                now,
            );
            Ok(())
        })
    }
}
