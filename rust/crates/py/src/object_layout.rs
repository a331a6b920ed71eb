//! CPython 3.11-3.13 object layouts the mirrors read directly (neither is in the limited API):
//! a dict's PEP 509 version tag, which moves on every insertion, deletion or value replacement of
//! that one dict, and a list's item array. Each is checked on real objects before first use.

use std::ffi::c_void;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The head of a `PyDictObject`.
#[repr(C)]
struct DictHead {
    ob_refcnt: isize,
    ob_type: *mut c_void,
    ma_used: isize,
    ma_version_tag: u64,
}

/// A `PyListObject`.
#[repr(C)]
struct ListHead {
    ob_refcnt: isize,
    ob_type: *mut c_void,
    ob_size: isize,
    ob_item: *mut *mut ffi::PyObject,
    allocated: isize,
}

pub(crate) fn version_tag(dict: &Bound<'_, PyDict>) -> u64 {
    // SAFETY: only read once `dict_versions_work` has checked the running CPython's layout.
    unsafe { (*(dict.as_ptr() as *const DictHead)).ma_version_tag }
}

/// The dict's version tag, which moves whenever the dict changes; `None` on a CPython without
/// per-dict tags. Shadow comparisons use it to tell a state that moved between two reads.
#[pyfunction]
pub(crate) fn dict_version(dict: &Bound<'_, PyDict>) -> Option<u64> {
    dict_versions_work(dict.py()).then(|| version_tag(dict))
}

/// The list's items as the pointers it holds now.
pub(crate) fn list_items<'a>(list: &'a Bound<'_, PyList>) -> &'a [*mut ffi::PyObject] {
    // SAFETY: only read once `list_items_work` has checked the layout; the slice is the list's
    // own array, valid while the list is borrowed and not mutated (no Python code runs meanwhile).
    unsafe {
        let head = &*(list.as_ptr() as *const ListHead);
        if head.ob_size <= 0 {
            return &[];
        }
        std::slice::from_raw_parts(head.ob_item, head.ob_size as usize)
    }
}

fn layout_version(py: Python<'_>) -> bool {
    let version = py.version_info();
    ((3, 11)..(3, 14)).contains(&(version.major, version.minor))
}

/// Whether this CPython keeps PEP 509 version tags where `DictHead` reads them: 3.11 to 3.13,
/// checked on real dicts (3.14 dropped the per-mutation tag).
pub(crate) fn dict_versions_work(py: Python<'_>) -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        if !layout_version(py) {
            return false;
        }
        let probe = || -> PyResult<bool> {
            let (watched, other) = (PyDict::new(py), PyDict::new(py));
            let start = version_tag(&watched);
            watched.set_item("k", 1)?;
            let inserted = version_tag(&watched);
            other.set_item("k", 1)?;
            let untouched = version_tag(&watched) == inserted;
            watched.set_item("k", 2)?;
            let replaced = version_tag(&watched);
            watched.del_item("k")?;
            Ok(start != inserted
                && untouched
                && replaced != inserted
                && version_tag(&watched) != replaced)
        };
        probe().unwrap_or(false)
    })
}

/// Whether `list_items` reads this CPython's lists, checked on a real list.
pub(crate) fn list_items_work(py: Python<'_>) -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        if !layout_version(py) {
            return false;
        }
        let probe = || -> PyResult<bool> {
            let (first, second) = (PyDict::new(py), PyDict::new(py));
            let list = PyList::new(py, [&first, &second])?;
            let before = list_items(&list) == [first.as_ptr(), second.as_ptr()];
            list.append(&first)?;
            Ok(before && list_items(&list) == [first.as_ptr(), second.as_ptr(), first.as_ptr()])
        };
        probe().unwrap_or(false)
    })
}
