//! The exceptions every glue module raises: `Unsupported` hands a call back to litellm (the reason
//! in `args[0]`), `RustPanic` is a panic caught at the boundary. `lib.rs` only registers them.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

create_exception!(
    _native,
    Unsupported,
    PyException,
    "The call needs behaviour the Rust path does not reproduce exactly; args[0] is the reason."
);
create_exception!(
    _native,
    RustPanic,
    PyException,
    "A Rust panic, caught at the boundary."
);

/// `Unsupported(reason)`: litellm serves the call, counted under `reason`.
pub(crate) fn decline(reason: &'static str) -> PyErr {
    Unsupported::new_err(reason)
}
