//! litellm's `InMemoryCache` (`litellm/caching/in_memory_cache.py`) as the glue reads it: every
//! part of its layout a component relies on, in one place. A cache is two dicts, `cache_dict`
//! (key -> value) and `ttl_dict` (key -> expiry on the cache's `_clock()`), read in place; an
//! expired key is removed through the cache's own `_remove_key` and a string value goes through
//! its own `get_cache` (which JSON-decodes it), so a read here leaves the cache as litellm's would.
//! A cache whose dicts are not plain dicts is not read here: the caller declines or asks litellm.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyFloat, PyString};

use routing::usage_mirror::{Entry, Value};

use crate::errors::decline;
use crate::numbers::{number, state_number};
use crate::object_layout::version_tag;

/// The cache's two dicts as they are now.
pub(crate) struct CacheDicts<'py> {
    pub(crate) entries: Bound<'py, PyDict>,
    pub(crate) expiries: Bound<'py, PyDict>,
}

impl<'py> CacheDicts<'py> {
    /// `None` when either is not a plain dict (a cache litellm changed, or a caller's subclass).
    pub(crate) fn of(cache: &Bound<'py, PyAny>) -> PyResult<Option<Self>> {
        let py = cache.py();
        let dict = |name| -> PyResult<Option<Bound<'py, PyDict>>> {
            Ok(cache.getattr(name)?.cast_into_exact::<PyDict>().ok())
        };
        let Some(entries) = dict(intern!(py, "cache_dict"))? else {
            return Ok(None);
        };
        Ok(dict(intern!(py, "ttl_dict"))?.map(|expiries| Self { entries, expiries }))
    }

    /// The dicts, or `Unsupported("unsupported_cache")`.
    pub(crate) fn required(cache: &Bound<'py, PyAny>) -> PyResult<Self> {
        Self::of(cache)?.ok_or_else(|| decline("unsupported_cache"))
    }

    /// The entry `key` has (`None`: absent), as the usage mirror copies it.
    pub(crate) fn entry(&self, key: &Bound<'_, PyAny>) -> PyResult<Option<Entry>> {
        let Some(value) = self.entries.get_item(key)? else {
            return Ok(None);
        };
        let value = if value.is_none() {
            Value::Null
        } else {
            number(&value).map_or(Value::Other, |value| Value::Number(value.as_f64()))
        };
        let expiry = self
            .expiries
            .get_item(key)?
            .map(|expiry| number(&expiry).map_or(f64::NAN, |expiry| expiry.as_f64()));
        Ok(Some(Entry { value, expiry }))
    }

    /// Which dicts these are and their PEP 509 version tags: any change of either moves it.
    /// Only for a CPython `object_layout::dict_versions_work` accepts.
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            entries: self.entries.as_ptr() as usize,
            expiries: self.expiries.as_ptr() as usize,
            entries_tag: version_tag(&self.entries),
            expiries_tag: version_tag(&self.expiries),
        }
    }
}

/// A cache's two dicts, by identity and version tag (see `CacheDicts::stamp`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    entries: usize,
    expiries: usize,
    entries_tag: u64,
    expiries_tag: u64,
}

/// The cache's clock now (`InMemoryCache._clock()`, `time.time` unless a test set another).
pub(crate) fn clock(cache: &Bound<'_, PyAny>) -> PyResult<f64> {
    cache.call_method0(intern!(cache.py(), "_clock"))?.extract()
}

/// `InMemoryCache.get_cache` at one instant (`now`, on the cache's clock).
pub(crate) struct MemoryCache<'py> {
    cache: Bound<'py, PyAny>,
    dicts: CacheDicts<'py>,
    now: f64,
}

impl<'py> MemoryCache<'py> {
    /// The cache read at its clock's reading now; `Unsupported("unsupported_cache")` when its
    /// dicts are not plain dicts.
    pub(crate) fn now(cache: &Bound<'py, PyAny>) -> PyResult<Self> {
        let now = clock(cache)?;
        Self::at(cache, now)
    }

    pub(crate) fn at(cache: &Bound<'py, PyAny>, now: f64) -> PyResult<Self> {
        Ok(Self {
            cache: cache.clone(),
            dicts: CacheDicts::required(cache)?,
            now,
        })
    }

    pub(crate) fn get(&self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = key.py();
        let Some(value) = self.dicts.entries.get_item(key)? else {
            return Ok(None);
        };
        if let Some(expiry) = self.dicts.expiries.get_item(key)? {
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

/// Whether `key` has expired by `InMemoryCache._is_key_expired` (`self._clock() >
/// self.ttl_dict[key]`; no expiry: never). `default_clock` is the code of the cache's default
/// `_clock` (`time.time()`): a cache with it is read on Rust's clock, any other clock is called.
pub(crate) fn expired<'py>(
    memory: &Bound<'py, PyAny>,
    dicts: &CacheDicts<'py>,
    key: &Bound<'py, PyString>,
    default_clock: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let py = memory.py();
    let Some(expires) = dicts.expiries.get_item(key)? else {
        return Ok(false);
    };
    let clock = memory.getattr(intern!(py, "_clock"))?;
    let default = clock
        .getattr_opt(intern!(py, "__code__"))?
        .is_some_and(|code| code.is(default_clock));
    match (default, expires.cast_exact::<PyFloat>()) {
        (true, Ok(expires)) => Ok(now_seconds() > expires.value()),
        _ => clock.call0()?.gt(&expires),
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// The code of the `_clock` a fresh cache of `cache_type` gets (`time.time()`), which `expired`
/// recognises to read the time natively.
pub(crate) fn default_clock(cache_type: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let py = cache_type.py();
    Ok(cache_type
        .call0()?
        .getattr(intern!(py, "_clock"))?
        .getattr(intern!(py, "__code__"))?
        .unbind())
}
