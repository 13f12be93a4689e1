//! Sessions: what a client connection keeps from one call to the next.
//!
//! A session has a current database and schema, one DuckDB connection (so temporary tables,
//! SQL-level prepared statements and an open transaction persist), the Flight SQL prepared
//! statements it created, and the queries it planned but has not yet streamed.
//!
//! Invariants:
//! - A session belongs to one user; every lookup checks the caller is that user.
//! - Its DuckDB connection runs one statement at a time. A call that finds it busy runs on a
//!   fresh connection of the same duckling instead, unless the session is inside a transaction,
//!   where it waits: a transaction's statements must all run on its connection.
//! - Its settings and variables (`SET`, `RESET`, `SET VARIABLE`) hold on every connection it
//!   runs on: each one that ran is recorded ([`Session::record_settings`]) and run again, through
//!   the sandbox, on a fresh connection and on the session's own when it ran elsewhere. A
//!   variable set from a query is set again by running that query again.
//! - Transaction ids and prepared-statement handles start with the session id, so a client that
//!   carries no session cookie (ADBC's default) still reaches the right session through them.
//! - Idleness is measured with the session's injected clock ([`Activity`]), so the reaper's
//!   decision (idle past its timeout, or past the shorter one for a session the client never
//!   came back to) is the same whether time passes or a test advances it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parking_lot::{Mutex, MutexGuard};
use pond_clock::Clock;
use pond_duckling::{Connection, Duckling, InterruptHandle, engine::quote_ident};

use crate::auth::Principal;
use crate::classify::Classification;
use crate::error::{CoordinatorError, Result};

/// How many planned-but-not-fetched queries a session keeps; older ones are forgotten.
const MAX_PENDING: usize = 256;

/// A Flight SQL prepared statement.
#[derive(Debug, Clone)]
pub struct PreparedStatement {
    pub sql: String,
    pub dataset_schema: SchemaRef,
    pub parameter_schema: Schema,
    /// Parameter rows bound by the last DoPut, if any.
    pub params: Option<RecordBatch>,
    pub body: PreparedBody,
    /// What its text is, read once when it was prepared.
    pub classification: Classification,
}

/// How a prepared statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreparedBody {
    /// One DuckDB statement of this kind, prepared again on the session's connection.
    Statement(pond_duckling::StatementKind),
    /// Run as if sent as a plain statement: the coordinator's own statements (e.g. `SHOW
    /// DATABASES`), and texts of several statements, which DuckDB cannot prepare as one; like
    /// DuckDB's own clients, Pond runs them whole and returns the last statement's result.
    AsStatement,
}

/// A query that runs at DoGet: its text and what it runs with.
#[derive(Debug)]
pub struct SqlQuery {
    pub sql: String,
    /// Pond's SQL that must run on the same connection first (see
    /// `Coordinator::prelude_for`).
    pub prelude: Option<String>,
    pub params: Option<RecordBatch>,
    pub transaction: Option<String>,
    pub schema: SchemaRef,
    /// The query calls `nextval`/`setval`: it writes, though DuckDB calls it a read.
    pub advances_a_sequence: bool,
    /// It names temporary objects (`Classification::names_temporary`).
    pub names_temporary: bool,
}

impl SqlQuery {
    /// The connection it runs on at DoGet: its transaction's, else as GetFlightInfo chose.
    pub fn access(&self) -> Access {
        match &self.transaction {
            None if self.names_temporary => Access::Temporary,
            transaction => transaction.clone().into(),
        }
    }
}

/// A query planned by GetFlightInfo and run by DoGet.
#[derive(Debug)]
pub enum PendingQuery {
    /// Runs and streams at DoGet.
    Sql(SqlQuery),
    /// Already ran (updates, coordinator statements, scripts); DoGet returns these batches.
    Ready {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// Started at GetFlightInfo: `first` already arrived, the rest streams into `rx`.
    /// Dropping it stops the query.
    Running {
        first: Vec<RecordBatch>,
        rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
        /// What runs again at DoGet if the query must give its connection back first.
        rerun: SqlQuery,
    },
}

impl PendingQuery {
    /// The schema DoGet will stream.
    pub fn schema(&self) -> SchemaRef {
        match self {
            PendingQuery::Sql(SqlQuery { schema, .. })
            | PendingQuery::Ready { schema, .. }
            | PendingQuery::Running {
                rerun: SqlQuery { schema, .. },
                ..
            } => Arc::clone(schema),
        }
    }
}

#[derive(Default)]
struct SessionState {
    database: String,
    schema: Option<String>,
    transaction: Option<String>,
    /// A transaction opened with SQL `BEGIN` on the session's connection.
    sql_transaction: bool,
    prepared: HashMap<String, PreparedStatement>,
    pending: HashMap<String, PendingQuery>,
    pending_order: VecDeque<String>,
    running: HashMap<String, InterruptHandle>,
    cancelled: Vec<String>,
    next_id: u64,
    /// The last statement that changed each setting or variable of the session, by what it
    /// changes ([`pond_duckling::sandbox::session_setting_key`]).
    settings: Vec<(String, String)>,
    /// Counts the changes to `settings`.
    settings_version: u64,
}

impl SessionState {
    /// The queries started at GetFlightInfo that wait for their DoGet while they still run,
    /// holding a connection (one whose rows all fit in its channel has finished).
    fn unfetched_holding(&self) -> impl Iterator<Item = &String> {
        self.pending
            .iter()
            .filter(|(id, q)| matches!(q, PendingQuery::Running { .. }) && self.running.contains_key(*id))
            .map(|(id, _)| id)
    }
}

/// The limits a session's statements run under (flags of `pond serve`).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Shared by all sessions of one user: statements that may run at once.
    pub admission: Arc<tokio::sync::Semaphore>,
    /// Statements running longer are interrupted.
    pub query_timeout: Option<std::time::Duration>,
    /// Results larger than this (Arrow bytes) end with an error.
    pub max_result_bytes: Option<u64>,
    /// Statements waiting for a turn now, of every user (a gauge for metrics).
    pub queued: Arc<std::sync::atomic::AtomicU64>,
}

/// One client session.
pub struct Session {
    id: String,
    principal: Principal,
    duckling: Arc<Duckling>,
    limits: SessionLimits,
    conn: Mutex<Option<Connection>>,
    /// The `settings_version` the session's own connection has run, changed only while `conn`
    /// is held.
    own_settings: AtomicU64,
    /// Whether only plain reads ran on the session's own connection (see
    /// [`ConnGuard::ran_only_a_read`]): with nothing of the session in it, it may serve
    /// another session ([`Session::give_back_if_spent`]).
    own_clean: AtomicBool,
    state: Mutex<SessionState>,
    activity: Activity,
}

/// When a session was last used, by its clock, and whether its client came back: what the
/// reaper decides by.
struct Activity {
    clock: Arc<dyn Clock>,
    last_used: Mutex<Instant>,
    /// Set once the client sends this session's cookie back: a client that never does (ADBC
    /// without cookie middleware) leaves sessions it will not reach again once its query ends.
    returned: AtomicBool,
}

impl Activity {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            last_used: Mutex::new(clock.instant()),
            clock,
            returned: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        *self.last_used.lock() = self.clock.instant();
    }

    fn mark_returned(&self) {
        self.touch();
        self.returned.store(true, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.clock.since(*self.last_used.lock())
    }

    /// Idle past `timeout`, or past `unreturned_timeout` when the client never came back and
    /// `holds_reachable()` says nothing in the session could still be reached.
    fn expired(&self, timeout: Duration, unreturned_timeout: Duration, holds_reachable: impl FnOnce() -> bool) -> bool {
        let idle = self.idle_for();
        if idle >= timeout {
            return true;
        }
        !self.returned.load(Ordering::Relaxed) && idle >= unreturned_timeout && !holds_reachable()
    }
}

/// How long a statement on temporary objects waits for the session's busy connection.
pub const TEMPORARY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Which connection a call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The session's connection if free, a fresh one otherwise.
    Any,
    /// The session's connection, waiting for it (transaction control must run there).
    Own,
    /// The session's connection, waiting up to [`TEMPORARY_WAIT`] for it, then a fresh one:
    /// temporary objects live on the session's connection only, and a query whose stream the
    /// client just dropped lets go of it within moments, but a result the client is still
    /// reading holds it as long as the client likes.
    Temporary,
    /// The connection of the session's open Flight SQL transaction.
    Transaction(String),
    /// A new connection at the session's database and schema, sharing none of its
    /// connection's state (transaction, temporary tables, settings).
    Fresh,
}

impl From<Option<String>> for Access {
    fn from(transaction: Option<String>) -> Self {
        transaction.map_or(Access::Any, Access::Transaction)
    }
}

/// A DuckDB connection borrowed for one call: the session's own, or a fresh one.
pub enum ConnGuard<'a> {
    /// The session's own connection, and whether it was clean before this call, which counts
    /// as having left state in it unless it says otherwise.
    Session {
        conn: MutexGuard<'a, Option<Connection>>,
        was_clean: bool,
    },
    Fresh(Connection),
}

impl ConnGuard<'_> {
    /// Says this call ran only one plain read: the session's own connection is as clean as
    /// it was before.
    pub fn ran_only_a_read(&self, session: &Session) {
        if let ConnGuard::Session { was_clean, .. } = self {
            session.own_clean.store(*was_clean, Ordering::Relaxed);
        }
    }
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ConnGuard::Session { conn, .. } => conn.as_ref().expect("session connection is created on acquire"),
            ConnGuard::Fresh(c) => c,
        }
    }
}

impl Session {
    /// A new session of `principal` on `duckling`, measuring idleness with `clock`.
    pub(crate) fn with_clock(
        id: String,
        principal: Principal,
        duckling: Arc<Duckling>,
        database: String,
        limits: SessionLimits,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            id,
            principal,
            duckling,
            limits,
            conn: Mutex::new(None),
            own_settings: AtomicU64::new(0),
            own_clean: AtomicBool::new(true),
            state: Mutex::new(SessionState {
                database,
                ..Default::default()
            }),
            activity: Activity::new(clock),
        }
    }

    /// The session id (the cookie value).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who owns the session.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The user's duckling.
    pub fn duckling(&self) -> &Arc<Duckling> {
        &self.duckling
    }

    /// The limits its statements run under.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Waits for a turn to run one statement: the back-pressure of `--max-concurrent-queries`,
    /// shared by all of the user's sessions. The wait ends when the caller stops waiting.
    pub async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let admission = Arc::clone(&self.limits.admission);
        if let Ok(p) = Arc::clone(&admission).try_acquire_owned() {
            return Ok(p);
        }
        tracing::debug!(user = self.principal.user, "queued behind the concurrent-query limit");
        /// Counts a waiter for as long as it waits, even when its caller stops waiting.
        struct Waiting(Arc<std::sync::atomic::AtomicU64>);
        impl Drop for Waiting {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.limits.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(Arc::clone(&self.limits.queued));
        admission
            .acquire_owned()
            .await
            .map_err(|_| CoordinatorError::Unavailable("the duckling is stopping".into()))
    }

    /// Records a use of the session.
    pub(crate) fn touch(&self) {
        self.activity.touch();
    }

    /// Whether the client sent this session's cookie back: it keeps one session, whose
    /// connection and kept statements its next calls find.
    pub fn client_returned(&self) -> bool {
        self.activity.returned.load(Ordering::Relaxed)
    }

    /// Records that the client carries this session (its cookie came back). Handles (tickets,
    /// transaction ids) do not count: a client without cookies uses those once per query.
    pub fn mark_returned(&self) {
        self.activity.mark_returned();
    }

    /// Whether a reaper may close the session: idle past `timeout`, or idle past
    /// `unreturned_timeout` when the client never came back and nothing in it (a transaction,
    /// a prepared statement) could still be reached.
    pub(crate) fn expired(&self, timeout: Duration, unreturned_timeout: Duration) -> bool {
        self.activity.expired(timeout, unreturned_timeout, || {
            let state = self.state.lock();
            state.transaction.is_some()
                || !state.prepared.is_empty()
                || !state.pending.is_empty()
                || !state.running.is_empty()
        })
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.activity.idle_for()
    }

    /// The current database and schema.
    pub fn current(&self) -> (String, Option<String>) {
        let s = self.state.lock();
        (s.database.clone(), s.schema.clone())
    }

    /// A fresh id for an operation that can be interrupted (see `cancel`).
    pub(crate) fn new_op_id(&self) -> String {
        self.next_id("op")
    }

    fn next_id(&self, kind: &str) -> String {
        let mut s = self.state.lock();
        s.next_id += 1;
        format!("{}.{kind}{}", self.id, s.next_id)
    }

    fn use_sql(database: &str, schema: Option<&str>) -> String {
        match schema {
            Some(s) => format!("USE {}.{}", quote_ident(database), quote_ident(s)),
            None => format!("USE {}", quote_ident(database)),
        }
    }

    /// A new connection of the session's duckling with `database` (and `schema`) selected and
    /// the session's settings run; returns the `settings_version` it ran.
    fn open_connection(&self, database: &str, schema: Option<&str>) -> Result<(Connection, u64)> {
        let c = self.duckling.connect(database)?;
        if schema.is_some() {
            c.execute_batch(&Self::use_sql(database, schema))?;
        }
        let version = self.apply_settings(&c)?;
        Ok((c, version))
    }

    /// Runs the session's recorded settings on `conn`, each checked by the sandbox as when the
    /// user sent it; returns the `settings_version` they are. The current schema is the
    /// session's own state (`USE`), never replayed as a setting.
    fn apply_settings(&self, conn: &Connection) -> Result<u64> {
        let (settings, version) = {
            let s = self.state.lock();
            (s.settings.clone(), s.settings_version)
        };
        // A new operation: a cancel that reached the connection's last statement after it ended
        // left its flag set, and would refuse every setting here (only logged below).
        if !settings.is_empty() {
            drop(conn.interrupt_handle());
        }
        for (key, text) in &settings {
            // One that no longer applies (its schema dropped since) is left as DuckDB leaves it.
            let applied = pond_duckling::prepare_checked(conn, text, &pond_duckling::any_kind)
                .and_then(|mut p| p.execute().map_err(Into::into));
            if let Err(e) = applied {
                tracing::debug!(setting = key, error = %e, "a session setting did not apply to another connection");
            }
        }
        Ok(version)
    }

    /// Brings the session's own connection (held in `conn`) up to its settings, creating it if
    /// it is not open yet.
    fn ready_own(&self, conn: &mut Option<Connection>, database: &str, schema: Option<&str>) -> Result<()> {
        match conn {
            None => {
                let (c, version) = self.open_connection(database, schema)?;
                *conn = Some(c);
                self.own_settings.store(version, Ordering::Relaxed);
            }
            Some(c) if self.own_settings.load(Ordering::Relaxed) != self.state.lock().settings_version => {
                let version = self.apply_settings(c)?;
                self.own_settings.store(version, Ordering::Relaxed);
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Records the statements of `sql` that changed a setting or a variable, after `sql` ran,
    /// so that every connection the session runs on later has them. The session's own
    /// connection runs them again too (a cheap `SET`, whichever connection `sql` ran on).
    pub(crate) fn record_settings(&self, sql: &str) {
        let changes: Vec<(String, String)> = pond_duckling::lexer::statements(sql)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|text| Some((pond_duckling::sandbox::session_setting_key(text)?, text.to_string())))
            .filter(|(key, _)| key != "schema" && key != "search_path")
            .collect();
        if changes.is_empty() {
            return;
        }
        let mut s = self.state.lock();
        for (key, text) in changes {
            s.settings.retain(|(k, _)| *k != key);
            s.settings.push((key, text));
        }
        s.settings_version += 1;
    }

    /// Borrows a connection for one call (blocking: call from a blocking thread).
    pub fn acquire(&self, access: &Access) -> Result<ConnGuard<'_>> {
        if matches!(access, Access::Fresh) {
            let (database, schema) = self.current();
            return Ok(ConnGuard::Fresh(self.open_connection(&database, schema.as_deref())?.0));
        }
        let transaction = match access {
            Access::Transaction(t) => Some(t.as_str()),
            _ => None,
        };
        let (wait, database, schema) = {
            let s = self.state.lock();
            if let Some(t) = transaction
                && s.transaction.as_deref() != Some(t)
            {
                return Err(CoordinatorError::NotFound(format!("transaction {t} is not open")));
            }
            let in_txn = s.transaction.is_some() || s.sql_transaction;
            (
                in_txn || matches!(access, Access::Own),
                s.database.clone(),
                s.schema.clone(),
            )
        };
        let guard = if matches!(access, Access::Temporary) && !wait {
            match self.conn.try_lock() {
                Some(g) => Some(g),
                None if self.demote_unfetched() => Some(self.conn.lock()),
                None => self.conn.try_lock_for(TEMPORARY_WAIT),
            }
        } else if wait {
            self.demote_unfetched();
            let g = self.conn.lock();
            // The transaction may have ended while this call waited for its connection.
            if let Some(t) = transaction
                && self.state.lock().transaction.as_deref() != Some(t)
            {
                return Err(CoordinatorError::NotFound(format!("transaction {t} is not open")));
            }
            Some(g)
        } else {
            match self.conn.try_lock() {
                Some(g) => Some(g),
                // Held by a query that waits for its DoGet: that one runs again at DoGet,
                // and this call gets the session's connection (and temporary tables).
                None if self.demote_unfetched() => Some(self.conn.lock()),
                None => None,
            }
        };
        match guard {
            Some(mut g) => {
                // Read again under the connection's lock: a `USE` may have run meanwhile, and
                // a connection opened now must be at the database the state names.
                let (database, schema) = self.current();
                self.ready_own(&mut g, &database, schema.as_deref())?;
                let was_clean = self.own_clean.swap(false, Ordering::Relaxed);
                Ok(ConnGuard::Session { conn: g, was_clean })
            }
            None => {
                tracing::debug!(
                    session = self.id,
                    own_clean = self.own_clean.load(Ordering::Relaxed),
                    "the session's connection is busy: this call takes a fresh one"
                );
                Ok(ConnGuard::Fresh(self.open_connection(&database, schema.as_deref())?.0))
            }
        }
    }

    /// The session's own connection if it is free now and ready (open, every setting of the
    /// session applied), outside transactions; never waits, opens or replays anything: what a
    /// statement run on an async worker may take (see `coordinator/quick_reads.rs`).
    pub fn acquire_free(&self) -> Result<Option<ConnGuard<'_>>> {
        let Some(g) = self.conn.try_lock() else {
            return Ok(None);
        };
        {
            let s = self.state.lock();
            let settings_applied = self.own_settings.load(Ordering::Relaxed) == s.settings_version;
            if g.is_none() || !settings_applied || s.transaction.is_some() || s.sql_transaction {
                return Ok(None);
            }
        }
        let was_clean = self.own_clean.swap(false, Ordering::Relaxed);
        Ok(Some(ConnGuard::Session { conn: g, was_clean }))
    }

    /// Gives the session's own connection to the duckling for other sessions when its client
    /// never came back (a client without cookies opens a session per query) and nothing of
    /// the session is in it: only plain reads ran there, at its database, no schema selected,
    /// no setting changed, no transaction open. Should the client come back after all, the
    /// session takes a connection again, with the same state. Does nothing while the
    /// connection is in use.
    pub fn give_back_if_spent(&self) {
        if self.activity.returned.load(Ordering::Relaxed) || !self.own_clean.load(Ordering::Relaxed) {
            return;
        }
        let Some(mut own) = self.conn.try_lock() else { return };
        let database = {
            let s = self.state.lock();
            if s.schema.is_some() || s.transaction.is_some() || s.sql_transaction || !s.settings.is_empty() {
                return;
            }
            s.database.clone()
        };
        // Re-read under the connection's lock: a call that took it since counts.
        if !self.own_clean.load(Ordering::Relaxed) {
            return;
        }
        // The session's next call opens a connection, and `ready_own` records its settings.
        if let Some(conn) = own.take() {
            tracing::debug!(
                session = self.id,
                "the session's clean connection goes back to its duckling"
            );
            self.duckling.give_back(&database, conn);
        }
    }

    /// Records a SQL-level `BEGIN` (`true`) or `COMMIT`/`ROLLBACK` (`false`) that ran on the
    /// session's connection: while one is open, every call waits for that connection.
    pub fn set_sql_transaction(&self, open: bool) {
        self.state.lock().sql_transaction = open;
    }

    /// Selects the current database (and schema). Blocking.
    pub fn use_database(&self, database: &str, schema: Option<&str>) -> Result<()> {
        let sql = Self::use_sql(database, schema);
        // The state changes under the connection's lock, so the two never disagree for
        // `give_back_if_spent`.
        let g = self.conn.lock();
        if let Some(c) = g.as_ref() {
            c.execute_batch(&sql)?;
        }
        let mut s = self.state.lock();
        s.database = database.to_string();
        s.schema = schema.map(str::to_string);
        Ok(())
    }

    /// Falls back to `fallback` if the current database is `dropped`. Blocking.
    pub(crate) fn forget_database(&self, dropped: &str, fallback: &str) {
        let current = self.state.lock().database.clone();
        if current == dropped {
            let _ = self.use_database(fallback, None);
        }
    }

    /// Begins a transaction on the session's connection. Blocking.
    pub fn begin(&self) -> Result<String> {
        if self.in_transaction() {
            return Err(CoordinatorError::InvalidArgument(
                "a transaction is already open in this session".into(),
            ));
        }
        let id = self.next_id("tx");
        self.demote_unfetched();
        let mut g = self.conn.lock();
        let (database, schema) = self.current();
        self.ready_own(&mut g, &database, schema.as_deref())?;
        g.as_ref().expect("just created").execute_batch("BEGIN TRANSACTION")?;
        self.state.lock().transaction = Some(id.clone());
        Ok(id)
    }

    /// Commits or rolls back transaction `id`. Blocking.
    pub fn end(&self, id: &str, commit: bool) -> Result<()> {
        if self.state.lock().transaction.as_deref() != Some(id) {
            return Err(CoordinatorError::NotFound(format!("transaction {id} is not open")));
        }
        let g = self.conn.lock();
        let conn = g.as_ref().expect("a transaction has a connection");
        // Under the duckling's write gate, taken after the connection like every other call:
        // the commit is acknowledged once its snapshot is stored.
        let result = self.duckling.writing(
            || {
                let result = conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" });
                if result.is_err() && commit {
                    // A failed commit leaves DuckDB's transaction aborted; end it so the
                    // session is usable.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                result
            },
            || true,
        );
        self.state.lock().transaction = None;
        result?.map_err(Into::into)
    }

    /// Whether a transaction (Flight SQL or SQL `BEGIN`) is open.
    pub fn in_transaction(&self) -> bool {
        let s = self.state.lock();
        s.transaction.is_some() || s.sql_transaction
    }

    /// Stores a prepared statement and returns its handle.
    pub fn add_prepared(&self, stmt: PreparedStatement) -> String {
        let handle = self.next_id("ps");
        self.state.lock().prepared.insert(handle.clone(), stmt);
        handle
    }

    /// A prepared statement by handle.
    pub fn prepared(&self, handle: &str) -> Result<PreparedStatement> {
        self.state
            .lock()
            .prepared
            .get(handle)
            .cloned()
            .ok_or_else(|| CoordinatorError::NotFound(format!("prepared statement {handle} does not exist")))
    }

    /// Binds parameter rows to a prepared statement.
    pub fn bind(&self, handle: &str, params: Option<RecordBatch>) -> Result<()> {
        let mut s = self.state.lock();
        let stmt = s
            .prepared
            .get_mut(handle)
            .ok_or_else(|| CoordinatorError::NotFound(format!("prepared statement {handle} does not exist")))?;
        stmt.params = params;
        Ok(())
    }

    /// Closes a prepared statement. Closing an unknown handle is not an error.
    pub fn close_prepared(&self, handle: &str) {
        self.state.lock().prepared.remove(handle);
    }

    /// Parks a planned query until DoGet fetches it; returns its id.
    pub fn park(&self, query: PendingQuery) -> String {
        self.park_as(self.new_query_id(), query)
    }

    /// Parks a result that already ran, for DoGet; returns its id.
    pub fn park_result(&self, schema: SchemaRef, batches: Vec<RecordBatch>) -> String {
        self.park(PendingQuery::Ready { schema, batches })
    }

    /// An id for a query that must be known before it is parked (it runs meanwhile).
    pub fn new_query_id(&self) -> String {
        self.next_id("q")
    }

    /// Parks `query` under `id`, from [`Self::new_query_id`]; returns the id. The oldest
    /// parked queries beyond the limit are dropped, which stops those that run.
    pub fn park_as(&self, id: String, query: PendingQuery) -> String {
        self.touch();
        let mut s = self.state.lock();
        s.pending.insert(id.clone(), query);
        s.pending_order.push_back(id.clone());
        while s.pending_order.len() > MAX_PENDING {
            if let Some(old) = s.pending_order.pop_front() {
                s.pending.remove(&old);
            }
        }
        id
    }

    /// The rows and Arrow bytes of parked result `query_id` when it already ran (a script, an
    /// update, Pond's statement), `None` when it runs or streams at DoGet. An update's rows are
    /// those it changed (DuckDB answers them as one `Count`).
    pub(crate) fn parked_result_size(&self, query_id: &str) -> Option<(u64, u64)> {
        let state = self.state.lock();
        let PendingQuery::Ready { batches, schema } = state.pending.get(query_id)? else {
            return None;
        };
        let bytes = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
        let count = match (schema.fields().len(), batches.as_slice()) {
            (1, [batch]) if schema.field(0).name() == "Count" && batch.num_rows() == 1 => batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|c| c.value(0).max(0) as u64),
            _ => None,
        };
        let rows = count.unwrap_or_else(|| batches.iter().map(|b| b.num_rows() as u64).sum());
        Some((rows, bytes))
    }

    /// Takes a parked query (a query is fetched once).
    pub fn take(&self, query_id: &str) -> Result<PendingQuery> {
        let mut s = self.state.lock();
        if let Some(pos) = s.cancelled.iter().position(|c| c == query_id) {
            s.cancelled.remove(pos);
            s.pending.remove(query_id);
            return Err(CoordinatorError::Cancelled(format!("query {query_id} was cancelled")));
        }
        s.pending_order.retain(|q| q != query_id);
        s.pending
            .remove(query_id)
            .ok_or_else(|| CoordinatorError::NotFound(format!("query {query_id} is unknown or was already fetched")))
    }

    /// Records that `query_id` is about to run and can be interrupted through `handle`.
    ///
    /// Fails when the query's cancel arrived before it started: the caller must not run it
    /// (DuckDB forgets an interrupt that arrives before its statement starts).
    pub fn started(&self, query_id: &str, handle: InterruptHandle) -> Result<()> {
        let mut s = self.state.lock();
        if let Some(pos) = s.cancelled.iter().position(|c| c == query_id) {
            s.cancelled.remove(pos);
            return Err(CoordinatorError::Cancelled(format!(
                "query {query_id} was cancelled before it started"
            )));
        }
        s.running.insert(query_id.to_string(), handle);
        Ok(())
    }

    /// Records that `query_id` finished.
    pub fn finished(&self, query_id: &str) {
        self.state.lock().running.remove(query_id);
    }

    /// Cancels a parked or running query. Returns whether there was anything to cancel.
    pub fn cancel(&self, query_id: &str) -> bool {
        let mut s = self.state.lock();
        if let Some(h) = s.running.get(query_id) {
            h.interrupt();
            // A query started at GetFlightInfo may be waiting for room in its channel rather
            // than in DuckDB: dropping its receiver ends that wait.
            s.pending.remove(query_id);
            return true;
        }
        // Parked, or between being taken and being started: remember the cancel.
        s.cancelled.push(query_id.to_string());
        if s.cancelled.len() > MAX_PENDING {
            s.cancelled.remove(0);
        }
        s.pending.contains_key(query_id) || query_id.contains(".op")
    }

    /// How many cancels of operations not yet started are remembered.
    #[cfg(test)]
    pub(crate) fn remembered_cancels(&self) -> usize {
        self.state.lock().cancelled.len()
    }

    /// How many of the session's operations are running now.
    pub fn running_count(&self) -> usize {
        self.state.lock().running.len()
    }

    /// Interrupts everything the session runs (shutdown, session close), including queries
    /// started at GetFlightInfo that wait for a DoGet.
    pub fn interrupt_all(&self) {
        for h in self.state.lock().running.values() {
            h.interrupt();
        }
        self.stop_unfetched();
    }

    /// Stops the queries started at GetFlightInfo that still run, holding the session's
    /// connection, while they wait for their DoGet, and parks them to run at DoGet instead
    /// (they are plain reads nobody has seen). For calls that need that connection: a
    /// transaction, or the session's temporary tables. Returns whether there were any.
    fn demote_unfetched(&self) -> bool {
        let mut s = self.state.lock();
        let s = &mut *s;
        let holding: Vec<String> = s.unfetched_holding().cloned().collect();
        for id in &holding {
            if let Some(PendingQuery::Running { rerun, .. }) = s.pending.remove(id) {
                s.pending.insert(id.clone(), PendingQuery::Sql(rerun));
            }
            if let Some(h) = s.running.get(id) {
                h.interrupt();
            }
        }
        !holding.is_empty()
    }

    /// Whether a query started at GetFlightInfo waits for its DoGet while it still runs, and
    /// so holds a connection (one whose rows all fit in its channel has finished).
    pub fn has_unfetched(&self) -> bool {
        self.state.lock().unfetched_holding().next().is_some()
    }

    /// Stops the queries started at GetFlightInfo that no DoGet fetches yet (shutdown: no new
    /// call will come for them).
    pub fn stop_unfetched(&self) {
        self.state
            .lock()
            .pending
            .retain(|_, q| !matches!(q, PendingQuery::Running { .. }));
    }
}

#[cfg(test)]
mod tests {
    use pond_clock::ManualClock;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30 * 60);
    const UNRETURNED: Duration = Duration::from_secs(60);
    const MS: Duration = Duration::from_millis(1);

    fn activity() -> (Arc<ManualClock>, Activity) {
        let clock = Arc::new(ManualClock::new());
        (clock.clone(), Activity::new(clock))
    }

    fn session() -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let storage = pond_storage::Storage::open(&pond_storage::StorageConfig {
            url: "memory://".into(),
            cache_dir: dir.path().join("cache"),
            cache_bytes: 1 << 30,
        })
        .unwrap();
        let duckling = Duckling::open(&pond_duckling::DucklingConfig {
            dir: dir.path().join("u1"),
            threads: Some(1),
            adaptive_threads: false,
            memory_limit: None,
            storage,
            remote: Default::default(),
        })
        .unwrap();
        duckling.attach("my_db", "db1").unwrap();
        let limits = SessionLimits {
            admission: Arc::new(tokio::sync::Semaphore::new(4)),
            query_timeout: None,
            max_result_bytes: None,
            queued: Default::default(),
        };
        let principal = Principal {
            user: "u1".into(),
            read_only: false,
            token_id: "t".into(),
        };
        let session = Session::with_clock(
            "s1".into(),
            principal,
            duckling,
            "my_db".into(),
            limits,
            Arc::new(ManualClock::new()),
        );
        (dir, session)
    }

    fn setting(conn: &Connection, name: &str) -> String {
        let batches = conn
            .query_all(&format!("SELECT current_setting('{name}')::VARCHAR"))
            .unwrap();
        let column = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        column.value(0).to_string()
    }

    fn run(session: &Session, access: &Access, sql: &str) {
        let conn = session.acquire(access).unwrap();
        pond_duckling::prepare_checked(&conn, sql, &pond_duckling::any_kind)
            .unwrap()
            .execute()
            .unwrap();
        drop(conn);
        session.record_settings(sql);
    }

    #[test]
    fn a_setting_holds_on_every_connection_the_session_runs_on() {
        let (_dir, session) = session();
        run(&session, &Access::Any, "SET default_null_order = 'nulls_first'");
        // The session's connection is busy: the next call runs on a fresh one.
        let own = session.acquire(&Access::Own).unwrap();
        assert!(matches!(own, ConnGuard::Session { .. }));
        let fresh = session.acquire(&Access::Any).unwrap();
        assert!(matches!(fresh, ConnGuard::Fresh(_)));
        assert_eq!(setting(&fresh, "default_null_order"), "NULLS_FIRST");
        drop(fresh);
        // A setting changed on a fresh connection reaches the session's own.
        run(&session, &Access::Any, "SET TimeZone = 'Asia/Tokyo'");
        run(&session, &Access::Any, "RESET default_null_order");
        drop(own);
        let own = session.acquire(&Access::Any).unwrap();
        assert!(matches!(own, ConnGuard::Session { .. }));
        assert_eq!(setting(&own, "TimeZone"), "Asia/Tokyo");
        assert_eq!(setting(&own, "default_null_order"), "NULLS_LAST");
        drop(own);
        assert_eq!(
            setting(&session.acquire(&Access::Fresh).unwrap(), "default_null_order"),
            "NULLS_LAST"
        );
    }

    /// A cancel that reached the session's connection after its statement ended leaves the
    /// interrupt flag set: the settings the next acquire brings it up to still apply.
    #[test]
    fn a_late_cancel_does_not_refuse_the_sessions_settings() {
        let (_dir, session) = session();
        run(&session, &Access::Any, "SET TimeZone = 'Asia/Tokyo'");
        let own = session.acquire(&Access::Own).unwrap();
        let late = own.interrupt_handle();
        drop(own);
        // Changed on another connection while the session's own is held: the own one is behind.
        let held = session.acquire(&Access::Own).unwrap();
        run(&session, &Access::Any, "SET TimeZone = 'America/Lima'");
        drop(held);
        late.interrupt();
        let own = session.acquire(&Access::Own).unwrap();
        assert!(matches!(own, ConnGuard::Session { .. }));
        assert_eq!(setting(&own, "TimeZone"), "America/Lima");
    }

    /// A statement on temporary objects gets the session's connection once a call lets go of
    /// it moments later, and a fresh one when it stays held.
    #[test]
    fn temporary_objects_wait_a_while_for_the_sessions_connection() {
        let (_dir, session) = session();
        let session = Arc::new(session);
        let held = session.acquire(&Access::Own).unwrap();
        let s = Arc::clone(&session);
        let waiter =
            std::thread::spawn(move || matches!(s.acquire(&Access::Temporary).unwrap(), ConnGuard::Session { .. }));
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(held);
        assert!(waiter.join().unwrap(), "it waits for the connection to be let go");
        let _held = session.acquire(&Access::Own).unwrap();
        let started = std::time::Instant::now();
        let fresh = session.acquire(&Access::Temporary).unwrap();
        assert!(matches!(fresh, ConnGuard::Fresh(_)));
        assert!(started.elapsed() >= TEMPORARY_WAIT, "a fresh one only after the wait");
    }

    /// A plain read on the session's connection, as the GetFlightInfo fast path runs one.
    fn read(session: &Session) {
        let conn = session.acquire(&Access::Any).unwrap();
        assert_eq!(conn.query_i64("SELECT 7::BIGINT").unwrap(), Some(7));
        conn.ran_only_a_read(session);
    }

    #[test]
    fn only_a_clean_connection_of_a_session_never_returned_to_goes_back_to_the_duckling() {
        // Plain reads only: given back, and the session takes a connection again when used.
        let (_dir, s) = session();
        read(&s);
        s.give_back_if_spent();
        assert!(s.conn.lock().is_none());
        read(&s);
        assert!(s.conn.lock().is_some());

        // A temporary table, a setting or a schema stays with its session.
        for (sql, then_read) in [
            ("CREATE TEMP TABLE t(i INTEGER)", true),
            ("SET default_null_order = 'nulls_first'", true),
            ("CREATE SCHEMA s2", false),
        ] {
            let (_dir, s) = session();
            read(&s);
            run(&s, &Access::Any, sql);
            if then_read {
                read(&s);
            } else {
                s.use_database("my_db", Some("s2")).unwrap();
                read(&s);
            }
            s.give_back_if_spent();
            assert!(s.conn.lock().is_some(), "{sql}");
        }

        // A client that carries its cookie keeps its connection.
        let (_dir, s) = session();
        read(&s);
        s.mark_returned();
        s.give_back_if_spent();
        assert!(s.conn.lock().is_some());

        // A transaction keeps it.
        let (_dir, s) = session();
        read(&s);
        s.begin().unwrap();
        s.give_back_if_spent();
        assert!(s.conn.lock().is_some());
    }

    #[test]
    fn an_idle_session_is_reaped_at_its_timeout_and_not_before() {
        let (clock, a) = activity();
        a.mark_returned();
        clock.advance(TIMEOUT - MS);
        assert!(!a.expired(TIMEOUT, UNRETURNED, || false));
        clock.advance(MS);
        assert!(a.expired(TIMEOUT, UNRETURNED, || false));
        // Whatever it holds: the client is gone.
        assert!(a.expired(TIMEOUT, UNRETURNED, || true));
    }

    #[test]
    fn a_use_restarts_the_idle_time() {
        let (clock, a) = activity();
        a.mark_returned();
        clock.advance(TIMEOUT - MS);
        a.touch();
        clock.advance(TIMEOUT - MS);
        assert_eq!(a.idle_for(), TIMEOUT - MS);
        assert!(!a.expired(TIMEOUT, UNRETURNED, || false));
    }

    #[test]
    fn a_session_never_returned_is_reaped_at_the_shorter_timeout() {
        let (clock, a) = activity();
        clock.advance(UNRETURNED - MS);
        assert!(!a.expired(TIMEOUT, UNRETURNED, || false));
        clock.advance(MS);
        assert!(a.expired(TIMEOUT, UNRETURNED, || false));
    }

    #[test]
    fn a_session_never_returned_but_holding_something_reachable_waits_for_the_full_timeout() {
        let (clock, a) = activity();
        clock.advance(UNRETURNED);
        assert!(!a.expired(TIMEOUT, UNRETURNED, || true));
        clock.advance(TIMEOUT - UNRETURNED);
        assert!(a.expired(TIMEOUT, UNRETURNED, || true));
    }

    #[test]
    fn a_returned_session_is_not_reaped_at_the_shorter_timeout() {
        let (clock, a) = activity();
        a.mark_returned();
        clock.advance(UNRETURNED * 2);
        assert!(!a.expired(TIMEOUT, UNRETURNED, || false));
    }
}
