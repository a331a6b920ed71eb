//! `MemoryRateLimits`: the memory-only keyspace of litellm's proxy rate limiter, answering
//! synchronously; and `text_within`, the size test that keeps a small request's token estimate
//! off litellm's worker threads.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use rate_limiter::memory_store::{EntryKey, MemoryStore, Number, Value};

use crate::errors::Unsupported;
use crate::faults::{guarded, result_skew};
use crate::stats::CallStats;

/// A value litellm's store refuses: its own call raises the error.
fn unusual_value() -> PyErr {
    Unsupported::new_err("unusual_value")
}

/// litellm's entries (`RateLimitWindow`, `RateLimitCounter`, `RateLimitGauge`) by their
/// descriptor and suffix.
fn entry_key(entry: &Bound<'_, PyAny>) -> PyResult<EntryKey> {
    let py = entry.py();
    let scope = entry.getattr(intern!(py, "scope"))?;
    Ok(EntryKey {
        descriptor_key: scope.getattr(intern!(py, "descriptor_key"))?.extract()?,
        descriptor_value: scope.getattr(intern!(py, "descriptor_value"))?.extract()?,
        suffix: entry.getattr(intern!(py, "suffix"))?.extract()?,
    })
}

/// An int or a float, as litellm's store takes it (a bool is neither).
fn number(value: &Bound<'_, PyAny>) -> PyResult<Number> {
    if value.is_instance_of::<PyBool>() {
        return Err(unusual_value());
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map(Number::Int)
            .map_err(|_| unusual_value());
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Number::Float(value.extract()?));
    }
    Err(unusual_value())
}

fn value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::Text(text.to_str()?.to_owned()));
    }
    if let Ok(slots) = value.cast::<PyDict>() {
        let slot = |(name, at): (Bound<'_, PyAny>, Bound<'_, PyAny>)| {
            Ok((
                name.extract::<String>().map_err(|_| unusual_value())?,
                number(&at)?.as_f64(),
            ))
        };
        return slots
            .iter()
            .map(slot)
            .collect::<PyResult<_>>()
            .map(Value::Slots);
    }
    number(value).map(Value::Number)
}

fn number_object(py: Python<'_>, number: Number) -> PyResult<Py<PyAny>> {
    Ok(match number {
        Number::Int(int) => int.into_pyobject(py)?.into_any().unbind(),
        Number::Float(float) => float.into_pyobject(py)?.into_any().unbind(),
    })
}

fn value_object(py: Python<'_>, value: Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Number(number) => number_object(py, number)?,
        Value::Text(text) => text.into_pyobject(py)?.into_any().unbind(),
        Value::Slots(slots) => {
            let dict = PyDict::new(py);
            for (name, at) in slots {
                dict.set_item(name, at)?;
            }
            dict.into_any().unbind()
        }
    })
}

#[pyclass(module = "litellm_rust._native", frozen)]
pub struct MemoryRateLimits {
    store: MemoryStore,
    stats: Py<CallStats>,
}

#[pymethods]
impl MemoryRateLimits {
    #[new]
    fn new(stats: Py<CallStats>) -> Self {
        MemoryRateLimits {
            store: MemoryStore::default(),
            stats,
        }
    }

    fn get_local(&self, py: Python<'_>, entry: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        guarded(|| {
            let found = self.store.get(&entry_key(entry)?);
            self.stats.get().rust_call();
            found
                .map(|value| match (value, result_skew()) {
                    (Value::Number(Number::Int(int)), skew) => {
                        number_object(py, Number::Int(int + skew))
                    }
                    (value, _) => value_object(py, value),
                })
                .transpose()
        })
    }

    #[pyo3(signature = (entry, value, ttl_seconds))]
    fn set_local(
        &self,
        entry: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl_seconds: Option<f64>,
    ) -> PyResult<()> {
        guarded(|| {
            self.store
                .set(entry_key(entry)?, self::value(value)?, ttl_seconds);
            self.stats.get().rust_call();
            Ok(())
        })
    }

    /// The entry's number after adding `amount` (None when it holds no number). An increment's
    /// TTL is whole seconds in litellm's store.
    #[pyo3(signature = (entry, amount, ttl_seconds))]
    fn increment(
        &self,
        py: Python<'_>,
        entry: &Bound<'_, PyAny>,
        amount: &Bound<'_, PyAny>,
        ttl_seconds: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<PyAny>>> {
        guarded(|| {
            let ttl = if ttl_seconds.is_none() {
                None
            } else if let Ok(Number::Int(seconds)) = number(ttl_seconds) {
                Some(seconds as f64)
            } else {
                return Err(unusual_value());
            };
            let total = self
                .store
                .increment(&entry_key(entry)?, number(amount)?, ttl)
                .map_err(|_| Unsupported::new_err("int_overflow"))?;
            self.stats.get().rust_call();
            total.map(|number| number_object(py, number)).transpose()
        })
    }
}

// Deeper nesting than a request body has counts as over (and keeps the walk off the stack's end).
const MAX_DEPTH: usize = 32;

/// Whether the strings in `value` (through dicts, lists and tuples) hold at most `limit`
/// characters; anything else (a model object, bytes) counts as over.
#[pyfunction]
pub fn text_within(value: &Bound<'_, PyAny>, limit: usize) -> PyResult<bool> {
    fn walk(value: &Bound<'_, PyAny>, budget: &mut usize, depth: usize) -> PyResult<bool> {
        if depth > MAX_DEPTH {
            return Ok(false);
        }
        if value.is_instance_of::<PyString>() {
            let chars = value.len()?;
            if chars > *budget {
                return Ok(false);
            }
            *budget -= chars;
            return Ok(true);
        }
        if let Ok(dict) = value.cast::<PyDict>() {
            for (key, item) in dict.iter() {
                if !walk(&key, budget, depth + 1)? || !walk(&item, budget, depth + 1)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        if let Ok(list) = value.cast::<PyList>() {
            for item in list.iter() {
                if !walk(&item, budget, depth + 1)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        if let Ok(tuple) = value.cast::<PyTuple>() {
            for item in tuple.iter() {
                if !walk(&item, budget, depth + 1)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        Ok(value.is_none() || value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    }
    let mut budget = limit;
    walk(value, &mut budget, 0)
}
