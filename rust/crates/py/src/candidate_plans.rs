//! What the least-busy and usage-based (v1) picks derive from a list of the router's shared
//! candidate records, kept per list so the next pick over the same list reads none of it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use routing::Limits;

use crate::candidates::{deployments, same_objects, PLANS_KEPT};
use crate::counter_keys::{least_busy_keys, CounterKeys, LeastBusyKeys};
use crate::errors::decline;

/// What the usage-based (v1) pick reads of its candidates: each one's id, the last candidate with
/// each id (the handler's lookup loop), and that candidate's limits.
pub(crate) struct TpmCandidates {
    pub(crate) ids: Vec<Py<PyAny>>,
    pub(crate) id_texts: Vec<String>,
    pub(crate) last_with_id: HashMap<String, usize>,
    /// By candidate; read for the last candidate with each id only, as the handler reads them.
    limits: Vec<Option<Limits>>,
}

impl TpmCandidates {
    pub(crate) fn read(deployments_list: &Bound<'_, PyList>) -> PyResult<Self> {
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

    pub(crate) fn limits(&self, index: usize) -> PyResult<Limits> {
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
#[derive(Default)]
pub(crate) struct CandidatePlans {
    least_busy: Mutex<Vec<Known<LeastBusyKeys>>>,
    lowest_tpm: Mutex<Vec<Known<TpmCandidates>>>,
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
    pub(crate) fn least_busy(
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

    pub(crate) fn lowest_tpm(&self, list: &Bound<'_, PyList>) -> PyResult<Arc<TpmCandidates>> {
        known(
            &self.lowest_tpm,
            list,
            |_| true,
            || TpmCandidates::read(list),
        )
    }
}
