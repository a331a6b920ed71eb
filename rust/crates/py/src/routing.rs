//! Routing picks: litellm's strategy state and candidate dicts read in place, the decision made by
//! the `routing` crate.
//!
//! Each function reads what one `litellm/router_strategy` handler reads (its map in the router's
//! in-memory cache, or its per-deployment counters, read with `InMemoryCache.get_cache`'s expiry)
//! and hands the deployment dicts it would choose from back to the adapter, which draws among them
//! with Python's `random` when the handler draws. Anything read that the handler would treat
//! differently from a plain number, dict or list raises `Unsupported` and litellm picks.
//! Each entry point takes the candidates (and the state they are judged on) positionally, every
//! other input by keyword: the routing component's `PickContext`, and the pick's own inputs (one
//! request object for the picks litellm feeds many).

use std::cell::OnceCell;
use std::collections::HashSet;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyList, PyString, PyTuple};

use routing::latency_state::LatencyEntry;
use routing::{CostCandidate, UsageCandidate};

use crate::candidates::{deployments, input_tokens};
use crate::counter_keys::usage_keys;
use crate::errors::decline;
use crate::faults::{guarded, skewed};
use crate::in_memory_cache::{self, MemoryCache};
use crate::latency_map::{
    api_base_groups, latency_per_deployment, minute_counter, visits, write_placeholders,
    zero_counters, LatencyParts, Visits,
};
use crate::numbers::state_number;
use crate::pick_inputs::{LatencyRequest, LeastBusyRequest, PickContext};
use crate::usage_mirror::UsageMirror;

/// `LowestLatencyLoggingHandler._get_available_deployments` up to its draw: the deployments it
/// draws from uniformly (empty: it returns `None`) and, when `request.debug`, the
/// `_latency_per_deployment` dict it leaves in the request's metadata.
///
/// `map` is the cached `{group}_map` when it is a non-empty dict (the handler's `or {}` gives a
/// fresh dict otherwise, which nothing keeps). With `request.commit`, the handler's placeholders
/// (`{"latency_normalized": [0], minute: {"tpm": 0, "rpm": 0}}`) are written into it.
#[pyfunction]
#[pyo3(signature = (deployments_list, map, /, *, request, count_input_tokens, context))]
pub fn latency_choices<'py>(
    deployments_list: &Bound<'py, PyList>,
    map: Option<&Bound<'py, PyDict>>,
    request: &Bound<'py, LatencyRequest>,
    count_input_tokens: &Bound<'py, PyAny>,
    context: &Bound<'py, PickContext>,
) -> PyResult<(Bound<'py, PyList>, Option<Bound<'py, PyDict>>)> {
    guarded(|| {
        let py = deployments_list.py();
        let (request, context) = (request.get(), context.get());
        let (rule, minute) = (context.rule, request.minute.bind(py));
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
            let (latency, candidate) = entry
                .candidate(request.selection, candidates[*index].limits(true)?)
                .ok_or_else(|| decline("unsupported_state"))?;
            latencies.push(latency);
            scored.push(candidate);
        }
        let tokens = input_tokens(
            scored.iter().any(|c| c.limits.counts_tokens()),
            count_input_tokens,
        )?;
        let chosen = skewed(
            routing::latency_choices(&scored, tokens, request.buffer),
            visits.len(),
        );
        let debug_map = if request.debug && !chosen.is_empty() {
            let groups = api_base_groups(&candidates, visits.iter().map(|(index, _)| *index))?;
            Some(latency_per_deployment(
                py,
                groups
                    .iter()
                    .map(|(api_base, members)| (api_base, members.as_slice())),
                &latencies,
                context.randrange.bind(py),
            )?)
        } else {
            None
        };
        if let (true, Some(map)) = (request.commit, map) {
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
        context.stats.get().rust_call();
        Ok((picks, debug_map))
    })
}

/// `LowestCostLoggingHandler.async_get_available_deployments`: the cheapest admitted deployment,
/// the first of equals in map order, or `None`. `rates(deployment)` is litellm's
/// `_deployment_cost_map_rates`, asked only for a deployment without both prices of its own; with
/// `commit` the handler's placeholders (`{minute: {"tpm": 0, "rpm": 0}}`) are written into `map`
/// (see `latency_choices`).
#[pyfunction]
#[pyo3(signature = (deployments_list, map, /, *, minute, rates, count_input_tokens, commit, context))]
pub fn cheapest<'py>(
    deployments_list: &Bound<'py, PyList>,
    map: Option<&Bound<'py, PyDict>>,
    minute: &Bound<'py, PyString>,
    rates: &Bound<'py, PyAny>,
    count_input_tokens: &Bound<'py, PyAny>,
    commit: bool,
    context: &Bound<'py, PickContext>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    guarded(|| {
        let py = deployments_list.py();
        let candidates = deployments(deployments_list)?;
        let Visits { visits, missing } = visits(&candidates, map)?;
        let (tpm_key, rpm_key) = (pyo3::intern!(py, "tpm"), pyo3::intern!(py, "rpm"));
        let mut scored = Vec::with_capacity(visits.len());
        for (index, entry) in &visits {
            let deployment = &candidates[*index];
            let own = deployment.prices()?;
            let cost_map = if own.complete() {
                routing::Prices::default()
            } else {
                let (input, output) = rates
                    .call1((&deployment.dict,))?
                    .extract::<(Option<f64>, Option<f64>)>()?;
                routing::Prices { input, output }
            };
            scored.push(CostCandidate {
                cost: routing::cost_per_token(own, cost_map)
                    .ok_or_else(|| decline("unsupported_deployment"))?,
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
        context.get().stats.get().rust_call();
        Ok(chosen
            .first()
            .map(|&visit| candidates[visits[visit].0].dict.clone()))
    })
}

/// `LowestTPMLoggingHandler_v2`'s pick up to its draw: the deployments tied at the lowest tpm this
/// minute among those under their limits (empty: litellm raises its no-deployments error).
///
/// The counters `{id}:{model}:tpm|rpm:{minute}` come from `prefetched_values` (the request's
/// `PrefetchedUsage` values, or what the caller read through litellm's DualCache) when
/// `prefetched_keys` cover them, else from the in-memory `cache` on its clock; with no `cache` (a
/// router with Redis, whose counters only litellm's own read gets right) uncovered keys decline
/// the pick.
#[pyfunction]
#[pyo3(signature = (deployments_list, /, *, minute, cache, prefetched_keys, prefetched_values, count_input_tokens, context))]
pub fn least_used<'py>(
    deployments_list: &Bound<'py, PyList>,
    minute: &str,
    cache: Option<&Bound<'py, PyAny>>,
    prefetched_keys: Option<&Bound<'py, PyFrozenSet>>,
    prefetched_values: Option<&Bound<'py, PyDict>>,
    count_input_tokens: &Bound<'py, PyAny>,
    context: &Bound<'py, PickContext>,
) -> PyResult<Bound<'py, PyList>> {
    guarded(|| {
        let py = deployments_list.py();
        let context = context.get();
        let candidates = deployments(deployments_list)?;
        let (ids, keys) = usage_keys(&candidates, minute, &context.keys)?;
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
            None => Some(MemoryCache::now(
                cache.ok_or_else(|| decline("redis_cache"))?,
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
        context.stats.get().rust_call();
        PyList::new(py, chosen.iter().map(|&slot| &candidates[kept[slot]].dict))
    })
}

/// `LeastBusyLoggingHandler._select`'s choice (the caller holds litellm's reservation lock and
/// makes the reservation): the index of the first deployment with the fewest in-flight calls
/// (`{group}_request_count:{id}` in the router's in-memory cache `request.counts`) plus live pick
/// reservations (`least_busy_reservations:{id}` in the `request.reservations` store, younger than
/// the context's `reservation_ttl` seconds at `request.now` on the handler's clock); each cache is
/// read on its own clock. With `request.shared_in_flight` (a router with Redis: the counts every
/// worker shares, read by the caller as litellm reads them) a deployment's count is the larger of
/// the shared and this worker's. With `shared_records` (the candidates are the router's shared
/// records, whose keys the context keeps per list) and `mirror` (the in-memory cache's
/// `UsageMirror`), the in-flight counts are read from the mirror where it is exact, else in
/// place. `None` for no deployments.
#[pyfunction]
#[pyo3(signature = (deployments_list, /, *, request, context, shared_records=false, mirror=None))]
pub fn least_busy<'py>(
    deployments_list: &Bound<'py, PyList>,
    request: &Bound<'py, LeastBusyRequest>,
    context: &Bound<'py, PickContext>,
    shared_records: bool,
    mirror: Option<&Bound<'py, UsageMirror>>,
) -> PyResult<Option<usize>> {
    guarded(|| {
        let py = deployments_list.py();
        let (request, context) = (request.get(), context.get());
        let shared = request.shared_in_flight.as_ref();
        if shared.is_some_and(|shared| shared.len() != deployments_list.len()) {
            return Err(decline("unsupported_state"));
        }
        if deployments_list.is_empty() {
            context.stats.get().rust_call();
            return Ok(None);
        }
        let counts = request.counts.bind(py);
        let reservations = MemoryCache::now(request.reservations.bind(py))?;
        let plan =
            context.least_busy_keys(deployments_list, request.group.bind(py), shared_records)?;
        let counts_now = in_memory_cache::clock(counts)?;
        let mirrored = match (shared_records, mirror) {
            (true, Some(mirror)) => mirror.get().in_flight(counts, counts_now, &plan)?,
            _ => None,
        };
        let keys = &plan.keys;
        let in_flight = match mirrored {
            Some(in_flight) => in_flight,
            None => {
                let counts = MemoryCache::at(counts, counts_now)?;
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
            let shared = shared.map(|shared| shared[index]);
            let count =
                routing::in_flight(count, shared).ok_or_else(|| decline("unsupported_state"))?;
            let made_at = match reservations.get(reservation_key.bind(py))? {
                None => Vec::new(),
                Some(picks) => reservation_times(&picks)?,
            };
            let live = routing::live_reservations(&made_at, request.now, context.reservation_ttl);
            loads.push(count + live as i64);
        }
        let chosen = skewed(
            routing::least_busy(&loads).into_iter().collect(),
            loads.len(),
        );
        context.stats.get().rust_call();
        Ok(chosen.first().copied())
    })
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
            let id = routing::keys::cooldown_id(key.to_str()?)
                .ok_or_else(|| decline("unsupported_state"))?;
            cooling_ids.insert(id.to_owned());
        }
        let mut cooling = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            let Ok(key) = key.cast_exact::<PyString>() else {
                return Ok(None);
            };
            let Some(id) = routing::keys::cooldown_id(key.to_str()?) else {
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
/// With `shared_records` (see `least_busy`), what is read of the candidates is kept per list.
#[pyfunction]
#[pyo3(signature = (deployments_list, /, *, tpm, rpm, count_input_tokens, commit, context, shared_records=false))]
pub fn lowest_tpm<'py>(
    deployments_list: &Bound<'py, PyList>,
    tpm: Option<&Bound<'py, PyDict>>,
    rpm: Option<&Bound<'py, PyDict>>,
    count_input_tokens: &Bound<'py, PyAny>,
    commit: bool,
    context: &Bound<'py, PickContext>,
    shared_records: bool,
) -> PyResult<Option<usize>> {
    guarded(|| {
        let py = deployments_list.py();
        let context = context.get();
        let candidates = context.tpm_candidates(deployments_list, shared_records)?;
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
        context.stats.get().rust_call();
        Ok(chosen.first().map(|&slot| order[slot]))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(latency_choices, m)?)?;
    m.add_function(wrap_pyfunction!(cheapest, m)?)?;
    m.add_function(wrap_pyfunction!(least_used, m)?)?;
    m.add_function(wrap_pyfunction!(least_busy, m)?)?;
    m.add_function(wrap_pyfunction!(lowest_tpm, m)?)?;
    m.add_function(wrap_pyfunction!(cooling_keys, m)?)?;
    Ok(())
}
