//! Prepared SELECTs kept per connection and reused for the same SQL text.
//!
//! Preparing (parse, bind, optimize) is about half the cost of a small query in DuckDB, and
//! dashboards and drivers send the same text again and again. A connection therefore keeps
//! its last [`CAPACITY`] single-statement SELECTs, by text, and [`Connection::take_prepared`]
//! hands one back instead of preparing anew.
//!
//! Invariants:
//! - Only statements DuckDB classifies as SELECT are kept: running one changes nothing that
//!   binding depends on.
//! - Every other statement, on any connection of the database (DDL, DML, SET, USE, ATTACH,
//!   host SQL), advances the database's [`Generation`] before and after it runs. A statement
//!   prepared in an older generation is never reused, so a reused statement binds exactly as a
//!   fresh prepare of its text would: same connection settings and search path, same catalog.
//!   (DuckDB also rebinds on its own when a catalog it read changed; the generation covers
//!   what it does not check, such as the search path, and keeps the described result schema
//!   true.)
//! - A taken statement is out of the cache until its [`Prepared`] drops: one statement never
//!   serves two uses at once. Its parameter bindings are cleared when it is taken.
//! - A kept statement without parameters keeps its described result schema. DuckDB binds
//!   some statements again on every run (a glob of files among them) yet describes them as
//!   first prepared: a statement whose run's result has another schema than the described one
//!   is not kept, so the next use prepares, and describes, it afresh. (One with parameters,
//!   which DuckDB rebinds when values of other types are bound, is described each time.)
//!
//! [`Connection::take_prepared`]: crate::engine::Connection::take_prepared
//! [`Prepared`]: crate::engine::Prepared

use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use libduckdb_sys as ffi;

/// How many statements a connection keeps.
pub const CAPACITY: usize = 32;

/// A database's count of statements that may change how SQL binds.
#[derive(Debug, Default)]
pub(crate) struct Generation(AtomicU64);

impl Generation {
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Entry {
    sql: String,
    generation: u64,
    raw: ffi::duckdb_prepared_statement,
    /// The statement's result schema, when it was described and has no parameters.
    schema: Option<SchemaRef>,
}

/// A statement taken out of the cache.
pub(crate) struct Taken {
    pub(crate) raw: ffi::duckdb_prepared_statement,
    pub(crate) schema: Option<SchemaRef>,
}

/// One connection's kept statements, least recently used first.
#[derive(Default)]
pub(crate) struct StatementCache {
    entries: Vec<Entry>,
}

// SAFETY: the prepared statements belong to the connection that owns this cache, which is
// used by one thread at a time.
unsafe impl Send for StatementCache {}

impl StatementCache {
    /// Takes the statement kept for `sql` if it was prepared in generation `now`.
    pub(crate) fn take(&mut self, sql: &str, now: u64) -> Option<Taken> {
        self.forget_older_than(now);
        let at = self.entries.iter().position(|e| e.sql == sql)?;
        let entry = self.entries.remove(at);
        // SAFETY: a live statement owned by the cache until now.
        unsafe { ffi::duckdb_clear_bindings(entry.raw) };
        Some(Taken {
            raw: entry.raw,
            schema: entry.schema,
        })
    }

    /// Destroys the statements of older generations: they will never be reused, and they may
    /// refer to catalog objects that are gone.
    fn forget_older_than(&mut self, now: u64) {
        self.entries.retain_mut(|e| {
            let keep = e.generation == now;
            if !keep {
                destroy(&mut e.raw);
            }
            keep
        });
    }

    /// Keeps `raw`, prepared from `sql` in `generation` (with its result schema when it has no
    /// parameters), dropping the least recently used statement beyond [`CAPACITY`].
    pub(crate) fn put(
        &mut self,
        sql: String,
        generation: u64,
        raw: ffi::duckdb_prepared_statement,
        schema: Option<SchemaRef>,
    ) {
        self.forget_older_than(generation);
        if let Some(at) = self.entries.iter().position(|e| e.sql == sql) {
            destroy(&mut self.entries.remove(at).raw);
        }
        if self.entries.len() >= CAPACITY {
            destroy(&mut self.entries.remove(0).raw);
        }
        self.entries.push(Entry {
            sql,
            generation,
            raw,
            schema,
        });
    }

    /// How many statements are kept.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Drop for StatementCache {
    fn drop(&mut self) {
        for e in &mut self.entries {
            destroy(&mut e.raw);
        }
    }
}

fn destroy(raw: &mut ffi::duckdb_prepared_statement) {
    // SAFETY: each kept statement is destroyed once, when it leaves the cache for good.
    unsafe { ffi::duckdb_destroy_prepare(raw) }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int32Type;

    use crate::engine::{Connection, Database, Prepared};

    /// The way the duckling prepares a script (`pond_duckling::prepare_script`, without the
    /// sandbox): a kept statement if there is one, else every statement but the last run and
    /// the last prepared, kept for reuse when it is the only one.
    fn prepare_script<'c>(conn: &'c Connection, sql: &str) -> Prepared<'c> {
        if let Some(kept) = conn.take_prepared(sql) {
            return kept;
        }
        let extracted = conn.extract(sql).unwrap();
        let last = extracted.len() - 1;
        for i in 0..last {
            extracted.prepare(i).unwrap().execute().unwrap();
        }
        let mut prepared = extracted.prepare(last).unwrap();
        if last == 0 {
            prepared.keep_for_reuse(sql);
        }
        prepared
    }

    fn value(conn: &Connection, sql: &str) -> i32 {
        let mut stmt = prepare_script(conn, sql);
        let batch = stmt.execute_streaming().unwrap().next_batch().unwrap().unwrap();
        batch.column(0).as_primitive::<Int32Type>().value(0)
    }

    #[test]
    fn a_repeated_select_is_prepared_once() {
        let conn = Database::open(None, &[]).unwrap().connect().unwrap();
        assert_eq!(value(&conn, "SELECT 41 + 1"), 42);
        assert_eq!(conn.kept_statements(), 1);
        assert!(conn.take_prepared("SELECT 41 + 1").is_some());
        // Taken and dropped: kept again; another text is not found.
        assert_eq!(conn.kept_statements(), 1);
        assert!(conn.take_prepared("SELECT 41 + 2").is_none());
        // Only single SELECTs are kept.
        prepare_script(&conn, "CREATE TABLE t AS SELECT 1 AS a")
            .execute()
            .unwrap();
        prepare_script(&conn, "SELECT 1; SELECT 2");
        assert_eq!(conn.kept_statements(), 0);
    }

    #[test]
    fn a_kept_select_follows_the_search_path() {
        let conn = Database::open(None, &[]).unwrap().connect().unwrap();
        conn.execute_batch(
            "CREATE SCHEMA a; CREATE SCHEMA b; \
             CREATE TABLE a.t AS SELECT 1 AS v; CREATE TABLE b.t AS SELECT 2 AS v; SET schema = 'a'",
        )
        .unwrap();
        assert_eq!(value(&conn, "SELECT v FROM t"), 1);
        prepare_script(&conn, "SET schema = 'b'").execute().unwrap();
        assert_eq!(value(&conn, "SELECT v FROM t"), 2);
    }

    #[test]
    fn ddl_on_another_connection_retires_kept_statements() {
        let db = Database::open(None, &[]).unwrap();
        let (one, other) = (db.connect().unwrap(), db.connect().unwrap());
        one.execute_batch("CREATE TABLE t AS SELECT 1 AS v").unwrap();
        let columns = |conn: &Connection| {
            prepare_script(conn, "SELECT * FROM t")
                .result_schema()
                .unwrap()
                .fields()
                .len()
        };
        assert_eq!(columns(&one), 1);
        prepare_script(&other, "ALTER TABLE t ADD COLUMN w INTEGER")
            .execute()
            .unwrap();
        assert_eq!(columns(&one), 2);
    }

    #[test]
    fn a_kept_statement_forgets_its_parameters() {
        let conn = Database::open(None, &[]).unwrap().connect().unwrap();
        let params = arrow::array::RecordBatch::try_from_iter(vec![(
            "p",
            std::sync::Arc::new(arrow::array::Int32Array::from(vec![7])) as _,
        )])
        .unwrap();
        {
            let mut stmt = prepare_script(&conn, "SELECT $1::INTEGER");
            stmt.bind_row(&params, 0).unwrap();
            stmt.execute_streaming().unwrap().next_batch().unwrap();
        }
        let mut again = prepare_script(&conn, "SELECT $1::INTEGER");
        assert!(
            again.execute_streaming().is_err(),
            "ran with the previous use's parameter"
        );
    }

    #[test]
    fn a_kept_statement_keeps_its_schema_only_without_parameters() {
        use std::sync::Arc;
        let conn = Database::open(None, &[]).unwrap().connect().unwrap();
        let described = prepare_script(&conn, "SELECT 1 AS v").result_schema().unwrap();
        let again = conn.take_prepared("SELECT 1 AS v").unwrap().result_schema().unwrap();
        assert!(Arc::ptr_eq(&described, &again), "described afresh");
        // A run whose result has the described schema keeps it.
        conn.take_prepared("SELECT 1 AS v")
            .unwrap()
            .execute_streaming()
            .unwrap();
        let after_a_run = conn.take_prepared("SELECT 1 AS v").unwrap().result_schema().unwrap();
        assert!(Arc::ptr_eq(&described, &after_a_run), "dropped after a run alike");
        // DuckDB rebinds a statement whose parameters get values of another type, so its
        // result may change between uses.
        let params = arrow::array::RecordBatch::try_from_iter(vec![(
            "p",
            Arc::new(arrow::array::Int32Array::from(vec![7])) as _,
        )])
        .unwrap();
        let sql = "SELECT $1 AS v";
        let before = {
            let mut stmt = prepare_script(&conn, sql);
            let schema = stmt.result_schema().unwrap();
            stmt.bind_row(&params, 0).unwrap();
            stmt.execute_streaming().unwrap().next_batch().unwrap();
            schema
        };
        let after = conn.take_prepared(sql).unwrap().result_schema().unwrap();
        assert!(
            !Arc::ptr_eq(&before, &after),
            "a schema kept for a statement with parameters"
        );
    }

    /// DuckDB binds a glob of files again on every run but describes the statement as first
    /// prepared: once a run's result differs, the statement is prepared afresh.
    #[test]
    fn a_kept_schema_follows_files_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "x\n1\n").unwrap();
        let conn = Database::open(None, &[]).unwrap().connect().unwrap();
        let sql = format!("SELECT * FROM read_csv('{}/*.csv')", dir.path().display());
        let columns = |conn: &Connection| {
            let stmt = prepare_script(conn, &sql);
            stmt.result_schema().unwrap().fields().len()
        };
        assert_eq!(columns(&conn), 1);
        std::fs::write(&file, "x,y\n1,2\n").unwrap();
        {
            let mut stmt = conn.take_prepared(&sql).unwrap();
            let stream = stmt.execute_streaming().unwrap();
            assert_eq!(stream.schema().fields().len(), 2, "DuckDB did not bind the files again");
        }
        assert_eq!(columns(&conn), 2);
    }
}
