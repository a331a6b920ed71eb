//! Python numbers as litellm's routing arithmetic sees them: an exact `int` or `float`, never a
//! `bool` or a subclass, and no int an f64 cannot hold exactly.

use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

use routing::samples::Number;

use crate::errors::decline;

/// Integers beyond this are not exact in an f64; state holding them stays with litellm.
const EXACT_INT: i64 = 1 << 53;

/// A Python `int` or `float` (not `bool`, not a subclass), as litellm's arithmetic sees it.
pub(crate) fn number(value: &Bound<'_, PyAny>) -> Option<Number> {
    if let Ok(float) = value.cast_exact::<PyFloat>() {
        return Some(Number::Float(float.value()));
    }
    if value.is_exact_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .ok()
            .filter(|v| v.abs() <= EXACT_INT)
            .map(Number::Int);
    }
    None
}

/// A number read from litellm's state; anything else declines the call (`unsupported_state`).
pub(crate) fn state_number(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    number(value)
        .map(Number::as_f64)
        .ok_or_else(|| decline("unsupported_state"))
}

pub(crate) fn to_python<'py>(py: Python<'py>, value: Number) -> Bound<'py, PyAny> {
    match value {
        Number::Int(value) => value.into_pyobject(py).unwrap().into_any(),
        Number::Float(value) => PyFloat::new(py, value).into_any(),
    }
}
