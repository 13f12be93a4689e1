//! One duckling: a user's sandboxed DuckDB instance with the user's databases attached.
//!
//! Invariants:
//! - A duckling serves exactly one user; its private directory holds only that user's files.
//! - The instance is locked down (see [`crate::sandbox`]) before any connection is handed out.
//! - Databases are attached under their user-visible names from files whose names the
//!   coordinator chose (ids, never user text), so names cannot steer paths.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use parking_lot::Mutex;

use crate::engine::{Connection, Database, Prepared, StatementKind, quote_ident, quote_literal};
use crate::error::DucklingError;
use crate::sandbox;

/// How to start a duckling. Plain data: the binary parses flags, libraries take this.
#[derive(Debug, Clone)]
pub struct DucklingConfig {
    /// The user's private directory: database files and DuckDB's temp files live here.
    pub dir: PathBuf,
    /// DuckDB worker threads (`None`: DuckDB's default, the number of cores).
    pub threads: Option<usize>,
    /// DuckDB's memory limit, e.g. `"4GB"` (`None`: DuckDB's default, 80% of RAM).
    pub memory_limit: Option<String>,
}

/// A user's DuckDB instance.
pub struct Duckling {
    db: Arc<Database>,
    host: Mutex<Connection>,
    attached: Mutex<BTreeSet<String>>,
    dir: PathBuf,
}

/// The DuckDB catalogs that exist in every instance and are not user databases.
pub const SYSTEM_CATALOGS: &[&str] = &["memory", "system", "temp"];

impl Duckling {
    /// Opens an in-memory DuckDB instance, locked down to `config.dir`.
    pub fn open(config: &DucklingConfig) -> Result<Arc<Self>, DucklingError> {
        std::fs::create_dir_all(config.dir.join("tmp"))?;
        let dir = config.dir.canonicalize()?;
        let opts = sandbox::open_options(config.threads, config.memory_limit.as_deref());
        let db = Database::open(None, &opts)?;
        let host = db.connect()?;
        host.execute_batch(&sandbox::lockdown_sql(&dir))?;
        Ok(Arc::new(Self {
            db,
            host: Mutex::new(host),
            attached: Mutex::new(BTreeSet::new()),
            dir,
        }))
    }

    /// The duckling's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Attaches the database file `file` (inside the private directory) as `name`.
    pub fn attach(&self, name: &str, file: &str) -> Result<(), DucklingError> {
        let mut attached = self.attached.lock();
        if attached.contains(name) {
            return Ok(());
        }
        let path = self.dir.join(file);
        self.host.lock().execute_batch(&format!(
            "ATTACH {} AS {}",
            quote_literal(&path.display().to_string()),
            quote_ident(name)
        ))?;
        attached.insert(name.to_string());
        Ok(())
    }

    /// Detaches database `name`. Sessions that had it selected fall back to no database.
    pub fn detach(&self, name: &str) -> Result<(), DucklingError> {
        let mut attached = self.attached.lock();
        if attached.remove(name) {
            let host = self.host.lock();
            host.execute_batch(&format!("DETACH {}", quote_ident(name)))?;
        }
        Ok(())
    }

    /// Forces DuckDB to write database `name`'s WAL into its main file.
    pub fn checkpoint(&self, name: &str) -> Result<(), DucklingError> {
        self.host
            .lock()
            .execute_batch(&format!("CHECKPOINT {}", quote_ident(name)))
    }

    /// The attached user databases.
    pub fn databases(&self) -> Vec<String> {
        self.attached.lock().iter().cloned().collect()
    }

    /// A new connection with `database` selected.
    pub fn connect(&self, database: &str) -> Result<Connection, DucklingError> {
        let conn = self.db.connect()?;
        conn.execute_batch(&format!("USE {}", quote_ident(database)))?;
        Ok(conn)
    }
}

/// What a user statement is, learned by preparing it.
#[derive(Debug, Clone)]
pub struct Described {
    pub kind: StatementKind,
    /// The result schema; empty for statements that only report a row count.
    pub dataset_schema: SchemaRef,
    /// How many statements the SQL text held (all but the last already ran).
    pub statements: usize,
}

impl Described {
    /// Whether the statement returns rows (a query) rather than a count (an update).
    pub fn returns_rows(&self) -> bool {
        !self.dataset_schema.fields().is_empty()
    }
}

/// Whether a prepared statement of `kind` with result `schema` is a query rather than an update.
fn is_query(kind: StatementKind, schema: &Schema) -> bool {
    use StatementKind::*;
    let count_only = schema.fields().len() == 1
        && schema.field(0).name() == "Count"
        && schema.field(0).data_type() == &DataType::Int64;
    match kind {
        Select | Explain | Pragma | Call | Relation => true,
        Insert | Update | Delete | Merge | Execute => !count_only,
        _ => false,
    }
}

/// Splits user SQL into statements, checks each with the sandbox, runs all but the last and
/// prepares the last. A single statement is only prepared.
///
/// `allow` sees every statement's kind before it runs (the read-only check), after the sandbox.
pub fn prepare_script<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<(Prepared<'c>, Described), DucklingError> {
    let extracted = conn.extract(sql)?;
    let last = extracted.len() - 1;
    let check = |kind: StatementKind| -> Result<(), DucklingError> {
        // The sandbox's text checks (SET names, PRAGMA names) read the statement's own text,
        // which a script does not give per statement: those kinds must come alone.
        if last > 0 && matches!(kind, StatementKind::Set | StatementKind::Pragma) {
            return Err(DucklingError::PermissionDenied(
                "SET and PRAGMA must be sent as a statement of their own".into(),
            ));
        }
        sandbox::check(kind, sql)?;
        allow(kind)
    };
    for i in 0..last {
        let mut stmt = extracted.prepare(i)?;
        check(stmt.kind())?;
        stmt.execute()?;
    }
    let prepared = extracted.prepare(last)?;
    check(prepared.kind())?;
    let described = describe(&prepared, extracted.len())?;
    Ok((prepared, described))
}

/// Describes a prepared statement (the last of `statements`).
pub fn describe(prepared: &Prepared<'_>, statements: usize) -> Result<Described, DucklingError> {
    let kind = prepared.kind();
    let result_schema = prepared.result_schema()?;
    let dataset_schema = if is_query(kind, &result_schema) {
        result_schema
    } else {
        Arc::new(Schema::empty())
    };
    Ok(Described {
        kind,
        dataset_schema,
        statements,
    })
}

/// Prepares one user statement the sandbox (and `allow`) permit, without describing it.
pub fn prepare_checked<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<Prepared<'c>, DucklingError> {
    let prepared = conn.prepare(sql)?;
    sandbox::check(prepared.kind(), sql)?;
    allow(prepared.kind())?;
    Ok(prepared)
}

/// An `allow` that permits every kind the sandbox permits.
pub fn any_kind(_: StatementKind) -> Result<(), DucklingError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duckling() -> (tempfile::TempDir, Arc<Duckling>) {
        let dir = tempfile::tempdir().unwrap();
        let d = Duckling::open(&DucklingConfig {
            dir: dir.path().join("u1"),
            threads: Some(1),
            memory_limit: None,
        })
        .unwrap();
        d.attach("my_db", "db1.duckdb").unwrap();
        (dir, d)
    }

    /// A refusal by Pond's statement check or by DuckDB's own lock.
    fn refused(e: &DucklingError) -> bool {
        matches!(
            e,
            DucklingError::PermissionDenied(_)
                | DucklingError::Sql {
                    kind: crate::SqlErrorKind::Permission,
                    ..
                }
        )
    }

    #[test]
    fn sandbox_blocks_server_files() {
        let (_dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        let marker = std::env::temp_dir().join(format!("pond_escape_{}.csv", std::process::id()));
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')".to_string(),
            format!("COPY (SELECT 1) TO '{}'", marker.display()),
            "SET enable_external_access = true".to_string(),
            "INSTALL httpfs".to_string(),
            format!("ATTACH '{}' AS x", marker.display()),
        ] {
            let err = prepare_script(&conn, &sql, &any_kind)
                .and_then(|(mut p, _)| p.execute())
                .unwrap_err();
            assert!(refused(&err), "{sql}: {err:?}");
        }
        assert!(!marker.exists());
    }

    #[test]
    fn classifies_queries_and_updates() {
        let (_dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        let (_, desc) = prepare_script(&conn, "CREATE TABLE t(a INT)", &any_kind).unwrap();
        assert!(!desc.returns_rows());
        conn.execute_batch("CREATE TABLE t(a INT)").unwrap();
        let (_, desc) = prepare_script(&conn, "INSERT INTO t VALUES (1)", &any_kind).unwrap();
        assert!(!desc.returns_rows());
        let (_, desc) = prepare_script(&conn, "INSERT INTO t VALUES (1) RETURNING a", &any_kind).unwrap();
        assert!(desc.returns_rows());
        let (stmt, desc) = prepare_script(&conn, "SELECT a FROM t WHERE a = ?", &any_kind).unwrap();
        assert!(desc.returns_rows());
        assert_eq!(stmt.param_schema().unwrap().fields().len(), 1);
    }
}
