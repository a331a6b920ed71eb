//! The candidate deployments of a routing pick: litellm's deployment dicts read as the
//! `litellm/router_strategy` handlers read them (id, limits, prices), and what the picks share
//! about them (the input-token count, which lists are the same records).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use routing::{Limits, Prices};

use crate::errors::decline;
use crate::numbers::{number, state_number};

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

    pub(crate) fn param(&self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
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

    /// Its own input and output prices (`litellm_params`), each only when truthy, as
    /// `LowestCostLoggingHandler` reads them.
    pub(crate) fn prices(&self) -> PyResult<Prices> {
        let py = self.dict.py();
        let own = |key| -> PyResult<Option<f64>> {
            match self.param(key)? {
                Some(value) if value.is_truthy()? => Ok(Some(
                    number(&value)
                        .ok_or_else(|| decline("unsupported_deployment"))?
                        .as_f64(),
                )),
                _ => Ok(None),
            }
        };
        Ok(Prices {
            input: own(intern!(py, "input_cost_per_token"))?,
            output: own(intern!(py, "output_cost_per_token"))?,
        })
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

/// The request's input tokens from litellm's own counter, only when some candidate's tpm limit
/// makes them matter (litellm counts on every pick; the count decides nothing otherwise).
pub(crate) fn input_tokens(needed: bool, count: &Bound<'_, PyAny>) -> PyResult<f64> {
    if !needed {
        return Ok(0.0);
    }
    state_number(&count.call0()?)
}

/// Whether `list` holds the `known` objects, in order.
pub(crate) fn same_objects(known: &[Py<PyAny>], list: &Bound<'_, PyList>) -> bool {
    known.len() == list.len()
        && known
            .iter()
            .zip(list.iter())
            .all(|(known, item)| known.as_ptr() == item.as_ptr())
}

/// Plans kept per mirror, and per kind by `candidate_plans::CandidatePlans` (candidate lists differ by
/// cooldowns and model groups).
pub(crate) const PLANS_KEPT: usize = 16;
