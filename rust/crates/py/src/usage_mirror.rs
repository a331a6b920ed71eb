//! usage-based-routing-v2's counters mirrored in Rust, one mirror per router `InMemoryCache`.
//!
//! The adapter wraps `InMemoryCache.set_cache`, `_remove_key` and `flush_cache` (every write
//! litellm's cache API makes, the handlers' `increment_cache` included): `begin` before the write,
//! `written` / `cleared` after it, which copy the written key's value and expiry from the cache
//! into the mirror. Writes that bypass those methods (a direct `cache_dict[key] = ...`, a
//! reassigned dict) are caught by CPython's per-dict version tags (PEP 509): the mirror is
//! stamped with the tags of `cache_dict` and `ttl_dict` after each write it copied, and any other
//! change of either dict moves a tag, so the next pick re-reads the whole cache first.
//!
//! A pick reads the mirror with `InMemoryCache.get_cache`'s semantics. A counter litellm's read
//! would not simply return as a number (an expired key, which its read removes; a string it would
//! JSON-decode) sends the pick back to reading the cache in place (`least_used`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use routing::usage_mirror::{CounterMirror, InFlightPlan, UsagePlan};

use crate::candidates::{deployments, input_tokens, same_objects, PLANS_KEPT};
use crate::counter_keys::{usage_keys, CounterKeys, LeastBusyKeys};
use crate::errors::decline;
use crate::faults::{guarded, skewed};
use crate::in_memory_cache::{self, CacheDicts, Stamp};
use crate::object_layout::dict_versions_work;
use crate::pick_inputs::PickContext;

/// A plan of a candidate list (the same dicts, in order) at one minute.
struct KnownPlan {
    deployments: Vec<Py<PyAny>>,
    minute: String,
    plan: UsagePlan,
}

impl KnownPlan {
    fn matches(&self, list: &Bound<'_, PyList>, minute: &str) -> bool {
        self.minute == minute && same_objects(&self.deployments, list)
    }
}

#[derive(Default)]
struct State {
    counters: CounterMirror,
    /// `None`: the mirror must re-read the cache before it answers.
    stamp: Option<Stamp>,
    plans: Vec<KnownPlan>,
    /// least-busy's plans, by the candidate keys (`PickContext::least_busy_keys`) they read: kept
    /// alive here, so no other plan takes its address.
    in_flight: Vec<(Arc<LeastBusyKeys>, InFlightPlan)>,
}

/// One router cache's usage-v2 counters, mirrored.
#[pyclass(frozen, module = "litellm_rust._native")]
pub struct UsageMirror {
    state: Mutex<State>,
    /// Set when a write could not take the state (another call held it): re-read before answering.
    stale: AtomicBool,
    mirrored_picks: AtomicU64,
    resyncs: AtomicU64,
    read_in_place: AtomicU64,
}

impl UsageMirror {
    /// The state, never waited for: the GIL may pass to another thread while a call holds it
    /// (a key's `__eq__`), and that thread must not block on it while holding the GIL. A call that
    /// finds it held marks the mirror stale and leaves the answer to litellm's cache.
    fn state(&self) -> Option<MutexGuard<'_, State>> {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            // A panic while holding the lock leaves a mirror that must be re-read.
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut state = poisoned.into_inner();
                state.stamp = None;
                state
            }
            Err(TryLockError::WouldBlock) => {
                self.stale.store(true, Ordering::Relaxed);
                return None;
            }
        };
        if self.stale.swap(false, Ordering::Relaxed) {
            state.stamp = None;
        }
        Some(state)
    }

    /// The mirror as the cache is now: re-read whole when anything moved the dicts' tags.
    fn synced(&self, state: &mut State, cache: &Bound<'_, PyAny>) -> PyResult<()> {
        let dicts = CacheDicts::required(cache)?;
        if state.stamp == Some(dicts.stamp()) {
            return Ok(());
        }
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        state.counters.clear();
        for (key, _) in dicts.entries.iter() {
            if let Ok(text) = key.cast::<PyString>() {
                state.counters.set(text.to_str()?, dicts.entry(&key)?);
            }
        }
        state.stamp = Some(dicts.stamp());
        Ok(())
    }

    /// A write into the mirror (`key`, or every entry for a flush). What it cannot read marks the
    /// mirror stale instead: a cache write never fails because of the mirror.
    fn copy(&self, cache: &Bound<'_, PyAny>, key: Option<&Bound<'_, PyAny>>, current: bool) {
        let copied = || -> PyResult<()> {
            let dicts = CacheDicts::required(cache)?;
            let Some(mut state) = self.state() else {
                return Ok(());
            };
            if !current || state.stamp.is_none() {
                state.stamp = None;
                return Ok(());
            }
            match key {
                None => state.counters.clear(),
                Some(key) => {
                    let text = key
                        .cast::<PyString>()
                        .map_err(|_| decline("unsupported_state"))?;
                    state.counters.set(text.to_str()?, dicts.entry(key)?);
                }
            }
            state.stamp = Some(dicts.stamp());
            Ok(())
        };
        if copied().is_err() {
            self.stale.store(true, Ordering::Relaxed);
        }
    }

    fn plan_index(
        state: &mut State,
        list: &Bound<'_, PyList>,
        minute: &str,
        keys: &CounterKeys,
    ) -> PyResult<usize> {
        if let Some(index) = state
            .plans
            .iter()
            .position(|known| known.matches(list, minute))
        {
            return Ok(index);
        }
        let candidates = deployments(list)?;
        let (ids, counter_keys) = usage_keys(&candidates, minute, keys)?;
        let mut inputs = Vec::with_capacity(ids.len());
        for ((id, (tpm, rpm)), deployment) in ids.into_iter().zip(&counter_keys).zip(&candidates) {
            inputs.push((
                id,
                tpm.to_str()?.to_owned(),
                rpm.to_str()?.to_owned(),
                deployment.limits(false)?,
            ));
        }
        if state.plans.len() >= PLANS_KEPT {
            state.plans.remove(0);
        }
        state.plans.push(KnownPlan {
            deployments: list.iter().map(Bound::unbind).collect(),
            minute: minute.to_owned(),
            plan: UsagePlan::new(inputs),
        });
        Ok(state.plans.len() - 1)
    }

    /// least-busy's in-flight counters of `plan`'s candidates as `InMemoryCache.get_cache` reads
    /// them at `now` (the cache's clock), from the mirror; `None` (counted) when they must be read
    /// in place: a counter litellm's read would not simply return as a number (an expired one,
    /// which its read removes), or the mirror held by another call.
    pub(crate) fn in_flight(
        &self,
        cache: &Bound<'_, PyAny>,
        now: f64,
        plan: &Arc<LeastBusyKeys>,
    ) -> PyResult<Option<Vec<Option<f64>>>> {
        let py = cache.py();
        let Some(mut state) = self.state() else {
            self.read_in_place.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        self.synced(&mut state, cache)?;
        let State {
            counters,
            in_flight,
            ..
        } = &mut *state;
        let index = match in_flight
            .iter()
            .position(|(known, _)| Arc::ptr_eq(known, plan))
        {
            Some(index) => index,
            None => {
                if in_flight.len() >= PLANS_KEPT {
                    in_flight.remove(0);
                }
                in_flight.push((plan.clone(), InFlightPlan::new(plan.count_keys(py)?)));
                in_flight.len() - 1
            }
        };
        let counts = in_flight[index]
            .1
            .mirrored_counts(counters, now)
            .map(<[_]>::to_vec);
        let counter = if counts.is_some() {
            &self.mirrored_picks
        } else {
            &self.read_in_place
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(counts)
    }
}

#[pymethods]
impl UsageMirror {
    /// A mirror of `cache` (litellm's `InMemoryCache`), empty until its first pick reads it whole.
    /// `Unsupported("dict_versions")` on a CPython whose dict version tags cannot be read.
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        if !dict_versions_work(py) {
            return Err(decline("dict_versions"));
        }
        Ok(Self {
            state: Mutex::new(State::default()),
            stale: AtomicBool::new(false),
            mirrored_picks: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            read_in_place: AtomicU64::new(0),
        })
    }

    /// Before a write through the cache's methods: whether the mirror is the cache's copy now.
    /// When it is not, it stays stale until a pick re-reads the cache.
    fn begin(&self, cache: &Bound<'_, PyAny>) -> bool {
        let Ok(dicts) = CacheDicts::required(cache) else {
            self.stale.store(true, Ordering::Relaxed);
            return false;
        };
        let Some(mut state) = self.state() else {
            return false;
        };
        let current = state.stamp == Some(dicts.stamp());
        if !current {
            state.stamp = None;
        }
        current
    }

    /// After a write of `key` that `begin` found `current`: the key's entry as the cache now holds it.
    fn written(&self, cache: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>, current: bool) {
        self.copy(cache, Some(key), current);
    }

    /// After `flush_cache`.
    fn cleared(&self, cache: &Bound<'_, PyAny>, current: bool) {
        self.copy(cache, None, current);
    }

    /// `least_used` read from the mirror on the cache's clock, for candidates that stay the same
    /// dicts while they are the same objects; `None` when a counter must be read in place (see
    /// the module docs).
    #[pyo3(signature = (deployments_list, /, *, minute, cache, count_input_tokens, context))]
    fn least_used<'py>(
        &self,
        deployments_list: &Bound<'py, PyList>,
        minute: &str,
        cache: &Bound<'py, PyAny>,
        count_input_tokens: &Bound<'py, PyAny>,
        context: &Bound<'py, PickContext>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        guarded(|| {
            let py = deployments_list.py();
            let context = context.get();
            let now = in_memory_cache::clock(cache)?;
            // No Python code runs while the state is held: the token count runs after.
            let (scored, kept) = {
                let Some(mut state) = self.state() else {
                    self.read_in_place.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                };
                self.synced(&mut state, cache)?;
                let index = Self::plan_index(&mut state, deployments_list, minute, &context.keys)?;
                let State {
                    counters, plans, ..
                } = &mut *state;
                let known = &mut plans[index].plan;
                match known.mirrored_usage(counters, now) {
                    Some(scored) => (scored.to_vec(), known.kept().to_vec()),
                    None => {
                        self.read_in_place.fetch_add(1, Ordering::Relaxed);
                        return Ok(None);
                    }
                }
            };
            let tokens = input_tokens(
                scored.iter().any(|c| c.limits.counts_tokens()),
                count_input_tokens,
            )?;
            let chosen = skewed(routing::lowest_usage(&scored, tokens), kept.len());
            self.mirrored_picks.fetch_add(1, Ordering::Relaxed);
            context.stats.get().rust_call();
            PyList::new(
                py,
                chosen
                    .iter()
                    .map(|&slot| deployments_list.get_item(kept[slot]))
                    .collect::<PyResult<Vec<_>>>()?,
            )
            .map(Some)
        })
    }

    /// Picks answered from the mirror, whole re-reads of the cache, and picks sent back to read
    /// the cache in place.
    fn counts(&self) -> HashMap<&'static str, u64> {
        HashMap::from([
            (
                "mirrored_picks",
                self.mirrored_picks.load(Ordering::Relaxed),
            ),
            ("resyncs", self.resyncs.load(Ordering::Relaxed)),
            ("read_in_place", self.read_in_place.load(Ordering::Relaxed)),
        ])
    }
}
