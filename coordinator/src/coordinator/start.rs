//! The fast path of GetFlightInfo outside transactions: a plain read starts at once, in the
//! same blocking job that prepares it, and a small result returns whole in the FlightInfo.
//!
//! Invariants:
//! - A statement that finishes here reports only once its connection is released, so the
//!   client's next statement finds the session's connection free (its temporary tables live
//!   there).
//! - Only plain reads run before DoGet asks; a statement that writes and returns rows is
//!   parked to run at DoGet, and scripts and updates run now, under the write gate.
//! - A read that streams holds its connection until DoGet drains it, or until a call that
//!   needs the connection stops it; it then runs again at DoGet (`PendingQuery::Running`
//!   keeps what it needs).
//! - Work the caller stopped waiting for (deadline, disconnect) is interrupted.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::StatementKind;
use tokio::sync::mpsc;

use super::connection::{CancelOnDrop, access_for, duckdb_span};
use super::pond_views::run_prelude;
use super::statements::{Planned, PlannedResult, allowed_kinds, collect, is_read};
use super::streaming::{STREAM_WINDOW, send_batches};
use crate::classify::Classification;
use crate::error::{CoordinatorError, Result};
use crate::session::{ConnGuard, PendingQuery, Session, SqlQuery};

/// What [`start_on`] reports once the statement is prepared, or has run far enough.
enum Started {
    /// A plain read: `first` arrived, the rest streams into the channel.
    Streaming { schema: SchemaRef, first: Vec<RecordBatch> },
    /// A plain read's whole result, within the inline limit the caller gave.
    Complete {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// Anything else, ready for DoGet: already run (scripts, updates), or to run there
    /// (writes that return rows, which must not run before DoGet asks).
    Parked(PendingQuery),
}

type StartedSender = tokio::sync::oneshot::Sender<Result<Started>>;

/// The statement [`start_on`] runs.
struct Starting {
    sql: String,
    /// Pond's SQL to run first on the same connection.
    prelude: Option<String>,
    advances_a_sequence: bool,
    names_temporary: bool,
    /// Whether a plain read of it leaves nothing on its connection: no prelude (Pond's
    /// temporary macros of the caller's rows), no `setseed`.
    leaves_nothing: bool,
}

/// The fast path of `Coordinator::plan_statement` outside transactions: one job prepares
/// the statement and, when it is a plain read, runs it at once, on one blocking thread.
///
/// - Without `inline`, GetFlightInfo returns as soon as the schema is known while the rows
///   stream into a bounded channel, so DoGet finds them waiting: one prepare and one thread
///   hand-off per query instead of two each.
/// - With `inline`, the job gathers rows up to that many bytes before it reports: a result
///   that ends within them returns whole, in one hand-off; a larger one is parked with the
///   rows gathered so far, and the rest streams.
///
/// The rows wait at most [`STREAM_WINDOW`] batches ahead; a query that DoGet never fetches
/// stops when its parked entry is dropped (session end, or too many parked queries).
pub(super) async fn start_statement(
    session: &Arc<Session>,
    query_id: String,
    sql: &str,
    statement: &Classification,
    prelude: Option<String>,
    permit: tokio::sync::OwnedSemaphorePermit,
    inline: Option<u64>,
) -> Result<Planned> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<Started>>();
    let (tx, rx) = mpsc::channel(STREAM_WINDOW);
    let mut guard = CancelOnDrop {
        session: Arc::clone(session),
        op: query_id.clone(),
        armed: true,
    };
    let s = Arc::clone(session);
    let qid = query_id.clone();
    // Kept to run the query again at DoGet if it must give its connection back first.
    let (rerun_sql, rerun_prelude) = (sql.to_string(), prelude.clone());
    let advances_a_sequence = statement.advances_a_sequence;
    let access = access_for(&None, statement);
    let starting = Starting {
        sql: sql.to_string(),
        leaves_nothing: prelude.is_none() && !statement.seeds_random,
        prelude,
        advances_a_sequence,
        names_temporary: statement.names_temporary,
    };
    let statement_span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _statement = statement_span.enter();
        let mut started_tx = Some(started_tx);
        let result = s.duckling().running(|| {
            let conn = s.acquire(&access)?;
            let _duckdb = duckdb_span().entered();
            s.started(&qid, conn.interrupt_handle())?;
            let result = start_on(&conn, &s, starting, inline, &mut started_tx, &tx);
            s.finished(&qid);
            result
        });
        s.give_back_if_spent();
        // DuckDB is done: an error below may wait for room in the channel without the permit.
        drop(permit);
        // Only now, with the connection back: the client's next statement must find the
        // session's connection free (its temporary tables live there).
        match result {
            Ok(Some(done)) => report(&mut started_tx, done),
            Ok(None) => {}
            Err(e) => match started_tx.take() {
                Some(started) => drop(started.send(Err(e))),
                None => drop(tx.blocking_send(Err(e))),
            },
        }
    });
    let started = started_rx
        .await
        .map_err(|_| CoordinatorError::Internal("the statement's worker stopped".into()))??;
    guard.armed = false;
    let pending = match started {
        Started::Complete { schema, batches } => {
            return Ok(Planned {
                schema,
                result: PlannedResult::Inline(batches),
            });
        }
        Started::Parked(PendingQuery::Ready { schema, batches })
            if inline.is_some_and(|limit| bytes_of(&batches) <= limit) =>
        {
            return Ok(Planned {
                schema,
                result: PlannedResult::Inline(batches),
            });
        }
        Started::Streaming { schema, first } => PendingQuery::Running {
            first,
            rx,
            rerun: SqlQuery {
                sql: rerun_sql,
                prelude: rerun_prelude,
                params: None,
                transaction: None,
                schema,
                advances_a_sequence,
                names_temporary: statement.names_temporary,
            },
        },
        Started::Parked(pending) => pending,
    };
    let schema = pending.schema();
    let query_id = session.park_as(query_id, pending);
    Ok(Planned::parked(query_id, schema))
}

fn bytes_of(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.get_array_memory_size() as u64).sum()
}

/// Sends `what` to the waiting GetFlightInfo, once.
fn report(started: &mut Option<StartedSender>, what: Started) {
    if let Some(tx) = started.take() {
        // The caller may have gone; a streaming query then stops at its first send.
        let _ = tx.send(Ok(what));
    }
}

/// The body of [`start_statement`], on a blocking thread with a connection. A streaming read
/// reports through `started` as it runs, its rows going to `tx`; a statement that is done
/// returns its report, which the caller sends once the connection is released.
fn start_on(
    conn: &ConnGuard<'_>,
    session: &Session,
    starting: Starting,
    inline: Option<u64>,
    started: &mut Option<StartedSender>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<Option<Started>> {
    let Starting {
        sql,
        prelude,
        advances_a_sequence,
        names_temporary,
        leaves_nothing,
    } = starting;
    let duckling = session.duckling();
    let committed = || !session.in_transaction();
    // Pond's own temporary objects: nothing to gate.
    run_prelude(conn, prelude.as_deref())?;
    let (mut stmt, described) = duckling.prepare_script(conn, &sql, &allowed_kinds(session.principal()), &committed)?;
    if described.statements > 1 || !described.returns_rows() {
        let ran = duckling.writing(|| collect(&mut stmt, None, session.limits()), committed)??;
        return Ok(Some(Started::Parked(ran)));
    }
    if !is_read(described.kind) || advances_a_sequence {
        return Ok(Some(Started::Parked(PendingQuery::Sql(SqlQuery {
            sql,
            prelude,
            params: None,
            transaction: None,
            schema: described.dataset_schema,
            advances_a_sequence,
            names_temporary,
        }))));
    }
    // PRAGMA and CALL count as reads for the write gate, yet may leave state on the connection.
    if leaves_nothing && matches!(described.kind, StatementKind::Select | StatementKind::Explain) {
        conn.ran_only_a_read(session);
    }
    let schema = described.dataset_schema;
    let send = |batch| tx.blocking_send(Ok(batch)).is_ok();
    let Some(limit) = inline else {
        report(
            started,
            Started::Streaming {
                schema: Arc::clone(&schema),
                first: Vec::new(),
            },
        );
        send_batches(&mut stmt, session, advances_a_sequence, None, &schema, send)?;
        return Ok(None);
    };
    // Gathered here rather than through the channel: a small result then costs one hand-off.
    let mut gathered = Some((Vec::new(), 0u64));
    send_batches(
        &mut stmt,
        session,
        advances_a_sequence,
        None,
        &schema,
        |batch| match gathered.as_mut() {
            None => send(batch),
            Some((first, bytes)) => {
                *bytes += batch.get_array_memory_size() as u64;
                first.push(batch);
                if *bytes > limit
                    && let Some((first, _)) = gathered.take()
                {
                    report(
                        started,
                        Started::Streaming {
                            schema: Arc::clone(&schema),
                            first,
                        },
                    );
                }
                true
            }
        },
    )?;
    Ok(gathered.map(|(batches, _)| Started::Complete { schema, batches }))
}
