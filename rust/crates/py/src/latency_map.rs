//! litellm's latency and cost maps (`{group}_map`, `cost_map:{group}`: `{id: {"latency_normalized":
//! [..], "time_to_first_token_seconds": [..], "<minute>": {"tpm": .., "rpm": ..}}}`) as the
//! `lowest_latency` and `lowest_cost` handlers read and write them, shared by the in-place picks
//! and the latency mirror.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use routing::latency_state::{map_visits, LatencyEntry, MapVisits, Window};
use routing::samples::{Number, SumRule};

use crate::candidates::Deployment;
use crate::errors::decline;
use crate::numbers::{number, state_number, to_python};

/// A handler's `{id: {...}}` map (latency, cost) and the candidates it visits: the map's entries
/// that are candidates, in map order, then a placeholder for each candidate the map lacks. Each
/// visit names the last candidate with that id, as the handlers' lookup loops do.
pub(crate) struct Visits<'py> {
    /// (candidate index, the map entry; `None` for a placeholder)
    pub(crate) visits: Vec<(usize, Option<Bound<'py, PyDict>>)>,
    /// Candidate indices (first of each id) whose ids the map lacks, in candidate order.
    pub(crate) missing: Vec<usize>,
}

pub(crate) fn visits<'py>(
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
pub(crate) fn minute_counter(
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

/// A placeholder's per-minute counters, `{minute: {"tpm": 0, "rpm": 0}}`'s inner dict.
pub(crate) fn zero_counters<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let counters = PyDict::new(py);
    counters.set_item(intern!(py, "tpm"), 0)?;
    counters.set_item(intern!(py, "rpm"), 0)?;
    Ok(counters)
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
