//! A DuckDB connection and the handle that interrupts it from other threads.
//!
//! Invariants:
//! - A [`Connection`] is used by one thread at a time: it is `Send` (a coordinator moves it
//!   between threads, behind a mutex or by value) but not `Sync` (its kept statements sit in a
//!   `RefCell`), so no two threads can call it at once.
//! - The part of a connection that other threads reach is [`Shared`], through an
//!   [`InterruptHandle`]: the interrupt flag, and the handle only for `duckdb_interrupt` and
//!   `duckdb_query_progress`, which DuckDB allows from any thread.
//! - The raw connection closes when its last owner (the connection or a handle) drops, after
//!   the kept statements, and before the database (it holds an `Arc` of it).
//! - A new interrupt handle starts a new operation: only an interrupt through the current
//!   handle counts as requested (see [`Connection::interrupt_handle`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use libduckdb_sys as ffi;

use super::Result;
use super::appender::Appender;
use super::arrow_types::ArrowOptions;
use super::database::Database;
use super::raw::{cstring, result_error};
use super::statement::{Extracted, Prepared};
use crate::error::DuckdbError;
use crate::statement_cache::{Generation, StatementCache};

/// What other threads may touch of a connection (through an [`InterruptHandle`]).
struct Shared {
    raw: ffi::duckdb_connection,
    /// Whether an [`InterruptHandle`] interrupted the statement running now. DuckDB also
    /// reports an interrupt when a worker thread fails, so only this tells the two apart.
    interrupt_requested: AtomicBool,
    /// The current operation, the one the newest [`InterruptHandle`] belongs to. Held while a
    /// handle interrupts, so an interrupt through an earlier handle can never land on a later
    /// operation's statement (a late cancel of a finished ingest on the `COMMIT` after it).
    operation: Mutex<u64>,
    db: Arc<Database>,
}

// SAFETY: the raw handle is used for anything but interrupt and progress only through the
// `Connection` that owns it (one thread at a time, as `Connection` is not `Sync`); closing it
// happens once, in Drop, when no owner is left.
unsafe impl Send for Shared {}
// SAFETY: through a shared `&Shared`, other threads only call `duckdb_interrupt` and
// `duckdb_query_progress` (see `InterruptHandle`), which are thread-safe in DuckDB, and use an
// atomic flag and a mutex.
unsafe impl Sync for Shared {}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: last owner of the handle.
        unsafe { ffi::duckdb_disconnect(&mut self.raw) }
    }
}

/// Interrupts whatever a connection is running, from any thread.
#[derive(Clone)]
pub struct InterruptHandle {
    conn: Arc<Shared>,
    /// The operation this handle stops; once the connection started another, it stops nothing.
    operation: u64,
}

impl InterruptHandle {
    /// Asks DuckDB to stop the connection's running query; it fails with an INTERRUPT error.
    /// Does nothing once the connection started another operation (a newer handle).
    pub fn interrupt(&self) {
        let current = self.conn.operation.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != self.operation {
            return;
        }
        self.conn.interrupt_requested.store(true, Ordering::SeqCst);
        // SAFETY: the connection is alive (we hold an Arc); duckdb_interrupt is thread-safe.
        unsafe { ffi::duckdb_interrupt(self.conn.raw) }
    }

    /// The running query's progress in percent, or `None` when DuckDB cannot tell.
    pub fn progress(&self) -> Option<f64> {
        // SAFETY: the connection is alive (we hold an Arc); duckdb_query_progress is
        // thread-safe.
        let p = unsafe { ffi::duckdb_query_progress(self.conn.raw) };
        (p.percentage >= 0.0).then_some(p.percentage)
    }
}

/// One DuckDB connection: its own transaction, temporary objects and current database.
///
/// Used by one thread at a time: it moves between threads but is not shared by them.
///
/// ```compile_fail
/// fn shared_by_threads<T: Sync>() {}
/// shared_by_threads::<pond_duckdb::Connection>();
/// ```
pub struct Connection {
    /// Declared before `shared`: the kept statements are destroyed before the connection
    /// closes.
    statements: RefCell<StatementCache>,
    /// The connection's Arrow options as read in a generation (see [`Self::with_arrow_options`]).
    arrow_options: RefCell<Option<(u64, ArrowOptions)>>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Takes ownership of `raw`, a connection just opened on `db`.
    pub(super) fn new(raw: ffi::duckdb_connection, db: Arc<Database>) -> Self {
        Connection {
            statements: Default::default(),
            arrow_options: RefCell::new(None),
            shared: Arc::new(Shared {
                raw,
                interrupt_requested: AtomicBool::new(false),
                operation: Mutex::new(0),
                db,
            }),
        }
    }

    /// A handle that interrupts this connection from another thread. A new handle starts a
    /// new operation: interrupts through earlier handles no longer apply, while one through
    /// this handle also stops statements that have not started yet (DuckDB itself forgets an
    /// interrupt that arrives between statements).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        let mut operation = self.shared.operation.lock().unwrap_or_else(PoisonError::into_inner);
        *operation += 1;
        self.shared.interrupt_requested.store(false, Ordering::SeqCst);
        InterruptHandle {
            conn: Arc::clone(&self.shared),
            operation: *operation,
        }
    }

    /// Whether the current operation's [`InterruptHandle`] asked to stop.
    pub(super) fn interrupt_requested(&self) -> bool {
        self.shared.interrupt_requested.load(Ordering::SeqCst)
    }

    /// The raw handle, for calls made on this connection's thread.
    pub(super) fn raw(&self) -> ffi::duckdb_connection {
        self.shared.raw
    }

    /// The database's count of statements that may change how SQL binds.
    pub(super) fn generation(&self) -> &Generation {
        &self.shared.db.generation
    }

    /// Calls `f` with the connection's Arrow options (its time zone, how strings and lists
    /// export). DuckDB builds them by copying the instance's settings, a few microseconds
    /// each time; they only change with a setting, and every statement that may change one
    /// advances the generation (see [`crate::statement_cache`]), so they are read again only
    /// after such a statement. `f` must not call back into this.
    pub(super) fn with_arrow_options<T>(&self, f: impl FnOnce(&ArrowOptions) -> T) -> T {
        // Read before the options: a change that starts meanwhile leaves them stale under an
        // older generation, never under the current one.
        let now = self.generation().current();
        let mut kept = self.arrow_options.borrow_mut();
        if !matches!(&*kept, Some((generation, _)) if *generation == now) {
            // SAFETY: the connection is live and used on this thread (`Connection` is not Sync).
            *kept = Some((now, unsafe { ArrowOptions::of_connection(self.raw()) }));
        }
        let (_, options) = kept.as_ref().expect("set above");
        f(options)
    }

    /// Keeps `raw`, prepared from `sql` in `generation`, for [`Self::take_prepared`], with
    /// its result schema when it has no parameters.
    pub(super) fn keep_statement(
        &self,
        sql: String,
        generation: u64,
        raw: ffi::duckdb_prepared_statement,
        schema: Option<SchemaRef>,
    ) {
        self.statements.borrow_mut().put(sql, generation, raw, schema);
    }

    /// The names of the settings DuckDB has, lowercased.
    pub fn setting_names(&self) -> Result<HashSet<String>> {
        self.strings("SELECT lower(name) FROM duckdb_settings()")
    }

    /// The first value of a query's result as a BIGINT (cast by the query); `None` when it
    /// returns no row, or a value of another type or NULL.
    pub fn query_i64(&self, sql: &str) -> Result<Option<i64>> {
        let batches = self.query_all(sql)?;
        Ok(batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
            let column = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>()?;
            arrow::array::Array::is_valid(column, 0).then(|| column.value(0))
        }))
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
        let db = &self.shared.db;
        if let Some(names) = db.table_functions.get() {
            return Ok(names);
        }
        let names = db.connect()?.strings(
            "SELECT DISTINCT lower(function_name) FROM duckdb_functions() \
             WHERE database_name = 'system' AND function_type IN ('table', 'table_macro')",
        )?;
        if names.is_empty() {
            return Err(DuckdbError::internal("DuckDB listed no table functions"));
        }
        Ok(db.table_functions.get_or_init(|| names))
    }

    /// The SELECT prepared earlier from exactly `sql` on this connection, if nothing that
    /// changes how it binds ran since (see [`crate::statement_cache`]). It returns to the
    /// connection's cache when dropped.
    pub fn take_prepared(&self, sql: &str) -> Option<Prepared<'_>> {
        let now = self.generation().current();
        let taken = self.statements.borrow_mut().take(sql, now)?;
        Some(Prepared::reused(self, taken, now, sql))
    }

    /// How many prepared statements the connection keeps for reuse.
    pub fn kept_statements(&self) -> usize {
        self.statements.borrow().len()
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
        Extracted::new(self, sql)
    }

    /// Prepares a single statement.
    pub fn prepare(&self, sql: &str) -> Result<Prepared<'_>> {
        Prepared::new(self, sql)
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
        Appender::new(self, catalog, schema, table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlErrorKind;

    fn conn() -> Connection {
        Database::open(None, &[]).unwrap().connect().unwrap()
    }

    #[test]
    fn arrow_options_are_read_again_after_a_statement_that_may_change_them() {
        let conn = conn();
        let announced = |conn: &Connection| {
            let schema = conn.prepare("SELECT 'a' AS s").unwrap().result_schema().unwrap();
            schema.field(0).data_type().clone()
        };
        let produced = |conn: &Connection| {
            conn.query_all("SELECT 'a' AS s").unwrap()[0]
                .schema()
                .field(0)
                .data_type()
                .clone()
        };
        assert_eq!(announced(&conn), DataType::Utf8);
        // Changed by a prepared statement of this connection …
        conn.prepare("SET arrow_large_buffer_size = true")
            .unwrap()
            .execute()
            .unwrap();
        assert_eq!(announced(&conn), DataType::LargeUtf8);
        assert_eq!(produced(&conn), DataType::LargeUtf8);
        // … and by another connection alone (the setting is the instance's).
        let other = conn.shared.db.connect().unwrap();
        other
            .execute_batch("SET GLOBAL arrow_large_buffer_size = false")
            .unwrap();
        assert_eq!(announced(&conn), DataType::Utf8);
        assert_eq!(produced(&conn), DataType::Utf8);
    }

    #[test]
    fn a_connection_moves_between_threads_and_its_interrupt_handle_is_shared() {
        fn moves<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        moves::<Connection>();
        shared::<InterruptHandle>();
        shared::<Database>();
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
                DuckdbError::Sql {
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

    /// An earlier operation's handle stops nothing later: not a statement that has not started
    /// (Pond's flag), nor one that runs (DuckDB's interrupt).
    #[test]
    fn an_interrupt_through_an_earlier_handle_stops_nothing() {
        let c = conn();
        let earlier = c.interrupt_handle();
        let current = c.interrupt_handle();
        earlier.interrupt();
        let mut stmt = c.prepare("SELECT 1").unwrap();
        assert!(stmt.execute_streaming().unwrap().next_batch().unwrap().is_some());

        let began = std::time::Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            earlier.interrupt();
            std::thread::sleep(std::time::Duration::from_millis(200));
            current.interrupt();
        });
        let mut stmt = c.prepare("SELECT count(*) FROM range(100000000000) a").unwrap();
        let r = stmt.execute_streaming().and_then(|mut s| s.next_batch());
        t.join().unwrap();
        assert!(r.is_err(), "the current handle stops it");
        assert!(
            began.elapsed() >= std::time::Duration::from_millis(300),
            "stopped after {:?}, by the earlier handle",
            began.elapsed()
        );
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
                DuckdbError::Sql {
                    kind: SqlErrorKind::Interrupted,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
