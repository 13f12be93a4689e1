//! DuckDB's logical types as Arrow schemas, converted by DuckDB itself.
//!
//! Invariants:
//! - Schemas come from DuckDB's own Arrow conversion, the one that also converts the data, with
//!   the connection's (or the result's) Arrow options: a schema announced before a query runs
//!   is the schema of its batches.
//! - Every logical type handed to these functions is destroyed here, exactly once.
//! - A type DuckDB has not resolved yet (a parameter before binding) becomes a placeholder
//!   the caller chooses; it never reaches DuckDB's conversion.

use std::ffi::{CString, c_char};
use std::ptr;

use arrow::datatypes::{DataType, Field, Schema};
use arrow::ffi::FFI_ArrowSchema;
use libduckdb_sys as ffi;

use super::Result;
use super::raw::{cstring, take_error_data};
use crate::error::DuckdbError;

/// The options of DuckDB's Arrow conversion (for example, how it exports strings).
pub(super) struct ArrowOptions {
    raw: ffi::duckdb_arrow_options,
}

// SAFETY: the options are a copy of settings made when they were read; a connection's are
// kept in that connection, which one thread uses at a time, and a result's live with it.
unsafe impl Send for ArrowOptions {}

impl ArrowOptions {
    /// The options of connection `conn`.
    ///
    /// # Safety
    /// `conn` is a live connection, used on this thread.
    pub(super) unsafe fn of_connection(conn: ffi::duckdb_connection) -> Self {
        let mut raw: ffi::duckdb_arrow_options = ptr::null_mut();
        // SAFETY: as the caller guarantees; the options handle is owned by the value returned.
        unsafe { ffi::duckdb_connection_get_arrow_options(conn, &mut raw) };
        ArrowOptions { raw }
    }

    /// The options a result was produced with.
    ///
    /// # Safety
    /// `res` is a live result.
    pub(super) unsafe fn of_result(res: &mut ffi::duckdb_result) -> Self {
        // SAFETY: as the caller guarantees; the options handle is owned by the value returned.
        let raw = unsafe { ffi::duckdb_result_get_arrow_options(res) };
        ArrowOptions { raw }
    }

    pub(super) fn raw(&self) -> ffi::duckdb_arrow_options {
        self.raw
    }
}

impl Drop for ArrowOptions {
    fn drop(&mut self) {
        // SAFETY: owned handle.
        unsafe { ffi::duckdb_destroy_arrow_options(&mut self.raw) }
    }
}

/// Converts DuckDB logical types (taking ownership) to an Arrow schema with DuckDB's own
/// conversion, the one that also converts the data.
pub(super) fn convert_types(
    options: &ArrowOptions,
    mut types: Vec<ffi::duckdb_logical_type>,
    names: &[String],
) -> Result<Schema> {
    let cnames: Vec<CString> = match names.iter().map(|n| cstring(n)).collect::<Result<_>>() {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: the types are ours and not used again.
            unsafe { destroy_types(&mut types) };
            return Err(e);
        }
    };
    let mut name_ptrs: Vec<*const c_char> = cnames.iter().map(|c| c.as_ptr()).collect();
    let mut out = FFI_ArrowSchema::empty();
    // SAFETY: types and names have equal length; the schema is produced into an
    // FFI_ArrowSchema that arrow-rs releases; the types are ours and not used again.
    let err = unsafe {
        let err = ffi::duckdb_to_arrow_schema(
            options.raw,
            types.as_mut_ptr(),
            name_ptrs.as_mut_ptr(),
            types.len() as u64,
            (&mut out as *mut FFI_ArrowSchema).cast(),
        );
        destroy_types(&mut types);
        err
    };
    if let Some(e) = take_error_data(err) {
        return Err(e);
    }
    Schema::try_from(&out).map_err(DuckdbError::from)
}

/// Converts columns' logical types (taking ownership) to an Arrow schema; a type DuckDB has not
/// resolved becomes `unresolved_type`.
pub(super) fn schema_of(
    options: &ArrowOptions,
    columns: Vec<(String, ffi::duckdb_logical_type)>,
    unresolved_type: DataType,
) -> Result<Schema> {
    let mut unresolved = Vec::with_capacity(columns.len());
    let mut types = Vec::new();
    let mut names = Vec::new();
    for (name, mut t) in columns {
        // SAFETY: `t` is null or a live logical type we own.
        if unsafe { is_resolved(t) } {
            unresolved.push(None);
            types.push(t);
            names.push(name);
        } else {
            if !t.is_null() {
                // SAFETY: owned, destroyed once.
                unsafe { ffi::duckdb_destroy_logical_type(&mut t) };
            }
            unresolved.push(Some(Field::new(name, unresolved_type.clone(), true)));
        }
    }
    let converted = convert_types(options, types, &names)?;
    let mut resolved = converted.fields().iter();
    let fields: Vec<Field> = unresolved
        .into_iter()
        .map(|f| f.unwrap_or_else(|| resolved.next().expect("one converted field per type").as_ref().clone()))
        .collect();
    Ok(Schema::new(fields))
}

/// Whether DuckDB knows the type.
///
/// # Safety
/// `t` is null or a live logical type.
unsafe fn is_resolved(t: ffi::duckdb_logical_type) -> bool {
    if t.is_null() {
        return false;
    }
    // SAFETY: not null, so live, as the caller guarantees.
    let id = unsafe { ffi::duckdb_get_type_id(t) };
    id != ffi::DUCKDB_TYPE_DUCKDB_TYPE_INVALID && id != ffi::DUCKDB_TYPE_DUCKDB_TYPE_ANY
}

/// # Safety
/// The types are live, owned by the caller, and not used again.
unsafe fn destroy_types(types: &mut [ffi::duckdb_logical_type]) {
    for t in types {
        // SAFETY: as the caller guarantees.
        unsafe { ffi::duckdb_destroy_logical_type(t) };
    }
}
