//! What the routing picks take besides their candidates: one `PickContext` per routing component
//! (what stays the same from pick to pick) and, for the picks litellm feeds many inputs, one
//! request object per call.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use routing::latency_state::Selection;
use routing::samples::SumRule;

use crate::candidate_plans::{CandidatePlans, TpmCandidates};
use crate::counter_keys::{least_busy_keys, CounterKeys, LeastBusyKeys};
use crate::stats::CallStats;

/// What every pick of one routing component shares: its call stats, the counter keys it built,
/// the plans of the router's shared candidate records, Python's `random.randrange`, how the
/// running Python sums floats, and least-busy's reservation lifetime.
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct PickContext {
    pub(crate) stats: Py<CallStats>,
    pub(crate) keys: CounterKeys,
    plans: CandidatePlans,
    pub(crate) randrange: Py<PyAny>,
    pub(crate) rule: SumRule,
    /// litellm's `SELECTION_RESERVATION_TTL_SECONDS`.
    pub(crate) reservation_ttl: f64,
}

#[pymethods]
impl PickContext {
    /// `compensated_sum`: the running Python's `sum()` compensates floats (3.12+).
    #[new]
    #[pyo3(signature = (*, stats, randrange, compensated_sum, reservation_ttl))]
    fn new(
        py: Python<'_>,
        stats: Py<CallStats>,
        randrange: Py<PyAny>,
        compensated_sum: bool,
        reservation_ttl: f64,
    ) -> Self {
        Self {
            stats,
            keys: CounterKeys::new(py),
            plans: CandidatePlans::default(),
            randrange,
            rule: SumRule::of(compensated_sum),
            reservation_ttl,
        }
    }
}

impl PickContext {
    /// The least-busy counter keys of `list` in `group`, kept per list when `shared_records` (the
    /// router's shared records; a caller's own dicts may change between picks).
    pub(crate) fn least_busy_keys(
        &self,
        list: &Bound<'_, PyList>,
        group: &Bound<'_, PyString>,
        shared_records: bool,
    ) -> PyResult<Arc<LeastBusyKeys>> {
        if shared_records {
            return self.plans.least_busy(list, group, &self.keys);
        }
        Ok(Arc::new(LeastBusyKeys {
            group: group.to_str()?.to_owned(),
            keys: least_busy_keys(list, group, &self.keys)?,
        }))
    }

    /// The usage-based (v1) pick's reading of `list`, kept per list when `shared_records`.
    pub(crate) fn tpm_candidates(
        &self,
        list: &Bound<'_, PyList>,
        shared_records: bool,
    ) -> PyResult<Arc<TpmCandidates>> {
        if shared_records {
            return self.plans.lowest_tpm(list);
        }
        Ok(Arc::new(TpmCandidates::read(list)?))
    }
}

/// One latency-based-routing pick's inputs: the minute its counters are read at (`%Y-%m-%d-%H-%M`
/// in local time), whether the request streams, the router's `ttft_percentile` and
/// `lowest_latency_buffer`, whether the handler's placeholders are written (`commit`), and whether
/// the request's metadata takes `_latency_per_deployment` (`debug`).
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct LatencyRequest {
    pub(crate) minute: Py<PyString>,
    pub(crate) selection: Selection,
    pub(crate) buffer: f64,
    pub(crate) commit: bool,
    pub(crate) debug: bool,
}

#[pymethods]
impl LatencyRequest {
    #[new]
    #[pyo3(signature = (*, minute, stream, ttft_percentile, buffer, commit, debug))]
    fn new(
        minute: Py<PyString>,
        stream: bool,
        ttft_percentile: Option<f64>,
        buffer: f64,
        commit: bool,
        debug: bool,
    ) -> Self {
        Self {
            minute,
            selection: Selection {
                stream,
                ttft_percentile,
            },
            buffer,
            commit,
            debug,
        }
    }
}

/// One least-busy pick's inputs, as `LeastBusyLoggingHandler._select` reads them: the model group,
/// the router's in-memory cache holding the in-flight counts (`counts`), the handler's reservation
/// store (`reservations`), `now` on the handler's clock, and, with Redis, the in-flight counts every
/// worker shares (`shared_in_flight`, one per candidate).
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct LeastBusyRequest {
    pub(crate) group: Py<PyString>,
    pub(crate) counts: Py<PyAny>,
    pub(crate) reservations: Py<PyAny>,
    pub(crate) now: f64,
    pub(crate) shared_in_flight: Option<Vec<i64>>,
}

#[pymethods]
impl LeastBusyRequest {
    #[new]
    #[pyo3(signature = (*, group, counts, reservations, now, shared_in_flight))]
    fn new(
        group: Py<PyString>,
        counts: Py<PyAny>,
        reservations: Py<PyAny>,
        now: f64,
        shared_in_flight: Option<Vec<i64>>,
    ) -> Self {
        Self {
            group,
            counts,
            reservations,
            now,
            shared_in_flight,
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PickContext>()?;
    m.add_class::<LatencyRequest>()?;
    m.add_class::<LeastBusyRequest>()?;
    Ok(())
}
