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
use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::StatementKind;
use tokio::sync::mpsc;

use super::connection::{CancelOnDrop, access_for, duckdb_span};
use super::pond_views::run_prelude;
use super::quick_reads::{Place, QUICK_BYTES, QuickReads};
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
    /// The schema a quick run already announced (see [`Quickly::announce`]): the statement
    /// must still have it.
    announced: Option<SchemaRef>,
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
///
/// A text whose last run was a quick plain read ([`QuickReads`]) runs on the async workers
/// instead ([`Quickly`]), falling back to the blocking thread when it cannot start at once or
/// turns out slow or large.
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
        announced: None,
    };
    // Where a quick text runs: its database and schema, read once.
    let quick = (starting.leaves_nothing && !advances_a_sequence && session.client_returned())
        .then(|| session.current())
        .filter(|(database, schema)| quick_reads.is_quick(&place(session, database, schema.as_deref()), sql));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<Started>>();
    let statement_span = tracing::Span::current();
    let job = {
        let (s, quick_reads, span) = (Arc::clone(session), Arc::clone(quick_reads), statement_span.clone());
        move |mut started_tx: Option<StartedSender>,
              tx: mpsc::Sender<Result<RecordBatch>>,
              permit: Permit,
              announced: Option<SchemaRef>| {
            let _statement = span.enter();
            let sql = starting.sql.clone();
            let (database, schema) = s.current();
            let began = Instant::now();
            let mut read = None;
            let result = s.duckling().running(|| {
                let conn = s.acquire(&access)?;
                let _duckdb = duckdb_span().entered();
                s.started(&qid, conn.interrupt_handle())?;
                let starting = Starting { announced, ..starting };
                let result = start_on(&conn, &s, starting, inline, &mut started_tx, &tx, &mut read);
                s.finished(&qid);
                result
            });
            if let (Ok(_), Some(bytes)) = (&result, read) {
                let place = place(&s, &database, schema.as_deref());
                quick_reads.ran_a_read(&place, &sql, began.elapsed(), bytes);
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
    if let Some((database, schema)) = quick {
        // On the async workers: with a core idle the task still runs beside this call, which
        // answers as soon as the schema is known; under load it costs no thread hand-off.
        let (s, qid, sql, quick_reads) = (
            Arc::clone(session),
            query_id.clone(),
            sql.to_string(),
            Arc::clone(quick_reads),
        );
        tokio::spawn(async move {
            let mut started = Some(started_tx);
            let quick = Quickly {
                session: &s,
                place: place(&s, &database, schema.as_deref()),
                query_id: &qid,
                sql: &sql,
                reads: &quick_reads,
            };
            let (ran, announced) = match inline {
                // The client fetches by DoGet: its FlightInfo leaves before the statement runs,
                // as it would from a blocking thread, and its DoGet travels meanwhile.
                None => match statement_span.in_scope(|| quick.announce(&mut started)) {
                    Announced::Schema(schema) => {
                        tokio::task::yield_now().await;
                        let ran = statement_span.in_scope(|| quick.start(None, Some(&schema), &mut started, &tx));
                        (ran, Some(schema))
                    }
                    Announced::Failed => (true, None),
                    Announced::Declined => (false, None),
                },
                Some(_) => (
                    statement_span.in_scope(|| quick.start(inline, None, &mut started, &tx)),
                    None,
                ),
            };
            if ran {
                drop(permit);
            } else {
                drop(tokio::task::spawn_blocking(move || job(started, tx, permit, announced)));
            }
        });
    } else {
        tokio::task::spawn_blocking(move || job(Some(started_tx), tx, permit, None));
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
        announced,
    } = starting;
    let duckling = session.duckling();
    let committed = || !session.in_transaction();
    // Pond's own temporary objects: nothing to gate.
    run_prelude(conn, prelude.as_deref())?;
    let (mut stmt, described) = duckling.prepare_script(conn, &sql, &allowed_kinds(session.principal()), &committed)?;
    if announced.is_some_and(|a| a != described.dataset_schema) {
        return Err(columns_changed());
    }
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
    // A run counts as quick only if all of it was delivered (see `quick_reads`).
    let (mut sent, mut delivered) = (0u64, true);
    let mut send = |batch: RecordBatch| {
        sent += batch.get_array_memory_size() as u64;
        delivered &= tx.blocking_send(Ok(batch)).is_ok();
        delivered
    };
    let Some(limit) = inline else {
        report(
            started,
            Started::Streaming {
                schema: Arc::clone(&schema),
                first: Vec::new(),
            },
        );
        send_batches(&mut stmt, session, advances_a_sequence, None, &schema, &mut send)?;
        *read = delivered.then_some(sent);
        return Ok(None);
    };
    // Gathered here rather than through the channel: a small result then costs one hand-off.
    let mut gathered = Some((Vec::new(), 0u64));
    let mut total = 0u64;
    send_batches(&mut stmt, session, advances_a_sequence, None, &schema, |batch| {
        let size = batch.get_array_memory_size() as u64;
        total += size;
        match gathered.as_mut() {
            None => send(batch),
            Some((first, bytes)) => {
                *bytes += size;
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
        }
    })?;
    *read = delivered.then_some(total);
    Ok(gathered.map(|(batches, _)| Started::Complete { schema, batches }))
}

/// The error of a statement whose columns changed between the FlightInfo that announced them
/// and its run.
fn columns_changed() -> CoordinatorError {
    CoordinatorError::Unavailable(
        "the statement's columns changed between its FlightInfo and its run (a table it reads was altered meanwhile); run it again"
            .into(),
    )
}

/// Whether a kept statement is what a quick read may be: it returns rows and only reads.
fn one_plain_read(described: &pond_duckling::Described) -> bool {
    described.returns_rows() && is_read(described.kind)
}

/// Where `session` runs, for [`QuickReads`].
fn place<'a>(session: &'a Session, database: &'a str, schema: Option<&'a str>) -> Place<'a> {
    Place {
        user: &session.principal().user,
        database,
        schema,
    }
}

/// What [`Quickly::announce`] did.
enum Announced {
    /// The schema went to the caller; the statement is still to run.
    Schema(SchemaRef),
    /// The statement failed, and the caller was told.
    Failed,
    /// Nothing: it could not start without waiting, or is not one plain read.
    Declined,
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
    /// It is not (or no longer) one plain read, returned more than a quick read may, or ran
    /// past its limit (`quick_reads::LIMIT_FACTOR`): it runs on a blocking thread instead.
    Declined,
}

/// [`start_statement`] on an async worker, for a text whose last run was quick
/// ([`QuickReads`]).
struct Quickly<'a> {
    session: &'a Session,
    /// Where the text was found quick.
    place: Place<'a>,
    query_id: &'a str,
    sql: &'a str,
    reads: &'a QuickReads,
}

impl Quickly<'_> {
    /// `f` with the session's connection, when it and the duckling are free now (see
    /// [`Session::acquire_free`]); `None` when either would make the worker wait.
    fn on_free_connection<T>(&self, f: impl FnOnce(&ConnGuard<'_>) -> Result<T>) -> Option<Result<T>> {
        self.session.duckling().try_running(|| {
            let conn = match self.session.acquire_free() {
                Ok(conn) => conn?,
                Err(e) => return Some(Err(e)),
            };
            let _duckdb = duckdb_span().entered();
            Some(f(&conn))
        })?
    }

    /// The statement's schema, reported to the waiting GetFlightInfo: the statement the
    /// connection kept prepared from an earlier run, not run. Without one it is declined:
    /// planning it again may take longer than a quick read may hold a worker.
    fn announce(&self, started: &mut Option<StartedSender>) -> Announced {
        let session = self.session;
        let prepared = self.on_free_connection(|conn| {
            let kept = pond_duckling::prepare_kept(conn, self.sql, &allowed_kinds(session.principal()))?;
            Ok(kept.map(|(_, described)| described))
        });
        match prepared {
            None | Some(Ok(None)) => Announced::Declined,
            Some(Ok(Some(d))) if one_plain_read(&d) => {
                let schema = d.dataset_schema;
                report(
                    started,
                    Started::Streaming {
                        schema: Arc::clone(&schema),
                        first: Vec::new(),
                    },
                );
                Announced::Schema(schema)
            }
            Some(Ok(Some(_))) => {
                self.reads.forget(&self.place, self.sql);
                Announced::Declined
            }
            Some(Err(e)) => {
                self.reads.forget(&self.place, self.sql);
                if let Some(started) = started.take() {
                    drop(started.send(Err(e)));
                }
                Announced::Failed
            }
        }
    }

    /// Runs the statement, under the watchdog. False when it could not start without waiting
    /// or was declined: it then runs on a blocking thread, reporting through what is left of
    /// `started` and streaming into `tx` (empty still). `announced` is the schema
    /// [`Self::announce`] reported.
    fn start(
        &self,
        inline: Option<u64>,
        announced: Option<&SchemaRef>,
        started: &mut Option<StartedSender>,
        tx: &mpsc::Sender<Result<RecordBatch>>,
    ) -> bool {
        let (session, reads, place) = (self.session, self.reads, &self.place);
        let began = Instant::now();
        let ran = self.on_free_connection(|conn| {
            // One handle for a cancel and the watchdog: a new handle forgets earlier interrupts.
            let interrupt = conn.interrupt_handle();
            session.started(self.query_id, interrupt.clone())?;
            let ran = match reads.watch(interrupt) {
                Some(watch) => {
                    let ran = quick_on(conn, session, self.sql, inline, announced);
                    if watch.end() {
                        // Stopped by the watchdog: not an answer, a slow read. The interrupt
                        // must not refuse what runs next on the connection.
                        drop(conn.interrupt_handle());
                        Ok(Quick::Declined)
                    } else {
                        ran
                    }
                }
                None => Ok(Quick::Declined),
            };
            session.finished(self.query_id);
            ran
        });
        let Some(ran) = ran else {
            return false;
        };
        session.give_back_if_spent();
        match ran {
            Ok(Quick::Ran {
                report: done,
                rows,
                bytes,
            }) => {
                reads.ran.fetch_add(1, Ordering::Relaxed);
                reads.ran_a_read(place, self.sql, began.elapsed(), bytes);
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
                reads.declined.fetch_add(1, Ordering::Relaxed);
                reads.forget(place, self.sql);
                false
            }
            Err(e) => {
                reads.forget(place, self.sql);
                match started.take() {
                    Some(started) => drop(started.send(Err(e))),
                    None => drop(tx.try_send(Err(e))),
                }
                true
            }
        }
    }
}

/// The body of [`Quickly::start`], with the session's connection: the whole result, gathered.
fn quick_on(
    conn: &ConnGuard<'_>,
    session: &Session,
    sql: &str,
    inline: Option<u64>,
    announced: Option<&SchemaRef>,
) -> Result<Quick> {
    // Only a statement the connection kept: see `Quickly::announce`.
    let Some((mut stmt, described)) = pond_duckling::prepare_kept(conn, sql, &allowed_kinds(session.principal()))?
    else {
        return Ok(Quick::Declined);
    };
    if !one_plain_read(&described) {
        return Ok(Quick::Declined);
    }
    if announced.is_some_and(|a| *a != described.dataset_schema) {
        return Err(columns_changed());
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
