//! The counter keys the least-busy and usage-v2 picks read, built once per deployment id (and
//! model group, or model and minute) by `routing::keys` and kept as Python strings, which also
//! keep their hash: every cache lookup with them skips hashing.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple};

use routing::keys;

use crate::candidates::{deployments, Deployment};
use crate::errors::decline;

/// Past this many deployments, a key memo starts afresh (ids of removed deployments go with it).
const KEYS_KEPT: usize = 16_384;

/// The counter keys the least-busy and usage-v2 picks read, built once per deployment id (and
/// model group, or model and minute) instead of formatted on every pick: kept Python strings also
/// keep their hash, so every cache lookup with them skips hashing.
pub(crate) struct CounterKeys {
    /// id -> (group, `{group}_request_count:{id}`, `least_busy_reservations:{id}`)
    least_busy: Py<PyDict>,
    /// id -> (model, minute, `{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`)
    usage: Py<PyDict>,
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
    pub(crate) fn new(py: Python<'_>) -> Self {
        Self {
            least_busy: PyDict::new(py).unbind(),
            usage: PyDict::new(py).unbind(),
        }
    }

    /// (`{group}_request_count:{id}`, `least_busy_reservations:{id}`)
    pub(crate) fn least_busy<'py>(
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
                let count_key = PyString::new(py, &keys::least_busy_count(group_text, id_text));
                let reservation_key = PyString::new(py, &keys::least_busy_reservations(id_text));
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
                let (tpm_key, rpm_key) = keys::usage_counters(id.to_str()?, model_text, minute)
                    .ok_or_else(|| decline("unsupported_deployment"))?;
                let (tpm_key, rpm_key) = (PyString::new(py, &tpm_key), PyString::new(py, &rpm_key));
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

/// Each candidate's (`{group}_request_count:{id}`, `least_busy_reservations:{id}`) in one group.
pub(crate) struct LeastBusyKeys {
    pub(crate) group: String,
    pub(crate) keys: Vec<(Py<PyString>, Py<PyString>)>,
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

pub(crate) fn least_busy_keys(
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
