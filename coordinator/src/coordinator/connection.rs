//! Running work on a session's connection: off the async workers, after admission, under the
//! duckling's write gate, within `--query-timeout`, and interrupted when its caller leaves.
//!
//! Invariants:
//! - DuckDB is only called on a blocking thread ([`blocking`], [`on_connection`]); a blocking
//!   wait on an async worker first hands the worker's other tasks away ([`off_the_workers`]).
//! - Work that may write queues for one of the user's `--max-concurrent-queries` permits and
//!   holds it until DuckDB is done, even after the caller left; work that never writes (prepare,
//!   metadata) neither queues nor takes the write gate here (a prepare's rehearsal of a script
//!   takes the gate itself, briefly, and commits nothing: `prepared.rs`).
//! - A query's interrupt handle is registered only while its connection runs it, so a cancel
//!   interrupts only what it names; dropping the caller's future interrupts the work
//!   ([`CancelOnDrop`]).
//! - A statement that finished before its timeout's interrupt landed reports what it did,
//!   not a timeout.

use std::sync::Arc;
use std::time::Duration;

use pond_duckling::{Connection, DucklingError};
use tracing::warn;

use crate::classify::Classification;
use crate::error::{CoordinatorError, Result};
use crate::session::{Access, Session};

/// Runs `f` on a blocking thread, in the caller's trace span.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| CoordinatorError::Internal(format!("worker task failed: {e}")))?
}

/// DuckDB running a statement, a trace span under the statement's: entered on the thread that
/// runs it (commits to storage show under it).
pub(super) fn duckdb_span() -> tracing::Span {
    tracing::info_span!(target: "pond_trace", "duckdb", db.system.name = "duckdb")
}

/// The connection a statement needs: its Flight transaction's, the session's own for SQL
/// transaction control (a `BEGIN` on a fresh connection would open nothing), the session's
/// own if it frees soon for temporary objects (which live there only), or any.
pub(super) fn access_for(transaction: &Option<String>, statement: &Classification) -> Access {
    match transaction {
        None if statement.transaction_control.is_some() => Access::Own,
        None if statement.names_temporary => Access::Temporary,
        _ => transaction.clone().into(),
    }
}

/// Interrupts a session operation whose caller stopped waiting (client gone, deadline passed).
pub(super) struct CancelOnDrop {
    pub(super) session: Arc<Session>,
    pub(super) op: String,
    pub(super) armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.session.cancel(&self.op);
        }
    }
}

/// Runs `f` on a blocking thread with a connection of `session` (the transaction's, when
/// `transaction` is given). If the caller's future is dropped before `f` finishes, DuckDB is
/// interrupted: gRPC deadlines and disconnects stop the work they no longer wait for.
pub(super) async fn on_connection<T: Send + 'static>(
    session: &Arc<Session>,
    access: impl Into<Access>,
    f: impl FnOnce(&Session, &Connection) -> Result<T> + Send + 'static,
) -> Result<T> {
    run_on_connection(session, access.into(), true, f).await
}

/// [`on_connection`] for work that never writes (prepare, metadata): it skips the duckling's
/// write gate and the admission queue, so it neither waits for a user's writes nor holds them up.
pub(super) async fn reading_on_connection<T: Send + 'static>(
    session: &Arc<Session>,
    access: impl Into<Access>,
    f: impl FnOnce(&Session, &Connection) -> Result<T> + Send + 'static,
) -> Result<T> {
    run_on_connection(session, access.into(), false, f).await
}

async fn run_on_connection<T: Send + 'static>(
    session: &Arc<Session>,
    access: Access,
    may_write: bool,
    f: impl FnOnce(&Session, &Connection) -> Result<T> + Send + 'static,
) -> Result<T> {
    // Statements queue for their turn; metadata and prepare (which never write) do not.
    let permit = if may_write { Some(session.admit().await?) } else { None };
    let op = session.new_op_id();
    let mut guard = CancelOnDrop {
        session: Arc::clone(session),
        op: op.clone(),
        armed: true,
    };
    let s = Arc::clone(session);
    // Set when the timeout fires: a statement still waiting for its connection or the write
    // gate then never starts (an interrupt only reaches a statement that runs).
    let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gave_up = Arc::clone(&abandoned);
    // Set when the statement starts: from then on the caller waits for its real outcome (an
    // interrupt cannot stop a commit). Stored before `gave_up` is read, and `abandoned` before
    // `started` is: either the timeout sees the start, or the statement sees the timeout.
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starting = Arc::clone(&started);
    let work = blocking(move || {
        // Held until DuckDB is done, even when the caller stopped waiting earlier.
        let _permit = permit;
        s.duckling().running(|| {
            let conn = s.acquire(&access)?;
            let _duckdb = duckdb_span().entered();
            s.started(&op, conn.interrupt_handle())?;
            let run = || {
                starting.store(true, std::sync::atomic::Ordering::SeqCst);
                if gave_up.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(CoordinatorError::Cancelled(
                        "the statement timed out before it started".into(),
                    ));
                }
                f(&s, &conn)
            };
            let result = if may_write {
                s.duckling().writing(run, || !s.in_transaction())
            } else {
                Ok(run())
            };
            s.finished(&op);
            result?
        })
    });
    let out = match session.limits().query_timeout {
        None => work.await,
        Some(limit) => {
            tokio::pin!(work);
            match tokio::time::timeout(limit, &mut work).await {
                Ok(out) => out,
                Err(_) => {
                    // Interrupt, then report what really happened: a statement that finished
                    // (a write that committed) before the interrupt landed is not an error.
                    abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
                    session.cancel(&guard.op);
                    let outcome = if started.load(std::sync::atomic::Ordering::SeqCst) {
                        Ok(work.await)
                    } else {
                        tokio::time::timeout(limit, &mut work).await
                    };
                    match outcome {
                        Ok(Err(e)) if is_interrupted(&e) => Err(timed_out(limit)),
                        Ok(other) => other,
                        // Still not started (waiting for a connection a stream holds): it
                        // will not start, and the guard interrupts it if it runs.
                        Err(_) => Err(timed_out(limit)),
                    }
                }
            }
        }
    };
    guard.armed = false;
    out
}

/// Runs blocking `f` from wherever it is called: on a multi-threaded runtime's worker it
/// first hands the worker's other tasks to another thread.
pub(super) fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether DuckDB stopped a statement because it was interrupted.
pub(super) fn is_interrupted(e: &CoordinatorError) -> bool {
    matches!(e, CoordinatorError::Cancelled(_))
        || matches!(
            e,
            CoordinatorError::Duckling(DucklingError::Sql {
                kind: pond_duckling::SqlErrorKind::Interrupted,
                ..
            })
        )
}

/// The error of a statement interrupted by `--query-timeout`.
pub(super) fn timed_out(limit: Duration) -> CoordinatorError {
    CoordinatorError::Timeout(format!(
        "the statement ran longer than the query timeout of {} (--query-timeout) and was interrupted",
        humantime::format_duration(limit)
    ))
}

/// Runs `f` inside a transaction unless one is already open, so a multi-row operation is
/// all-or-nothing.
pub(super) fn run_in_transaction(
    conn: &Connection,
    already_in_transaction: bool,
    f: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if already_in_transaction {
        return f();
    }
    conn.execute_batch("BEGIN TRANSACTION")?;
    match f() {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                warn!(%rollback, "rollback after a failed statement failed");
            }
            Err(e)
        }
    }
}
