//! Arrow record batches appended to a table (ingest).
//!
//! Invariants:
//! - An [`Appender`] borrows its connection and owns its DuckDB appender; dropping it flushes
//!   what is left and destroys it.
//! - Batches reach DuckDB in chunks of at most one DuckDB vector, the most DuckDB's Arrow
//!   conversion accepts.
//! - DuckDB's converted form of the batches' schema is made once per distinct schema and
//!   destroyed when the schema changes or the appender drops.
//! - Each Arrow array's release callback runs once: DuckDB nulls it when it takes the array,
//!   and arrow-rs releases it otherwise.

use std::ptr;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::SchemaRef;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use libduckdb_sys as ffi;

use super::Result;
use super::connection::Connection;
use super::raw::{cstring, take_error_data};
use crate::error::DuckdbError;

/// DuckDB's vector size: the largest chunk the Arrow-to-DuckDB conversion accepts.
const VECTOR_SIZE: usize = 2048;

/// Appends Arrow record batches to a table.
pub struct Appender<'c> {
    raw: ffi::duckdb_appender,
    conn: &'c Connection,
    converted: ffi::duckdb_arrow_converted_schema,
    converted_for: Option<SchemaRef>,
}

impl<'c> Appender<'c> {
    /// Opens an appender on `catalog.schema.table` of `conn`.
    pub(super) fn new(conn: &'c Connection, catalog: &str, schema: &str, table: &str) -> Result<Self> {
        let (c, s, t) = (cstring(catalog)?, cstring(schema)?, cstring(table)?);
        let mut raw: ffi::duckdb_appender = ptr::null_mut();
        // SAFETY: a live connection used on this thread; raw is owned by the Appender, whose
        // Drop destroys it even on error.
        let state =
            unsafe { ffi::duckdb_appender_create_ext(conn.raw(), c.as_ptr(), s.as_ptr(), t.as_ptr(), &mut raw) };
        let app = Appender {
            raw,
            conn,
            converted: ptr::null_mut(),
            converted_for: None,
        };
        if state != ffi::DuckDBSuccess {
            return Err(app.error());
        }
        Ok(app)
    }
}

impl Appender<'_> {
    fn error(&self) -> DuckdbError {
        // SAFETY: live appender.
        let data = unsafe { ffi::duckdb_appender_error_data(self.raw) };
        take_error_data(data).unwrap_or_else(|| DuckdbError::internal("appender failed"))
    }

    /// Appends every row of `batch`; its columns must match the table's in order.
    pub fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.converted_for.as_ref() != Some(batch.schema_ref()) {
            self.convert_schema(batch.schema_ref())?;
        }
        let structs = StructArray::from(batch.clone());
        let mut offset = 0;
        while offset < structs.len() {
            let len = VECTOR_SIZE.min(structs.len() - offset);
            self.append_chunk(&structs.slice(offset, len))?;
            offset += len;
        }
        Ok(())
    }

    /// Appends at most one vector of rows, in the converted schema.
    fn append_chunk(&mut self, rows: &StructArray) -> Result<()> {
        let mut array = FFI_ArrowArray::new(&rows.to_data());
        // SAFETY: the converted schema matches the rows; the chunk is destroyed after the
        // append; `array` is released by whoever owns it last (DuckDB nulls `release` if it
        // takes it).
        unsafe {
            let mut chunk: ffi::duckdb_data_chunk = ptr::null_mut();
            let err = ffi::duckdb_data_chunk_from_arrow(
                self.conn.raw(),
                (&mut array as *mut FFI_ArrowArray).cast(),
                self.converted,
                &mut chunk,
            );
            if let Some(e) = take_error_data(err) {
                return Err(e);
            }
            let state = ffi::duckdb_append_data_chunk(self.raw, chunk);
            ffi::duckdb_destroy_data_chunk(&mut chunk);
            if state != ffi::DuckDBSuccess {
                return Err(self.error());
            }
        }
        Ok(())
    }

    fn convert_schema(&mut self, schema: &SchemaRef) -> Result<()> {
        self.destroy_converted();
        self.converted_for = None;
        let mut ffi_schema = FFI_ArrowSchema::try_from(schema.as_ref())?;
        // SAFETY: DuckDB reads the schema (it does not take ownership) and fills `converted`.
        let err = unsafe {
            ffi::duckdb_schema_from_arrow(
                self.conn.raw(),
                (&mut ffi_schema as *mut FFI_ArrowSchema).cast(),
                &mut self.converted,
            )
        };
        if let Some(e) = take_error_data(err) {
            return Err(e);
        }
        self.converted_for = Some(Arc::clone(schema));
        Ok(())
    }

    fn destroy_converted(&mut self) {
        if !self.converted.is_null() {
            // SAFETY: owned handle.
            unsafe { ffi::duckdb_destroy_arrow_converted_schema(&mut self.converted) };
            self.converted = ptr::null_mut();
        }
    }

    /// Flushes appended rows into the table (constraint errors surface here).
    pub fn flush(&mut self) -> Result<()> {
        // SAFETY: live appender.
        if unsafe { ffi::duckdb_appender_flush(self.raw) } != ffi::DuckDBSuccess {
            return Err(self.error());
        }
        Ok(())
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        self.destroy_converted();
        // SAFETY: owned handle; destroy also closes (flushing what is left).
        unsafe { ffi::duckdb_appender_destroy(&mut self.raw) };
    }
}
