//! What runs and what ran: every statement a client runs is recorded when it starts
//! (`pond_information_schema.recent_queries`) and, once it ends, handed to a writer thread that
//! appends it to the catalog's history (`query_history`) and to whoever observes finished
//! statements (Prometheus).
//!
//! Invariants:
//! - Recording never waits on the statement's path: a finished record goes through a bounded
//!   channel ([`QUEUE`]); when the writer falls that far behind, records are dropped and
//!   counted, never queued without bound.
//! - A statement is finished exactly once, by whoever ends it: the call that ran it, the
//!   stream that returned its rows, or, when neither will (a result never fetched, a caller
//!   gone), the drop of its [`Recorded`] or its session's close.
//! - Reading the history first waits for what this process finished to be written, so a
//!   client sees its own last statement.
//! - A duckling process hands its records to its coordinator, which decides whether they are
//!   kept (`--query-history-retention`) and counts them for its metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use arrow::array::RecordBatch;
use parking_lot::{Mutex, RwLock};
use pond_clock::Clock;
use tracing::warn;

use super::connection::is_interrupted;
use super::statements::{Planned, PlannedResult};
use super::{ADMIN_USER, Coordinator};
use crate::catalog::Catalog;
use crate::error::{CoordinatorError, Result};
use crate::history::{QueryRecord, QueryStatus, history_text, shown_text};
use crate::session::Session;

/// Finished records waiting for the writer, at most.
const QUEUE: usize = 16_384;

/// How often the writer wakes to append what finished: a statement hands its record over
/// without waking anyone (a wake per statement costs the statement's latency on a small
/// machine); a reader's flush wakes the writer at once.
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// Records the writer appends in one batch, at most.
const BATCH: usize = 1_024;

/// Called with each finished statement (metrics).
pub type QueryObserver = Box<dyn Fn(&QueryRecord) + Send + Sync>;

enum ToWriter {
    Record(Box<QueryRecord>),
    /// Answered once everything sent before it was written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The coordinator's record of statements: those running, and the writer of those done.
pub(crate) struct QueryLog {
    clock: Arc<dyn Clock>,
    /// Each running statement's record and trace span (a stream that ends it later records
    /// on the same span).
    running: Mutex<HashMap<String, (QueryRecord, tracing::Span)>>,
    to_writer: Mutex<Option<SyncSender<ToWriter>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer thread, to wake for a flush or at close.
    writer_thread: std::sync::OnceLock<std::thread::Thread>,
    observers: RwLock<Vec<QueryObserver>>,
    /// Records dropped because the writer fell behind or failed.
    pub(crate) dropped: AtomicU64,
}

/// Wall-clock microseconds since the Unix epoch, by `clock`.
pub(super) fn micros(clock: &dyn Clock) -> u64 {
    clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl QueryLog {
    /// A log whose writer appends to `catalog` when `keep` is set (else it only observes).
    pub(crate) fn start(clock: Arc<dyn Clock>, catalog: Arc<dyn Catalog>, keep: bool) -> Arc<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let log = Arc::new(Self {
            clock,
            running: Mutex::new(HashMap::new()),
            to_writer: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            writer_thread: std::sync::OnceLock::new(),
            observers: RwLock::new(Vec::new()),
            dropped: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&log);
        let writer = std::thread::Builder::new()
            .name("pond-query-history".into())
            .spawn(move || write_until_closed(rx, catalog, keep, weak))
            .expect("spawn the query history writer");
        let _ = log.writer_thread.set(writer.thread().clone());
        *log.writer.lock() = Some(writer);
        log
    }

    pub(crate) fn observe(&self, observer: QueryObserver) {
        self.observers.write().push(observer);
    }

    /// Tells the observers about records a duckling process finished.
    pub(crate) fn observed(&self, records: &[QueryRecord]) {
        let observers = self.observers.read();
        for r in records {
            for o in observers.iter() {
                o(r);
            }
        }
    }

    /// Starts the record of statement `query_id` of `session`.
    pub(crate) fn begin(
        self: &Arc<Self>,
        session: &Session,
        duckling_id: &str,
        query_id: &str,
        sql: &str,
        kind: &str,
        transaction: Option<&str>,
    ) -> Recorded {
        let transaction = transaction
            .map(str::to_string)
            .or_else(|| session.in_transaction().then(|| "sql".to_string()));
        let record = QueryRecord {
            query_id: query_id.to_string(),
            user_name: session.principal().user.clone(),
            session_id: session.id().to_string(),
            database_name: session.current().0,
            query_text: history_text(sql),
            kind: kind.to_string(),
            start_us: micros(&*self.clock),
            end_us: 0,
            rows: 0,
            bytes: 0,
            status: QueryStatus::Ok,
            error: None,
            duckling_id: duckling_id.to_string(),
            transaction_id: transaction,
        };
        // Exported only with `--otlp-endpoint`; without it the callsite is off and its fields
        // are never computed.
        let span = tracing::info_span!(
            target: "pond_trace",
            "statement",
            otel.name = %record.kind,
            db.system.name = "duckdb",
            db.namespace = %record.database_name,
            db.operation.name = %record.kind,
            db.query.text = %shown_text(sql, false),
            db.response.returned_rows = tracing::field::Empty,
            pond.user = %record.user_name,
            pond.duckling = %record.duckling_id,
            pond.query_id = %record.query_id,
            pond.bytes_returned = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        self.running.lock().insert(query_id.to_string(), (record, span));
        self.resume(query_id)
    }

    /// A handle on the running record `query_id`, for whoever ends it now (a stream).
    pub(crate) fn resume(self: &Arc<Self>, query_id: &str) -> Recorded {
        let span = self
            .running
            .lock()
            .get(query_id)
            .map_or_else(tracing::Span::none, |(_, span)| span.clone());
        Recorded {
            log: Arc::clone(self),
            query_id: query_id.to_string(),
            rows: 0,
            bytes: 0,
            armed: true,
            span,
        }
    }

    fn finish(
        &self,
        query_id: &str,
        rows: u64,
        bytes: u64,
        outcome: std::result::Result<(), String>,
        status: QueryStatus,
    ) {
        let Some((mut record, _span)) = self.running.lock().remove(query_id) else {
            return;
        };
        record.end_us = micros(&*self.clock).max(record.start_us);
        record.rows = rows;
        record.bytes = bytes;
        record.status = status;
        record.error = outcome.err();
        for o in self.observers.read().iter() {
            o(&record);
        }
        let sender = self.to_writer.lock().clone();
        if let Some(tx) = sender {
            match tx.try_send(ToWriter::Record(Box::new(record))) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Finishes, as cancelled, what `session_id` left running (its session closed).
    pub(crate) fn abandon_session(&self, session_id: &str) {
        self.abandon_where(|s| s == session_id);
    }

    /// Finishes, as cancelled, what sessions no longer in `live` left running (however they
    /// went: reaped, `SHUTDOWN`, their duckling stopped).
    pub(crate) fn abandon_orphans(&self, live: &std::collections::HashSet<String>) {
        self.abandon_where(|s| !live.contains(s));
    }

    /// Whether a statement of `session_id` runs (from its start to its end).
    pub(crate) fn runs_in(&self, session_id: &str) -> bool {
        self.running.lock().values().any(|(r, _)| r.session_id == session_id)
    }

    fn abandon_where(&self, gone: impl Fn(&str) -> bool) {
        let ids: Vec<String> = self
            .running
            .lock()
            .values()
            .filter(|(r, _)| gone(&r.session_id))
            .map(|(r, _)| r.query_id.clone())
            .collect();
        for id in ids {
            self.finish(
                &id,
                0,
                0,
                Err("its session closed before the result was read".into()),
                QueryStatus::Cancelled,
            );
        }
    }

    /// The statements running now: `user`'s, or everyone's for `None`.
    pub(crate) fn running(&self, user: Option<&str>) -> Vec<QueryRecord> {
        let mut out: Vec<QueryRecord> = self
            .running
            .lock()
            .values()
            .filter(|(r, _)| user.is_none_or(|u| r.user_name == u))
            .map(|(r, _)| r.clone())
            .collect();
        out.sort_by_key(|r| r.start_us);
        out
    }

    /// How many statements run now.
    pub(crate) fn running_count(&self) -> usize {
        self.running.lock().len()
    }

    /// Waits (at most `limit`) until everything finished so far is written.
    pub(crate) fn flush(&self, limit: Duration) {
        let sender = self.to_writer.lock().clone();
        let Some(tx) = sender else {
            return;
        };
        let deadline = std::time::Instant::now() + limit;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut flush = ToWriter::Flush(done_tx);
        // The queue may be full of a writer that is stuck: never wait past the deadline.
        loop {
            match tx.try_send(flush) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    flush = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        self.wake_writer();
        let _ = done_rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
    }

    fn wake_writer(&self) {
        if let Some(t) = self.writer_thread.get() {
            t.unpark();
        }
    }

    /// Writes what is queued and stops the writer (shutdown).
    pub(crate) fn close(&self) {
        self.to_writer.lock().take();
        self.wake_writer();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: every [`WRITE_EVERY`] (or when woken) appends what finished, in
/// batches, until every sender is gone.
fn write_until_closed(rx: Receiver<ToWriter>, catalog: Arc<dyn Catalog>, keep: bool, log: std::sync::Weak<QueryLog>) {
    let write = |batch: &mut Vec<QueryRecord>| {
        if keep
            && !batch.is_empty()
            && let Err(e) = catalog.record_queries(batch)
        {
            warn!(error = %e, records = batch.len(), "the query history could not be written");
            if let Some(log) = log.upgrade() {
                log.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
        batch.clear();
    };
    loop {
        std::thread::park_timeout(WRITE_EVERY);
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let closed = loop {
            match rx.try_recv() {
                Ok(ToWriter::Record(r)) => {
                    batch.push(*r);
                    if batch.len() >= BATCH {
                        write(&mut batch);
                    }
                }
                Ok(ToWriter::Flush(done)) => flushes.push(done),
                Err(std::sync::mpsc::TryRecvError::Empty) => break false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break true,
            }
        };
        write(&mut batch);
        for done in flushes {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// A statement's record, held by whoever runs it now. Finished by [`Recorded::done`], or,
/// when dropped first (its caller left), as cancelled.
pub(crate) struct Recorded {
    log: Arc<QueryLog>,
    query_id: String,
    rows: u64,
    bytes: u64,
    armed: bool,
    /// The statement's trace span (from [`QueryLog::begin`]).
    span: tracing::Span,
}

impl Recorded {
    /// Counts a batch returned to the client.
    pub(crate) fn returned(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.bytes += batch.get_array_memory_size() as u64;
    }

    /// Counts rows an update or ingest changed.
    pub(crate) fn changed(&mut self, rows: i64) {
        self.rows += rows.max(0) as u64;
    }

    /// The statement's span: its planning runs in it.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Finishes the record: the statement ended, with `error` if it failed.
    pub(crate) fn done(mut self, error: Option<&CoordinatorError>) {
        self.armed = false;
        if !self.span.is_disabled() {
            // As i64: OpenTelemetry has no unsigned integers (a u64 would go as text).
            self.span.record("db.response.returned_rows", self.rows as i64);
            self.span.record("pond.bytes_returned", self.bytes as i64);
            if let Some(e) = error {
                self.span.record("otel.status_code", "ERROR");
                self.span.record("error.type", status_of(e).as_str());
            }
        }
        let (outcome, status) = match error {
            None => (Ok(()), QueryStatus::Ok),
            Some(e) => (Err(e.to_string()), status_of(e)),
        };
        self.log.finish(&self.query_id, self.rows, self.bytes, outcome, status);
    }

    /// Leaves the record running: a stream ends it (see [`QueryLog::resume`]).
    pub(crate) fn continues(mut self) {
        self.armed = false;
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if self.armed {
            self.log.finish(
                &self.query_id,
                self.rows,
                self.bytes,
                Err("the client stopped before the statement ended".into()),
                QueryStatus::Cancelled,
            );
        }
    }
}

impl Coordinator {
    /// Starts the history record of statement `query_id` of `session`.
    pub(super) fn record(
        &self,
        session: &Session,
        query_id: &str,
        sql: &str,
        kind: &str,
        transaction: Option<&str>,
    ) -> Recorded {
        let duckling = match self.process_duckling_id.get() {
            Some(id) => id.clone(),
            None => format!("in-process:{}", session.principal().user),
        };
        self.history.begin(session, &duckling, query_id, sql, kind, transaction)
    }

    /// Names the duckling this process is (`pond duckling`), for the history.
    pub fn set_duckling_id(&self, id: &str) {
        let _ = self.process_duckling_id.set(id.to_string());
    }

    /// Calls `observer` with every statement that ends here, or in a duckling process of
    /// this coordinator.
    pub fn observe_queries(&self, observer: QueryObserver) {
        self.history.observe(observer);
    }

    /// Takes the statements a duckling process of `user` finished: observed, and kept unless
    /// `--query-history-retention` is 0. A record of another user is refused; a duckling is
    /// not trusted with the rest either: batches are bounded, texts cut, and times no later
    /// than this coordinator's now (a future day would never be pruned).
    pub fn record_from_duckling(&self, user: &str, records: &[QueryRecord]) -> Result<()> {
        if let Some(r) = records.iter().find(|r| r.user_name != user) {
            return Err(CoordinatorError::PermissionDenied(format!(
                "a duckling of user {user} sent a query record of user {}",
                r.user_name
            )));
        }
        if records.len() > BATCH {
            return Err(CoordinatorError::InvalidArgument(format!(
                "a duckling sent {} query records at once; at most {BATCH}",
                records.len()
            )));
        }
        let now = micros(&**self.storage.clock());
        let records: Vec<QueryRecord> = records
            .iter()
            .map(|r| QueryRecord {
                query_text: crate::history::cut(r.query_text.clone(), crate::history::MAX_TEXT_BYTES),
                error: r
                    .error
                    .clone()
                    .map(|e| crate::history::cut(e, crate::history::MAX_TEXT_BYTES)),
                end_us: r.end_us.min(now),
                start_us: r.start_us.min(r.end_us.min(now)),
                ..r.clone()
            })
            .collect();
        let records = &records[..];
        self.history.observed(records);
        if self.config.query_history_retention.is_zero() {
            return Ok(());
        }
        self.catalog.record_queries(records)
    }

    /// Statements running now, of every user.
    pub fn running_query_count(&self) -> usize {
        self.history.running_count()
    }

    /// History records dropped because the writer fell behind or failed.
    pub fn history_records_dropped(&self) -> u64 {
        self.history.dropped.load(Ordering::Relaxed)
    }

    /// The query history `user` may see: their statements, everyone's for the admin.
    pub fn query_history_of(&self, user: &str) -> Result<Vec<QueryRecord>> {
        self.catalog.query_history(whose(user))
    }

    /// [`Self::query_history_of`] `session`'s user, after what this process finished is
    /// written.
    pub(super) fn history_for(&self, session: &Session) -> Result<Vec<QueryRecord>> {
        self.history.flush(Duration::from_secs(5));
        self.query_history_of(&session.principal().user)
    }

    /// What `session`'s user may see of what runs now: their statements, everyone's for the
    /// admin.
    pub(super) fn running_for(&self, session: &Session) -> Vec<QueryRecord> {
        self.history.running(whose(&session.principal().user))
    }

    /// Forgets the history older than `--query-history-retention`, by whole days, where this
    /// process keeps it (not in a duckling process: its coordinator does).
    pub fn prune_history(&self) {
        let retention = self.config.query_history_retention;
        if self.cluster.is_some() || retention.is_zero() {
            return;
        }
        let before = micros(&**self.storage.clock()).saturating_sub(retention.as_micros() as u64);
        match self.catalog.prune_query_history(before) {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "dropped query history past its retention"),
            Err(e) => warn!(error = %e, "the query history could not be pruned"),
        }
    }

    /// Writes the history still queued and stops its writer (shutdown).
    pub(super) fn close_history(&self) {
        self.history.close();
    }
}

/// What a statement's call returns, and how that ends its record.
pub(super) trait EndsRecord: Sized {
    fn end(session: &Session, recorded: Recorded, result: &Result<Self>);
}

/// Planning ends its statement on an error, a result returned whole in the FlightInfo, or one
/// parked after it ran (a client need not fetch a DDL's result). A result that runs or streams
/// at DoGet is ended by its stream.
impl EndsRecord for Planned {
    fn end(session: &Session, mut recorded: Recorded, planned: &Result<Self>) {
        match planned {
            Ok(Planned {
                result: PlannedResult::Inline(batches),
                ..
            }) => {
                for b in batches {
                    recorded.returned(b);
                }
                recorded.done(None);
            }
            Ok(Planned {
                result: PlannedResult::Parked(id),
                ..
            }) => match session.parked_result_size(id) {
                Some((rows, bytes)) => {
                    recorded.rows += rows;
                    recorded.bytes += bytes;
                    recorded.done(None);
                }
                None => recorded.continues(),
            },
            Err(e) => recorded.done(Some(e)),
        }
    }
}

/// An update or ingest ends with the rows it changed.
impl EndsRecord for i64 {
    fn end(_: &Session, mut recorded: Recorded, changed: &Result<Self>) {
        match changed {
            Ok(n) => {
                recorded.changed(*n);
                recorded.done(None);
            }
            Err(e) => recorded.done(Some(e)),
        }
    }
}

/// Runs `statement` in `recorded`'s span and ends the record as its result says.
pub(super) async fn run_recorded<T: EndsRecord>(
    session: &Session,
    recorded: Recorded,
    statement: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    use tracing::Instrument as _;
    let result = statement.instrument(recorded.span()).await;
    T::end(session, recorded, &result);
    result
}

/// Whose statements `user` sees: their own, or everyone's (`None`) for the admin.
fn whose(user: &str) -> Option<&str> {
    (user != ADMIN_USER).then_some(user)
}

fn status_of(e: &CoordinatorError) -> QueryStatus {
    if is_interrupted(e) || matches!(e, CoordinatorError::Timeout(_)) {
        QueryStatus::Cancelled
    } else {
        QueryStatus::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_error() {
        assert_eq!(
            status_of(&CoordinatorError::Cancelled("x".into())),
            QueryStatus::Cancelled
        );
        assert_eq!(
            status_of(&CoordinatorError::Timeout("x".into())),
            QueryStatus::Cancelled
        );
        assert_eq!(
            status_of(&CoordinatorError::InvalidArgument("x".into())),
            QueryStatus::Error
        );
    }
}
