//! Pond's views of itself inside DuckDB: `pond_information_schema` (databases, their
//! snapshots, secrets, owned shares and shares with the caller, the query history and what
//! runs now) and the table functions `pond_active_connections()`, `pond_ducklings()`
//! and `duckdb_secrets()` (in place of DuckDB's, which shows key ids).
//!
//! Invariants:
//! - They are filled on demand, only for a statement whose classification names them, and
//!   hold the caller's rows as of that statement.
//! - Table functions are temporary macros created on the statement's own connection just
//!   before it (its prelude), so they never outlive or leak out of the caller's session.
//! - `pond_ducklings()` lists every user's duckling: only the admin user may call it.

use std::sync::Arc;

use arrow::array::RecordBatch;
use pond_duckling::engine::quote_literal;
use pond_duckling::{Connection, DucklingError};
use pond_storage::block_on;

use super::connection::blocking;
use super::{ADMIN_USER, Coordinator, DucklingInfo};
use crate::classify::{ACTIVE_CONNECTIONS, Classification, DUCKDB_SECRETS, DUCKLINGS};
use crate::error::{CoordinatorError, Result};
use crate::history::QueryRecord;
use crate::session::Session;

/// `pond_ducklings()` as a temporary table macro over `rows`.
fn ducklings_macro(rows: &[DucklingInfo]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                quote_literal(&d.id),
                quote_literal(&d.user),
                quote_literal(&d.mode),
                quote_literal(&d.state),
                quote_literal(&d.address),
                d.pid.map_or("NULL".to_string(), |p| p.to_string()),
                format!("make_timestamp({}::BIGINT * 1000)", d.started_ms),
                d.cold_start_ms.to_string(),
                d.memory_bytes.to_string(),
                d.running_queries.to_string(),
                d.sessions.to_string(),
                d.read_replica.to_string(),
                quote_literal(&d.coordinator),
            ]
        })
        .collect();
    table_macro(
        DUCKLINGS,
        &[
            ("duckling_id", "VARCHAR"),
            ("user_name", "VARCHAR"),
            ("mode", "VARCHAR"),
            ("state", "VARCHAR"),
            ("address", "VARCHAR"),
            ("pid", "UINTEGER"),
            ("started_ts", "TIMESTAMP"),
            ("cold_start_ms", "DOUBLE"),
            ("memory_bytes", "UBIGINT"),
            ("running_queries", "UBIGINT"),
            ("sessions", "UBIGINT"),
            ("read_replica", "BOOLEAN"),
            ("coordinator", "VARCHAR"),
        ],
        &rows,
    )
}

/// A temporary table macro `name()` over `rows` of SQL literals, typed by `columns` (so it
/// has its columns and types even with no rows).
fn table_macro(name: &str, columns: &[(&str, &str)], rows: &[Vec<String>]) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let typed = |values: &[String]| {
        let cast: Vec<String> = values
            .iter()
            .zip(columns)
            .map(|(v, (_, t))| format!("{v}::{t}"))
            .collect();
        format!("({})", cast.join(", "))
    };
    let (values, filter) = if rows.is_empty() {
        (typed(&vec!["NULL".to_string(); columns.len()]), " WHERE false")
    } else {
        (rows.iter().map(|r| typed(r)).collect::<Vec<_>>().join(", "), "")
    };
    format!(
        "CREATE OR REPLACE TEMP MACRO {name}() AS TABLE SELECT * FROM (VALUES {values}) AS t({}){filter}",
        names.join(", ")
    )
}

/// The columns of `query_history` and `recent_queries` (whose statements still run: no
/// `end_time`, `duration_ms` so far, status `running`).
const HISTORY_COLUMNS: &str = "query_id VARCHAR, user_name VARCHAR, session_id VARCHAR, database_name VARCHAR, \
     query_text VARCHAR, kind VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP, duration_ms DOUBLE, rows UBIGINT, \
     bytes UBIGINT, status VARCHAR, error VARCHAR, duckling_id VARCHAR, transaction_id VARCHAR";

/// `records` as rows of [`HISTORY_COLUMNS`]; a record without an end still runs at `now_us`.
fn history_batch(records: &[QueryRecord], now_us: u64) -> Result<RecordBatch> {
    use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMicrosecondArray, UInt64Array};
    let text =
        |f: fn(&QueryRecord) -> Option<&str>| -> ArrayRef { Arc::new(records.iter().map(f).collect::<StringArray>()) };
    let running = |r: &QueryRecord| r.end_us == 0;
    let columns: Vec<ArrayRef> = vec![
        text(|r| Some(&r.query_id)),
        text(|r| Some(&r.user_name)),
        text(|r| Some(&r.session_id)),
        text(|r| Some(&r.database_name)),
        text(|r| Some(&r.query_text)),
        text(|r| Some(&r.kind)),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            records.iter().map(|r| r.start_us as i64),
        )),
        Arc::new(
            records
                .iter()
                .map(|r| (!running(r)).then_some(r.end_us as i64))
                .collect::<TimestampMicrosecondArray>(),
        ),
        Arc::new(Float64Array::from_iter_values(records.iter().map(|r| {
            let end = if running(r) { now_us.max(r.start_us) } else { r.end_us };
            end.saturating_sub(r.start_us) as f64 / 1000.0
        }))),
        Arc::new(UInt64Array::from_iter_values(records.iter().map(|r| r.rows))),
        Arc::new(UInt64Array::from_iter_values(records.iter().map(|r| r.bytes))),
        Arc::new(
            records
                .iter()
                .map(|r| Some(if running(r) { "running" } else { r.status.as_str() }))
                .collect::<StringArray>(),
        ),
        text(|r| r.error.as_deref()),
        text(|r| Some(&r.duckling_id)),
        text(|r| r.transaction_id.as_deref()),
    ];
    Ok(RecordBatch::try_from_iter(
        HISTORY_COLUMNS
            .split(", ")
            .map(|c| c.split(' ').next().unwrap_or_default())
            .zip(columns),
    )
    .map_err(DucklingError::from)?)
}

/// Runs a query's prelude (see `Coordinator::prelude_for`) on its connection.
pub(super) fn run_prelude(conn: &Connection, prelude: Option<&str>) -> Result<()> {
    if let Some(sql) = prelude {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

impl Coordinator {
    /// SQL to run on a query's connection before it when the statement calls Pond's table
    /// functions: temporary table macros holding their rows as of now.
    pub(super) fn prelude_for(&self, session: &Session, statement: &Classification) -> Result<Option<String>> {
        let mut prelude = Vec::new();
        if statement.calls_active_connections {
            prelude.push(self.connections_macro(&session.principal().user));
        }
        if statement.calls_ducklings {
            prelude.push(self.ducklings_prelude(session)?);
        }
        if statement.calls_duckdb_secrets {
            prelude.push(self.secrets_macro(&session.principal().user)?);
        }
        Ok((!prelude.is_empty()).then(|| prelude.join(";\n")))
    }

    /// `pond_active_connections()`: the caller's connections (sessions) on this duckling; the
    /// admin's lists every user's of this process.
    fn connections_macro(&self, user: &str) -> String {
        let sessions: Vec<Arc<Session>> = if user == ADMIN_USER {
            self.sessions.lock().values().cloned().collect()
        } else {
            self.sessions_of(user)
        };
        let rows: Vec<Vec<String>> = sessions
            .iter()
            .map(|s| {
                let (database, _) = s.current();
                vec![
                    quote_literal(s.id()),
                    quote_literal(&database),
                    s.running_count().to_string(),
                    s.idle_for().as_secs_f64().to_string(),
                    s.in_transaction().to_string(),
                    quote_literal(&s.principal().user),
                ]
            })
            .collect();
        table_macro(
            ACTIVE_CONNECTIONS,
            &[
                ("connection_id", "VARCHAR"),
                ("current_database", "VARCHAR"),
                ("running_queries", "UBIGINT"),
                ("idle_seconds", "DOUBLE"),
                ("in_transaction", "BOOLEAN"),
                ("user_name", "VARCHAR"),
            ],
            &rows,
        )
    }

    /// `duckdb_secrets()` with DuckDB's columns, over the caller's secrets: `secret_string`
    /// names the options set, never their values.
    fn secrets_macro(&self, user: &str) -> Result<String> {
        let rows: Vec<Vec<String>> = self
            .catalog
            .secrets(user)?
            .iter()
            .map(|s| {
                let scope = s
                    .spec
                    .scope
                    .as_deref()
                    .map_or("[]".to_string(), |p| format!("[{}]", quote_literal(p)));
                let options: Vec<String> = s.spec.options.0.keys().map(|k| format!("{k}=redacted")).collect();
                vec![
                    quote_literal(&s.spec.name),
                    quote_literal(&s.spec.secret_type),
                    quote_literal("config"),
                    "true".into(),
                    quote_literal("pond"),
                    scope,
                    quote_literal(&format!(
                        "name={};type={};provider=config;{}",
                        s.spec.name,
                        s.spec.secret_type,
                        options.join(";")
                    )),
                ]
            })
            .collect();
        Ok(table_macro(
            DUCKDB_SECRETS,
            &[
                ("name", "VARCHAR"),
                ("type", "VARCHAR"),
                ("provider", "VARCHAR"),
                ("persistent", "BOOLEAN"),
                ("storage", "VARCHAR"),
                ("scope", "VARCHAR[]"),
                ("secret_string", "VARCHAR"),
            ],
            &rows,
        ))
    }

    /// `pond_ducklings()`: every duckling of the server. Admins only.
    fn ducklings_prelude(&self, session: &Session) -> Result<String> {
        if session.principal().user != ADMIN_USER {
            return Err(CoordinatorError::PermissionDenied(
                "pond_ducklings() lists every user's duckling: only the admin user may call it".into(),
            ));
        }
        let rows = match &self.cluster {
            Some(cluster) => cluster.ducklings()?,
            None => self.local_ducklings(),
        };
        Ok(ducklings_macro(&rows))
    }

    /// Fills `pond_information_schema`'s tables for the caller when the statement reads them,
    /// on a blocking thread (it lists manifests in the store and writes DuckDB tables).
    pub(super) async fn fill_information_schema_for(
        self: &Arc<Self>,
        session: &Arc<Session>,
        statement: &Classification,
    ) -> Result<()> {
        if !statement.reads_information_schema {
            return Ok(());
        }
        let (this, s) = (Arc::clone(self), Arc::clone(session));
        let (history, recent) = (statement.reads_query_history, statement.reads_recent_queries);
        blocking(move || this.refresh_information_schema(&s, history, recent)).await
    }

    /// Fills `pond_information_schema`'s tables for the caller; `query_history` and
    /// `recent_queries` stay empty unless asked for.
    fn refresh_information_schema(&self, session: &Session, history: bool, recent: bool) -> Result<()> {
        let user = &session.principal().user;
        let ts = |ms: i64| format!("make_timestamp({}::BIGINT * 1000)", ms);
        let mut databases = Vec::new();
        let mut snapshots = Vec::new();
        for db in self.catalog.databases(user)? {
            databases.push(format!(
                "({}, {}, {})",
                quote_literal(&db.name),
                ts(db.created_ms as i64),
                db.retention_days()
            ));
            for s in block_on(self.storage.snapshots(&db.id)).map_err(DucklingError::from)? {
                snapshots.push(format!(
                    "({}, {}, {}, {}, {}, {})",
                    quote_literal(&db.name),
                    s.seq,
                    s.name.as_deref().map(quote_literal).unwrap_or_else(|| "NULL".into()),
                    ts(s.created_ms),
                    s.bytes_added,
                    s.total_bytes
                ));
            }
        }
        let secrets: Vec<String> = self
            .catalog
            .secrets(user)?
            .iter()
            .map(|s| {
                format!(
                    "({}, {}, {}, {})",
                    quote_literal(&s.spec.name),
                    quote_literal(&s.spec.secret_type),
                    s.spec
                        .scope
                        .as_deref()
                        .map(quote_literal)
                        .unwrap_or_else(|| "NULL".into()),
                    ts(s.created_ms as i64)
                )
            })
            .collect();
        let (owned_shares, shared_with_me) = self.share_rows(user)?;
        let schema = pond_duckling::duckling::INFORMATION_SCHEMA;
        let mut sql = format!(
            "CREATE OR REPLACE TABLE {schema}.databases (database_name VARCHAR, created_ts TIMESTAMP, snapshot_retention_days INTEGER);
             CREATE OR REPLACE TABLE {schema}.database_snapshots (database_name VARCHAR, snapshot_id UBIGINT, snapshot_name VARCHAR, created_ts TIMESTAMP, bytes_added UBIGINT, total_bytes UBIGINT);
             CREATE OR REPLACE TABLE {schema}.secrets (name VARCHAR, type VARCHAR, scope VARCHAR, created TIMESTAMP);
             CREATE OR REPLACE TABLE {schema}.owned_shares (name VARCHAR, url VARCHAR, source_db_name VARCHAR, access VARCHAR, visibility VARCHAR, update VARCHAR, created_ts TIMESTAMP, published_snapshot_id UBIGINT, granted_to VARCHAR[]);
             CREATE OR REPLACE TABLE {schema}.shared_with_me (name VARCHAR, owner VARCHAR, url VARCHAR, source_db_name VARCHAR, access VARCHAR, update VARCHAR, created_ts TIMESTAMP, attached_as VARCHAR, error VARCHAR);
             CREATE OR REPLACE TABLE {schema}.query_history ({HISTORY_COLUMNS});
             CREATE OR REPLACE TABLE {schema}.recent_queries ({HISTORY_COLUMNS});"
        );
        for (table, rows) in [("owned_shares", &owned_shares), ("shared_with_me", &shared_with_me)] {
            if !rows.is_empty() {
                sql.push_str(&format!("INSERT INTO {schema}.{table} VALUES {};", rows.join(", ")));
            }
        }
        if !secrets.is_empty() {
            sql.push_str(&format!("INSERT INTO {schema}.secrets VALUES {};", secrets.join(", ")));
        }
        if !databases.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO {schema}.databases VALUES {};",
                databases.join(", ")
            ));
        }
        if !snapshots.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO {schema}.database_snapshots VALUES {};",
                snapshots.join(", ")
            ));
        }
        session.duckling().host_execute(&sql)?;
        let now_us = super::history::micros(&**self.storage.clock());
        if history {
            let batch = history_batch(&self.history_for(session)?, now_us)?;
            session
                .duckling()
                .append_to_information_schema("query_history", &batch)?;
        }
        if recent {
            let batch = history_batch(&self.running_for(session), now_us)?;
            session
                .duckling()
                .append_to_information_schema("recent_queries", &batch)?;
        }
        Ok(())
    }

    /// Rows of `owned_shares` and `shared_with_me` for `user`, as SQL tuples. `shared_with_me`
    /// holds the discoverable shares `user` may read and every share they attached, the ones
    /// they can no longer read with why.
    fn share_rows(&self, user: &str) -> Result<(Vec<String>, Vec<String>)> {
        let text = |v: Option<&str>| v.map(quote_literal).unwrap_or_else(|| "NULL".into());
        let ts = |ms: u64| format!("make_timestamp({ms}::BIGINT * 1000)");
        let owned = self
            .catalog
            .owned_shares(user)?
            .iter()
            .map(|s| {
                let grants: Vec<String> = s.grants.iter().map(|g| quote_literal(g)).collect();
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, [{}]::VARCHAR[])",
                    quote_literal(&s.name),
                    quote_literal(&s.url()),
                    quote_literal(&s.database_name),
                    quote_literal(s.settings.access.as_str()),
                    quote_literal(s.settings.visibility.as_str()),
                    quote_literal(s.settings.update.as_str()),
                    ts(s.created_ms),
                    s.published_seq.map_or("NULL".into(), |n| n.to_string()),
                    grants.join(", ")
                )
            })
            .collect();
        let attached = self.catalog.attached_shares(user)?;
        let row = |s: &crate::shares::ShareEntry, attached_as: Option<&str>| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, NULL)",
                quote_literal(&s.name),
                quote_literal(&s.owner),
                quote_literal(&s.url()),
                quote_literal(&s.database_name),
                quote_literal(s.settings.access.as_str()),
                quote_literal(s.settings.update.as_str()),
                ts(s.created_ms),
                text(attached_as)
            )
        };
        let mut with_me: Vec<String> = attached
            .iter()
            .map(|a| match &a.share {
                Ok(s) => row(s, Some(&a.alias)),
                Err(why) => format!(
                    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, {}, {})",
                    quote_literal(&a.alias),
                    quote_literal(why)
                ),
            })
            .collect();
        for s in self.catalog.discoverable_shares(user)? {
            let seen = attached
                .iter()
                .any(|a| a.share.as_ref().is_ok_and(|x| x.token == s.token));
            if !seen {
                with_me.push(row(&s, None));
            }
        }
        Ok((owned, with_me))
    }
}
