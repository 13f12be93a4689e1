//! Results streamed at DoGet: a parked query runs on a blocking thread and sends its batches
//! through a bounded channel to the [`QueryStream`] the front door reads.
//!
//! Invariants:
//! - At most [`STREAM_WINDOW`] batches wait between DuckDB and the client: a slow client slows
//!   its query, and server memory stays bounded.
//! - Every batch carries exactly the schema the FlightInfo announced ([`conform`]).
//! - Dropping a [`QueryStream`] interrupts its query; a query queued for admission stops
//!   waiting when its client leaves.
//! - A statement that writes (`INSERT … RETURNING`, a query that advances a sequence) streams
//!   under the duckling's write gate; `--max-result-bytes` ends a stream that passes it.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::{Connection, DucklingError};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::Coordinator;
use super::connection::{duckdb_span, is_interrupted, timed_out};
use super::history::Recorded;
use super::pond_views::run_prelude;
use super::statements::{allowed_kinds, for_each_batch, is_read};
use crate::error::{CoordinatorError, Result};
use crate::session::{PendingQuery, Session, SqlQuery};

/// Batches in flight between a duckling and the client: the back-pressure window. A batch is
/// one DuckDB vector (2,048 rows): merging vectors into larger batches costs a copy that
/// measured slower end to end than sending them as they come.
pub(super) const STREAM_WINDOW: usize = 4;

type BatchSender = mpsc::Sender<Result<RecordBatch>>;

/// A query's result stream. Dropping it before the end interrupts the query.
pub struct QueryStream {
    pub schema: SchemaRef,
    /// Batches received before DoGet (while GetFlightInfo waited to inline them); sent first.
    first: std::collections::VecDeque<RecordBatch>,
    rx: mpsc::Receiver<Result<RecordBatch>>,
    session: Arc<Session>,
    query_id: String,
    /// The statement's history record, ended with the stream (when dropped first: cancelled).
    recorded: Option<Recorded>,
    /// Read to its end: the query is over, and dropping the stream has nothing to interrupt
    /// (a cancel would only be remembered, against an id that never runs again).
    ended: bool,
}

impl QueryStream {
    /// The next batch, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        let next = match self.first.pop_front() {
            Some(b) => Some(Ok(b)),
            None => self.rx.recv().await,
        };
        match &next {
            Some(Ok(batch)) => {
                if let Some(r) = self.recorded.as_mut() {
                    r.returned(batch);
                }
            }
            Some(Err(e)) => {
                if let Some(r) = self.recorded.take() {
                    r.done(Some(e));
                }
            }
            None => {
                self.ended = true;
                if let Some(r) = self.recorded.take() {
                    r.done(None);
                }
            }
        }
        next
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        if !self.ended {
            self.session.cancel(&self.query_id);
        }
    }
}

impl Coordinator {
    /// Streams a parked query. Batches arrive through the returned channel; dropping the
    /// receiver interrupts the query.
    pub fn stream(self: &Arc<Self>, session: &Arc<Session>, query_id: &str) -> Result<QueryStream> {
        // Only a statement of this session: a ticket naming another's ends nothing of it.
        let of_this_session = query_id
            .strip_prefix(session.id())
            .is_some_and(|rest| rest.starts_with('.'));
        let recorded = of_this_session.then(|| self.history.resume(query_id));
        // The stream's part of the statement, under the DoGet call (the statement's span, which
        // ends with the stream, gets its rows); a query that runs now runs in it.
        let span = tracing::info_span!(target: "pond_trace", "stream", pond.query_id = query_id);
        let _stream = span.enter();
        let pending = match session.take(query_id) {
            Ok(pending) => pending,
            Err(e) => {
                // Cancelled before it was fetched: it ends here. Unknown or already fetched:
                // whoever has it ends it.
                if let (Some(r), CoordinatorError::Cancelled(_)) = (recorded, &e) {
                    r.done(Some(&e));
                }
                return Err(e);
            }
        };
        let schema = pending.schema();
        let (tx, rx) = mpsc::channel(STREAM_WINDOW);
        match pending {
            PendingQuery::Running { first, rx, .. } => {
                return Ok(QueryStream {
                    schema,
                    first: first.into(),
                    rx,
                    session: Arc::clone(session),
                    query_id: query_id.to_string(),
                    recorded,
                    ended: false,
                });
            }
            PendingQuery::Ready { batches, .. } => {
                tokio::spawn(async move {
                    for b in batches {
                        if tx.send(Ok(b)).await.is_err() {
                            break;
                        }
                    }
                });
            }
            PendingQuery::Sql(query) => spawn_streaming(session, query_id, query, tx),
        }
        Ok(QueryStream {
            schema,
            first: Default::default(),
            rx,
            session: Arc::clone(session),
            query_id: query_id.to_string(),
            recorded,
            ended: false,
        })
    }
}

/// Runs a parked query into `tx`: straight on a blocking thread when a permit is free and no
/// timeout applies (the common case, with no hop beyond that thread), otherwise once admitted
/// and under the timeout's timer.
fn spawn_streaming(session: &Arc<Session>, query_id: &str, query: SqlQuery, tx: BatchSender) {
    let (s, qid) = (Arc::clone(session), query_id.to_string());
    let span = tracing::Span::current();
    let run = move |permit: OwnedSemaphorePermit, tx: BatchSender| {
        let _stream = span.enter();
        let _duckdb = duckdb_span().entered();
        let _permit = permit;
        run_streaming(&s, &qid, &query, &tx)
    };
    let admitted = Arc::clone(&session.limits().admission).try_acquire_owned().ok();
    match (admitted, session.limits().query_timeout) {
        (Some(permit), None) => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = run(permit, tx.clone()) {
                    let _ = tx.blocking_send(Err(e));
                }
            });
        }
        (admitted, timeout) => {
            let (s, qid) = (Arc::clone(session), query_id.to_string());
            tokio::spawn(run_admitted(s, qid, admitted, timeout, run, tx));
        }
    }
}

/// [`spawn_streaming`]'s other case: waits for admission (unless `admitted`), then runs the
/// query, interrupted by `timeout`, and reports an interrupt it caused as a timeout.
async fn run_admitted(
    s: Arc<Session>,
    qid: String,
    admitted: Option<OwnedSemaphorePermit>,
    timeout: Option<Duration>,
    run: impl FnOnce(OwnedSemaphorePermit, BatchSender) -> Result<()> + Send + 'static,
    tx: BatchSender,
) {
    let permit = match admitted {
        Some(p) => p,
        None => tokio::select! {
            p = s.admit() => match p {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            },
            // The client left while the query queued.
            _ = tx.closed() => return,
        },
    };
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = timeout.map(|limit| {
        let (s, qid, fired) = (Arc::clone(&s), qid.clone(), Arc::clone(&fired));
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            fired.store(true, std::sync::atomic::Ordering::SeqCst);
            s.cancel(&qid);
        })
    });
    let sender = tx.clone();
    let result = tokio::task::spawn_blocking(move || run(permit, sender)).await;
    if let Some(t) = timer {
        t.abort();
    }
    let error = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(e) => CoordinatorError::Internal(format!("query task failed: {e}")),
    };
    let error = match timeout {
        Some(limit) if fired.load(std::sync::atomic::Ordering::SeqCst) && is_interrupted(&error) => timed_out(limit),
        _ => error,
    };
    let _ = tx.send(Err(error)).await;
}

/// The body of a streaming query, on a blocking thread.
fn run_streaming(session: &Arc<Session>, query_id: &str, query: &SqlQuery, tx: &BatchSender) -> Result<()> {
    session.duckling().running(|| {
        let conn = session.acquire(&query.access())?;
        // Registered only while this connection runs the query: a cancel that arrives later
        // must not interrupt whatever the connection runs next.
        session.started(query_id, conn.interrupt_handle())?;
        let result = run_prelude(&conn, query.prelude.as_deref()).and_then(|()| stream_on(&conn, session, query, tx));
        session.finished(query_id);
        result
    })
}

fn stream_on(conn: &Connection, session: &Session, query: &SqlQuery, tx: &BatchSender) -> Result<()> {
    let mut stmt = pond_duckling::prepare_checked(conn, &query.sql, &allowed_kinds(session.principal()))?;
    send_batches(
        &mut stmt,
        session,
        query.advances_a_sequence,
        query.params.as_ref(),
        &query.schema,
        |batch| tx.blocking_send(Ok(batch)).is_ok(),
    )
}

/// Runs prepared `stmt` and hands its result, conformed to `schema`, to `emit`, which returns
/// `false` to stop (the client went away).
pub(super) fn send_batches(
    stmt: &mut pond_duckling::Prepared<'_>,
    session: &Session,
    advances_a_sequence: bool,
    params: Option<&RecordBatch>,
    schema: &SchemaRef,
    mut emit: impl FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let reads = is_read(stmt.kind()) && !advances_a_sequence;
    let limit = session.limits().max_result_bytes;
    let mut sent = 0u64;
    let mut run = || {
        for_each_batch(stmt, params, |batch| {
            if let Some(limit) = limit {
                sent += batch.get_array_memory_size() as u64;
                if sent > limit {
                    return Err(CoordinatorError::ResourceExhausted(format!(
                        "the result is larger than the {limit}-byte limit (--max-result-bytes); \
                         add a LIMIT, a filter or an aggregate"
                    )));
                }
            }
            Ok(emit(conform(batch, schema)?))
        })
    };
    if reads {
        run()?;
    } else {
        // `INSERT … RETURNING` streams too: it writes, so it runs under the write gate.
        session.duckling().writing(run, || !session.in_transaction())??;
    }
    Ok(())
}

/// Makes a batch carry exactly the announced schema (the FlightInfo promise), casting columns
/// whose type DuckDB resolved differently at execution.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    Ok(pond_duckling::engine::cast_to_schema(&batch, schema).map_err(DucklingError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoordinatorConfig;
    use crate::coordinator::PlannedResult;

    async fn parked(c: &Arc<Coordinator>, s: &Arc<Session>, sql: &str) -> String {
        match c.plan_statement(s, sql, None, None).await.unwrap().result {
            PlannedResult::Parked(id) => id,
            PlannedResult::Inline(_) => panic!("asked for no inline result"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_a_stream_dropped_before_its_end_cancels_its_query() {
        let dir = tempfile::tempdir().unwrap();
        let c = Coordinator::open(CoordinatorConfig::new(dir.path())).unwrap();
        let (token, _) = c.tokens().mint("u1", false, Duration::from_secs(600)).unwrap();
        let s = c.session(&c.authenticate(&token).unwrap(), None).unwrap().0;
        for n in 0..300 {
            let id = parked(&c, &s, &format!("SELECT {n} + 1 AS x")).await;
            let mut stream = c.stream(&s, &id).unwrap();
            let mut rows = 0;
            while let Some(batch) = stream.next().await {
                rows += batch.unwrap().num_rows();
            }
            assert_eq!(rows, 1);
        }
        // Each used to leave its id among the remembered cancels, which every later statement
        // of the session searched.
        assert_eq!(s.remembered_cancels(), 0);

        // Dropped before its end: interrupted (counting to 10^13 would take hours).
        let id = parked(&c, &s, "SELECT count(*) FROM range(10000000000000)").await;
        let stream = c.stream(&s, &id).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(stream);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while s.running_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the dropped query still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
