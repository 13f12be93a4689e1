//! Statements split and prepared by DuckDB's parser: their kind, parameters and result schema,
//! and running them.
//!
//! Invariants:
//! - A [`Prepared`] borrows its connection, so it cannot outlive it or leave its thread, and
//!   owns its DuckDB statement: it destroys it when dropped, or hands it back to the
//!   connection's cache when it was kept for reuse and nothing changed how SQL binds since it
//!   was prepared (see [`crate::statement_cache`]).
//! - Running a statement that is not a SELECT advances the database's binding generation
//!   before it starts and again once it has finished.
//! - A statement whose operation was interrupted before it started does not run.

use std::ptr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use libduckdb_sys as ffi;

use super::Result;
use super::arrow_types::schema_of;
use super::binding;
use super::connection::Connection;
use super::raw::{borrowed_str, cstring, owned_str, prepare_error, result_error};
use super::statement_kind::StatementKind;
use super::stream::ResultStream;
use crate::error::{DuckdbError, SqlErrorKind};
use crate::statement_cache::{Generation, Taken};

/// Statements split out of one SQL string by DuckDB's parser.
pub struct Extracted<'c> {
    raw: ffi::duckdb_extracted_statements,
    count: usize,
    conn: &'c Connection,
}

impl<'c> Extracted<'c> {
    /// Splits `sql` on `conn`.
    pub(super) fn new(conn: &'c Connection, sql: &str) -> Result<Self> {
        let c = cstring(sql)?;
        let mut raw: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: raw is owned by the returned Extracted (or destroyed here on error).
        unsafe {
            let count = ffi::duckdb_extract_statements(conn.raw(), c.as_ptr(), &mut raw);
            if count == 0 {
                let message = borrowed_str(ffi::duckdb_extract_statements_error(raw))
                    .unwrap_or_else(|| "empty statement".to_string());
                ffi::duckdb_destroy_extracted(&mut raw);
                let kind = SqlErrorKind::from_message(&message);
                return Err(DuckdbError::Sql { kind, message });
            }
            Ok(Extracted {
                raw,
                count: count as usize,
                conn,
            })
        }
    }

    /// How many statements the string held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never true: extraction of an empty string is an error).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Prepares statement `index`. Later statements may depend on earlier ones having run.
    pub fn prepare(&self, index: usize) -> Result<Prepared<'c>> {
        let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
        let generation = self.conn.generation().current();
        // SAFETY: index < count; raw is owned by Prepared.
        unsafe {
            let state = ffi::duckdb_prepare_extracted_statement(self.conn.raw(), self.raw, index as u64, &mut raw);
            Prepared::checked(self.conn, raw, state, generation)
        }
    }
}

impl Drop for Extracted<'_> {
    fn drop(&mut self) {
        // SAFETY: owned handle.
        unsafe { ffi::duckdb_destroy_extracted(&mut self.raw) }
    }
}

/// A prepared statement on a connection.
pub struct Prepared<'c> {
    pub(super) raw: ffi::duckdb_prepared_statement,
    pub(super) conn: &'c Connection,
    /// The database's generation when the statement was prepared.
    prepared_in: u64,
    /// The text under which the statement returns to the connection's cache when dropped.
    reuse: Option<String>,
    /// The result schema once described, when the statement has no parameters (see
    /// [`crate::statement_cache`]).
    schema: std::cell::OnceCell<SchemaRef>,
}

impl<'c> Prepared<'c> {
    /// Prepares the single statement `sql` on `conn`.
    pub(super) fn new(conn: &'c Connection, sql: &str) -> Result<Self> {
        let c = cstring(sql)?;
        let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
        let generation = conn.generation().current();
        // SAFETY: raw is owned by Prepared, whose Drop destroys it even on error.
        unsafe {
            let state = ffi::duckdb_prepare(conn.raw(), c.as_ptr(), &mut raw);
            Prepared::checked(conn, raw, state, generation)
        }
    }

    /// A statement taken from `conn`'s cache, kept under `sql`, prepared in generation
    /// `prepared_in`; it returns to the cache when dropped.
    pub(super) fn reused(conn: &'c Connection, taken: Taken, prepared_in: u64, sql: &str) -> Self {
        Prepared {
            raw: taken.raw,
            conn,
            prepared_in,
            reuse: Some(sql.to_string()),
            schema: taken.schema.map(std::cell::OnceCell::from).unwrap_or_default(),
        }
    }

    /// # Safety
    /// `raw` was just filled by a DuckDB prepare call on `conn`.
    unsafe fn checked(
        conn: &'c Connection,
        raw: ffi::duckdb_prepared_statement,
        state: ffi::duckdb_state,
        prepared_in: u64,
    ) -> Result<Self> {
        let prepared = Prepared {
            raw,
            conn,
            prepared_in,
            reuse: None,
            schema: std::cell::OnceCell::new(),
        };
        if state != ffi::DuckDBSuccess {
            // SAFETY: `raw` was just filled by a prepare call and is destroyed only by
            // `prepared`'s Drop, after this read.
            return Err(unsafe { prepare_error(raw) });
        }
        Ok(prepared)
    }

    /// Keeps the statement for [`Connection::take_prepared`] of `sql` once dropped, if it is
    /// a SELECT (the only kind kept). `sql` must be this statement's whole text, and the caller
    /// vouches for it: whoever takes the statement back trusts the checks it passed here
    /// (the duckling's sandbox does not look at a kept text again).
    pub fn keep_for_reuse(&mut self, sql: &str) {
        if self.kind() == StatementKind::Select {
            self.reuse = Some(sql.to_string());
        }
    }

    /// A statement whose operation was interrupted before it started does not run.
    fn refuse_if_interrupted(&self) -> Result<()> {
        if self.conn.interrupt_requested() {
            return Err(DuckdbError::Sql {
                kind: SqlErrorKind::Interrupted,
                message: "INTERRUPT Error: the statement was cancelled before it started".into(),
            });
        }
        Ok(())
    }

    /// Whether running the statement may change how later SQL binds.
    fn may_change_binding(&self) -> bool {
        self.kind() != StatementKind::Select
    }

    /// The statement's kind, from DuckDB's parser.
    pub fn kind(&self) -> StatementKind {
        // SAFETY: live prepared statement.
        StatementKind::from_duckdb(unsafe { ffi::duckdb_prepared_statement_type(self.raw) })
    }

    /// Number of parameters (`?`, `$1`, `$name`).
    pub fn param_count(&self) -> usize {
        // SAFETY: live prepared statement.
        unsafe { ffi::duckdb_nparams(self.raw) as usize }
    }

    /// The Arrow schema of the parameters. A parameter whose type DuckDB cannot infer before
    /// binding (`SELECT ?`) is announced as `Utf8`: the JDBC driver (18.3) can bind neither a
    /// `Null` nor a union parameter, and DuckDB casts text to whatever type the statement
    /// needs (`41 + ?::INTEGER`).
    pub fn param_schema(&self) -> Result<Schema> {
        let columns: Vec<_> = (1..=self.param_count() as u64)
            .map(|i| {
                // SAFETY: 1 <= i <= nparams; the name is ours to free (owned_str does); the
                // logical type is destroyed by schema_of.
                unsafe {
                    let name = owned_str(ffi::duckdb_parameter_name(self.raw, i)).unwrap_or_else(|| format!("${i}"));
                    (name, ffi::duckdb_param_logical_type(self.raw, i))
                }
            })
            .collect();
        self.conn
            .with_arrow_options(|options| schema_of(options, columns, DataType::Utf8))
    }

    /// The Arrow schema of the statement's result, exactly as execution will produce it.
    /// Columns whose type depends on a parameter not yet bound are `Null`.
    pub fn result_schema(&self) -> Result<SchemaRef> {
        if let Some(schema) = self.schema.get() {
            return Ok(Arc::clone(schema));
        }
        // SAFETY: live prepared statement.
        let n = unsafe { ffi::duckdb_prepared_statement_column_count(self.raw) };
        let columns = (0..n)
            .map(|i| {
                // SAFETY: i < column count; as in param_schema.
                unsafe {
                    let name = owned_str(ffi::duckdb_prepared_statement_column_name(self.raw, i)).unwrap_or_default();
                    (name, ffi::duckdb_prepared_statement_column_logical_type(self.raw, i))
                }
            })
            .collect();
        let schema = self
            .conn
            .with_arrow_options(|options| schema_of(options, columns, DataType::Null))?;
        let schema = Arc::new(schema);
        if self.param_count() == 0 {
            let _ = self.schema.set(Arc::clone(&schema));
        }
        Ok(schema)
    }

    /// Gives up reusing the statement when a run's result has another schema than the one it
    /// was described with: DuckDB binds some statements again on every run (a glob of files,
    /// which may have changed) but keeps describing them as first prepared, so only a fresh
    /// prepare describes what the files now hold.
    pub(super) fn reuse_only_if_alike(&mut self, ran: &SchemaRef) {
        if self.schema.get().is_some_and(|described| described != ran) {
            self.reuse = None;
            self.schema = std::cell::OnceCell::new();
        }
    }

    /// Binds row `row` of `params` to the statement's parameters, in column order.
    pub fn bind_row(&mut self, params: &RecordBatch, row: usize) -> Result<()> {
        if params.num_columns() != self.param_count() {
            return Err(DuckdbError::invalid(format!(
                "the statement has {} parameter(s) but {} value(s) were bound",
                self.param_count(),
                params.num_columns()
            )));
        }
        for (i, column) in params.columns().iter().enumerate() {
            // SAFETY: a live statement, and 1 <= i + 1 <= its parameter count (checked above).
            unsafe { binding::bind(self.raw, i + 1, column.as_ref(), row)? };
        }
        Ok(())
    }

    /// Executes and streams the result chunk by chunk. The stream's schema is the executed
    /// result's (it can be more specific than [`Self::result_schema`] when parameter types
    /// were only known once bound).
    pub fn execute_streaming(&mut self) -> Result<ResultStream<'_>> {
        let changes_binding = self.about_to_stream()?;
        ResultStream::start(self, changes_binding)
    }

    /// [`Self::execute_streaming`], the stream owning the statement: it can be returned from
    /// where the statement was prepared.
    pub fn into_stream(mut self) -> Result<ResultStream<'c>> {
        let changes_binding = self.about_to_stream()?;
        ResultStream::start_owned(self, changes_binding)
    }

    /// What starting a stream of this statement takes: refused when interrupted; the binding
    /// generation advanced when it may change how SQL binds (returned, for the stream to
    /// advance it again when it ends).
    fn about_to_stream(&mut self) -> Result<bool> {
        self.refuse_if_interrupted()?;
        let changes_binding = self.may_change_binding();
        if changes_binding {
            self.conn.generation().advance();
        }
        Ok(changes_binding)
    }

    /// Executes to completion and returns the number of rows changed (0 for non-DML).
    pub fn execute(&mut self) -> Result<u64> {
        self.refuse_if_interrupted()?;
        let changes_binding = self.may_change_binding();
        if changes_binding {
            self.conn.generation().advance();
        }
        let _after = changes_binding.then(|| AdvanceOnDrop(self.conn.generation()));
        // SAFETY: the result is destroyed before returning.
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_execute_prepared(self.raw, &mut res);
            if let Some(e) = result_error(&mut res, state) {
                ffi::duckdb_destroy_result(&mut res);
                return Err(e);
            }
            let changed = ffi::duckdb_rows_changed(&mut res);
            ffi::duckdb_destroy_result(&mut res);
            Ok(changed)
        }
    }
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("kind", &self.kind()).finish()
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if let Some(sql) = self.reuse.take()
            && self.prepared_in == self.conn.generation().current()
        {
            self.conn
                .keep_statement(sql, self.prepared_in, self.raw, self.schema.take());
            return;
        }
        // SAFETY: owned handle.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) }
    }
}

/// Advances a database's generation when dropped: after a statement that may change how SQL
/// binds has finished.
struct AdvanceOnDrop<'a>(&'a Generation);

impl Drop for AdvanceOnDrop<'_> {
    fn drop(&mut self) {
        self.0.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Database;

    fn conn() -> Connection {
        Database::open(None, &[]).unwrap().connect().unwrap()
    }

    #[test]
    fn reports_statement_kind_and_params() {
        let c = conn();
        c.execute_batch("CREATE TABLE t(a BIGINT, b VARCHAR)").unwrap();
        let stmt = c.prepare("INSERT INTO t VALUES (?, ?)").unwrap();
        assert_eq!(stmt.kind(), StatementKind::Insert);
        let ps = stmt.param_schema().unwrap();
        assert_eq!(ps.fields().len(), 2);
        assert_eq!(ps.field(0).data_type(), &DataType::Int64);
    }

    #[test]
    fn errors_carry_duckdb_messages() {
        let c = conn();
        let Err(e) = c.prepare("SELECT * FROM missing_table") else {
            panic!("expected an error")
        };
        assert!(e.to_string().contains("missing_table"), "{e}");
        assert!(
            matches!(
                e,
                DuckdbError::Sql {
                    kind: SqlErrorKind::Catalog,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
