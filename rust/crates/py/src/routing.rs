//! Routing picks: litellm's strategy state and candidate dicts read in place, the decision made by
//! the `routing` crate.
//!
//! Each function reads what one `litellm/router_strategy` handler reads (its map in the router's
//! in-memory cache, or its per-deployment counters, read with `InMemoryCache.get_cache`'s expiry)
//! and hands the deployment dicts it would choose from back to the adapter, which draws among them
//! with Python's `random` when the handler draws. Anything read that the handler would treat
//! differently from a plain number, dict or list raises `Unsupported` and litellm picks.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyString, PyTuple,
};

use routing::latency_state::{map_visits, LatencyEntry, MapVisits, Window};
use routing::samples::{Number, SumRule};
use routing::{CostCandidate, LatencyCandidate, Limits, UsageCandidate};

use crate::faults::{self, guarded};
use crate::stats::CallStats;
use crate::usage_mirror::{same_objects, UsageMirror, PLANS_KEPT};
use crate::Unsupported;

/// Integers beyond this are not exact in an f64; state holding them stays with litellm.
const EXACT_INT: i64 = 1 << 53;

pub(crate) fn decline(reason: &'static str) -> PyErr {
    Unsupported::new_err(reason)
}

/// A Python `int` or `float` (not `bool`, not a subclass), as litellm's arithmetic sees it.
pub(crate) fn number(value: &Bound<'_, PyAny>) -> Option<Number> {
    if let Ok(float) = value.cast_exact::<PyFloat>() {
        return Some(Number::Float(float.value()));
    }
    if value.is_exact_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .ok()
            .filter(|v| v.abs() <= EXACT_INT)
            .map(Number::Int);
    }
    None
}

fn state_number(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    number(value)
        .map(Number::as_f64)
        .ok_or_else(|| decline("unsupported_state"))
}

fn to_python<'py>(py: Python<'py>, value: Number) -> Bound<'py, PyAny> {
    match value {
        Number::Int(value) => value.into_pyobject(py).unwrap().into_any(),
        Number::Float(value) => PyFloat::new(py, value).into_any(),
    }
}

/// A candidate deployment dict: `d["model_info"]["id"]` as every handler reads it.
pub(crate) struct Deployment<'py> {
    pub(crate) dict: Bound<'py, PyDict>,
    info: Bound<'py, PyDict>,
    /// `d.get("litellm_params", {})`; `None` when absent (an empty dict to the handlers).
    params: Option<Bound<'py, PyDict>>,
    pub(crate) id: Bound<'py, PyAny>,
}

impl<'py> Deployment<'py> {
    pub(crate) fn read(value: Bound<'py, PyAny>) -> PyResult<Self> {
        let py = value.py();
        let dict = value
            .cast_into_exact::<PyDict>()
            .map_err(|_| decline("unsupported_deployment"))?;
        let info = dict
            .get_item(intern!(py, "model_info"))?
            .and_then(|info| info.cast_into_exact::<PyDict>().ok())
            .ok_or_else(|| decline("unsupported_deployment"))?;
        let id = info
            .get_item(intern!(py, "id"))?
            .ok_or_else(|| decline("unsupported_deployment"))?;
        let params = match dict.get_item(intern!(py, "litellm_params"))? {
            None => None,
            Some(params) => Some(
                params
                    .cast_into_exact::<PyDict>()
                    .map_err(|_| decline("unsupported_deployment"))?,
            ),
        };
        Ok(Self {
            dict,
            info,
            params,
            id,
        })
    }

    pub(crate) fn id_str(&self) -> PyResult<&str> {
        self.id
            .cast_exact::<PyString>()
            .map_err(|_| decline("unsupported_deployment"))?
            .to_str()
    }

    fn param(&self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.params {
            Some(params) => params.get_item(key),
            None => Ok(None),
        }
    }

    /// One limit from `d[key]`, then `litellm_params[key]`, then `model_info[key]`, else infinity.
    /// `zero_is_unset`: the latency and cost handlers chain with `or` (0 means no limit); the
    /// usage-v2 handler chains with `is None` (0 is a limit).
    fn limit(&self, key: &Bound<'py, PyString>, zero_is_unset: bool) -> PyResult<f64> {
        for found in [
            self.dict.get_item(key)?,
            self.param(key)?,
            self.info.get_item(key)?,
        ] {
            let Some(value) = found.filter(|value| !value.is_none()) else {
                continue;
            };
            let limit = number(&value)
                .ok_or_else(|| decline("unsupported_deployment"))?
                .as_f64();
            if !(zero_is_unset && limit == 0.0) {
                return Ok(limit);
            }
        }
        Ok(f64::INFINITY)
    }

    pub(crate) fn limits(&self, zero_is_unset: bool) -> PyResult<Limits> {
        let py = self.dict.py();
        Ok(Limits {
            tpm: self.limit(intern!(py, "tpm"), zero_is_unset)?,
            rpm: self.limit(intern!(py, "rpm"), zero_is_unset)?,
        })
    }
}

pub(crate) fn deployments<'py>(list: &Bound<'py, PyList>) -> PyResult<Vec<Deployment<'py>>> {
    list.iter().map(Deployment::read).collect()
}

/// `InMemoryCache.get_cache` read in place at one instant: an expired key is removed through the
/// cache's own `_remove_key`, and a string value goes through the cache's own `get_cache` (which
/// JSON-decodes it).
struct MemoryCache<'py> {
    cache: Bound<'py, PyAny>,
    entries: Bound<'py, PyDict>,
    expiries: Bound<'py, PyDict>,
    now: f64,
}

impl<'py> MemoryCache<'py> {
    fn new(cache: &Bound<'py, PyAny>, now: f64) -> PyResult<Self> {
        let py = cache.py();
        let dict = |name| -> PyResult<Bound<'py, PyDict>> {
            cache
                .getattr(name)?
                .cast_into_exact::<PyDict>()
                .map_err(|_| decline("unsupported_cache"))
        };
        Ok(Self {
            cache: cache.clone(),
            entries: dict(intern!(py, "cache_dict"))?,
            expiries: dict(intern!(py, "ttl_dict"))?,
            now,
        })
    }

    fn get(&self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = key.py();
        let Some(value) = self.entries.get_item(key)? else {
            return Ok(None);
        };
        if let Some(expiry) = self.expiries.get_item(key)? {
            if self.now > state_number(&expiry)? {
                self.cache
                    .call_method1(intern!(py, "_remove_key"), (key,))?;
                return Ok(None);
            }
        }
        if value.is_instance_of::<PyString>()
            || value.is_instance_of::<PyBytes>()
            || value.is_instance_of::<PyByteArray>()
        {
            return Ok(
                Some(self.cache.call_method1(intern!(py, "get_cache"), (key,))?)
                    .filter(|v| !v.is_none()),
            );
        }
        Ok(Some(value).filter(|v| !v.is_none()))
    }
}

/// Past this many deployments, a key memo starts afresh (ids of removed deployments go with it).
const KEYS_KEPT: usize = 16_384;

/// The counter keys the least-busy and usage-v2 picks read, built once per deployment id (and
/// model group, or model and minute) instead of formatted on every pick: kept Python strings also
/// keep their hash, so every cache lookup with them skips hashing.
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct CounterKeys {
    /// id -> (group, `{group}_request_count:{id}`, `least_busy_reservations:{id}`)
    least_busy: Py<PyDict>,
    /// id -> (model, minute, `{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`)
    usage: Py<PyDict>,
}

#[pymethods]
impl CounterKeys {
    #[new]
    fn new(py: Python<'_>) -> Self {
        Self {
            least_busy: PyDict::new(py).unbind(),
            usage: PyDict::new(py).unbind(),
        }
    }
}

/// The memo's entry for `id` when its leading parts are still `parts`; the remaining items are keys.
fn remembered<'py>(
    memo: &Bound<'py, PyDict>,
    id: &Bound<'py, PyString>,
    parts: &[&str],
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let Some(entry) = memo.get_item(id)? else {
        return Ok(None);
    };
    let entry = entry.cast_into_exact::<PyTuple>()?;
    for (index, part) in parts.iter().enumerate() {
        if entry.get_item(index)?.cast_exact::<PyString>()?.to_str()? != *part {
            return Ok(None);
        }
    }
    Ok(Some(entry))
}

fn remember<'py>(
    memo: &Bound<'py, PyDict>,
    id: &Bound<'py, PyString>,
    entry: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyTuple>> {
    if memo.len() >= KEYS_KEPT {
        memo.clear();
    }
    memo.set_item(id, &entry)?;
    Ok(entry)
}

/// Two counter keys of one deployment.
pub(crate) type KeyPair<'py> = (Bound<'py, PyString>, Bound<'py, PyString>);

fn key_pair<'py>(
    entry: &Bound<'py, PyTuple>,
    first: usize,
) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
    Ok((
        entry.get_item(first)?.cast_into_exact::<PyString>()?,
        entry.get_item(first + 1)?.cast_into_exact::<PyString>()?,
    ))
}

impl CounterKeys {
    /// (`{group}_request_count:{id}`, `least_busy_reservations:{id}`)
    fn least_busy<'py>(
        &self,
        group: &Bound<'py, PyString>,
        id: &Bound<'py, PyString>,
    ) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
        let py = id.py();
        let memo = self.least_busy.bind(py);
        let group_text = group.to_str()?;
        let entry = match remembered(memo, id, &[group_text])? {
            Some(entry) => entry,
            None => {
                let id_text = id.to_str()?;
                let count_key = PyString::new(py, &format!("{group_text}_request_count:{id_text}"));
                let reservation_key =
                    PyString::new(py, &format!("least_busy_reservations:{id_text}"));
                remember(
                    memo,
                    id,
                    PyTuple::new(
                        py,
                        [group.as_any(), count_key.as_any(), reservation_key.as_any()],
                    )?,
                )?
            }
        };
        key_pair(&entry, 1)
    }

    /// (`{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`)
    fn usage<'py>(
        &self,
        id: &Bound<'py, PyString>,
        model: &Bound<'py, PyString>,
        minute: &str,
    ) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
        let py = id.py();
        let memo = self.usage.bind(py);
        let model_text = model.to_str()?;
        let entry = match remembered(memo, id, &[model_text, minute])? {
            Some(entry) => entry,
            None => {
                let id_text = id.to_str()?;
                let tpm_key = PyString::new(py, &format!("{id_text}:{model_text}:tpm:{minute}"));
                let rpm_key = PyString::new(py, &format!("{id_text}:{model_text}:rpm:{minute}"));
                let minute = PyString::new(py, minute);
                remember(
                    memo,
                    id,
                    PyTuple::new(
                        py,
                        [
                            model.as_any(),
                            minute.as_any(),
                            tpm_key.as_any(),
                            rpm_key.as_any(),
                        ],
                    )?,
                )?
            }
        };
        key_pair(&entry, 2)
    }
}

/// A handler's `{id: {...}}` map (latency, cost) and the candidates it visits: the map's entries
/// that are candidates, in map order, then a placeholder for each candidate the map lacks. Each
/// visit names the last candidate with that id, as the handlers' lookup loops do.
struct Visits<'py> {
    /// (candidate index, the map entry; `None` for a placeholder)
    visits: Vec<(usize, Option<Bound<'py, PyDict>>)>,
    /// Candidate indices (first of each id) whose ids the map lacks, in candidate order.
    missing: Vec<usize>,
}

fn visits<'py>(
    candidates: &[Deployment<'py>],
    map: Option<&Bound<'py, PyDict>>,
) -> PyResult<Visits<'py>> {
    let ids = candidates
        .iter()
        .map(Deployment::id_str)
        .collect::<PyResult<Vec<&str>>>()?;
    let items = match map {
        Some(map) => map
            .iter()
            .map(|(key, entry)| {
                Ok((
                    key.cast_into_exact::<PyString>()
                        .map_err(|_| decline("unsupported_state"))?,
                    entry,
                ))
            })
            .collect::<PyResult<Vec<_>>>()?,
        None => Vec::new(),
    };
    let keys = items
        .iter()
        .map(|(key, _)| key.to_str())
        .collect::<PyResult<Vec<&str>>>()?;
    let MapVisits { visits, missing } = map_visits(&ids, keys);
    let visits = visits
        .into_iter()
        .map(|(index, position)| {
            let entry = match position {
                Some(position) => Some(
                    items[position]
                        .1
                        .clone()
                        .cast_into_exact::<PyDict>()
                        .map_err(|_| decline("unsupported_state"))?,
                ),
                None => None,
            };
            Ok((index, entry))
        })
        .collect::<PyResult<_>>()?;
    Ok(Visits { visits, missing })
}

/// `entry.get(minute, {}).get(key, 0)`: this minute's tpm or rpm from a latency or cost map entry.
fn minute_counter(
    entry: Option<&Bound<'_, PyDict>>,
    minute: &Bound<'_, PyString>,
    key: &Bound<'_, PyString>,
) -> PyResult<f64> {
    let Some(entry) = entry else { return Ok(0.0) };
    counter(minute_counters(entry, minute)?.as_ref(), key)
}

/// `entry.get(minute)`: this minute's counters dict of a latency or cost map entry.
fn minute_counters<'py>(
    entry: &Bound<'py, PyDict>,
    minute: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(counters) = entry.get_item(minute)? else {
        return Ok(None);
    };
    counters
        .cast_into_exact::<PyDict>()
        .map(Some)
        .map_err(|_| decline("unsupported_state"))
}

/// `counters.get(key, 0)`, 0 without counters.
fn counter(counters: Option<&Bound<'_, PyDict>>, key: &Bound<'_, PyString>) -> PyResult<f64> {
    let Some(counters) = counters else {
        return Ok(0.0);
    };
    counters
        .get_item(key)?
        .map_or(Ok(0.0), |value| state_number(&value))
}

/// `entry.get(key)` as a sample list (`None`: absent).
fn sample_list<'py>(
    entry: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let Some(list) = entry.get_item(key)? else {
        return Ok(None);
    };
    list.cast_into_exact::<PyList>()
        .map(Some)
        .map_err(|_| decline("unsupported_state"))
}

/// A sample list's samples (`[]` for none).
fn samples_of(list: Option<&Bound<'_, PyList>>) -> PyResult<Vec<Number>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|sample| number(&sample).ok_or_else(|| decline("unsupported_state")))
        .collect()
}

/// The objects of one latency map entry its pick reads: the latency and TTFT sample lists and
/// this minute's counters (each `None` when absent).
pub(crate) struct LatencyParts<'py> {
    pub(crate) latency: Option<Bound<'py, PyList>>,
    pub(crate) ttft: Option<Bound<'py, PyList>>,
    pub(crate) counters: Option<Bound<'py, PyDict>>,
}

impl<'py> LatencyParts<'py> {
    pub(crate) fn of(entry: &Bound<'py, PyDict>, minute: &Bound<'py, PyString>) -> PyResult<Self> {
        let py = entry.py();
        Ok(Self {
            latency: sample_list(entry, intern!(py, "latency_normalized"))?,
            ttft: sample_list(entry, intern!(py, "time_to_first_token_seconds"))?,
            counters: minute_counters(entry, minute)?,
        })
    }

    /// The entry as the pick compares it.
    pub(crate) fn entry(&self, py: Python<'py>, rule: SumRule) -> PyResult<LatencyEntry> {
        Ok(LatencyEntry::new(
            Window::new(&samples_of(self.latency.as_ref())?, rule),
            Window::new(&samples_of(self.ttft.as_ref())?, rule),
            counter(self.counters.as_ref(), intern!(py, "tpm"))?,
            counter(self.counters.as_ref(), intern!(py, "rpm"))?,
        ))
    }
}

/// The request's input tokens from litellm's own counter, only when some candidate's tpm limit
/// makes them matter (litellm counts on every pick; the count decides nothing otherwise).
pub(crate) fn input_tokens(needed: bool, count: &Bound<'_, PyAny>) -> PyResult<f64> {
    if !needed {
        return Ok(0.0);
    }
    state_number(&count.call0()?)
}

/// A placeholder's per-minute counters, `{minute: {"tpm": 0, "rpm": 0}}`'s inner dict.
fn zero_counters<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let counters = PyDict::new(py);
    counters.set_item(intern!(py, "tpm"), 0)?;
    counters.set_item(intern!(py, "rpm"), 0)?;
    Ok(counters)
}

/// Under an injected `wrong_result` fault, every chosen index moves to its neighbour.
pub(crate) fn skewed(indices: Vec<usize>, count: usize) -> Vec<usize> {
    let skew = faults::result_skew() as usize;
    indices
        .into_iter()
        .map(|index| (index + skew) % count.max(1))
        .collect()
}

/// `LowestLatencyLoggingHandler._get_available_deployments` up to its draw: the deployments it
/// draws from uniformly (empty: it returns `None`) and, when `debug`, the
/// `_latency_per_deployment` dict it leaves in the request's metadata.
///
/// `map` is the cached `{group}_map` when it is a non-empty dict (the handler's `or {}` gives a
/// fresh dict otherwise, which nothing keeps). With `commit`, the handler's placeholders
/// (`{"latency_normalized": [0], minute: {"tpm": 0, "rpm": 0}}`) are written into it.
#[pyfunction]
#[pyo3(signature = (deployments_list, map, minute, stream, ttft_percentile, buffer, compensated_sum, count_input_tokens, commit, debug, randrange, stats))]
#[allow(clippy::too_many_arguments)]
pub fn latency_choices<'py>(
    py: Python<'py>,
    deployments_list: &Bound<'py, PyList>,
    map: Option<&Bound<'py, PyDict>>,
    minute: &Bound<'py, PyString>,
    stream: bool,
    ttft_percentile: Option<f64>,
    buffer: f64,
    compensated_sum: bool,
    count_input_tokens: &Bound<'py, PyAny>,
    commit: bool,
    debug: bool,
    randrange: &Bound<'py, PyAny>,
    stats: &Bound<'py, CallStats>,
) -> PyResult<(Bound<'py, PyList>, Option<Bound<'py, PyDict>>)> {
    guarded(|| {
        let rule = if compensated_sum {
            SumRule::Compensated
        } else {
            SumRule::Sequential
        };
        let candidates = deployments(deployments_list)?;
        let Visits { visits, missing } = visits(&candidates, map)?;
        // Built at the first candidate the map lacks, if any.
        let placeholder = OnceCell::new();
        let mut latencies = Vec::with_capacity(visits.len());
        let mut scored = Vec::with_capacity(visits.len());
        for (index, entry) in &visits {
            let read = match entry {
                Some(entry) => Some(LatencyParts::of(entry, minute)?.entry(py, rule)?),
                None => None,
            };
            let entry = read
                .as_ref()
                .unwrap_or_else(|| placeholder.get_or_init(|| LatencyEntry::placeholder(rule)));
            let latency = entry
                .selected(stream, ttft_percentile)
                .ok_or_else(|| decline("unsupported_state"))?;
            latencies.push(latency);
            scored.push(LatencyCandidate {
                latency: latency.as_f64(),
                tpm: entry.tpm,
                rpm: entry.rpm,
                limits: candidates[*index].limits(true)?,
            });
        }
        let tokens = input_tokens(
            scored.iter().any(|c| c.limits.counts_tokens()),
            count_input_tokens,
        )?;
        let chosen = skewed(
            routing::latency_choices(&scored, tokens, buffer),
            visits.len(),
        );
        let debug_map = if debug && !chosen.is_empty() {
            let groups = api_base_groups(&candidates, visits.iter().map(|(index, _)| *index))?;
            Some(latency_per_deployment(
                py,
                groups
                    .iter()
                    .map(|(api_base, members)| (api_base, members.as_slice())),
                &latencies,
                randrange,
            )?)
        } else {
            None
        };
        if let (true, Some(map)) = (commit, map) {
            write_placeholders(
                map,
                missing.iter().map(|&index| &candidates[index].id),
                minute,
            )?;
        }
        let picks = PyList::new(
            py,
            chosen
                .iter()
                .map(|&visit| &candidates[visits[visit].0].dict),
        )?;
        stats.get().rust_call();
        Ok((picks, debug_map))
    })
}

/// The handler's latency placeholders, `{"latency_normalized": [0], minute: {"tpm": 0, "rpm": 0}}`,
/// written into its map for the ids it lacked.
pub(crate) fn write_placeholders<'a, 'py: 'a>(
    map: &Bound<'py, PyDict>,
    ids: impl IntoIterator<Item = &'a Bound<'py, PyAny>>,
    minute: &Bound<'py, PyString>,
) -> PyResult<()> {
    let py = map.py();
    for id in ids {
        let placeholder = PyDict::new(py);
        placeholder.set_item(intern!(py, "latency_normalized"), PyList::new(py, [0])?)?;
        placeholder.set_item(minute, zero_counters(py)?)?;
        map.set_item(id, placeholder)?;
    }
    Ok(())
}

/// The visits (given as their candidates' indices) grouped by the api_base
/// `_latency_per_deployment` keys them under (a missing api_base is `""`, a `None` one is
/// skipped), in first-seen order: each group's visit positions.
pub(crate) fn api_base_groups<'py>(
    candidates: &[Deployment<'py>],
    visited: impl Iterator<Item = usize>,
) -> PyResult<Vec<(Bound<'py, PyString>, Vec<usize>)>> {
    let mut groups: Vec<(Bound<'py, PyString>, Vec<usize>)> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    for (visit, index) in visited.enumerate() {
        let candidate = &candidates[index];
        let api_base = match candidate.param(intern!(candidate.dict.py(), "api_base"))? {
            None => PyString::new(candidate.dict.py(), ""),
            Some(value) if value.is_none() => continue,
            Some(value) => value
                .cast_into_exact::<PyString>()
                .map_err(|_| decline("unsupported_deployment"))?,
        };
        let slot = *slots
            .entry(api_base.to_str()?.to_owned())
            .or_insert_with(|| {
                groups.push((api_base, Vec::new()));
                groups.len() - 1
            });
        groups[slot].1.push(visit);
    }
    Ok(groups)
}

/// `_latency_per_deployment`: api_base -> latency for every visited deployment, from the visits'
/// `api_base_groups`. litellm visits in a random order, so where several deployments share an
/// api_base the one it keeps is uniformly random: drawn here with `randrange`.
pub(crate) fn latency_per_deployment<'a, 'py: 'a>(
    py: Python<'py>,
    groups: impl Iterator<Item = (&'a Bound<'py, PyString>, &'a [usize])>,
    latencies: &[Number],
    randrange: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let per_deployment = PyDict::new(py);
    for (api_base, members) in groups {
        let kept = if members.len() == 1 {
            0
        } else {
            randrange.call1((members.len(),))?.extract::<usize>()?
        };
        per_deployment.set_item(api_base, to_python(py, latencies[members[kept]]))?;
    }
    Ok(per_deployment)
}

/// `LowestCostLoggingHandler.async_get_available_deployments`: the cheapest admitted deployment,
/// the first of equals in map order, or `None`. `rates(deployment)` is litellm's
/// `_deployment_cost_map_rates`; with `commit` the handler's placeholders
/// (`{minute: {"tpm": 0, "rpm": 0}}`) are written into `map` (see `latency_choices`).
#[pyfunction]
#[pyo3(signature = (deployments_list, map, minute, rates, count_input_tokens, commit, stats))]
#[allow(clippy::too_many_arguments)]
pub fn cheapest<'py>(
    py: Python<'py>,
    deployments_list: &Bound<'py, PyList>,
    map: Option<&Bound<'py, PyDict>>,
    minute: &Bound<'py, PyString>,
    rates: &Bound<'py, PyAny>,
    count_input_tokens: &Bound<'py, PyAny>,
    commit: bool,
    stats: &Bound<'py, CallStats>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    guarded(|| {
        let candidates = deployments(deployments_list)?;
        let Visits { visits, missing } = visits(&candidates, map)?;
        let (tpm_key, rpm_key) = (intern!(py, "tpm"), intern!(py, "rpm"));
        let mut scored = Vec::with_capacity(visits.len());
        for (index, entry) in &visits {
            let deployment = &candidates[*index];
            scored.push(CostCandidate {
                cost: cost_of(deployment, rates)?,
                tpm: minute_counter(entry.as_ref(), minute, tpm_key)?,
                rpm: minute_counter(entry.as_ref(), minute, rpm_key)?,
                limits: deployment.limits(true)?,
            });
        }
        let tokens = input_tokens(
            scored.iter().any(|c| c.limits.counts_tokens()),
            count_input_tokens,
        )?;
        let chosen = skewed(
            routing::lowest_cost(&scored, tokens).into_iter().collect(),
            visits.len(),
        );
        if let (true, Some(map)) = (commit, map) {
            for &index in &missing {
                let placeholder = PyDict::new(py);
                placeholder.set_item(minute, zero_counters(py)?)?;
                map.set_item(&candidates[index].id, placeholder)?;
            }
        }
        stats.get().rust_call();
        Ok(chosen
            .first()
            .map(|&visit| candidates[visits[visit].0].dict.clone()))
    })
}

/// Input plus output price per token: the deployment's own `litellm_params` prices when truthy,
/// else the cost map's, else 5.0 each (the handler's default for an unmapped model).
fn cost_of<'py>(deployment: &Deployment<'py>, rates: &Bound<'py, PyAny>) -> PyResult<f64> {
    let py = rates.py();
    let own = |key| -> PyResult<Option<f64>> {
        match deployment.param(key)? {
            Some(value) if value.is_truthy()? => Ok(Some(
                number(&value)
                    .ok_or_else(|| decline("unsupported_deployment"))?
                    .as_f64(),
            )),
            _ => Ok(None),
        }
    };
    let (own_input, own_output) = (
        own(intern!(py, "input_cost_per_token"))?,
        own(intern!(py, "output_cost_per_token"))?,
    );
    let (map_input, map_output) = if own_input.is_some() && own_output.is_some() {
        (None, None)
    } else {
        rates
            .call1((&deployment.dict,))?
            .extract::<(Option<f64>, Option<f64>)>()?
    };
    let cost = own_input.or(map_input).unwrap_or(5.0) + own_output.or(map_output).unwrap_or(5.0);
    // Python's sort with a NaN key depends on the order it compares in; leave that to litellm.
    if cost.is_nan() {
        return Err(decline("unsupported_deployment"));
    }
    Ok(cost)
}

/// Each candidate's id and (`{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`), the keys
/// `LowestTPMLoggingHandler_v2.usage_counter_keys` builds.
pub(crate) fn usage_keys<'a, 'py>(
    candidates: &'a [Deployment<'py>],
    minute: &str,
    memo: &CounterKeys,
) -> PyResult<(Vec<&'a str>, Vec<KeyPair<'py>>)> {
    let mut ids = Vec::with_capacity(candidates.len());
    let mut keys = Vec::with_capacity(candidates.len());
    for deployment in candidates {
        let py = deployment.dict.py();
        let id = deployment
            .id
            .cast_exact::<PyString>()
            .map_err(|_| decline("unsupported_deployment"))?;
        let id_text = id.to_str()?;
        // litellm keys its usage dicts by the text before the first ':' of the counter key.
        if id_text.contains(':') {
            return Err(decline("unsupported_deployment"));
        }
        let model = deployment
            .param(intern!(py, "model"))?
            .ok_or_else(|| decline("unsupported_deployment"))?;
        let model = model
            .cast_into_exact::<PyString>()
            .map_err(|_| decline("unsupported_deployment"))?;
        keys.push(memo.usage(id, &model, minute)?);
        ids.push(id_text);
    }
    Ok((ids, keys))
}

/// `LowestTPMLoggingHandler_v2`'s pick up to its draw: the deployments tied at the lowest tpm this
/// minute among those under their limits (empty: litellm raises its no-deployments error).
///
/// The counters `{id}:{model}:tpm|rpm:{minute}` come from `prefetched` (the request's
/// `PrefetchedUsage` values, or what the caller read through litellm's DualCache) when its keys
/// cover them, else from the in-memory `cache` at `now`; with no `cache` (a router with Redis,
/// whose counters only litellm's own read gets right) uncovered keys decline the pick.
#[pyfunction]
#[pyo3(signature = (deployments_list, minute, cache, now, prefetched_keys, prefetched_values, count_input_tokens, keys, stats))]
#[allow(clippy::too_many_arguments)]
pub fn least_used<'py>(
    py: Python<'py>,
    deployments_list: &Bound<'py, PyList>,
    minute: &str,
    cache: Option<&Bound<'py, PyAny>>,
    now: f64,
    prefetched_keys: Option<&Bound<'py, PyFrozenSet>>,
    prefetched_values: Option<&Bound<'py, PyDict>>,
    count_input_tokens: &Bound<'py, PyAny>,
    keys: &Bound<'py, CounterKeys>,
    stats: &Bound<'py, CallStats>,
) -> PyResult<Bound<'py, PyList>> {
    guarded(|| {
        let candidates = deployments(deployments_list)?;
        let (ids, keys) = usage_keys(&candidates, minute, keys.get())?;
        let prefetched = match prefetched_keys {
            Some(covered)
                if keys.iter().all(|(tpm, rpm)| {
                    covered.contains(tpm).unwrap_or(false) && covered.contains(rpm).unwrap_or(false)
                }) =>
            {
                Some(prefetched_values.ok_or_else(|| decline("usage_read_failed"))?)
            }
            _ => None,
        };
        let memory = match prefetched {
            None => Some(MemoryCache::new(
                cache.ok_or_else(|| decline("redis_cache"))?,
                now,
            )?),
            Some(_) => None,
        };
        let read = |key: &Bound<'py, PyString>| -> PyResult<Option<f64>> {
            let value = match (prefetched, &memory) {
                (Some(values), _) => values.get_item(key)?.filter(|v| !v.is_none()),
                (None, Some(memory)) => memory.get(key)?,
                (None, None) => unreachable!("one source is always chosen"),
            };
            value.map(|value| state_number(&value)).transpose()
        };
        // The handler reads every tpm counter, then every rpm counter (an expired key is removed
        // on its read, so the order is kept).
        let tpm = keys
            .iter()
            .map(|(tpm, _)| read(tpm))
            .collect::<PyResult<Vec<_>>>()?;
        let rpm = keys
            .iter()
            .map(|(_, rpm)| read(rpm))
            .collect::<PyResult<Vec<_>>>()?;
        let kept = routing::first_seen_last_wins(ids);
        let scored = kept
            .iter()
            .map(|&index| {
                Ok(UsageCandidate {
                    tpm: tpm[index].unwrap_or(0.0),
                    rpm: rpm[index],
                    limits: candidates[index].limits(false)?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let tokens = input_tokens(
            scored.iter().any(|c| c.limits.counts_tokens()),
            count_input_tokens,
        )?;
        let chosen = skewed(routing::lowest_usage(&scored, tokens), kept.len());
        stats.get().rust_call();
        PyList::new(py, chosen.iter().map(|&slot| &candidates[kept[slot]].dict))
    })
}

/// `LeastBusyLoggingHandler._select`'s choice (the caller holds litellm's reservation lock and
/// makes the reservation): the index of the first deployment with the fewest in-flight calls
/// (`{group}_request_count:{id}` in the router's in-memory cache) plus live pick reservations
/// (`least_busy_reservations:{id}` in the reservation store, younger than `reservation_ttl`
/// seconds at `now` on the handler's clock). With `shared` (a router with Redis: the counts every
/// worker shares, read by the caller as litellm reads them) a deployment's count is the larger of
/// the shared and this worker's. With `plans` and `mirror` (the in-memory cache's `UsageMirror`),
/// the in-flight counts are read from the mirror where it is exact, else in place. `None` for no
/// deployments.
#[pyfunction]
#[pyo3(signature = (deployments_list, group, counts, counts_now, reservations, reservations_now, now, reservation_ttl, shared, keys, stats, plans=None, mirror=None))]
#[allow(clippy::too_many_arguments)]
pub fn least_busy<'py>(
    deployments_list: &Bound<'py, PyList>,
    group: &Bound<'py, PyString>,
    counts: &Bound<'py, PyAny>,
    counts_now: f64,
    reservations: &Bound<'py, PyAny>,
    reservations_now: f64,
    now: f64,
    reservation_ttl: f64,
    shared: Option<Vec<i64>>,
    keys: &Bound<'py, CounterKeys>,
    stats: &Bound<'py, CallStats>,
    plans: Option<&Bound<'py, CandidatePlans>>,
    mirror: Option<&Bound<'py, UsageMirror>>,
) -> PyResult<Option<usize>> {
    guarded(|| {
        if shared
            .as_ref()
            .is_some_and(|shared| shared.len() != deployments_list.len())
        {
            return Err(decline("unsupported_state"));
        }
        if deployments_list.is_empty() {
            stats.get().rust_call();
            return Ok(None);
        }
        let py = deployments_list.py();
        let reservations = MemoryCache::new(reservations, reservations_now)?;
        let plan = match plans {
            Some(plans) => plans
                .get()
                .least_busy(deployments_list, group, keys.get())?,
            None => Arc::new(LeastBusyKeys {
                group: group.to_str()?.to_owned(),
                keys: least_busy_keys(deployments_list, group, keys.get())?,
            }),
        };
        let mirrored = match (plans, mirror) {
            (Some(_), Some(mirror)) => mirror.get().in_flight(counts, counts_now, &plan)?,
            _ => None,
        };
        let keys = &plan.keys;
        let in_flight = match mirrored {
            Some(in_flight) => in_flight,
            None => {
                let counts = MemoryCache::new(counts, counts_now)?;
                // Every count is read before any is judged (an expired key is removed on its read).
                let read = keys
                    .iter()
                    .map(|(count_key, _)| counts.get(count_key.bind(py)))
                    .collect::<PyResult<Vec<_>>>()?;
                read.iter()
                    .map(|count| count.as_ref().map(state_number).transpose())
                    .collect::<PyResult<Vec<_>>>()?
            }
        };
        let mut loads = Vec::with_capacity(keys.len());
        for (index, ((_, reservation_key), count)) in keys.iter().zip(in_flight).enumerate() {
            // `_local_counts`: each count validated as a float, then truncated by `int()`.
            let count = match count {
                None => 0,
                Some(value) if value.is_finite() => value.trunc() as i64,
                Some(_) => return Err(decline("unsupported_state")),
            };
            // `_at_least_this_workers`
            let count = shared
                .as_ref()
                .map_or(count, |shared| count.max(shared[index]));
            let made_at = match reservations.get(reservation_key.bind(py))? {
                None => Vec::new(),
                Some(picks) => reservation_times(&picks)?,
            };
            loads.push(count + routing::live_reservations(&made_at, now, reservation_ttl) as i64);
        }
        let chosen = skewed(
            routing::least_busy(&loads).into_iter().collect(),
            loads.len(),
        );
        stats.get().rust_call();
        Ok(chosen.first().copied())
    })
}

/// Each candidate's (`{group}_request_count:{id}`, `least_busy_reservations:{id}`) in one group.
pub(crate) struct LeastBusyKeys {
    group: String,
    keys: Vec<(Py<PyString>, Py<PyString>)>,
}

impl LeastBusyKeys {
    /// The `{group}_request_count:{id}` keys, in candidate order.
    pub(crate) fn count_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.keys
            .iter()
            .map(|(count_key, _)| Ok(count_key.bind(py).to_str()?.to_owned()))
            .collect()
    }
}

fn least_busy_keys(
    deployments_list: &Bound<'_, PyList>,
    group: &Bound<'_, PyString>,
    memo: &CounterKeys,
) -> PyResult<Vec<(Py<PyString>, Py<PyString>)>> {
    let mut keys = Vec::with_capacity(deployments_list.len());
    for deployment in deployments(deployments_list)? {
        // `_deployment_ids`: str(id) of a str or int id.
        let id = if deployment.id.is_exact_instance_of::<PyString>()
            || deployment.id.is_exact_instance_of::<PyInt>()
        {
            deployment.id.str()?
        } else {
            return Err(decline("unsupported_deployment"));
        };
        let (count_key, reservation_key) = memo.least_busy(group, &id)?;
        keys.push((count_key.unbind(), reservation_key.unbind()));
    }
    Ok(keys)
}

/// The times of a deployment's reservations, a tuple of `(time, call id or None)` as litellm
/// stores them.
fn reservation_times(picks: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let picks = picks
        .cast_exact::<PyTuple>()
        .map_err(|_| decline("unsupported_state"))?;
    picks
        .iter()
        .map(|pick| {
            let pick = pick
                .cast_into_exact::<PyTuple>()
                .map_err(|_| decline("unsupported_state"))?;
            let tag = pick.get_item(1).map_err(|_| decline("unsupported_state"))?;
            if pick.len() != 2 || !(tag.is_none() || tag.is_exact_instance_of::<PyString>()) {
                return Err(decline("unsupported_state"));
            }
            state_number(&pick.get_item(0)?)
        })
        .collect()
}

/// A batch read of router-core cooldown keys answered from the cooldown store's live entries:
/// `None` unless every key is a cooldown key (`routing_stores._cooldown_ids`: another store then
/// answers), else `(position, id)` of each key whose deployment `snapshot` (the store's entries by
/// key) holds. Every other key reads as no cooldown.
#[pyfunction]
pub fn cooling_keys<'py>(
    keys: &Bound<'py, PyList>,
    snapshot: &Bound<'py, PyDict>,
) -> PyResult<Option<Vec<(usize, String)>>> {
    guarded(|| {
        let mut cooling_ids = HashSet::with_capacity(snapshot.len());
        for key in snapshot.keys() {
            let key = key
                .cast_into_exact::<PyString>()
                .map_err(|_| decline("unsupported_state"))?;
            let id =
                routing::cooldown_id(key.to_str()?).ok_or_else(|| decline("unsupported_state"))?;
            cooling_ids.insert(id.to_owned());
        }
        let mut cooling = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            let Ok(key) = key.cast_exact::<PyString>() else {
                return Ok(None);
            };
            let Some(id) = routing::cooldown_id(key.to_str()?) else {
                return Ok(None);
            };
            if cooling_ids.contains(id) {
                cooling.push((position, id.to_owned()));
            }
        }
        Ok((!keys.is_empty()).then_some(cooling))
    })
}

/// `LowestTPMLoggingHandler.get_available_deployments` (usage-based-routing v1): the index of its
/// pick, or `None`. `tpm` and `rpm` are the group's `{id: count}` maps for this minute as the
/// handler read them (`None` when unset). The handler walks `tpm` in its order after adding a 0
/// for each candidate missing from it (in the cached dict itself: done here when `commit`), takes
/// the last candidate with each id, and keeps the first strictly lowest count under the limits.
#[pyfunction]
#[pyo3(signature = (deployments_list, tpm, rpm, count_input_tokens, commit, stats, plans=None))]
pub fn lowest_tpm<'py>(
    deployments_list: &Bound<'py, PyList>,
    tpm: Option<&Bound<'py, PyDict>>,
    rpm: Option<&Bound<'py, PyDict>>,
    count_input_tokens: &Bound<'py, PyAny>,
    commit: bool,
    stats: &Bound<'py, CallStats>,
    plans: Option<&Bound<'py, CandidatePlans>>,
) -> PyResult<Option<usize>> {
    guarded(|| {
        let py = deployments_list.py();
        let candidates = match plans {
            Some(plans) => plans.get().lowest_tpm(deployments_list)?,
            None => Arc::new(TpmCandidates::read(deployments_list)?),
        };
        // The walk's order: the map's own keys, then the candidates it lacks (each id once).
        let mut walk: Vec<(Option<usize>, Option<Bound<'py, PyAny>>)> =
            Vec::with_capacity(candidates.ids.len());
        let mut listed: HashSet<&str> = HashSet::new();
        if let Some(tpm) = tpm {
            for (id, count) in tpm.iter() {
                // Another type of key never equals a (text) deployment id: the handler skips it.
                let found = match id.cast_exact::<PyString>() {
                    Ok(id) => candidates.last_with_id.get(id.to_str()?).copied(),
                    Err(_) => None,
                };
                walk.push((found, Some(count)));
            }
        }
        for (id, id_text) in candidates.ids.iter().zip(&candidates.id_texts) {
            let id = id.bind(py);
            let missing = match tpm {
                Some(tpm) => !tpm.contains(id)?,
                None => true,
            };
            if missing && listed.insert(id_text) {
                walk.push((candidates.last_with_id.get(id_text.as_str()).copied(), None));
                if commit {
                    if let Some(tpm) = tpm {
                        tpm.set_item(id, 0)?;
                    }
                }
            }
        }
        let mut order = Vec::with_capacity(walk.len());
        let mut scored = Vec::with_capacity(walk.len());
        for (found, count) in walk {
            let Some(index) = found else { continue };
            let count = count
                .map(|count| state_number(&count))
                .transpose()?
                .unwrap_or(0.0);
            if !count.is_finite() {
                return Err(decline("unsupported_state"));
            }
            let used = match rpm {
                Some(rpm) => rpm
                    .get_item(candidates.ids[index].bind(py))?
                    .map(|used| state_number(&used))
                    .transpose()?,
                None => None,
            };
            order.push(index);
            scored.push(UsageCandidate {
                tpm: count,
                rpm: used,
                limits: candidates.limits(index)?,
            });
        }
        let tokens = input_tokens(
            scored.iter().any(|c| c.limits.counts_tokens()),
            count_input_tokens,
        )?;
        let chosen = skewed(
            routing::lowest_usage(&scored, tokens)
                .into_iter()
                .take(1)
                .collect(),
            order.len(),
        );
        stats.get().rust_call();
        Ok(chosen.first().map(|&slot| order[slot]))
    })
}

/// What the usage-based (v1) pick reads of its candidates: each one's id, the last candidate with
/// each id (the handler's lookup loop), and that candidate's limits.
struct TpmCandidates {
    ids: Vec<Py<PyAny>>,
    id_texts: Vec<String>,
    last_with_id: HashMap<String, usize>,
    /// By candidate; read for the last candidate with each id only, as the handler reads them.
    limits: Vec<Option<Limits>>,
}

impl TpmCandidates {
    fn read(deployments_list: &Bound<'_, PyList>) -> PyResult<Self> {
        let candidates = deployments(deployments_list)?;
        let mut ids = Vec::with_capacity(candidates.len());
        let mut id_texts = Vec::with_capacity(candidates.len());
        let mut last_with_id = HashMap::with_capacity(candidates.len());
        for (index, deployment) in candidates.iter().enumerate() {
            let id_text = deployment.id_str()?.to_owned();
            last_with_id.insert(id_text.clone(), index);
            ids.push(deployment.id.clone().unbind());
            id_texts.push(id_text);
        }
        let mut limits = vec![None; candidates.len()];
        for &index in last_with_id.values() {
            limits[index] = Some(candidates[index].limits(false)?);
        }
        Ok(Self {
            ids,
            id_texts,
            last_with_id,
            limits,
        })
    }

    fn limits(&self, index: usize) -> PyResult<Limits> {
        self.limits[index].ok_or_else(|| decline("unsupported_deployment"))
    }
}

/// What a pick derived from one list of candidates (the same dicts, in order).
struct Known<T> {
    deployments: Vec<Py<PyAny>>,
    derived: Arc<T>,
}

/// The least-busy keys and usage-based (v1) candidates of the router's shared candidate records
/// (`routing_steps`), derived once per list of them: the records are built once per registry
/// version and only read, so what is read of them holds while a list holds the same dicts (kept
/// alive here, so no other dict takes their place). Never for a caller's own dicts.
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct CandidatePlans {
    least_busy: Mutex<Vec<Known<LeastBusyKeys>>>,
    lowest_tpm: Mutex<Vec<Known<TpmCandidates>>>,
}

#[pymethods]
impl CandidatePlans {
    #[new]
    fn new() -> Self {
        Self {
            least_busy: Mutex::new(Vec::new()),
            lowest_tpm: Mutex::new(Vec::new()),
        }
    }
}

/// The plan `list` matches in `plans`, else `derive`d and kept. The lock is held only to search
/// and to insert, never while Python runs.
fn known<T>(
    plans: &Mutex<Vec<Known<T>>>,
    list: &Bound<'_, PyList>,
    fits: impl Fn(&T) -> bool,
    derive: impl FnOnce() -> PyResult<T>,
) -> PyResult<Arc<T>> {
    // A panic elsewhere cannot leave a half-made plan here: entries are pushed whole.
    let lock = || plans.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = lock()
        .iter()
        .find(|known| same_objects(&known.deployments, list) && fits(&known.derived))
    {
        return Ok(found.derived.clone());
    }
    let derived = Arc::new(derive()?);
    let known = Known {
        deployments: list.iter().map(Bound::unbind).collect(),
        derived: derived.clone(),
    };
    let mut plans = lock();
    let evicted = (plans.len() >= PLANS_KEPT).then(|| plans.remove(0));
    plans.push(known);
    drop(plans);
    drop(evicted); // its dicts may be freed now, outside the lock
    Ok(derived)
}

impl CandidatePlans {
    fn least_busy(
        &self,
        list: &Bound<'_, PyList>,
        group: &Bound<'_, PyString>,
        memo: &CounterKeys,
    ) -> PyResult<Arc<LeastBusyKeys>> {
        let group_text = group.to_str()?;
        known(
            &self.least_busy,
            list,
            |known| known.group == group_text,
            || {
                Ok(LeastBusyKeys {
                    group: group_text.to_owned(),
                    keys: least_busy_keys(list, group, memo)?,
                })
            },
        )
    }

    fn lowest_tpm(&self, list: &Bound<'_, PyList>) -> PyResult<Arc<TpmCandidates>> {
        known(
            &self.lowest_tpm,
            list,
            |_| true,
            || TpmCandidates::read(list),
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(latency_choices, m)?)?;
    m.add_function(wrap_pyfunction!(cheapest, m)?)?;
    m.add_function(wrap_pyfunction!(least_used, m)?)?;
    m.add_function(wrap_pyfunction!(least_busy, m)?)?;
    m.add_function(wrap_pyfunction!(lowest_tpm, m)?)?;
    m.add_function(wrap_pyfunction!(cooling_keys, m)?)?;
    m.add_class::<CounterKeys>()?;
    m.add_class::<CandidatePlans>()?;
    Ok(())
}
