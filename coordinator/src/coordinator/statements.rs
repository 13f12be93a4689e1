//! SQL statements: planned for GetFlightInfo, run as updates, and Flight SQL transactions.
//!
//! Invariants:
//! - A statement's text is classified once, here, where it enters ([`classify`]); Pond's own
//!   statements run in the coordinator and never reach DuckDB.
//! - Every statement of a script is checked against what the caller may run
//!   ([`allowed_kinds`]) before any of it runs.
//! - SQL transaction control (`BEGIN`, `COMMIT`, …) runs on the session's own connection, and
//!   the session records what it did ([`track_session_state`]): every later call waits for that
//!   connection while a transaction is open. A statement that changes a setting records it the
//!   same way, for every connection the session runs on later; it never takes the fast path,
//!   which records nothing.
//! - A result held whole in the server is bounded ([`COLLECTED_RESULT_LIMIT`]), even without
//!   `--max-result-bytes`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use pond_duckling::{DucklingError, StatementKind, prepare_script};

use super::Coordinator;
use super::connection::{access_for, blocking, on_connection};
use super::history::run_recorded;
use super::pond_views::run_prelude;
use super::start::start_statement;
use crate::auth::Principal;
use crate::classify::{Classification, classify};
use crate::error::{CoordinatorError, Result};
use crate::session::{PendingQuery, Session, SqlQuery};

/// What GetFlightInfo needs: the result schema, and the id DoGet will fetch or the result itself.
#[derive(Debug, Clone)]
pub struct Planned {
    pub schema: SchemaRef,
    pub result: PlannedResult,
}

/// Where a planned statement's result is.
#[derive(Debug, Clone)]
pub enum PlannedResult {
    /// Parked in the session under this id until DoGet fetches it.
    Parked(String),
    /// The whole result, small enough to travel in the FlightInfo (the caller asked for that
    /// and gave the limit); nothing is parked.
    Inline(Vec<RecordBatch>),
}

impl Planned {
    pub(super) fn parked(query_id: String, schema: SchemaRef) -> Self {
        Self {
            schema,
            result: PlannedResult::Parked(query_id),
        }
    }
}

/// The most result bytes a FlightInfo carries inline, whatever the client asks: well under
/// gRPC's default 4 MiB message limit.
pub const MAX_INLINE_BYTES: u64 = 1 << 20;

/// What a principal may run: everything the sandbox allows, or, with a read-only token, only
/// statements that do not write. Checked for every statement of a script before it runs.
pub(super) fn allowed_kinds(principal: &Principal) -> impl Fn(StatementKind) -> Result<(), DucklingError> + use<> {
    let read_only = principal.read_only;
    move |kind| {
        if read_only && !is_read(kind) {
            return Err(DucklingError::PermissionDenied(format!(
                "a read-only token cannot run {kind:?} statements"
            )));
        }
        Ok(())
    }
}

/// Whether statements of `kind` only read.
pub(super) fn is_read(kind: StatementKind) -> bool {
    use StatementKind::*;
    matches!(
        kind,
        Select | Explain | Pragma | Call | Transaction | VariableSet | Relation
    )
}

/// Records what a statement did to its session once it ran: a `BEGIN` that succeeded opens, a
/// `COMMIT`/`ROLLBACK` ends the transaction whether or not it succeeded (DuckDB rolls back a
/// failed commit); `settings`, the text when it changes settings, records them if it succeeded.
pub(super) fn track_session_state<T>(
    session: &Session,
    control: Option<bool>,
    settings: Option<&str>,
    result: Result<T>,
) -> Result<T> {
    match (control, &result) {
        (Some(open), Ok(_)) => session.set_sql_transaction(open),
        (Some(false), Err(_)) => session.set_sql_transaction(false),
        _ => {}
    }
    if let (Some(sql), Ok(_)) = (settings, &result) {
        session.record_settings(sql);
    }
    result
}

/// Results collected whole (instead of streamed) are bounded even without
/// `--max-result-bytes`: they are held in the server's memory, outside DuckDB's limit.
const COLLECTED_RESULT_LIMIT: u64 = 256 << 20;

/// Runs a prepared statement once per parameter row (once without parameters) and hands
/// every result batch to `f`, which returns `false` to stop early. Returns the schema of the
/// first result.
pub(super) fn for_each_batch(
    stmt: &mut pond_duckling::Prepared<'_>,
    params: Option<&RecordBatch>,
    mut f: impl FnMut(RecordBatch) -> Result<bool>,
) -> Result<Option<SchemaRef>> {
    let rows: Vec<Option<usize>> = match params {
        Some(p) => (0..p.num_rows()).map(Some).collect(),
        None => vec![None],
    };
    let mut schema = None;
    for row in rows {
        if let (Some(p), Some(r)) = (params, row) {
            stmt.bind_row(p, r)?;
        }
        let mut stream = stmt.execute_streaming()?;
        schema.get_or_insert_with(|| stream.schema());
        while let Some(b) = stream.next_batch()? {
            if !f(b)? {
                return Ok(schema);
            }
        }
    }
    Ok(schema)
}

/// Runs a prepared statement like [`for_each_batch`] and collects the result: for updates,
/// scripts and results whose type only execution reveals.
pub(super) fn collect(
    stmt: &mut pond_duckling::Prepared<'_>,
    params: Option<&RecordBatch>,
    limits: &crate::session::SessionLimits,
) -> Result<PendingQuery> {
    let limit = limits.max_result_bytes.unwrap_or(u64::MAX).min(COLLECTED_RESULT_LIMIT);
    let mut batches = Vec::new();
    let mut held = 0u64;
    let schema = for_each_batch(stmt, params, |b| {
        held += b.get_array_memory_size() as u64;
        if held > limit {
            return Err(CoordinatorError::ResourceExhausted(format!(
                "the result is larger than the {limit}-byte limit for results held whole (a script's last \
                 statement, or a query whose types depend on its parameters; --max-result-bytes); \
                 run it as a single statement, or add a LIMIT"
            )));
        }
        batches.push(b);
        Ok(true)
    })?;
    let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok(PendingQuery::Ready { schema, batches })
}

impl Coordinator {
    /// Plans a statement for GetFlightInfo. Queries are parked to stream at DoGet; everything
    /// else runs now, and DoGet returns its (small) result.
    ///
    /// With `inline`, a result of at most that many bytes (capped at [`MAX_INLINE_BYTES`]) is
    /// returned whole instead of parked, when the statement runs outside a transaction: the
    /// client then needs one round trip, not two.
    pub async fn plan_statement(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
        inline: Option<u64>,
    ) -> Result<Planned> {
        let statement = classify(sql)?;
        self.plan_classified(session, sql, statement, transaction, inline).await
    }

    /// [`Self::plan_statement`] for a text already classified, recorded in the history.
    pub(super) async fn plan_classified(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        statement: Classification,
        transaction: Option<&str>,
        inline: Option<u64>,
    ) -> Result<Planned> {
        let query_id = session.new_query_id();
        let recorded = self.record(session, &query_id, sql, &statement.kind, transaction);
        let planning = self.plan_recorded(session, sql, statement, transaction, inline, query_id);
        run_recorded(session, recorded, planning).await
    }

    /// [`Self::plan_classified`] once recorded: a parked result is parked as `query_id`.
    pub(super) async fn plan_recorded(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        statement: Classification,
        transaction: Option<&str>,
        inline: Option<u64>,
        query_id: String,
    ) -> Result<Planned> {
        if let Some(cmd) = statement.command.clone() {
            let s = Arc::clone(session);
            let this = Arc::clone(self);
            let (schema, batches) = blocking(move || this.run_command(&s, cmd)).await?;
            let query_id = session.park_as(
                query_id,
                PendingQuery::Ready {
                    schema: Arc::clone(&schema),
                    batches,
                },
            );
            return Ok(Planned::parked(query_id, schema));
        }
        self.follow_latest(session).await?;
        self.fill_information_schema_for(session, &statement).await?;
        let prelude = self.prelude_for(session, &statement)?;
        let control = statement.transaction_control;
        let advances_a_sequence = statement.advances_a_sequence;
        // The fast path outside transactions. With a query timeout, queued behind the
        // concurrent-query limit, or while another started query waits for its DoGet (a client
        // may plan many queries before it fetches any), the statement is planned first and
        // runs at DoGet, holding nothing meanwhile.
        if transaction.is_none()
            && control.is_none()
            && !statement.changes_settings
            && session.limits().query_timeout.is_none()
            && !session.in_transaction()
            && !session.has_unfetched()
            && let Ok(permit) = Arc::clone(&session.limits().admission).try_acquire_owned()
        {
            let inline = inline.map(|n| n.min(MAX_INLINE_BYTES));
            return start_statement(
                session,
                query_id,
                sql,
                &statement,
                prelude,
                permit,
                inline,
                &self.quick_reads,
            )
            .await;
        }
        let sql_owned = sql.to_string();
        let settings = statement.changes_settings.then(|| sql.to_string());
        let txn = transaction.map(str::to_string);
        let names_temporary = statement.names_temporary;
        let pending = on_connection(session, access_for(&txn, &statement), move |s, conn| {
            run_prelude(conn, prelude.as_deref())?;
            let (mut stmt, described) = prepare_script(conn, &sql_owned, &allowed_kinds(s.principal()))?;
            let single = described.statements == 1;
            if single && described.returns_rows() {
                return Ok(PendingQuery::Sql(SqlQuery {
                    sql: sql_owned,
                    prelude,
                    params: None,
                    transaction: txn,
                    schema: described.dataset_schema,
                    advances_a_sequence,
                    names_temporary,
                }));
            }
            let result = collect(&mut stmt, None, s.limits());
            track_session_state(s, control, settings.as_deref(), result)
        })
        .await?;
        let schema = pending.schema();
        let query_id = session.park_as(query_id, pending);
        Ok(Planned::parked(query_id, schema))
    }

    /// Runs an update (DoPut CommandStatementUpdate) and returns the rows changed.
    pub async fn execute_update(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
    ) -> Result<i64> {
        let statement = classify(sql)?;
        self.execute_classified(session, sql, statement, transaction).await
    }

    /// [`Self::execute_update`] for a text already classified, recorded in the history.
    pub(super) async fn execute_classified(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        statement: Classification,
        transaction: Option<&str>,
    ) -> Result<i64> {
        let recorded = self.record(session, &session.new_query_id(), sql, &statement.kind, transaction);
        run_recorded(
            session,
            recorded,
            self.execute_recorded(session, sql, statement, transaction),
        )
        .await
    }

    /// [`Self::execute_classified`] once recorded.
    pub(super) async fn execute_recorded(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        statement: Classification,
        transaction: Option<&str>,
    ) -> Result<i64> {
        if let Some(cmd) = statement.command {
            let s = Arc::clone(session);
            let this = Arc::clone(self);
            blocking(move || this.run_command(&s, cmd)).await?;
            return Ok(0);
        }
        let sql = sql.to_string();
        let txn = transaction.map(str::to_string);
        let access = access_for(&txn, &statement);
        let control = statement.transaction_control;
        let changes_settings = statement.changes_settings;
        on_connection(session, access, move |s, conn| {
            let (mut stmt, _) = prepare_script(conn, &sql, &allowed_kinds(s.principal()))?;
            let result = stmt.execute().map(|n| n as i64).map_err(Into::into);
            track_session_state(s, control, changes_settings.then_some(sql.as_str()), result)
        })
        .await
    }

    /// Begins a transaction in `session`.
    pub async fn begin(&self, session: &Arc<Session>) -> Result<String> {
        let s = Arc::clone(session);
        blocking(move || s.begin()).await
    }

    /// Commits or rolls back.
    pub async fn end(&self, session: &Arc<Session>, id: &str, commit: bool) -> Result<()> {
        let s = Arc::clone(session);
        let id = id.to_string();
        blocking(move || s.end(&id, commit)).await
    }
}
