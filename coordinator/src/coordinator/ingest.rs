//! Bulk ingest (Flight SQL's CommandStatementIngest): creates, replaces or appends a table
//! from a stream of Arrow batches through DuckDB's appender.
//!
//! Invariants:
//! - Ingest is all or nothing: it runs in one transaction (the caller's, or its own), and a
//!   stream that stops without its explicit end ([`IngestChunk::End`]) rolls back.
//! - A read-only token cannot ingest; a named database must be one of the caller's.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::Connection;
use pond_duckling::engine::{column_definitions, quote_ident, quote_literal};
use tokio::sync::mpsc;

use super::Coordinator;
use super::connection::{on_connection, run_in_transaction};
use crate::error::{CoordinatorError, Result};
use crate::session::Session;

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
    pub async fn ingest(
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
        let transaction = target.transaction.clone();
        on_connection(session, transaction, move |s, conn| {
            ingest_on(conn, s, &target, &schema, &mut batches)
        })
        .await
    }
}

/// The body of an ingest, on a blocking thread with the session's connection: creates,
/// replaces or appends to the target table, then appends every batch until the stream's end.
fn ingest_on(
    conn: &Connection,
    session: &Session,
    target: &IngestTarget,
    schema: &SchemaRef,
    batches: &mut mpsc::Receiver<IngestChunk>,
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
    let qualified = format!(
        "{}.{}.{}",
        quote_ident(&catalog),
        quote_ident(&schema_name),
        quote_ident(&target.table)
    );
    let exists = !conn
        .query_all(&format!(
            "SELECT 1 FROM duckdb_tables() WHERE database_name = {} AND schema_name = {} AND table_name = {}",
            quote_literal(&catalog),
            quote_literal(&schema_name),
            quote_literal(&target.table)
        ))?
        .iter()
        .all(|b| b.num_rows() == 0);
    let columns = column_definitions(schema.fields())?;
    let create = format!(
        "CREATE {}TABLE {} ({columns})",
        if target.temporary { "TEMPORARY " } else { "" },
        if target.temporary {
            quote_ident(&target.table)
        } else {
            qualified.clone()
        }
    );
    let mut total = 0i64;
    run_in_transaction(conn, target.transaction.is_some() || session.in_transaction(), || {
        match (exists, target.if_exists, target.if_not_exists) {
            (true, IfExists::Fail, _) => {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "table {} already exists",
                    target.table
                )));
            }
            (true, IfExists::Replace, _) => {
                conn.execute_batch(&format!("DROP TABLE {qualified}"))?;
                conn.execute_batch(&create)?;
            }
            (true, IfExists::Append, _) => {}
            (false, _, IfNotExists::Fail) => {
                return Err(CoordinatorError::NotFound(format!(
                    "table {} does not exist",
                    target.table
                )));
            }
            (false, _, IfNotExists::Create) => conn.execute_batch(&create)?,
        }
        let mut appender = conn.appender(&catalog, &schema_name, &target.table)?;
        loop {
            match batches.blocking_recv() {
                Some(IngestChunk::Batch(batch)) => {
                    appender.append(&batch)?;
                    total += batch.num_rows() as i64;
                }
                Some(IngestChunk::End) => break,
                None => {
                    return Err(CoordinatorError::Cancelled(
                        "the ingest stream stopped before its end; nothing was written".into(),
                    ));
                }
            }
        }
        appender.flush()?;
        Ok(())
    })?;
    Ok(total)
}
