//! A small, safe wrapper over DuckDB's C API: databases, connections, prepared statements,
//! streaming Arrow results, parameter binding from Arrow, and the Arrow appender.
//!
//! Why our own wrapper rather than the `duckdb` crate: a server needs results that stream
//! chunk by chunk and fail cleanly when interrupted (the crate's streaming iterator panics on a
//! mid-stream error), the result schema of a statement *before* it runs (Flight SQL's
//! `dataset_schema`), the statement type DuckDB's own parser assigns (the sandbox relies on it),
//! and an interrupt handle that outlives a borrowed statement.
//!
//! Invariants:
//! - Every raw DuckDB handle is owned by exactly one Rust value and destroyed in its `Drop`.
//! - A [`Connection`] is used by one thread at a time: callers keep it behind a mutex or on one
//!   thread. The only calls made from other threads are `duckdb_interrupt` and
//!   `duckdb_query_progress`, through an [`InterruptHandle`], which DuckDB allows.
//! - Arrow data crosses the boundary through the C Data Interface; the release callback of every
//!   array runs exactly once (DuckDB nulls it when it takes ownership, arrow-rs otherwise).

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use libduckdb_sys as ffi;

use crate::error::{DucklingError, SqlErrorKind};
use crate::statement_cache::{Generation, StatementCache};

type Result<T, E = DucklingError> = std::result::Result<T, E>;

/// DuckDB's vector size: the largest chunk the Arrow-to-DuckDB conversion accepts.
const VECTOR_SIZE: usize = 2048;

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| DucklingError::invalid("SQL text contains a NUL byte"))
}

/// Reads a DuckDB-owned C string without taking ownership.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that lives for the duration of the call.
unsafe fn borrowed_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: caller guarantees a valid NUL-terminated string.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// Takes an error out of a `duckdb_error_data`, destroying it.
fn take_error_data(mut data: ffi::duckdb_error_data) -> Option<DucklingError> {
    if data.is_null() {
        return None;
    }
    // SAFETY: `data` is a live error-data handle that we own and destroy once here.
    unsafe {
        let err = if ffi::duckdb_error_data_has_error(data) {
            let message = borrowed_str(ffi::duckdb_error_data_message(data)).unwrap_or_default();
            let kind = SqlErrorKind::from_duckdb(ffi::duckdb_error_data_error_type(data));
            Some(DucklingError::Sql { kind, message })
        } else {
            None
        };
        ffi::duckdb_destroy_error_data(&mut data);
        err
    }
}

/// An open DuckDB database instance.
pub struct Database {
    raw: ffi::duckdb_database,
    /// Advanced around every statement that may change how SQL binds (see
    /// [`crate::statement_cache`]).
    generation: Generation,
    /// The names of the table functions DuckDB has (built in or from extensions), read once.
    table_functions: OnceLock<HashSet<String>>,
}

// SAFETY: a duckdb_database is a thread-safe handle to DuckDB's DatabaseInstance.
unsafe impl Send for Database {}
// SAFETY: as above; all methods taking &self are thread-safe in DuckDB.
unsafe impl Sync for Database {}

impl Database {
    /// Opens (or creates) a database. `path` `None` is an in-memory database. `options` are
    /// DuckDB configuration options applied before start-up, in order.
    pub fn open(path: Option<&Path>, options: &[(&str, String)]) -> Result<Arc<Self>> {
        let path = match path {
            Some(p) => cstring(&p.to_string_lossy())?,
            None => cstring(":memory:")?,
        };
        // SAFETY: config and database handles are created, used and destroyed here; error strings
        // returned by DuckDB are freed with duckdb_free.
        unsafe {
            let mut config: ffi::duckdb_config = ptr::null_mut();
            if ffi::duckdb_create_config(&mut config) != ffi::DuckDBSuccess {
                return Err(DucklingError::internal("could not create a DuckDB config"));
            }
            for (name, value) in options {
                let n = cstring(name)?;
                let v = cstring(value)?;
                if ffi::duckdb_set_config(config, n.as_ptr(), v.as_ptr()) != ffi::DuckDBSuccess {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(DucklingError::internal(format!(
                        "DuckDB refused the configuration option {name}={value}"
                    )));
                }
            }
            let mut db: ffi::duckdb_database = ptr::null_mut();
            let mut err: *mut c_char = ptr::null_mut();
            let state = ffi::duckdb_open_ext(path.as_ptr(), &mut db, config, &mut err);
            ffi::duckdb_destroy_config(&mut config);
            if state != ffi::DuckDBSuccess {
                let message = borrowed_str(err).unwrap_or_else(|| "unknown error".into());
                if !err.is_null() {
                    ffi::duckdb_free(err.cast());
                }
                return Err(DucklingError::internal(format!(
                    "could not open DuckDB database: {message}"
                )));
            }
            Ok(Arc::new(Self {
                raw: db,
                generation: Generation::default(),
                table_functions: OnceLock::new(),
            }))
        }
    }

    /// Opens a new connection to this database.
    pub fn connect(self: &Arc<Self>) -> Result<Connection> {
        let mut conn: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `self.raw` is a live database; the connection handle is owned by RawConnection.
        if unsafe { ffi::duckdb_connect(self.raw, &mut conn) } != ffi::DuckDBSuccess {
            return Err(DucklingError::internal("could not connect to DuckDB"));
        }
        Ok(Connection {
            statements: Default::default(),
            raw: Arc::new(RawConnection {
                raw: conn,
                interrupt_requested: AtomicBool::new(false),
                db: Arc::clone(self),
            }),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: every connection holds an Arc<Database>, so none is left open here.
        unsafe { ffi::duckdb_close(&mut self.raw) }
    }
}

struct RawConnection {
    raw: ffi::duckdb_connection,
    /// Whether an [`InterruptHandle`] interrupted the statement running now. DuckDB also
    /// reports an interrupt when a worker thread fails, so only this tells the two apart.
    interrupt_requested: AtomicBool,
    db: Arc<Database>,
}

// SAFETY: the connection is only *used* through `Connection` (one thread at a time); the
// InterruptHandle only calls duckdb_interrupt / duckdb_query_progress, which are thread-safe.
unsafe impl Send for RawConnection {}
// SAFETY: see above.
unsafe impl Sync for RawConnection {}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: last owner of the handle.
        unsafe { ffi::duckdb_disconnect(&mut self.raw) }
    }
}

/// Interrupts whatever a connection is running, from any thread.
#[derive(Clone)]
pub struct InterruptHandle {
    conn: Arc<RawConnection>,
}

impl InterruptHandle {
    /// Asks DuckDB to stop the connection's running query; it fails with an INTERRUPT error.
    pub fn interrupt(&self) {
        self.conn.interrupt_requested.store(true, Ordering::SeqCst);
        // SAFETY: the connection is alive (we hold an Arc); duckdb_interrupt is thread-safe.
        unsafe { ffi::duckdb_interrupt(self.conn.raw) }
    }

    /// The running query's progress in percent, or `None` when DuckDB cannot tell.
    pub fn progress(&self) -> Option<f64> {
        // SAFETY: as above.
        let p = unsafe { ffi::duckdb_query_progress(self.conn.raw) };
        (p.percentage >= 0.0).then_some(p.percentage)
    }
}

/// One DuckDB connection: its own transaction, temporary objects and current database.
pub struct Connection {
    /// Declared before `raw`: the kept statements are destroyed before the connection closes.
    statements: parking_lot::Mutex<StatementCache>,
    raw: Arc<RawConnection>,
}

impl Connection {
    /// A handle that interrupts this connection from another thread. A new handle starts a
    /// new operation: interrupts through earlier handles no longer apply, while one through
    /// this handle also stops statements that have not started yet (DuckDB itself forgets an
    /// interrupt that arrives between statements).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        self.raw.interrupt_requested.store(false, Ordering::SeqCst);
        InterruptHandle {
            conn: Arc::clone(&self.raw),
        }
    }

    fn raw(&self) -> ffi::duckdb_connection {
        self.raw.raw
    }

    /// The names of the settings DuckDB has, lowercased.
    pub fn setting_names(&self) -> Result<HashSet<String>> {
        self.strings("SELECT lower(name) FROM duckdb_settings()")
    }

    /// The first column of a host query's result, as strings.
    fn strings(&self, sql: &str) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for batch in &self.query_all(sql)? {
            let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
            out.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(out)
    }

    /// The names of every table function (and table macro) of DuckDB's system catalog: what
    /// the sandbox refuses unless reviewed. Read on first use, on a connection of its own.
    pub fn system_table_functions(&self) -> Result<&HashSet<String>> {
        let db = &self.raw.db;
        if let Some(names) = db.table_functions.get() {
            return Ok(names);
        }
        let names = db.connect()?.strings(
            "SELECT DISTINCT lower(function_name) FROM duckdb_functions() \
             WHERE database_name = 'system' AND function_type IN ('table', 'table_macro')",
        )?;
        if names.is_empty() {
            return Err(DucklingError::internal("DuckDB listed no table functions"));
        }
        Ok(db.table_functions.get_or_init(|| names))
    }

    fn generation(&self) -> &Generation {
        &self.raw.db.generation
    }

    /// The SELECT prepared earlier from exactly `sql` on this connection, if nothing that
    /// changes how it binds ran since (see [`crate::statement_cache`]). It returns to the
    /// connection's cache when dropped.
    pub fn take_prepared(&self, sql: &str) -> Option<Prepared<'_>> {
        let now = self.generation().current();
        let raw = self.statements.lock().take(sql, now)?;
        Some(Prepared {
            raw,
            conn: self,
            prepared_in: now,
            reuse: Some(sql.to_string()),
        })
    }

    /// How many prepared statements the connection keeps for reuse.
    pub fn kept_statements(&self) -> usize {
        self.statements.lock().len()
    }

    /// Runs SQL (possibly several statements) and discards any result. Host use only: this
    /// bypasses the sandbox's statement checks.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        let c = cstring(sql)?;
        self.generation().advance();
        // SAFETY: result is zero-initialised, filled by duckdb_query and destroyed once.
        let out = unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_query(self.raw(), c.as_ptr(), &mut res);
            let err = result_error(&mut res, state);
            ffi::duckdb_destroy_result(&mut res);
            err.map_or(Ok(()), Err)
        };
        self.generation().advance();
        out
    }

    /// Splits `sql` into statements with DuckDB's parser.
    pub fn extract(&self, sql: &str) -> Result<Extracted<'_>> {
        let c = cstring(sql)?;
        let mut raw: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: raw is owned by the returned Extracted (or destroyed here on error).
        unsafe {
            let count = ffi::duckdb_extract_statements(self.raw(), c.as_ptr(), &mut raw);
            if count == 0 {
                let message = borrowed_str(ffi::duckdb_extract_statements_error(raw))
                    .unwrap_or_else(|| "empty statement".to_string());
                ffi::duckdb_destroy_extracted(&mut raw);
                let kind = SqlErrorKind::from_message(&message);
                return Err(DucklingError::Sql { kind, message });
            }
            Ok(Extracted {
                raw,
                count: count as usize,
                conn: self,
            })
        }
    }

    /// Prepares a single statement.
    pub fn prepare(&self, sql: &str) -> Result<Prepared<'_>> {
        let c = cstring(sql)?;
        let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
        let generation = self.generation().current();
        // SAFETY: raw is owned by Prepared, whose Drop destroys it even on error.
        unsafe {
            let state = ffi::duckdb_prepare(self.raw(), c.as_ptr(), &mut raw);
            Prepared::checked(self, raw, state, generation)
        }
    }

    /// Runs a query and collects its whole result. For small, host-issued queries.
    pub fn query_all(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut stmt = self.prepare(sql)?;
        let mut stream = stmt.execute_streaming()?;
        let mut out = Vec::new();
        while let Some(b) = stream.next_batch()? {
            out.push(b);
        }
        Ok(out)
    }

    /// Opens an appender on `catalog.schema.table`, for Arrow ingest.
    pub fn appender(&self, catalog: &str, schema: &str, table: &str) -> Result<Appender<'_>> {
        let (c, s, t) = (cstring(catalog)?, cstring(schema)?, cstring(table)?);
        let mut raw: ffi::duckdb_appender = ptr::null_mut();
        // SAFETY: raw is owned by Appender.
        unsafe {
            let state = ffi::duckdb_appender_create_ext(self.raw(), c.as_ptr(), s.as_ptr(), t.as_ptr(), &mut raw);
            let app = Appender {
                raw,
                conn: self,
                converted: ptr::null_mut(),
                converted_for: None,
            };
            if state != ffi::DuckDBSuccess {
                return Err(app.error());
            }
            Ok(app)
        }
    }

    fn arrow_options(&self) -> ArrowOptions {
        let mut raw: ffi::duckdb_arrow_options = ptr::null_mut();
        // SAFETY: the options handle is owned by ArrowOptions.
        unsafe { ffi::duckdb_connection_get_arrow_options(self.raw(), &mut raw) };
        ArrowOptions { raw }
    }
}

struct ArrowOptions {
    raw: ffi::duckdb_arrow_options,
}

impl Drop for ArrowOptions {
    fn drop(&mut self) {
        // SAFETY: owned handle.
        unsafe { ffi::duckdb_destroy_arrow_options(&mut self.raw) }
    }
}

/// Converts DuckDB logical types (taking ownership) to an Arrow schema with DuckDB's own
/// conversion, the one that also converts the data.
fn convert_types(options: &ArrowOptions, mut types: Vec<ffi::duckdb_logical_type>, names: &[String]) -> Result<Schema> {
    let cnames: Vec<CString> = names.iter().map(|n| cstring(n)).collect::<Result<_>>()?;
    let mut name_ptrs: Vec<*const c_char> = cnames.iter().map(|c| c.as_ptr()).collect();
    let mut out = FFI_ArrowSchema::empty();
    // SAFETY: types and names have equal length; the logical types are destroyed below; the
    // schema is produced into an FFI_ArrowSchema that arrow-rs releases.
    let err = unsafe {
        let e = ffi::duckdb_to_arrow_schema(
            options.raw,
            types.as_mut_ptr(),
            name_ptrs.as_mut_ptr(),
            types.len() as u64,
            (&mut out as *mut FFI_ArrowSchema).cast(),
        );
        for t in types.iter_mut() {
            ffi::duckdb_destroy_logical_type(t);
        }
        e
    };
    if let Some(e) = take_error_data(err) {
        return Err(e);
    }
    Schema::try_from(&out).map_err(DucklingError::from)
}

/// Reads the error of a finished `duckdb_result`, if any.
///
/// # Safety
/// `res` was filled by a DuckDB execute/query call.
unsafe fn result_error(res: &mut ffi::duckdb_result, state: ffi::duckdb_state) -> Option<DucklingError> {
    // SAFETY: caller guarantees `res` is a filled result.
    unsafe {
        let message = borrowed_str(ffi::duckdb_result_error(res));
        if state == ffi::DuckDBSuccess && message.is_none() {
            return None;
        }
        let kind = SqlErrorKind::from_duckdb(ffi::duckdb_result_error_type(res));
        Some(DucklingError::Sql {
            kind,
            message: message.unwrap_or_else(|| "unknown DuckDB error".into()),
        })
    }
}

/// Statements split out of one SQL string by DuckDB's parser.
pub struct Extracted<'c> {
    raw: ffi::duckdb_extracted_statements,
    count: usize,
    conn: &'c Connection,
}

impl<'c> Extracted<'c> {
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

/// Declares [`StatementKind`] from one list of (kind = DuckDB constant) pairs: the enum, the
/// list of all kinds, and the mapping from DuckDB's statement types.
macro_rules! statement_kinds {
    ($($kind:ident = $ffi:ident),* $(,)?) => {
        /// The kind of statement, as DuckDB's parser classified it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum StatementKind {
            $($kind,)*
            /// A statement type this build does not know.
            Invalid,
        }

        impl StatementKind {
            /// Every kind, for exhaustive checks and tests.
            pub const ALL: &'static [StatementKind] = &[$(StatementKind::$kind,)* StatementKind::Invalid];

            fn from_duckdb(t: ffi::duckdb_statement_type) -> Self {
                match t {
                    $(ffi::$ffi => StatementKind::$kind,)*
                    _ => StatementKind::Invalid,
                }
            }
        }
    };
}

statement_kinds! {
    Select = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT,
    Insert = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT,
    Update = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE,
    Delete = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE,
    Merge = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO,
    Explain = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN,
    Create = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE,
    Drop = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP,
    Alter = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER,
    Transaction = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION,
    Copy = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY,
    CopyDatabase = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE,
    Export = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT,
    Attach = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH,
    Detach = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH,
    Load = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD,
    Extension = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION,
    UpdateExtensions = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS,
    Set = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET,
    VariableSet = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET,
    Pragma = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA,
    Call = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL,
    Prepare = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE,
    Execute = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE,
    Analyze = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE,
    Vacuum = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM,
    CreateFunction = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC,
    Relation = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION,
    LogicalPlan = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN,
    Multi = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI,
}

/// A prepared statement on a connection.
pub struct Prepared<'c> {
    raw: ffi::duckdb_prepared_statement,
    conn: &'c Connection,
    /// The database's generation when the statement was prepared.
    prepared_in: u64,
    /// The text under which the statement returns to the connection's cache when dropped.
    reuse: Option<String>,
}

impl<'c> Prepared<'c> {
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
        };
        if state != ffi::DuckDBSuccess {
            // SAFETY: the prepare error string belongs to the statement, read before its Drop.
            let message = unsafe { borrowed_str(ffi::duckdb_prepare_error(raw)) }
                .unwrap_or_else(|| "could not prepare statement".into());
            let kind = SqlErrorKind::from_message(&message);
            return Err(DucklingError::Sql { kind, message });
        }
        Ok(prepared)
    }

    /// Keeps the statement for [`Connection::take_prepared`] of `sql` once dropped, if it is
    /// a SELECT (the only kind kept). `sql` must be this statement's whole text.
    pub fn keep_for_reuse(&mut self, sql: &str) {
        if self.kind() == StatementKind::Select {
            self.reuse = Some(sql.to_string());
        }
    }

    /// A statement whose operation was interrupted before it started does not run.
    fn refuse_if_interrupted(&self) -> Result<()> {
        if self.conn.raw.interrupt_requested.load(Ordering::SeqCst) {
            return Err(DucklingError::Sql {
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
                // SAFETY: 1 <= i <= nparams; the name is freed with duckdb_free; the logical type
                // is destroyed by to_arrow_schema.
                unsafe {
                    let p = ffi::duckdb_parameter_name(self.raw, i);
                    let name = borrowed_str(p).unwrap_or_else(|| format!("${i}"));
                    if !p.is_null() {
                        ffi::duckdb_free(p as *mut _);
                    }
                    (name, ffi::duckdb_param_logical_type(self.raw, i))
                }
            })
            .collect();
        self.to_arrow_schema(columns, DataType::Utf8)
    }

    /// The Arrow schema of the statement's result, exactly as execution will produce it.
    /// Columns whose type depends on a parameter not yet bound are `Null`.
    pub fn result_schema(&self) -> Result<SchemaRef> {
        // SAFETY: live prepared statement; indexes are in range.
        let n = unsafe { ffi::duckdb_prepared_statement_column_count(self.raw) };
        let columns = (0..n)
            .map(|i| {
                // SAFETY: i < column count; as in param_schema.
                unsafe {
                    let p = ffi::duckdb_prepared_statement_column_name(self.raw, i);
                    let name = borrowed_str(p).unwrap_or_default();
                    if !p.is_null() {
                        ffi::duckdb_free(p as *mut _);
                    }
                    (name, ffi::duckdb_prepared_statement_column_logical_type(self.raw, i))
                }
            })
            .collect();
        Ok(Arc::new(self.to_arrow_schema(columns, DataType::Null)?))
    }

    /// Converts DuckDB logical types to an Arrow schema (taking ownership of the types); types
    /// DuckDB has not resolved become `unresolved`.
    fn to_arrow_schema(
        &self,
        columns: Vec<(String, ffi::duckdb_logical_type)>,
        unresolved_type: DataType,
    ) -> Result<Schema> {
        let mut unresolved = Vec::with_capacity(columns.len());
        let mut types = Vec::new();
        let mut names = Vec::new();
        for (name, mut t) in columns {
            // SAFETY: `t` is null or a live logical type we own.
            let id = if t.is_null() {
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_INVALID
            } else {
                unsafe { ffi::duckdb_get_type_id(t) }
            };
            if id == ffi::DUCKDB_TYPE_DUCKDB_TYPE_INVALID || id == ffi::DUCKDB_TYPE_DUCKDB_TYPE_ANY {
                if !t.is_null() {
                    // SAFETY: owned, destroyed once.
                    unsafe { ffi::duckdb_destroy_logical_type(&mut t) };
                }
                unresolved.push(Some(Field::new(name, unresolved_type.clone(), true)));
            } else {
                unresolved.push(None);
                types.push(t);
                names.push(name);
            }
        }
        let options = self.conn.arrow_options();
        let converted = convert_types(&options, types, &names)?;
        let mut resolved = converted.fields().iter();
        let fields: Vec<Field> = unresolved
            .into_iter()
            .map(|f| f.unwrap_or_else(|| resolved.next().expect("one converted field per type").as_ref().clone()))
            .collect();
        Ok(Schema::new(fields))
    }

    /// Binds row `row` of `params` to the statement's parameters, in column order.
    pub fn bind_row(&mut self, params: &RecordBatch, row: usize) -> Result<()> {
        if params.num_columns() != self.param_count() {
            return Err(DucklingError::invalid(format!(
                "the statement has {} parameter(s) but {} value(s) were bound",
                self.param_count(),
                params.num_columns()
            )));
        }
        for (i, col) in params.columns().iter().enumerate() {
            let value = arrow_value_to_duckdb(col.as_ref(), row)?;
            if value.is_null() {
                return Err(DucklingError::invalid(format!(
                    "parameter {} of type {} has a value DuckDB cannot represent",
                    i + 1,
                    col.data_type()
                )));
            }
            // SAFETY: index in range; the value is non-null and destroyed right after binding
            // (DuckDB copies it).
            unsafe {
                let mut v = value;
                let state = ffi::duckdb_bind_value(self.raw, (i + 1) as u64, v);
                ffi::duckdb_destroy_value(&mut v);
                if state != ffi::DuckDBSuccess {
                    return Err(DucklingError::invalid(format!(
                        "could not bind parameter {} of type {}",
                        i + 1,
                        col.data_type()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Executes and streams the result chunk by chunk. The stream's schema is the executed
    /// result's (it can be more specific than [`Self::result_schema`] when parameter types
    /// were only known once bound).
    pub fn execute_streaming(&mut self) -> Result<ResultStream<'_>> {
        self.refuse_if_interrupted()?;
        let changes_binding = self.may_change_binding();
        if changes_binding {
            self.conn.generation().advance();
        }
        // SAFETY: the result is owned by ResultStream (or destroyed here on error); column
        // names belong to the result; logical types are destroyed by convert_types.
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_execute_prepared_streaming(self.raw, &mut res);
            if let Some(e) = result_error(&mut res, state) {
                ffi::duckdb_destroy_result(&mut res);
                return Err(e);
            }
            let options = ArrowOptions {
                raw: ffi::duckdb_result_get_arrow_options(&mut res),
            };
            let n = ffi::duckdb_column_count(&mut res);
            let names: Vec<String> = (0..n)
                .map(|i| borrowed_str(ffi::duckdb_column_name(&mut res, i)).unwrap_or_default())
                .collect();
            let types = (0..n).map(|i| ffi::duckdb_column_logical_type(&mut res, i)).collect();
            let schema = match convert_types(&options, types, &names) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    ffi::duckdb_destroy_result(&mut res);
                    return Err(e);
                }
            };
            let ffi_schema = match FFI_ArrowSchema::try_from(schema.as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    ffi::duckdb_destroy_result(&mut res);
                    return Err(e.into());
                }
            };
            Ok(ResultStream {
                res,
                options,
                schema,
                ffi_schema,
                stmt: self.raw,
                kind: self.kind(),
                changes_binding,
                failed: false,
                conn: self.conn,
                _stmt: std::marker::PhantomData,
            })
        }
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
            self.conn.statements.lock().put(sql, self.prepared_in, self.raw);
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
    _stmt: std::marker::PhantomData<&'s mut ()>,
}

impl ResultStream<'_> {
    /// The result schema (identical to [`Prepared::result_schema`]).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch of at most one DuckDB vector (2048 rows), or `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.failed {
            return Err(DucklingError::internal("the query already ended with an error"));
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
    fn is_lost_worker_error(&self, e: &DucklingError) -> bool {
        matches!(
            e,
            DucklingError::Sql {
                kind: SqlErrorKind::Interrupted,
                ..
            }
        ) && !self.conn.raw.interrupt_requested.load(Ordering::SeqCst)
    }

    /// Finds the error a worker thread raised by running the statement again with its result
    /// materialized, a path where DuckDB reports worker errors faithfully (within DuckDB's
    /// memory limit, spilling to its temporary directory). Only SELECTs run again (one that
    /// calls `nextval` draws again: sequences promise no gapless values); for the rest, or when
    /// the second run does not fail the same way, the error says what happened.
    fn recover_worker_error(&mut self) -> DucklingError {
        let lost = || {
            DucklingError::internal(
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
            Some(e @ DucklingError::Sql { kind, .. }) => match kind {
                SqlErrorKind::Interrupted if !self.conn.raw.interrupt_requested.load(Ordering::SeqCst) => lost(),
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
                ffi::duckdb_data_chunk_to_arrow(self.options.raw, chunk, (&mut array as *mut FFI_ArrowArray).cast());
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

/// Appends Arrow record batches to a table.
pub struct Appender<'c> {
    raw: ffi::duckdb_appender,
    conn: &'c Connection,
    converted: ffi::duckdb_arrow_converted_schema,
    converted_for: Option<SchemaRef>,
}

impl Appender<'_> {
    fn error(&self) -> DucklingError {
        // SAFETY: live appender.
        let data = unsafe { ffi::duckdb_appender_error_data(self.raw) };
        take_error_data(data).unwrap_or_else(|| DucklingError::internal("appender failed"))
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
            let slice = structs.slice(offset, len);
            let mut array = FFI_ArrowArray::new(&slice.to_data());
            // SAFETY: the converted schema matches the batch; the chunk is destroyed after the
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
            offset += len;
        }
        Ok(())
    }

    fn convert_schema(&mut self, schema: &SchemaRef) -> Result<()> {
        self.destroy_converted();
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

/// Converts one Arrow value to a DuckDB value for parameter binding.
fn arrow_value_to_duckdb(array: &dyn Array, row: usize) -> Result<ffi::duckdb_value> {
    use arrow::datatypes::*;
    if let DataType::Union(..) = array.data_type() {
        let union = array.as_union();
        let child = union.child(union.type_id(row));
        return arrow_value_to_duckdb(child.as_ref(), union.value_offset(row));
    }
    // A NullArray has no validity buffer, so `is_null` says false: check its type too.
    if array.data_type() == &DataType::Null || array.is_null(row) {
        // SAFETY: plain constructor.
        return Ok(unsafe { ffi::duckdb_create_null_value() });
    }
    // SAFETY: all constructors below copy their inputs.
    let v = unsafe {
        match array.data_type() {
            DataType::Boolean => ffi::duckdb_create_bool(array.as_boolean().value(row)),
            DataType::Int8 => ffi::duckdb_create_int8(array.as_primitive::<Int8Type>().value(row)),
            DataType::Int16 => ffi::duckdb_create_int16(array.as_primitive::<Int16Type>().value(row)),
            DataType::Int32 => ffi::duckdb_create_int32(array.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => ffi::duckdb_create_int64(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => ffi::duckdb_create_uint8(array.as_primitive::<UInt8Type>().value(row)),
            DataType::UInt16 => ffi::duckdb_create_uint16(array.as_primitive::<UInt16Type>().value(row)),
            DataType::UInt32 => ffi::duckdb_create_uint32(array.as_primitive::<UInt32Type>().value(row)),
            DataType::UInt64 => ffi::duckdb_create_uint64(array.as_primitive::<UInt64Type>().value(row)),
            DataType::Float32 => ffi::duckdb_create_float(array.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => ffi::duckdb_create_double(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => varchar(array.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => varchar(array.as_string::<i64>().value(row)),
            DataType::Utf8View => varchar(array.as_string_view().value(row)),
            DataType::Binary => blob(array.as_binary::<i32>().value(row)),
            DataType::LargeBinary => blob(array.as_binary::<i64>().value(row)),
            DataType::BinaryView => blob(array.as_binary_view().value(row)),
            DataType::FixedSizeBinary(_) => blob(array.as_fixed_size_binary().value(row)),
            DataType::Date32 => ffi::duckdb_create_date(ffi::duckdb_date {
                days: array.as_primitive::<Date32Type>().value(row),
            }),
            DataType::Timestamp(unit, tz) => {
                let micros = match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000,
                    TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row) * 1_000,
                    TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
                    TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row) / 1_000,
                };
                let ts = ffi::duckdb_timestamp { micros };
                if tz.is_some() {
                    ffi::duckdb_create_timestamp_tz(ts)
                } else {
                    ffi::duckdb_create_timestamp(ts)
                }
            }
            // Only decimals DuckDB can hold exactly: anything else travels as text, which DuckDB
            // parses and range-checks (a bad value there is an error, not a crash).
            DataType::Decimal128(precision, scale)
                if (1..=38).contains(precision)
                    && (0..=*precision as i8).contains(scale)
                    && array.as_primitive::<Decimal128Type>().value(row).unsigned_abs()
                        < 10u128.pow(*precision as u32) =>
            {
                let v = array.as_primitive::<Decimal128Type>().value(row);
                ffi::duckdb_create_decimal(ffi::duckdb_decimal {
                    width: *precision,
                    scale: *scale as u8,
                    value: ffi::duckdb_hugeint {
                        lower: v as u64,
                        upper: (v >> 64) as i64,
                    },
                })
            }
            _ => {
                // Everything else travels as its text form; DuckDB casts it to the parameter type.
                let text = arrow::util::display::array_value_to_string(array, row)?;
                varchar(&text)
            }
        }
    };
    Ok(v)
}

/// # Safety
/// Plain constructor; copies `s`.
unsafe fn varchar(s: &str) -> ffi::duckdb_value {
    // SAFETY: pointer and length describe `s`.
    unsafe { ffi::duckdb_create_varchar_length(s.as_ptr().cast(), s.len() as u64) }
}

/// # Safety
/// Plain constructor; copies `b`.
unsafe fn blob(b: &[u8]) -> ffi::duckdb_value {
    // SAFETY: pointer and length describe `b`.
    unsafe { ffi::duckdb_create_blob(b.as_ptr(), b.len() as u64) }
}

/// DuckDB's SQL name for an Arrow type, for `CREATE TABLE` during ingest.
pub fn duckdb_type_for_arrow(dt: &DataType) -> Result<String> {
    Ok(match dt {
        DataType::Null => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => match (unit, tz) {
            (_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
            (TimeUnit::Second, None) => "TIMESTAMP_S".into(),
            (TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
            (TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
            (TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        },
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if *p <= 38 => {
            format!("DECIMAL({p},{s})")
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => "DOUBLE".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::LargeListView(f) => {
            format!("{}[]", duckdb_type_for_arrow(f.data_type())?)
        }
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", duckdb_type_for_arrow(f.data_type())?),
        DataType::Struct(fields) => format!("STRUCT({})", column_definitions(fields)?),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                duckdb_type_for_arrow(kv[0].data_type())?,
                duckdb_type_for_arrow(kv[1].data_type())?
            ),
            other => return Err(DucklingError::invalid(format!("unsupported Arrow map layout {other}"))),
        },
        DataType::Dictionary(_, value) => duckdb_type_for_arrow(value)?,
        other => {
            return Err(DucklingError::invalid(format!(
                "Arrow type {other} has no DuckDB column type"
            )));
        }
    })
}

/// `batch` with each column cast to the type of `schema`'s field in its place, keeping the
/// row count (even of a batch without columns).
pub fn cast_to_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast_column(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `array` cast to `to`, member by member for unions (which Arrow's cast does not reach into).
fn cast_column(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, arrow::error::ArrowError> {
    match (array.data_type(), to) {
        (DataType::Union(_, mode), DataType::Union(fields, to_mode)) if mode == to_mode && array.data_type() != to => {
            let union = array.as_union();
            let children = fields
                .iter()
                .map(|(id, f)| cast_column(union.child(id), f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(arrow::array::UnionArray::try_new(
                fields.clone(),
                union.type_ids().clone(),
                union.offsets().cloned(),
                children,
            )?))
        }
        _ => arrow::compute::cast(array, to),
    }
}

/// `"name" TYPE, …` for Arrow fields: a `CREATE TABLE` column list, or a `STRUCT`'s members.
pub fn column_definitions(fields: &arrow::datatypes::Fields) -> Result<String> {
    let parts = fields
        .iter()
        .map(|f| {
            Ok(format!(
                "{} {}",
                quote_ident(f.name()),
                duckdb_type_for_arrow(f.data_type())?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(", "))
}

/// Quotes an SQL identifier for DuckDB.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal for DuckDB.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

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
    fn binds_rows_and_appends_batches() {
        let c = conn();
        c.execute_batch("CREATE TABLE t(a BIGINT, b VARCHAR)").unwrap();
        let batch = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "b",
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut stmt = c.prepare("INSERT INTO t VALUES ($1, $2)").unwrap();
        for row in 0..batch.num_rows() {
            stmt.bind_row(&batch, row).unwrap();
            assert_eq!(stmt.execute().unwrap(), 1);
        }
        {
            let mut app = c.appender("memory", "main", "t").unwrap();
            app.append(&batch).unwrap();
            app.flush().unwrap();
        }
        let out = c.query_all("SELECT count(*), sum(a), count(b) FROM t").unwrap();
        let s = arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string();
        assert!(s.contains("| 6            | 12     | 4        |"), "{s}");
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
                DucklingError::Sql {
                    kind: SqlErrorKind::Catalog,
                    ..
                }
            ),
            "{e:?}"
        );
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
    fn bare_interrupt() -> DucklingError {
        DucklingError::Sql {
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

    #[test]
    fn an_interrupt_before_a_statement_starts_stops_it() {
        let c = conn();
        let h = c.interrupt_handle();
        h.interrupt();
        let mut stmt = c.prepare("SELECT 1").unwrap();
        let e = stmt.execute_streaming().err().expect("interrupted before it started");
        assert!(
            matches!(
                e,
                DucklingError::Sql {
                    kind: SqlErrorKind::Interrupted,
                    ..
                }
            ),
            "{e:?}"
        );
        // A new operation's handle starts afresh.
        let _next = c.interrupt_handle();
        assert!(stmt.execute_streaming().unwrap().next_batch().unwrap().is_some());
    }

    #[test]
    fn interrupt_stops_a_running_query() {
        let c = conn();
        let h = c.interrupt_handle();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            h.interrupt();
        });
        let mut stmt = c.prepare("SELECT count(*) FROM range(100000000000) a").unwrap();
        let r = stmt.execute_streaming().and_then(|mut s| s.next_batch());
        t.join().unwrap();
        let e = r.expect_err("interrupted");
        assert!(
            matches!(
                e,
                DucklingError::Sql {
                    kind: SqlErrorKind::Interrupted,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
