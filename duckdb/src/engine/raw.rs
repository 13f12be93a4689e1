//! Strings and errors read out of DuckDB's C API.
//!
//! Invariants:
//! - Strings DuckDB owns are copied, never kept: a borrowed C string lives only as long as the
//!   call that reads it.
//! - An error handle (`duckdb_error_data`) taken here is destroyed here, exactly once.

use std::ffi::{CStr, CString, c_char};

use libduckdb_sys as ffi;

use super::Result;
use crate::error::{DuckdbError, SqlErrorKind};

/// `s` as a C string for DuckDB; Rust strings may hold a NUL, C strings may not.
pub(super) fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| DuckdbError::invalid("SQL text contains a NUL byte"))
}

/// Reads a DuckDB-owned C string without taking ownership.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that lives for the duration of the call.
pub(super) unsafe fn borrowed_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: caller guarantees a valid NUL-terminated string.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Reads a C string DuckDB allocated for the caller, and frees it with `duckdb_free`.
///
/// # Safety
/// `p` is null or a NUL-terminated string DuckDB allocated and handed to the caller.
pub(super) unsafe fn owned_str(p: *const c_char) -> Option<String> {
    // SAFETY: as the caller guarantees.
    let s = unsafe { borrowed_str(p) };
    if !p.is_null() {
        // SAFETY: DuckDB allocated `p` for us; it is freed once, after it was copied.
        unsafe { ffi::duckdb_free(p as *mut _) };
    }
    s
}

/// Takes an error out of a `duckdb_error_data`, destroying it.
pub(super) fn take_error_data(mut data: ffi::duckdb_error_data) -> Option<DuckdbError> {
    if data.is_null() {
        return None;
    }
    // SAFETY: `data` is a live error-data handle that we own and destroy once here.
    unsafe {
        let err = if ffi::duckdb_error_data_has_error(data) {
            let message = borrowed_str(ffi::duckdb_error_data_message(data)).unwrap_or_default();
            let kind = SqlErrorKind::from_duckdb(ffi::duckdb_error_data_error_type(data)).refined(&message);
            Some(DuckdbError::Sql { kind, message })
        } else {
            None
        };
        ffi::duckdb_destroy_error_data(&mut data);
        err
    }
}

/// Reads the error of a finished `duckdb_result`, if any.
///
/// # Safety
/// `res` was filled by a DuckDB execute/query call.
pub(super) unsafe fn result_error(res: &mut ffi::duckdb_result, state: ffi::duckdb_state) -> Option<DuckdbError> {
    // SAFETY: caller guarantees `res` is a filled result.
    unsafe {
        let message = borrowed_str(ffi::duckdb_result_error(res));
        if state == ffi::DuckDBSuccess && message.is_none() {
            return None;
        }
        let message = message.unwrap_or_else(|| "unknown DuckDB error".into());
        let kind = SqlErrorKind::from_duckdb(ffi::duckdb_result_error_type(res)).refined(&message);
        Some(DuckdbError::Sql { kind, message })
    }
}

/// The error a failed prepare left on its statement.
///
/// # Safety
/// `stmt` is the statement a DuckDB prepare call just filled, not yet destroyed.
pub(super) unsafe fn prepare_error(stmt: ffi::duckdb_prepared_statement) -> DuckdbError {
    // SAFETY: the prepare error string belongs to the statement, which outlives this call.
    let message = unsafe { borrowed_str(ffi::duckdb_prepare_error(stmt)) }
        .unwrap_or_else(|| "could not prepare statement".into());
    let kind = SqlErrorKind::from_message(&message).refined(&message);
    DuckdbError::Sql { kind, message }
}
