//! A running query's result, fetched chunk by chunk as Arrow record batches.
//!
//! Invariants:
//! - A [`ResultStream`] mutably borrows its statement, or owns it ([`Prepared::into_stream`]),
//!   so the statement neither runs again nor drops while its result is read; it owns the DuckDB
//!   result and destroys it once, before an owned statement.
//! - Every batch has the stream's schema and at most one DuckDB vector (2,048 rows).
//! - An interrupt nobody asked for is DuckDB losing a worker thread's error: the stream finds
//!   that error (running a SELECT again) or says it is lost; it never reports a cancel that did
//!   not happen. After such an error the stream only reports that it already ended.
//! - A statement that may change how SQL binds advances the database's binding generation
//!   again when its stream drops (see [`crate::statement_cache`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow::datatypes::SchemaRef;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use libduckdb_sys as ffi;

use super::Result;
use super::arrow_types::{ArrowOptions, convert_types};
use super::connection::Connection;
use super::raw::{borrowed_str, result_error, take_error_data};
use super::statement::Prepared;
use super::statement_kind::StatementKind;
use crate::error::{DuckdbError, SqlErrorKind};

/// A running query's result, fetched chunk by chunk as Arrow record batches.
pub struct ResultStream<'s> {
    res: ffi::duckdb_result,
    options: ArrowOptions,
    schema: SchemaRef,
    ffi_schema: FFI_ArrowSchema,
    /// The statement that produced the result, run again by [`Self::recover_worker_error`].
    stmt: ffi::duckdb_prepared_statement,
    kind: StatementKind,
    /// The statement may change how SQL binds: the generation advances again when it ends.
    changes_binding: bool,
    /// The result ended with an error that [`Self::recover_worker_error`] reported.
    failed: bool,
    conn: &'s Connection,
    /// The statement, when the stream owns it: kept alive while `stmt` is used, and dropped
    /// after the result (fields drop after [`Drop::drop`] ran).
    _owned: Option<Prepared<'s>>,
}

impl<'s> ResultStream<'s> {
    /// Runs `stmt` with a streaming result. `changes_binding`: the statement may change how SQL
    /// binds, and the generation advanced before it started.
    pub(super) fn start(stmt: &'s mut Prepared<'_>, changes_binding: bool) -> Result<Self> {
        let stream = Self::run(stmt.raw, stmt.kind(), stmt.conn, changes_binding, None)?;
        stmt.reuse_only_if_alike(&stream.schema);
        Ok(stream)
    }

    /// Runs `stmt` as [`Self::start`] does, the stream owning the statement.
    pub(super) fn start_owned(stmt: Prepared<'s>, changes_binding: bool) -> Result<Self> {
        let mut stream = Self::run(stmt.raw, stmt.kind(), stmt.conn, changes_binding, Some(stmt))?;
        let schema = Arc::clone(&stream.schema);
        if let Some(stmt) = stream._owned.as_mut() {
            stmt.reuse_only_if_alike(&schema);
        }
        Ok(stream)
    }

    /// Runs the statement `raw`, which the caller keeps alive while the stream lives (borrowed
    /// by it, or `owned`).
    fn run(
        raw: ffi::duckdb_prepared_statement,
        kind: StatementKind,
        conn: &'s Connection,
        changes_binding: bool,
        owned: Option<Prepared<'s>>,
    ) -> Result<Self> {
        // SAFETY: the result is owned by the ResultStream (or destroyed here on error); column
        // names belong to the result; logical types are destroyed by convert_types.
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_execute_prepared_streaming(raw, &mut res);
            if let Some(e) = result_error(&mut res, state) {
                ffi::duckdb_destroy_result(&mut res);
                return Err(e);
            }
            let options = ArrowOptions::of_result(&mut res);
            let (schema, ffi_schema) = match Self::schema_of_result(&mut res, &options) {
                Ok(schemas) => schemas,
                Err(e) => {
                    ffi::duckdb_destroy_result(&mut res);
                    return Err(e);
                }
            };
            Ok(ResultStream {
                res,
                options,
                schema,
                ffi_schema,
                stmt: raw,
                kind,
                changes_binding,
                failed: false,
                conn,
                _owned: owned,
            })
        }
    }

    /// The Arrow schema of a result, and the same for the C Data Interface.
    ///
    /// # Safety
    /// `res` is a live result.
    unsafe fn schema_of_result(
        res: &mut ffi::duckdb_result,
        options: &ArrowOptions,
    ) -> Result<(SchemaRef, FFI_ArrowSchema)> {
        // SAFETY: as the caller guarantees; column names belong to the result and are copied;
        // logical types are destroyed by convert_types.
        let (names, types) = unsafe {
            let n = ffi::duckdb_column_count(res);
            let names: Vec<String> = (0..n)
                .map(|i| borrowed_str(ffi::duckdb_column_name(res, i)).unwrap_or_default())
                .collect();
            let types = (0..n).map(|i| ffi::duckdb_column_logical_type(res, i)).collect();
            (names, types)
        };
        let schema = Arc::new(convert_types(options, types, &names)?);
        let ffi_schema = FFI_ArrowSchema::try_from(schema.as_ref())?;
        Ok((schema, ffi_schema))
    }
}

impl ResultStream<'_> {
    /// The result schema (identical to [`Prepared::result_schema`]).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch of at most one DuckDB vector (2048 rows), or `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.failed {
            return Err(DuckdbError::internal("the query already ended with an error"));
        }
        match self.fetch_batch() {
            Err(e) if self.is_lost_worker_error(&e) => {
                self.failed = true;
                Err(self.recover_worker_error())
            }
            other => other,
        }
    }

    /// Whether `e` is DuckDB 1.5's stand-in for an error raised in one of its worker threads.
    ///
    /// When a worker fails while the thread fetching a streaming result is between two
    /// fetches, the next fetch sees the connection's interrupt flag (which the failing worker
    /// set to stop its siblings) before it sees the worker's error, and reports a plain
    /// interrupt: the real message is lost. Nobody asked for an interrupt, so it is that.
    fn is_lost_worker_error(&self, e: &DuckdbError) -> bool {
        matches!(
            e,
            DuckdbError::Sql {
                kind: SqlErrorKind::Interrupted,
                ..
            }
        ) && !self.conn.interrupt_requested()
    }

    /// Finds the error a worker thread raised by running the statement again with its result
    /// materialized, a path where DuckDB reports worker errors faithfully (within DuckDB's
    /// memory limit, spilling to its temporary directory). Only SELECTs run again (one that
    /// calls `nextval` draws again: sequences promise no gapless values); for the rest, or when
    /// the second run does not fail the same way, the error says what happened.
    fn recover_worker_error(&mut self) -> DuckdbError {
        let lost = || {
            DuckdbError::internal(
                "DuckDB stopped the query because one of its worker threads failed, but did not report \
                 that thread's error (a defect of DuckDB 1.5's streaming results); run the statement again",
            )
        };
        if self.kind != StatementKind::Select {
            return lost();
        }
        tracing::debug!("DuckDB reported an interrupt nobody asked for: running the query again for its error");
        // SAFETY: the old result is destroyed before `res` is refilled (destroying zeroes it,
        // so Drop's second destroy is a no-op); `stmt` outlives `self` (it is borrowed for 's).
        let again = unsafe {
            ffi::duckdb_destroy_result(&mut self.res);
            let state = ffi::duckdb_execute_prepared(self.stmt, &mut self.res);
            let err = result_error(&mut self.res, state);
            ffi::duckdb_destroy_result(&mut self.res);
            err
        };
        match again {
            Some(e @ DuckdbError::Sql { kind, .. }) => match kind {
                SqlErrorKind::Interrupted if !self.conn.interrupt_requested() => lost(),
                // An explicit transaction is aborted by the first failure: the second run only
                // says so.
                SqlErrorKind::Transaction => lost(),
                _ => e,
            },
            Some(e) => e,
            None => lost(),
        }
    }

    fn fetch_batch(&mut self) -> Result<Option<RecordBatch>> {
        // SAFETY: `res` is a live result; the chunk is destroyed after conversion; the Arrow
        // array is moved into arrow-rs, which releases it.
        unsafe {
            let mut chunk = ffi::duckdb_fetch_chunk(self.res);
            if chunk.is_null() {
                if let Some(e) = result_error(&mut self.res, ffi::DuckDBSuccess) {
                    return Err(e);
                }
                return Ok(None);
            }
            let mut array = FFI_ArrowArray::empty();
            let err =
                ffi::duckdb_data_chunk_to_arrow(self.options.raw(), chunk, (&mut array as *mut FFI_ArrowArray).cast());
            ffi::duckdb_destroy_data_chunk(&mut chunk);
            if let Some(e) = take_error_data(err) {
                return Err(e);
            }
            let data = arrow::ffi::from_ffi(array, &self.ffi_schema)?;
            let structs = StructArray::from(data);
            let columns: Vec<ArrayRef> = structs.columns().to_vec();
            let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(structs.len()));
            Ok(Some(RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                columns,
                &options,
            )?))
        }
    }
}

impl Drop for ResultStream<'_> {
    fn drop(&mut self) {
        // SAFETY: owned result.
        unsafe { ffi::duckdb_destroy_result(&mut self.res) }
        if self.changes_binding {
            self.conn.generation().advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;

    use super::*;
    use crate::engine::Database;

    fn conn() -> Connection {
        Database::open(None, &[]).unwrap().connect().unwrap()
    }

    #[test]
    fn streams_a_query_with_the_prepared_schema() {
        let c = conn();
        let mut stmt = c
            .prepare("SELECT range AS i, range::VARCHAR AS s FROM range(5000)")
            .unwrap();
        let schema = stmt.result_schema().unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let mut stream = stmt.execute_streaming().unwrap();
        let mut rows = 0;
        while let Some(b) = stream.next_batch().unwrap() {
            assert_eq!(b.schema(), schema);
            rows += b.num_rows();
        }
        assert_eq!(rows, 5000);
    }

    /// A stream returned from where its statement was prepared: the statement lives as long as
    /// the stream, and one that changes how SQL binds advances the generation once it ends.
    #[test]
    fn a_stream_that_owns_its_statement_outlives_the_call_that_prepared_it() {
        let c = conn();
        let start = |sql: &str| c.prepare(sql).unwrap().into_stream().unwrap();
        let mut stream = start("SELECT range AS i FROM range(5000)");
        let mut rows = 0;
        while let Some(b) = stream.next_batch().unwrap() {
            rows += b.num_rows();
        }
        assert_eq!(rows, 5000);
        let before = c.generation().current();
        let created = start("CREATE TABLE t AS SELECT 1 AS x");
        let during = c.generation().current();
        assert!(during > before, "the generation advances when it starts");
        drop(created);
        assert!(c.generation().current() > during, "and again when it ends");
        assert!(c.prepare("SELECT x FROM t").is_ok());
    }

    #[test]
    fn errors_raised_mid_stream_surface() {
        let c = conn();
        // Several threads and a slow reader: the worker that fails usually does so while the
        // reader sleeps between fetches, which is when DuckDB 1.5 loses the error.
        c.execute_batch("SET threads = 4").unwrap();
        let mut stmt = c
            .prepare(
                "SELECT CASE WHEN i = 2500000 THEN error('boom at row 2500000') ELSE i END FROM range(3000000) t(i)",
            )
            .unwrap();
        let mut stream = stmt.execute_streaming().unwrap();
        let err = loop {
            match stream.next_batch() {
                Ok(Some(_)) => std::thread::sleep(std::time::Duration::from_millis(2)),
                Ok(None) => panic!("the stream ended without the error"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("boom at row 2500000"), "{err}");
    }

    /// What DuckDB 1.5 reports in place of a worker thread's error.
    fn bare_interrupt() -> DuckdbError {
        DuckdbError::Sql {
            kind: SqlErrorKind::Interrupted,
            message: "INTERRUPT Error: Interrupted!".into(),
        }
    }

    #[test]
    fn a_lost_worker_error_is_found_by_running_the_query_again() {
        let c = conn();
        let mut stmt = c
            .prepare("SELECT CASE WHEN i = 250000 THEN error('boom at row 250000') ELSE i END FROM range(300000) t(i)")
            .unwrap();
        let mut stream = stmt.execute_streaming().unwrap();
        assert!(stream.next_batch().unwrap().is_some());
        assert!(stream.is_lost_worker_error(&bare_interrupt()));
        let err = stream.recover_worker_error();
        assert!(err.to_string().contains("boom at row 250000"), "{err}");
    }

    #[test]
    fn only_read_only_statements_run_again() {
        let c = conn();
        c.execute_batch("CREATE TABLE t (i INTEGER)").unwrap();
        let mut stmt = c.prepare("INSERT INTO t SELECT 1 RETURNING i").unwrap();
        let mut stream = stmt.execute_streaming().unwrap();
        while stream.next_batch().unwrap().is_some() {}
        let err = stream.recover_worker_error();
        assert!(err.to_string().contains("did not report"), "{err}");
        drop(stream);
        let n = c.query_all("SELECT count(*)::INTEGER FROM t").unwrap();
        assert_eq!(n[0].column(0).as_primitive::<arrow::datatypes::Int32Type>().value(0), 1);
    }

    #[test]
    fn a_requested_interrupt_is_not_mistaken_for_a_lost_error() {
        let c = conn();
        let mut stmt = c.prepare("SELECT * FROM range(10000000)").unwrap();
        let stream = stmt.execute_streaming().unwrap();
        assert!(stream.is_lost_worker_error(&bare_interrupt()));
        c.interrupt_handle().interrupt();
        assert!(!stream.is_lost_worker_error(&bare_interrupt()));
    }
}
