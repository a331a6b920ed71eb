//! `ParallelSlots`: the router's `max_parallel_requests` slots
//! (`litellm/router_rust/invoke/slots.py`) taken on litellm's own limit objects.
//!
//! The count stays on the `MaxParallelRequestsLimit` litellm caches in the router's routing cache
//! (its `in_flight`), so anyone holding that object (`_get_client(client_type=
//! "max_parallel_requests")`, a Python-mode attempt) sees and shares the same count. What Rust
//! replaces is the per-attempt lookup (`max_parallel_requests_limit`: a pydantic copy of
//! `model_info`, three imports, a service-target context and `DualCache.get_cache` with a failing
//! `json.loads`) and the `ExitStack` around the acquire. A cached limit is read in place with
//! `InMemoryCache.get_cache`'s expiry; anything else (first use, an expired or replaced limit, a
//! deployment or request litellm would read differently, verbose logging) is litellm's own lookup.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyInt, PyModule, PyString, PyType};
use pyo3::{ffi, Bound};

use crate::errors::Unsupported;
use crate::faults::{guarded, result_skew};
use crate::in_memory_cache::{self, CacheDicts};
use crate::stats::CallStats;

/// What `enter_deployment_slot` does with a deployment's limit.
enum Decision<'py> {
    /// No `MaxParallelRequestsLimit` (or a helper that holds none): an empty stack.
    NoSlot,
    /// A slot is free; `in_flight` as read.
    Free(Bound<'py, PyAny>, Bound<'py, PyAny>),
    /// Every slot is taken: `acquire` raises its 429.
    Full(Bound<'py, PyAny>),
}

#[pyclass(frozen, module = "litellm_rust._native")]
pub struct ParallelSlots {
    stats: Py<CallStats>,
    /// litellm's `max_parallel_requests_limit`, which builds (and caches) a limit on first use.
    lookup: Py<PyAny>,
    limit_type: Py<PyType>,
    dual_cache_type: Py<PyType>,
    in_memory_cache_type: Py<PyType>,
    /// The code of `InMemoryCache`'s default clock (`time.time()`), read natively.
    default_clock: Py<PyAny>,
    /// `slots._SLOTTED_KINDS`: the plan kinds whose attempts hold a slot.
    slotted_kinds: Py<PyFrozenSet>,
    /// `litellm._logging`: `DualCache.get_cache` prints its result while `set_verbose` is on.
    logging: Py<PyModule>,
}

fn exact_dict<'py>(value: Option<Bound<'py, PyAny>>) -> Option<Bound<'py, PyDict>> {
    value.and_then(|value| value.cast_into_exact::<PyDict>().ok())
}

/// `metadata` absent, None or a plain dict: what `get_parent_otel_span_from_kwargs` reads
/// without logging a failure.
fn plain_metadata(holder: &Bound<'_, PyDict>) -> PyResult<bool> {
    Ok(match holder.get_item(intern!(holder.py(), "metadata"))? {
        None => true,
        Some(value) => value.is_none() || value.is_exact_instance_of::<PyDict>(),
    })
}

/// `in_flight op 1` as `+=` / `-=` compute it.
fn in_place(
    value: &Bound<'_, PyAny>,
    op: unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject,
) -> PyResult<Py<PyAny>> {
    let py = value.py();
    let one = 1i64.into_pyobject(py)?;
    // SAFETY: both arguments are live objects; the result is a new reference or NULL with an error set.
    Ok(unsafe { Bound::from_owned_ptr_or_err(py, op(value.as_ptr(), one.as_ptr())) }?.unbind())
}

impl ParallelSlots {
    /// The limit litellm's lookup would return, read in place when it is cached and unexpired;
    /// `None` when only litellm's lookup can say.
    fn cached<'py>(
        &self,
        port: &Bound<'py, PyAny>,
        deployment: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = port.py();
        // `as_dict(deployment.get("model_info")).get("id")`: a dict with string keys as validated.
        let Some(info) = deployment
            .cast_exact::<PyDict>()
            .ok()
            .and_then(|deployment| {
                exact_dict(
                    deployment
                        .get_item(intern!(py, "model_info"))
                        .ok()
                        .flatten(),
                )
            })
        else {
            return Ok(None);
        };
        if !info
            .iter()
            .all(|(key, _)| key.is_exact_instance_of::<PyString>())
        {
            return Ok(None);
        }
        let Some(id) = info
            .get_item(intern!(py, "id"))?
            .and_then(|id| id.cast_into_exact::<PyString>().ok())
        else {
            return Ok(None);
        };
        let Ok(kwargs) = kwargs.cast_exact::<PyDict>() else {
            return Ok(None);
        };
        let params_plain = match kwargs.get_item(intern!(py, "litellm_params"))? {
            None => true,
            Some(params) if params.is_none() => true,
            Some(params) => params
                .cast_exact::<PyDict>()
                .map_or(Ok(false), plain_metadata)?,
        };
        if !params_plain
            || !plain_metadata(kwargs)?
            || self
                .logging
                .bind(py)
                .getattr(intern!(py, "set_verbose"))?
                .is_truthy()?
        {
            return Ok(None);
        }
        // A core without litellm's caches is for litellm's lookup to answer (or fail on).
        let Ok(cache) = port.getattr(intern!(py, "routing_cache")) else {
            return Ok(None);
        };
        if !cache.is_exact_instance(self.dual_cache_type.bind(py)) {
            return Ok(None);
        }
        let memory = cache.getattr(intern!(py, "in_memory_cache"))?;
        if !memory.is_exact_instance(self.in_memory_cache_type.bind(py)) {
            return Ok(None);
        }
        let Some(dicts) = CacheDicts::of(&memory)? else {
            return Ok(None);
        };
        let key = PyString::new(py, &routing::keys::parallel_requests_client(id.to_str()?));
        // A stored string would be parsed by `get_cache`'s `json.loads`; only the object itself is read here.
        let Some(limit) = dicts
            .entries
            .get_item(&key)?
            .filter(|value| value.is_exact_instance(self.limit_type.bind(py)))
        else {
            return Ok(None);
        };
        if in_memory_cache::expired(&memory, &dicts, &key, self.default_clock.bind(py))? {
            return Ok(None);
        }
        Ok(Some(limit))
    }

    fn limit_of<'py>(
        &self,
        port: &Bound<'py, PyAny>,
        deployment: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.cached(port, deployment, kwargs)? {
            Some(limit) => Ok(limit),
            // litellm's own failure is litellm's to raise, on its own path (not a Rust error).
            None => self
                .lookup
                .bind(port.py())
                .call1((port, deployment, kwargs))
                .map_err(|_| Unsupported::new_err("lookup_raised")),
        }
    }

    /// `enter_deployment_slot`'s plan test: async helpers of the slotted kinds hold a slot.
    fn slotted(&self, plan: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = plan.py();
        Ok(!plan.getattr(intern!(py, "sync"))?.is_truthy()?
            && self
                .slotted_kinds
                .bind(py)
                .contains(plan.getattr(intern!(py, "kind"))?)?)
    }

    /// What `slot.enter_context(limit)` does with `limit` (`MaxParallelRequestsLimit.acquire`).
    fn decide<'py>(&self, limit: Bound<'py, PyAny>) -> PyResult<Decision<'py>> {
        let py = limit.py();
        let limit_type = self.limit_type.bind(py);
        if !limit.is_instance(limit_type)? {
            return Ok(Decision::NoSlot);
        }
        if !limit.is_exact_instance(limit_type) {
            return Err(Unsupported::new_err("subclassed_limit"));
        }
        let in_flight = limit.getattr(intern!(py, "in_flight"))?;
        if !in_flight.is_exact_instance_of::<PyInt>() {
            return Err(Unsupported::new_err("unusual_in_flight"));
        }
        let full = in_flight.ge(limit.getattr(intern!(py, "max_parallel_requests"))?)?
            != (result_skew() != 0);
        Ok(if full {
            Decision::Full(limit)
        } else {
            Decision::Free(limit, in_flight)
        })
    }

    /// Whether the attempt's `plan` (when there is one) takes no slot.
    fn unslotted(&self, plan: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        plan.map_or(Ok(false), |plan| self.slotted(plan).map(|slotted| !slotted))
    }
}

#[pymethods]
impl ParallelSlots {
    /// litellm's objects, as the adapter hands them over.
    #[new]
    #[pyo3(signature = (stats, /, *, lookup, limit_type, dual_cache_type, in_memory_cache_type, slotted_kinds, logging))]
    fn new(
        stats: Py<CallStats>,
        lookup: Py<PyAny>,
        limit_type: Py<PyType>,
        dual_cache_type: Py<PyType>,
        in_memory_cache_type: Bound<'_, PyType>,
        slotted_kinds: Py<PyFrozenSet>,
        logging: Py<PyModule>,
    ) -> PyResult<Self> {
        Ok(ParallelSlots {
            stats,
            lookup,
            limit_type,
            dual_cache_type,
            default_clock: in_memory_cache::default_clock(&in_memory_cache_type)?,
            in_memory_cache_type: in_memory_cache_type.unbind(),
            slotted_kinds,
            logging,
        })
    }

    /// `max_parallel_requests_limit(core, deployment, kwargs)`: the same object litellm returns.
    fn limit<'py>(
        &self,
        port: &Bound<'py, PyAny>,
        deployment: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let limit = self.limit_of(port, deployment, kwargs)?;
            self.stats.get().rust_call();
            Ok(limit)
        })
    }

    /// `enter_deployment_slot(core, plan, deployment, kwargs)`, or `deployment_slot(core,
    /// deployment, kwargs)` when `plan` is None: the slot taken (or an empty one), or None when
    /// every slot is taken (litellm's own path then raises its 429).
    #[pyo3(signature = (port, plan, deployment, kwargs))]
    fn enter(
        &self,
        port: &Bound<'_, PyAny>,
        plan: Option<&Bound<'_, PyAny>>,
        deployment: &Bound<'_, PyAny>,
        kwargs: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Slot>> {
        guarded(|| {
            let decision = if self.unslotted(plan)? {
                Decision::NoSlot
            } else {
                self.decide(self.limit_of(port, deployment, kwargs)?)?
            };
            let entered = match decision {
                Decision::Free(limit, in_flight) => {
                    limit.setattr(
                        intern!(port.py(), "in_flight"),
                        in_place(&in_flight, ffi::PyNumber_InPlaceAdd)?,
                    )?;
                    Some(Slot {
                        limit: Some(limit.unbind()),
                    })
                }
                Decision::Full(_) => None,
                Decision::NoSlot => Some(Slot { limit: None }),
            };
            self.stats.get().rust_call();
            Ok(entered)
        })
    }

    /// What `enter` would do now, taking nothing (shadow mode compares it with litellm's own
    /// enter, which runs next): `("no_slot", None)`, `("admit", limit)` or `("full", limit)`.
    /// A limit litellm has not built yet raises `Unsupported("first_use")`: building it is
    /// litellm's to do.
    #[pyo3(signature = (port, plan, deployment, kwargs))]
    fn peek<'py>(
        &self,
        port: &Bound<'py, PyAny>,
        plan: Option<&Bound<'py, PyAny>>,
        deployment: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<(&'static str, Option<Bound<'py, PyAny>>)> {
        guarded(|| {
            let decision = if self.unslotted(plan)? {
                Decision::NoSlot
            } else {
                self.decide(
                    self.cached(port, deployment, kwargs)?
                        .ok_or_else(|| Unsupported::new_err("first_use"))?,
                )?
            };
            let peeked = match decision {
                Decision::NoSlot => ("no_slot", None),
                Decision::Free(limit, _) => ("admit", Some(limit)),
                Decision::Full(limit) => ("full", Some(limit)),
            };
            self.stats.get().rust_call();
            Ok(peeked)
        })
    }
}

/// A taken slot (or none), used where litellm uses the `contextlib.ExitStack` holding it:
/// `with`, `pop_all()` (an open chat stream takes the slot along) and `close()`.
#[pyclass(module = "litellm_rust._native")]
pub struct Slot {
    limit: Option<Py<PyAny>>,
}

impl Slot {
    /// `MaxParallelRequestsLimit.release`, once: `in_flight -= 1`.
    fn release(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(limit) = self.limit.take() {
            let limit = limit.bind(py);
            let in_flight = limit.getattr(intern!(py, "in_flight"))?;
            limit.setattr(
                intern!(py, "in_flight"),
                in_place(&in_flight, ffi::PyNumber_InPlaceSubtract)?,
            )?;
        }
        Ok(())
    }
}

#[pymethods]
impl Slot {
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_info: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    /// The slot moved to a new holder (`ExitStack.pop_all`); this one holds nothing after.
    fn pop_all(&mut self) -> Slot {
        Slot {
            limit: self.limit.take(),
        }
    }

    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release(py)
    }
}
