//! Bulk ingest (Flight SQL's CommandStatementIngest): creates, replaces or appends a table
//! from a stream of Arrow batches through DuckDB's appender.
//!
//! Invariants:
//! - Ingest is all or nothing: it runs in one transaction (the caller's, or its own), and a
//!   stream that stops without its explicit end ([`IngestChunk::End`]) rolls back. In the
//!   caller's transaction, an ingest that fails after it began to write aborts that
//!   transaction, as a failing statement does in DuckDB: nothing of it can be committed.
//! - An ingest whose end comes after `--query-timeout` rolls back, and one that ends in time
//!   is answered with what its commit did: a statement that started is waited for after its
//!   interrupt (`connection.rs`), however long its commit takes.
//! - A read-only token cannot ingest; a named database must be one of the caller's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::Connection;
use pond_duckling::engine::{Appender, column_definitions, quote_ident, quote_literal};
use tokio::sync::mpsc;

use super::Coordinator;
use super::connection::{on_connection, run_in_transaction, timed_out};
use super::history::run_recorded;
use crate::error::{CoordinatorError, Result};
use crate::session::{Access, Session};

/// Where and how CommandStatementIngest writes.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    pub table: String,
    pub schema: Option<String>,
    pub catalog: Option<String>,
    pub temporary: bool,
    pub if_not_exists: IfNotExists,
    pub if_exists: IfExists,
    pub transaction: Option<String>,
}

/// What the front door feeds an ingest: batches, then an explicit end. A stream that stops
/// without its end (client error, disconnect) rolls the ingest back.
#[derive(Debug)]
pub enum IngestChunk {
    Batch(RecordBatch),
    End,
}

/// What to do when the ingest table is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfNotExists {
    Create,
    Fail,
}

/// What to do when the ingest table exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Fail,
    Append,
    Replace,
}

impl Coordinator {
    /// Bulk ingest: creates/replaces/appends the target table from a stream of batches.
    /// Recorded in the history as `INGEST INTO <table>`.
    pub async fn ingest(
        &self,
        session: &Arc<Session>,
        target: IngestTarget,
        schema: SchemaRef,
        batches: mpsc::Receiver<IngestChunk>,
    ) -> Result<i64> {
        let name: Vec<String> = [target.catalog.as_deref(), target.schema.as_deref(), Some(&target.table)]
            .into_iter()
            .flatten()
            .map(quote_ident)
            .collect();
        let recorded = self.record(
            session,
            &session.new_query_id(),
            &format!("INGEST INTO {}", name.join(".")),
            "INGEST",
            target.transaction.as_deref(),
        );
        run_recorded(
            session,
            recorded,
            self.ingest_recorded(session, target, schema, batches),
        )
        .await
    }

    async fn ingest_recorded(
        &self,
        session: &Arc<Session>,
        target: IngestTarget,
        schema: SchemaRef,
        mut batches: mpsc::Receiver<IngestChunk>,
    ) -> Result<i64> {
        if session.principal().read_only {
            return Err(CoordinatorError::PermissionDenied(
                "a read-only token cannot ingest".into(),
            ));
        }
        let user = session.principal().user.clone();
        if let Some(c) = &target.catalog
            && !target.temporary
            && self.catalog.database(&user, c)?.is_none()
        {
            return Err(CoordinatorError::NotFound(format!("database {c} does not exist")));
        }
        // A temporary table lives on the connection that makes it: the session's own, waited
        // for (a fresh one, taken while the session's is busy, would take the table with it).
        let access = match &target.transaction {
            Some(t) => Access::Transaction(t.clone()),
            None if target.temporary => Access::Own,
            None => Access::Any,
        };
        let deadline = session
            .limits()
            .query_timeout
            .map(|limit| (Instant::now() + limit, limit));
        on_connection(session, access, move |s, conn| {
            ingest_on(conn, s, &target, &schema, &mut batches, deadline)
        })
        .await
    }
}

/// The body of an ingest, on a blocking thread with the session's connection: creates,
/// replaces or appends to the target table, then appends every batch until the stream's end,
/// which must come before `deadline` (the instant, and the timeout it stands for).
fn ingest_on(
    conn: &Connection,
    session: &Session,
    target: &IngestTarget,
    schema: &SchemaRef,
    batches: &mut mpsc::Receiver<IngestChunk>,
    deadline: Option<(Instant, Duration)>,
) -> Result<i64> {
    let (current_db, current_schema) = session.current();
    let catalog = if target.temporary {
        "temp".to_string()
    } else {
        target.catalog.clone().unwrap_or(current_db)
    };
    let schema_name = target
        .schema
        .clone()
        .or(current_schema)
        .unwrap_or_else(|| "main".into());
    let exists = table_exists(conn, &catalog, &schema_name, &target.table)?;
    let columns = column_definitions(schema.fields())?;
    refuse_if_unwanted(target, exists)?;
    let in_callers_transaction = target.transaction.is_some() || session.in_transaction();
    let mut total = 0i64;
    run_in_transaction(conn, in_callers_transaction, || {
        // Whether the ingest changed anything yet: a failure before (a schema that does not
        // exist, say) leaves the caller's transaction as DuckDB would, usable.
        let mut began = false;
        let written = (|| -> Result<i64> {
            make_room(conn, target, exists, &catalog, &schema_name, &columns, &mut began)?;
            let mut appender = conn.appender(&catalog, &schema_name, &target.table)?;
            began = true;
            let appended = append_until_end(&mut appender, batches, deadline)?;
            appender.flush()?;
            Ok(appended)
        })();
        if written.is_err() && in_callers_transaction && began {
            abort_transaction(conn);
        }
        total = written?;
        Ok(())
    })?;
    Ok(total)
}

/// Aborts the open transaction as DuckDB aborts one whose statement fails while it runs:
/// later statements fail until the caller ends it, and its commit keeps nothing. (A rollback
/// here would end the caller's transaction under it; DuckDB has no savepoints.)
fn abort_transaction(conn: &Connection) {
    let aborted = conn.execute_batch("SELECT error('an ingest in this transaction failed')");
    debug_assert!(aborted.is_err(), "error() always fails");
}

fn table_exists(conn: &Connection, catalog: &str, schema: &str, table: &str) -> Result<bool> {
    let sql = format!(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = {} AND schema_name = {} AND table_name = {}",
        quote_literal(catalog),
        quote_literal(schema),
        quote_literal(table)
    );
    Ok(conn.query_all(&sql)?.iter().any(|b| b.num_rows() > 0))
}

/// Refuses, before anything is written, what the ingest's modes forbid.
fn refuse_if_unwanted(target: &IngestTarget, exists: bool) -> Result<()> {
    match (exists, target.if_exists, target.if_not_exists) {
        (true, IfExists::Fail, _) => Err(CoordinatorError::AlreadyExists(format!(
            "table {} already exists",
            target.table
        ))),
        (false, _, IfNotExists::Fail) => Err(CoordinatorError::NotFound(format!(
            "table {} does not exist",
            target.table
        ))),
        _ => Ok(()),
    }
}

/// Creates, replaces or keeps the target table (of `columns`) as the ingest's modes say, once
/// [`refuse_if_unwanted`] let it; `began` is set once it changed the catalog.
fn make_room(
    conn: &Connection,
    target: &IngestTarget,
    exists: bool,
    catalog: &str,
    schema_name: &str,
    columns: &str,
    began: &mut bool,
) -> Result<()> {
    let qualified = format!(
        "{}.{}.{}",
        quote_ident(catalog),
        quote_ident(schema_name),
        quote_ident(&target.table)
    );
    match (exists, target.if_exists) {
        (true, IfExists::Replace) => {
            conn.execute_batch(&format!("DROP TABLE {qualified}"))?;
            *began = true;
        }
        (true, _) => return Ok(()),
        (false, _) => {}
    }
    let create = match target.temporary {
        true => format!("CREATE TEMPORARY TABLE {} ({columns})", quote_ident(&target.table)),
        false => format!("CREATE TABLE {qualified} ({columns})"),
    };
    conn.execute_batch(&create)?;
    *began = true;
    Ok(())
}

/// Appends every batch until the stream's end; a stream that stops before it, or ends after
/// `deadline`, writes nothing (the transaction rolls back).
fn append_until_end(
    appender: &mut Appender<'_>,
    batches: &mut mpsc::Receiver<IngestChunk>,
    deadline: Option<(Instant, Duration)>,
) -> Result<i64> {
    let mut total = 0i64;
    loop {
        let next = match deadline {
            None => batches.blocking_recv(),
            Some((at, limit)) => {
                let wait = at.saturating_duration_since(Instant::now());
                let next = tokio::runtime::Handle::current()
                    .block_on(tokio::time::timeout(wait, batches.recv()))
                    .map_err(|_| timed_out(limit))?;
                // The end itself must come in time: what commits after it was not waited for.
                if Instant::now() >= at {
                    return Err(timed_out(limit));
                }
                next
            }
        };
        match next {
            Some(IngestChunk::Batch(batch)) => {
                appender.append(&batch)?;
                total += batch.num_rows() as i64;
            }
            Some(IngestChunk::End) => return Ok(total),
            None => {
                return Err(CoordinatorError::Cancelled(
                    "the ingest stream stopped before its end; nothing was written".into(),
                ));
            }
        }
    }
}
