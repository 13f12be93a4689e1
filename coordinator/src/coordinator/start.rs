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
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::StatementKind;
use tokio::sync::mpsc;

use super::connection::{CancelOnDrop, access_for, duckdb_span};
use super::pond_views::run_prelude;
use super::quick_reads::{QUICK_BYTES, QuickReads};
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
type Permit = tokio::sync::OwnedSemaphorePermit;

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
#[allow(clippy::too_many_arguments)]
pub(super) async fn start_statement(
    session: &Arc<Session>,
    query_id: String,
    sql: &str,
    statement: &Classification,
    prelude: Option<String>,
    permit: Permit,
    inline: Option<u64>,
    quick_reads: &Arc<QuickReads>,
) -> Result<Planned> {
    let (tx, rx) = mpsc::channel(STREAM_WINDOW);
    let mut guard = CancelOnDrop {
        session: Arc::clone(session),
        op: query_id.clone(),
        armed: true,
    };
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
    let user = session.principal().user.clone();
    let quick = starting.leaves_nothing
        && !advances_a_sequence
        && session.client_returned()
        && quick_reads.is_quick(&user, sql);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<Started>>();
    let statement_span = tracing::Span::current();
    let job = {
        let (s, quick_reads, span) = (Arc::clone(session), Arc::clone(quick_reads), statement_span.clone());
        let user = user.clone();
        move |mut started_tx: Option<StartedSender>, tx: mpsc::Sender<Result<RecordBatch>>, permit: Permit| {
            let _statement = span.enter();
            let sql = starting.sql.clone();
            let began = Instant::now();
            let mut read = None;
            let result = s.duckling().running(|| {
                let conn = s.acquire(&access)?;
                let _duckdb = duckdb_span().entered();
                s.started(&qid, conn.interrupt_handle())?;
                let result = start_on(&conn, &s, starting, inline, &mut started_tx, &tx, &mut read);
                s.finished(&qid);
                result
            });
            if let (Ok(_), Some(bytes)) = (&result, read) {
                quick_reads.ran_a_read(&user, &sql, began.elapsed(), bytes);
            }
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
        }
    };
    if quick {
        // On the async workers: with a core idle the task still runs beside this call, which
        // answers as soon as the schema is known; under load it costs no thread hand-off.
        let (s, qid, sql, quick_reads) = (
            Arc::clone(session),
            query_id.clone(),
            sql.to_string(),
            Arc::clone(quick_reads),
        );
        tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            let ran = match inline {
                // The client fetches by DoGet: its FlightInfo leaves before the statement runs,
                // as it would from a blocking thread, and its DoGet travels meanwhile.
                None => match statement_span.in_scope(|| announce_quick(&s, &sql, &quick_reads, &mut started_tx)) {
                    Announced::Schema => {
                        tokio::task::yield_now().await;
                        statement_span
                            .in_scope(|| start_quick(&s, &qid, &sql, None, &quick_reads, &mut started_tx, &tx))
                    }
                    Announced::Failed => true,
                    Announced::Declined => false,
                },
                Some(_) => {
                    statement_span.in_scope(|| start_quick(&s, &qid, &sql, inline, &quick_reads, &mut started_tx, &tx))
                }
            };
            if ran {
                drop(permit);
            } else {
                drop(tokio::task::spawn_blocking(move || job(started_tx, tx, permit)));
            }
        });
    } else {
        tokio::task::spawn_blocking(move || job(Some(started_tx), tx, permit));
    }
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
/// returns its report, which the caller sends once the connection is released. A plain read
/// that ran to its end sets `read` to the bytes it returned.
fn start_on(
    conn: &ConnGuard<'_>,
    session: &Session,
    starting: Starting,
    inline: Option<u64>,
    started: &mut Option<StartedSender>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
    read: &mut Option<u64>,
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
    let mut sent = 0u64;
    let mut send = |batch: RecordBatch| {
        sent += batch.get_array_memory_size() as u64;
        tx.blocking_send(Ok(batch)).is_ok()
    };
    let Some(limit) = inline else {
        report(
            started,
            Started::Streaming {
                schema: Arc::clone(&schema),
                first: Vec::new(),
            },
        );
        send_batches(&mut stmt, session, advances_a_sequence, None, &schema, send)?;
        *read = Some(sent);
        return Ok(None);
    };
    // Gathered here rather than through the channel: a small result then costs one hand-off.
    let mut gathered = Some((Vec::new(), 0u64));
    let mut total = 0u64;
    send_batches(
        &mut stmt,
        session,
        advances_a_sequence,
        None,
        &schema,
        |batch| match gathered.as_mut() {
            None => {
                total += batch.get_array_memory_size() as u64;
                send(batch)
            }
            Some((first, bytes)) => {
                total += batch.get_array_memory_size() as u64;
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
    *read = Some(total);
    Ok(gathered.map(|(batches, _)| Started::Complete { schema, batches }))
}

/// What a quick run of a statement came to.
enum Quick {
    /// It ran: what to report once the connection is back (unless reported already), its
    /// rows for DoGet, and the bytes they hold.
    Ran {
        report: Option<Started>,
        rows: Vec<RecordBatch>,
        bytes: u64,
    },
    /// It is not (or no longer) one plain read, or returned more than a quick read may: it
    /// runs on a blocking thread instead.
    Declined,
}

/// [`start_statement`] on an async worker, for a text whose last run was quick
/// ([`QuickReads`]). False when it could not start without waiting (the session's connection
/// is busy, an attachment is being swapped) or declined: it then runs on a blocking thread,
/// reporting through what is left of `started` and streaming into `tx` (empty still).
fn start_quick(
    session: &Session,
    query_id: &str,
    sql: &str,
    inline: Option<u64>,
    quick_reads: &QuickReads,
    started: &mut Option<StartedSender>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> bool {
    let user = &session.principal().user;
    let began = Instant::now();
    let ran = session.duckling().try_running(|| {
        let conn = match session.acquire_free() {
            Ok(Some(conn)) => conn,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let _duckdb = duckdb_span().entered();
        if let Err(e) = session.started(query_id, conn.interrupt_handle()) {
            return Some(Err(e));
        }
        let ran = quick_on(&conn, session, sql, inline);
        session.finished(query_id);
        Some(ran)
    });
    let Some(ran) = ran.flatten() else {
        return false;
    };
    session.give_back_if_spent();
    match ran {
        Ok(Quick::Ran {
            report: done,
            rows,
            bytes,
        }) => {
            tracing::trace!(took = ?began.elapsed(), bytes, "a quick read ran on an async worker");
            quick_reads.ran_a_read(user, sql, began.elapsed(), bytes);
            if let Some(done) = done {
                report(started, done);
            }
            // The channel is empty and only this sends: what fits its window goes at once.
            let rows = match rows.len() > tx.capacity() {
                true => arrow::compute::concat_batches(rows[0].schema_ref(), &rows)
                    .map(|one| vec![Ok(one)])
                    .unwrap_or_else(|e| {
                        vec![Err(CoordinatorError::Internal(format!(
                            "joining a quick read's batches: {e}"
                        )))]
                    }),
                false => rows.into_iter().map(Ok).collect(),
            };
            for batch in rows {
                let _ = tx.try_send(batch);
            }
            true
        }
        Ok(Quick::Declined) => {
            quick_reads.forget(user, sql);
            false
        }
        Err(e) => {
            quick_reads.forget(user, sql);
            match started.take() {
                Some(started) => drop(started.send(Err(e))),
                None => drop(tx.try_send(Err(e))),
            }
            true
        }
    }
}

/// What [`announce_quick`] did.
enum Announced {
    /// The schema went to the caller; the statement is still to run.
    Schema,
    /// The statement failed, and the caller was told.
    Failed,
    /// Nothing: it could not start without waiting, or is not one plain read.
    Declined,
}

/// A quick read's schema, reported to the waiting GetFlightInfo: the statement prepared (from
/// the connection's kept statements), not run.
fn announce_quick(
    session: &Session,
    sql: &str,
    quick_reads: &QuickReads,
    started: &mut Option<StartedSender>,
) -> Announced {
    let prepared = session.duckling().try_running(|| {
        let conn = match session.acquire_free() {
            Ok(Some(conn)) => conn,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let _duckdb = duckdb_span().entered();
        let committed = || !session.in_transaction();
        // One statement: see `quick_on`.
        let described = session
            .duckling()
            .prepare_script(&conn, sql, &allowed_kinds(session.principal()), &committed)
            .map(|(_, described)| described);
        Some(described.map_err(CoordinatorError::from))
    });
    match prepared.flatten() {
        None => Announced::Declined,
        Some(Ok(d)) if d.statements == 1 && d.returns_rows() && is_read(d.kind) => {
            report(
                started,
                Started::Streaming {
                    schema: d.dataset_schema,
                    first: Vec::new(),
                },
            );
            Announced::Schema
        }
        Some(Ok(_)) => {
            quick_reads.forget(&session.principal().user, sql);
            Announced::Declined
        }
        Some(Err(e)) => {
            quick_reads.forget(&session.principal().user, sql);
            if let Some(started) = started.take() {
                drop(started.send(Err(e)));
            }
            Announced::Failed
        }
    }
}

/// The body of [`start_quick`], with the session's connection: the whole result, gathered.
fn quick_on(conn: &ConnGuard<'_>, session: &Session, sql: &str, inline: Option<u64>) -> Result<Quick> {
    let duckling = session.duckling();
    let committed = || !session.in_transaction();
    // One statement: its text was one plain read when it last ran, and how a text splits into
    // statements and of what kinds is the text's own.
    let (mut stmt, described) = duckling.prepare_script(conn, sql, &allowed_kinds(session.principal()), &committed)?;
    if described.statements > 1 || !described.returns_rows() || !is_read(described.kind) {
        return Ok(Quick::Declined);
    }
    if matches!(described.kind, StatementKind::Select | StatementKind::Explain) {
        conn.ran_only_a_read(session);
    }
    let schema = described.dataset_schema;
    let (mut rows, mut bytes) = (Vec::new(), 0u64);
    send_batches(&mut stmt, session, false, None, &schema, |batch| {
        bytes += batch.get_array_memory_size() as u64;
        rows.push(batch);
        bytes <= QUICK_BYTES
    })?;
    if bytes > QUICK_BYTES {
        return Ok(Quick::Declined);
    }
    let report = match inline {
        Some(limit) if bytes <= limit => Some(Started::Complete {
            schema,
            batches: std::mem::take(&mut rows),
        }),
        Some(_) => Some(Started::Streaming {
            schema,
            first: std::mem::take(&mut rows),
        }),
        None => None,
    };
    Ok(Quick::Ran { report, rows, bytes })
}
