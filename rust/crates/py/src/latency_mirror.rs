//! latency-based-routing's state held in Rust, one mirror per router `InMemoryCache`.
//!
//! `LowestLatencyLoggingHandler` keeps `{group}_map` (`{id: {"latency_normalized": [..],
//! "time_to_first_token_seconds": [..], "<Y-m-d-H-M>": {"tpm": .., "rpm": ..}}}`) in the router's
//! in-memory cache. Its success and failure callbacks take the cached dict itself
//! (`get_cache`), change it in place (a list appended to while under `max_latency_list_size`,
//! else replaced by a new one; a minute's counters dict added or rewritten) and `set_cache` it
//! again, which only renews its expiry. So the mirror needs no write hook: every pick fetches the
//! map as litellm's would (`InMemoryCache.get_cache`, with its expiry; a flush, an eviction or a
//! `set_cache` of another dict shows as another object or none), and checks what it read before
//! against it. The mirror holds every object it read (the map, each entry dict, its two sample
//! lists and this minute's counters dict), so an unchanged PEP 509 version tag (dicts) or
//! unchanged item pointers (lists) mean unchanged contents: a callback's event costs the next
//! pick one entry's re-read, and a pick where nothing changed reads no Python dict at all. A
//! changed map tag (keys added or removed, an entry replaced) re-walks the map's keys, keeping
//! the entries whose dicts stayed; a new minute drops every entry's read, so each entry is read
//! again whole (lists and counters) at its next visit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use routing::latency_state::{map_visits, LatencyEntry, MapVisits};
use routing::samples::{Number, SumRule};
use routing::{LatencyCandidate, Limits};

use crate::candidates::{deployments, input_tokens, same_objects, Deployment, PLANS_KEPT};
use crate::errors::decline;
use crate::faults::{guarded, skewed};
use crate::latency_map::{
    api_base_groups, latency_per_deployment, write_placeholders, LatencyParts,
};
use crate::object_layout::{dict_versions_work, list_items, list_items_work, version_tag};
use crate::pick_inputs::{LatencyRequest, PickContext};

/// A sample list as read: the list and the items it held then (kept alive, so their pointers
/// cannot be reused by other objects while the mirror compares them).
struct HeldList {
    list: Py<PyList>,
    items: Vec<Py<PyAny>>,
}

impl HeldList {
    fn of(list: &Bound<'_, PyList>) -> Self {
        Self {
            list: list.clone().unbind(),
            items: list.iter().map(Bound::unbind).collect(),
        }
    }

    fn unchanged(&self, py: Python<'_>) -> bool {
        let now = list_items(self.list.bind(py));
        now.len() == self.items.len()
            && now
                .iter()
                .zip(&self.items)
                .all(|(item, held)| *item == held.as_ptr())
    }
}

/// One map entry as last read, with the objects read (the entry dict is its slot's `value`).
struct ReadEntry {
    tag: u64,
    latency: Option<HeldList>,
    ttft: Option<HeldList>,
    counters: Option<(Py<PyDict>, u64)>,
    entry: LatencyEntry,
}

impl ReadEntry {
    fn read(
        value: &Bound<'_, PyAny>,
        minute: &Bound<'_, PyString>,
        rule: SumRule,
    ) -> PyResult<Self> {
        let dict = value
            .cast_exact::<PyDict>()
            .map_err(|_| decline("unsupported_state"))?;
        let parts = LatencyParts::of(dict, minute)?;
        Ok(Self {
            tag: version_tag(dict),
            latency: parts.latency.as_ref().map(HeldList::of),
            ttft: parts.ttft.as_ref().map(HeldList::of),
            counters: parts
                .counters
                .as_ref()
                .map(|counters| (counters.clone().unbind(), version_tag(counters))),
            entry: parts.entry(value.py(), rule)?,
        })
    }

    /// Whether `value`, the entry dict this was read from, still holds what was read.
    fn unchanged(&self, value: &Bound<'_, PyAny>) -> bool {
        let py = value.py();
        value
            .cast_exact::<PyDict>()
            .is_ok_and(|dict| version_tag(dict) == self.tag)
            && self
                .latency
                .as_ref()
                .map_or(true, |list| list.unchanged(py))
            && self.ttft.as_ref().map_or(true, |list| list.unchanged(py))
            && self.counters.as_ref().map_or(true, |(counters, tag)| {
                version_tag(counters.bind(py)) == *tag
            })
    }
}

/// A map value, and its last read for the group's minute (`None`: read it at its next visit).
struct Slot {
    value: Py<PyAny>,
    read: Option<ReadEntry>,
}

impl Slot {
    fn entry(
        &mut self,
        py: Python<'_>,
        minute: &Bound<'_, PyString>,
        rule: SumRule,
        reads: &AtomicU64,
    ) -> PyResult<&LatencyEntry> {
        let value = self.value.bind(py);
        if self
            .read
            .as_ref()
            .is_some_and(|read| !read.unchanged(value))
        {
            self.read = None; // a read that fails leaves none: the next visit reads again
        }
        let read = match &mut self.read {
            Some(read) => read,
            unread => {
                reads.fetch_add(1, Ordering::Relaxed);
                unread.insert(ReadEntry::read(value, minute, rule)?)
            }
        };
        Ok(&read.entry)
    }
}

/// One model group's map as last walked: its keys in order and a slot per key.
struct Group {
    map: Py<PyDict>,
    tag: u64,
    /// Distinct for every walk of any group, so a plan's visits name the walk they follow.
    generation: u64,
    keys: Vec<String>,
    slots: Vec<Slot>,
    minute: String,
}

/// `_latency_per_deployment`'s api_bases, each with the positions of the visits it keys.
type ApiBaseGroups = Vec<(Py<PyString>, Vec<usize>)>;

/// A pick's draw set and `_latency_per_deployment` (see `_native.latency_choices`).
type Choices<'py> = (Bound<'py, PyList>, Option<Bound<'py, PyDict>>);

/// A candidate list's fixed inputs (the same dicts, in order, are the same records).
struct Plan {
    deployments: Vec<Py<PyAny>>,
    ids: Vec<String>,
    /// The id objects (`d["model_info"]["id"]`), the keys of the placeholders a pick writes.
    id_objects: Arc<[Py<PyAny>]>,
    /// The handler's `or`-chained limits of the candidates its lookups keep (the last of each id).
    limits: Vec<Limits>,
    /// Visits by the group generation they follow (`None`: no map).
    visits: Option<(Option<u64>, Arc<MapVisits>)>,
    /// Those visits' api_base groups, once a pick needed them.
    groups: Option<Arc<ApiBaseGroups>>,
}

impl Plan {
    fn new(list: &Bound<'_, PyList>) -> PyResult<Self> {
        let candidates = deployments(list)?;
        let ids = candidates
            .iter()
            .map(|deployment| deployment.id_str().map(str::to_owned))
            .collect::<PyResult<Vec<_>>>()?;
        let id_objects = candidates
            .iter()
            .map(|deployment| deployment.id.clone().unbind())
            .collect();
        let mut limits = vec![Limits::NONE; candidates.len()];
        for index in routing::first_seen_last_wins(ids.iter().map(String::as_str)) {
            limits[index] = candidates[index].limits(true)?;
        }
        Ok(Self {
            deployments: list.iter().map(Bound::unbind).collect(),
            ids,
            id_objects,
            limits,
            visits: None,
            groups: None,
        })
    }

    fn visits(&mut self, generation: Option<u64>, keys: &[String]) -> Arc<MapVisits> {
        match &self.visits {
            Some((known, visits)) if *known == generation => visits.clone(),
            _ => {
                let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
                let visits = Arc::new(map_visits(&ids, keys.iter().map(String::as_str)));
                self.visits = Some((generation, visits.clone()));
                self.groups = None;
                visits
            }
        }
    }

    /// The api_base groups of `visits` (the plan's current ones).
    fn api_base_groups(
        &mut self,
        py: Python<'_>,
        visits: &MapVisits,
    ) -> PyResult<Arc<ApiBaseGroups>> {
        if let Some(groups) = &self.groups {
            return Ok(groups.clone());
        }
        let candidates = self
            .deployments
            .iter()
            .map(|deployment| Deployment::read(deployment.bind(py).clone()))
            .collect::<PyResult<Vec<_>>>()?;
        let groups = api_base_groups(&candidates, visits.visits.iter().map(|(index, _)| *index))?;
        let groups = Arc::new(
            groups
                .into_iter()
                .map(|(api_base, members)| (api_base.unbind(), members))
                .collect::<Vec<_>>(),
        );
        self.groups = Some(groups.clone());
        Ok(groups)
    }
}

#[derive(Default)]
struct State {
    groups: HashMap<String, Group>,
    plans: Vec<Plan>,
    walks: u64,
}

/// What one pick reads: the group's map (as the pick fetched it), at the request's minute and how
/// the request says.
struct Read<'a, 'py> {
    group: &'a str,
    map: Option<&'a Bound<'py, PyDict>>,
    request: &'a LatencyRequest,
}

/// What a pick takes out of the state before it runs any Python code.
struct Scored {
    scored: Vec<LatencyCandidate>,
    latencies: Vec<Number>,
    visits: Arc<MapVisits>,
    /// The api_base groups when the pick reports `_latency_per_deployment` (an api_base it cannot
    /// read declines only a pick that chose something, as in `routing::latency_choices`).
    groups: Option<PyResult<Arc<ApiBaseGroups>>>,
    /// The plan's id objects (those of `visits.missing` key the placeholders).
    id_objects: Arc<[Py<PyAny>]>,
}

/// One router cache's latency maps, held per model group.
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct LatencyMirror {
    state: Mutex<State>,
    rule: SumRule,
    /// What a candidate the map lacks reads as (it depends only on `rule`).
    placeholder: LatencyEntry,
    mirrored_picks: AtomicU64,
    resyncs: AtomicU64,
    entry_reads: AtomicU64,
    read_in_place: AtomicU64,
}

impl LatencyMirror {
    /// The state, never waited for (see `UsageMirror::state`): `None` when another call holds
    /// it; a panic while it was held leaves it to be rebuilt.
    fn state(&self) -> Option<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(state) => Some(state),
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut state = poisoned.into_inner();
                *state = State::default();
                Some(state)
            }
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The group as its map is now (`None`: no map), re-walked when the map's tag moved. A new
    /// minute drops every entry's read (each is read again whole at its next visit).
    fn synced(
        &self,
        state: &mut State,
        group: &str,
        map: Option<&Bound<'_, PyDict>>,
        minute: &str,
    ) -> PyResult<Option<u64>> {
        let Some(map) = map else {
            state.groups.remove(group);
            return Ok(None);
        };
        let tag = version_tag(map);
        if let Some(known) = state.groups.get_mut(group) {
            if known.map.as_ptr() == map.as_ptr() && known.tag == tag {
                if known.minute != minute {
                    known.slots.iter_mut().for_each(|slot| slot.read = None);
                    known.minute = minute.to_owned();
                }
                return Ok(Some(known.generation));
            }
        }
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        let mut kept: HashMap<String, Slot> = match state.groups.remove(group) {
            Some(old) if old.minute == minute => old.keys.into_iter().zip(old.slots).collect(),
            _ => HashMap::new(),
        };
        let (mut keys, mut slots) = (Vec::with_capacity(map.len()), Vec::with_capacity(map.len()));
        for (key, value) in map.iter() {
            let key = key
                .cast_exact::<PyString>()
                .map_err(|_| decline("unsupported_state"))?
                .to_str()?
                .to_owned();
            let read = kept
                .remove(&key)
                .filter(|slot| slot.value.as_ptr() == value.as_ptr())
                .and_then(|slot| slot.read);
            keys.push(key);
            slots.push(Slot {
                value: value.unbind(),
                read,
            });
        }
        state.walks += 1;
        let generation = state.walks;
        state.groups.insert(
            group.to_owned(),
            Group {
                map: map.clone().unbind(),
                tag,
                generation,
                keys,
                slots,
                minute: minute.to_owned(),
            },
        );
        Ok(Some(generation))
    }

    fn plan_index(state: &mut State, list: &Bound<'_, PyList>) -> PyResult<usize> {
        if let Some(index) = state
            .plans
            .iter()
            .position(|plan| same_objects(&plan.deployments, list))
        {
            return Ok(index);
        }
        let plan = Plan::new(list)?;
        if state.plans.len() >= PLANS_KEPT {
            state.plans.remove(0);
        }
        state.plans.push(plan);
        Ok(state.plans.len() - 1)
    }

    fn scored(
        &self,
        state: &mut State,
        list: &Bound<'_, PyList>,
        read: &Read<'_, '_>,
    ) -> PyResult<Scored> {
        let py = list.py();
        let Read {
            group,
            map,
            request,
        } = *read;
        let minute = request.minute.bind(py);
        let generation = self.synced(state, group, map, minute.to_str()?)?;
        let index = Self::plan_index(state, list)?;
        let State { groups, plans, .. } = state;
        let plan = &mut plans[index];
        let known = groups.get_mut(group);
        let visits = plan.visits(
            generation,
            known.as_ref().map_or(&[], |known| known.keys.as_slice()),
        );
        let slots: &mut [Slot] = match known {
            Some(known) => &mut known.slots,
            None => &mut [],
        };
        let mut scored = Vec::with_capacity(visits.visits.len());
        let mut latencies = Vec::with_capacity(visits.visits.len());
        for &(candidate, position) in &visits.visits {
            let entry = match position {
                Some(position) => {
                    slots[position].entry(py, minute, self.rule, &self.entry_reads)?
                }
                None => &self.placeholder,
            };
            let (latency, candidate) = entry
                .candidate(request.selection, plan.limits[candidate])
                .ok_or_else(|| decline("unsupported_state"))?;
            latencies.push(latency);
            scored.push(candidate);
        }
        let groups = request.debug.then(|| plan.api_base_groups(py, &visits));
        Ok(Scored {
            scored,
            latencies,
            visits,
            groups,
            id_objects: plan.id_objects.clone(),
        })
    }
}

#[pymethods]
impl LatencyMirror {
    /// An empty mirror; `compensated_sum`: the running Python's `sum()` compensates floats
    /// (3.12+). `Unsupported("dict_versions")` on a CPython whose dicts and lists it cannot read.
    #[new]
    fn new(py: Python<'_>, compensated_sum: bool) -> PyResult<Self> {
        if !(dict_versions_work(py) && list_items_work(py)) {
            return Err(decline("dict_versions"));
        }
        let rule = SumRule::of(compensated_sum);
        Ok(Self {
            state: Mutex::new(State::default()),
            rule,
            placeholder: LatencyEntry::placeholder(rule),
            mirrored_picks: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            entry_reads: AtomicU64::new(0),
            read_in_place: AtomicU64::new(0),
        })
    }

    /// `routing.latency_choices` over the mirror: `map` is the group's cached map as the pick
    /// fetched it (`None`: none, or an empty one), for candidates that stay the same dicts while
    /// they are the same objects. `None` when another call holds the mirror (read in place).
    /// Samples are summed as the mirror was made to sum them (its `compensated_sum`).
    #[pyo3(signature = (deployments_list, map, /, *, group, request, count_input_tokens, context))]
    fn latency_choices<'py>(
        &self,
        deployments_list: &Bound<'py, PyList>,
        map: Option<&Bound<'py, PyDict>>,
        group: &str,
        request: &Bound<'py, LatencyRequest>,
        count_input_tokens: &Bound<'py, PyAny>,
        context: &Bound<'py, PickContext>,
    ) -> PyResult<Option<Choices<'py>>> {
        guarded(|| {
            let py = deployments_list.py();
            let (request, context) = (request.get(), context.get());
            // No Python code runs while the state is held: the token count and draws run after.
            let Scored {
                scored,
                latencies,
                visits,
                groups,
                id_objects,
            } = {
                let Some(mut state) = self.state() else {
                    self.read_in_place.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                };
                let read = Read {
                    group,
                    map,
                    request,
                };
                self.scored(&mut state, deployments_list, &read)?
            };
            let tokens = input_tokens(
                scored.iter().any(|c| c.limits.counts_tokens()),
                count_input_tokens,
            )?;
            let visited = &visits.visits;
            let chosen = skewed(
                routing::latency_choices(&scored, tokens, request.buffer),
                visited.len(),
            );
            let debug_map = match (groups, chosen.is_empty()) {
                (Some(groups), false) => {
                    let groups = groups?;
                    let bound: Vec<_> = groups
                        .iter()
                        .map(|(api_base, members)| (api_base.bind(py), members.as_slice()))
                        .collect();
                    Some(latency_per_deployment(
                        py,
                        bound.into_iter(),
                        &latencies,
                        context.randrange.bind(py),
                    )?)
                }
                _ => None,
            };
            if let Some(map) = map.filter(|_| request.commit) {
                write_placeholders(
                    map,
                    visits
                        .missing
                        .iter()
                        .map(|&index| id_objects[index].bind(py)),
                    request.minute.bind(py),
                )?;
            }
            let picks = PyList::new(
                py,
                chosen
                    .iter()
                    .map(|&visit| deployments_list.get_item(visited[visit].0))
                    .collect::<PyResult<Vec<_>>>()?,
            )?;
            self.mirrored_picks.fetch_add(1, Ordering::Relaxed);
            context.stats.get().rust_call();
            Ok(Some((picks, debug_map)))
        })
    }

    /// Picks answered from the mirror, walks of a map whose keys changed, entries re-read, and
    /// picks sent back to read in place.
    fn counts(&self) -> HashMap<&'static str, u64> {
        HashMap::from([
            (
                "mirrored_picks",
                self.mirrored_picks.load(Ordering::Relaxed),
            ),
            ("resyncs", self.resyncs.load(Ordering::Relaxed)),
            ("entry_reads", self.entry_reads.load(Ordering::Relaxed)),
            ("read_in_place", self.read_in_place.load(Ordering::Relaxed)),
        ])
    }
}
