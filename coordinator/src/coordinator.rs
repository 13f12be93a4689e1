//! The coordinator: authenticates callers, keeps sessions, runs the statements it owns and
//! dispatches the rest to the caller's duckling.
//!
//! Every DuckDB call runs on a blocking thread (`spawn_blocking`); results stream back through
//! bounded channels, so a slow client slows its query instead of growing server memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parking_lot::Mutex;
use pond_duckling::engine::{column_definitions, quote_ident, quote_literal};
use pond_duckling::{Connection, Duckling, DucklingConfig, DucklingError, StatementKind, prepare_script};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::auth::{Principal, TokenAuthority};
use crate::catalog::{Catalog, DEFAULT_DATABASE, FileCatalog};
use crate::commands::{self, CloneSource, Command, SnapshotSpec};
use crate::error::{CoordinatorError, Result};
use crate::session::{Access, PendingQuery, PreparedBody, PreparedStatement, Session, SessionLimits};
use pond_storage::{DatabaseWriter, SnapshotSelector, Storage, StorageConfig, block_on};

/// Coordinator settings; the binary fills them from flags.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where the catalog, keys and databases live.
    pub data_dir: PathBuf,
    /// DuckDB threads per duckling.
    pub duckling_threads: Option<usize>,
    /// DuckDB memory limit per duckling, e.g. "4GB".
    pub duckling_memory: Option<String>,
    /// Idle sessions are closed after this long.
    pub session_idle_timeout: Duration,
    /// Sessions the client never came back to (no cookie carried) are closed after this long.
    pub unreturned_session_timeout: Duration,
    /// Where snapshots live (`file://`, `memory://`, `s3://`); `None`: `<data_dir>/storage`.
    pub storage_url: Option<String>,
    /// The local object cache's size bound.
    pub cache_bytes: u64,
    /// Statements running longer are interrupted (`None`: no limit).
    pub query_timeout: Option<Duration>,
    /// A result larger than this (Arrow bytes) ends with an error (`None`: no limit).
    pub max_result_bytes: Option<u64>,
    /// Statements of one user that run at once; the rest wait their turn.
    pub max_concurrent_queries: usize,
    /// A duckling nobody used for this long is stopped (`None`: never); it restarts on the
    /// user's next query.
    pub duckling_idle_timeout: Option<Duration>,
}

impl CoordinatorConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            duckling_threads: None,
            duckling_memory: None,
            session_idle_timeout: Duration::from_secs(30 * 60),
            unreturned_session_timeout: Duration::from_secs(60),
            storage_url: None,
            cache_bytes: 10 << 30,
            query_timeout: None,
            max_result_bytes: None,
            max_concurrent_queries: 32,
            duckling_idle_timeout: None,
        }
    }
}

/// Batches in flight between a duckling and the client: the back-pressure window. A batch is
/// one DuckDB vector (2,048 rows): merging vectors into larger batches costs a copy that
/// measured slower end to end than sending them as they come.
const STREAM_WINDOW: usize = 4;

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
    fn parked(query_id: String, schema: SchemaRef) -> Self {
        Self {
            schema,
            result: PlannedResult::Parked(query_id),
        }
    }
}

/// The most result bytes a FlightInfo carries inline, whatever the client asks: well under
/// gRPC's default 4 MiB message limit.
pub const MAX_INLINE_BYTES: u64 = 1 << 20;

/// A prepared statement's public description.
#[derive(Debug, Clone)]
pub struct PreparedInfo {
    pub handle: String,
    pub dataset_schema: SchemaRef,
    pub parameter_schema: Schema,
}

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

/// A table, for GetTables.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub table_type: String,
    pub arrow_schema: Option<Schema>,
}

/// A key column pair, for GetPrimaryKeys / Get*Keys.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    pub pk_catalog: String,
    pub pk_schema: String,
    pub pk_table: String,
    pub pk_column: String,
    pub fk_catalog: String,
    pub fk_schema: String,
    pub fk_table: String,
    pub fk_column: String,
    pub key_sequence: i32,
    pub fk_name: Option<String>,
    pub pk_name: Option<String>,
}

/// A filter for table metadata (SQL LIKE patterns where noted).
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    pub catalog: Option<String>,
    pub schema_pattern: Option<String>,
    pub table_pattern: Option<String>,
    pub table_types: Vec<String>,
    pub include_schema: bool,
}

/// A user's duckling, started on first use. The cell makes a duckling that is starting block
/// only its own user's calls.
#[derive(Default)]
struct DucklingSlot {
    /// Held while the duckling starts or stops: a call for the user waits, then finds it
    /// running, or starts a new one.
    duckling: Mutex<Option<Arc<Duckling>>>,
    /// Statements of this user that may run at once (the rest queue).
    admission: once_cell::sync::OnceCell<Arc<tokio::sync::Semaphore>>,
    last_used: Mutex<Option<std::time::Instant>>,
    started_ms: std::sync::atomic::AtomicU64,
    cold_start_us: std::sync::atomic::AtomicU64,
}

impl DucklingSlot {
    fn touch(&self) {
        *self.last_used.lock() = Some(std::time::Instant::now());
    }
}

/// One duckling as `pond_ducklings()` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DucklingInfo {
    /// `in-process:<user id>`, or the registered id of a duckling process.
    pub id: String,
    /// The user it serves; empty while a process duckling waits for one.
    pub user: String,
    /// `in-process`, `process` or `remote`.
    pub mode: String,
    /// `starting`, `running`, `idle` or `draining`.
    pub state: String,
    /// Where a duckling process listens; empty in-process.
    pub address: String,
    pub pid: Option<u32>,
    pub started_ms: u64,
    pub cold_start_ms: f64,
    /// DuckDB's own account of its memory (`duckdb_memory()`).
    pub memory_bytes: u64,
    pub running_queries: u64,
    pub sessions: u64,
    /// Serves read-only sessions from snapshots (`--read-replicas`).
    pub read_replica: bool,
}

/// The coordinator.
pub struct Coordinator {
    config: CoordinatorConfig,
    catalog: Arc<dyn Catalog>,
    storage: Storage,
    auth: TokenAuthority,
    /// Users the catalog already knows: authentication skips the catalog for them.
    known_users: Mutex<std::collections::HashSet<String>>,
    ducklings: Mutex<HashMap<String, Arc<DucklingSlot>>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Lists the ducklings of a whole cluster; `None` in a single process.
    cluster: Option<Arc<dyn ClusterView>>,
    /// A read replica attaches the user's databases as snapshots and moves them to the
    /// newest before each statement, instead of opening them for writing.
    read_replica: std::sync::atomic::AtomicBool,
}

/// What a coordinator in a duckling process asks its cluster for `pond_ducklings()`.
pub trait ClusterView: Send + Sync {
    fn ducklings(&self) -> Result<Vec<DucklingInfo>>;
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoordinatorError::Internal(format!("worker task failed: {e}")))?
}

fn single_column(name: &str, values: Vec<String>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(values)) as ArrayRef],
    )
    .map_err(DucklingError::from)?;
    Ok((schema, vec![batch]))
}

/// What a principal may run: everything the sandbox allows, or, with a read-only token, only
/// statements that do not write. Checked for every statement of a script before it runs.
fn allowed_kinds(principal: &Principal) -> impl Fn(StatementKind) -> Result<(), DucklingError> + use<> {
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

/// The user with access to the whole server (`pond_ducklings()`).
pub const ADMIN_USER: &str = "admin";

/// `pond_ducklings()` as a temporary table macro over `rows`.
fn ducklings_macro(rows: &[DucklingInfo]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                quote_literal(&d.id),
                quote_literal(&d.user),
                quote_literal(&d.mode),
                quote_literal(&d.state),
                quote_literal(&d.address),
                d.pid.map_or("NULL".to_string(), |p| p.to_string()),
                format!("make_timestamp({}::BIGINT * 1000)", d.started_ms),
                d.cold_start_ms.to_string(),
                d.memory_bytes.to_string(),
                d.running_queries.to_string(),
                d.sessions.to_string(),
                d.read_replica.to_string(),
            ]
        })
        .collect();
    table_macro(
        "pond_ducklings",
        &[
            ("duckling_id", "VARCHAR"),
            ("user_name", "VARCHAR"),
            ("mode", "VARCHAR"),
            ("state", "VARCHAR"),
            ("address", "VARCHAR"),
            ("pid", "UINTEGER"),
            ("started_ts", "TIMESTAMP"),
            ("cold_start_ms", "DOUBLE"),
            ("memory_bytes", "UBIGINT"),
            ("running_queries", "UBIGINT"),
            ("sessions", "UBIGINT"),
            ("read_replica", "BOOLEAN"),
        ],
        &rows,
    )
}

/// A temporary table macro `name()` over `rows` of SQL literals, typed by `columns` (so it
/// has its columns and types even with no rows).
fn table_macro(name: &str, columns: &[(&str, &str)], rows: &[Vec<String>]) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let typed = |values: &[String]| {
        let cast: Vec<String> = values
            .iter()
            .zip(columns)
            .map(|(v, (_, t))| format!("{v}::{t}"))
            .collect();
        format!("({})", cast.join(", "))
    };
    let (values, filter) = if rows.is_empty() {
        (typed(&vec!["NULL".to_string(); columns.len()]), " WHERE false")
    } else {
        (rows.iter().map(|r| typed(r)).collect::<Vec<_>>().join(", "), "")
    };
    format!(
        "CREATE OR REPLACE TEMP MACRO {name}() AS TABLE SELECT * FROM (VALUES {values}) AS t({}){filter}",
        names.join(", ")
    )
}

/// Runs a query's prelude (see `Coordinator::prelude_for`) on its connection.
fn run_prelude(conn: &Connection, prelude: Option<&str>) -> Result<()> {
    if let Some(sql) = prelude {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

/// Whether SQL reads `pond_information_schema` (whose tables are filled on demand).
fn mentions_information_schema(sql: &str) -> bool {
    sql.to_ascii_lowercase()
        .contains(pond_duckling::duckling::INFORMATION_SCHEMA)
}

/// Whether a query may advance a sequence (`nextval`, `setval`): a SELECT that writes, which
/// must commit under the write gate and be synced like any other write.
fn advances_a_sequence(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    sql.contains("nextval") || sql.contains("setval")
}

/// Whether statements of `kind` only read.
/// The result DuckDB gives statements that only succeed (`USE`, `DROP`, `SET`): a `Success`
/// column and no rows.
fn success_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("Success", DataType::Boolean, true)]))
}

/// Whether a statement of `kind` changes rows and reports how many.
fn is_dml(kind: StatementKind) -> bool {
    use StatementKind::*;
    matches!(kind, Insert | Update | Delete | Merge)
}

/// A prepared statement run as plain text takes no parameters: refuse bound ones rather than
/// drop them.
fn refuse_parameters(stmt: &PreparedStatement) -> Result<()> {
    match &stmt.params {
        Some(p) if p.num_columns() > 0 => Err(CoordinatorError::InvalidArgument(
            "parameters cannot be bound to a text of several statements; prepare one statement".into(),
        )),
        _ => Ok(()),
    }
}

fn is_read(kind: StatementKind) -> bool {
    use StatementKind::*;
    matches!(
        kind,
        Select | Explain | Pragma | Call | Transaction | VariableSet | Relation
    )
}

/// The connection a statement needs: its Flight transaction's, the session's own for SQL
/// transaction control (a `BEGIN` on a fresh connection would open nothing), or any.
fn access_for(transaction: &Option<String>, control: Option<bool>) -> Access {
    match (transaction, control) {
        (None, Some(_)) => Access::Own,
        _ => transaction.clone().into(),
    }
}

/// Records what SQL transaction control did once it ran: a `BEGIN` that succeeded opens, a
/// `COMMIT`/`ROLLBACK` ends the transaction whether or not it succeeded (DuckDB rolls back a
/// failed commit).
fn track_transaction<T>(session: &Session, control: Option<bool>, result: Result<T>) -> Result<T> {
    match (control, &result) {
        (Some(open), Ok(_)) => session.set_sql_transaction(open),
        (Some(false), Err(_)) => session.set_sql_transaction(false),
        _ => {}
    }
    result
}

/// Interrupts a session operation whose caller stopped waiting (client gone, deadline passed).
struct CancelOnDrop {
    session: Arc<Session>,
    op: String,
    armed: bool,
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
async fn on_connection<T: Send + 'static>(
    session: &Arc<Session>,
    access: impl Into<Access>,
    f: impl FnOnce(&Session, &Connection) -> Result<T> + Send + 'static,
) -> Result<T> {
    run_on_connection(session, access.into(), true, f).await
}

/// [`on_connection`] for work that never writes (prepare, metadata): it skips the duckling's
/// write gate, so it neither waits for a user's writes nor holds them up.
async fn reading_on_connection<T: Send + 'static>(
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
    let work = blocking(move || {
        // Held until DuckDB is done, even when the caller stopped waiting earlier.
        let _permit = permit;
        s.duckling().running(|| {
            let conn = s.acquire(&access)?;
            s.started(&op, conn.interrupt_handle())?;
            let run = || {
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
                    match tokio::time::timeout(limit, &mut work).await {
                        Ok(Err(e)) if is_interrupted(&e) => Err(timed_out(limit)),
                        Ok(other) => other,
                        // Still not done (waiting for a connection a stream holds): it will
                        // not start, and the guard interrupts it if it runs.
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
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether DuckDB stopped a statement because it was interrupted.
fn is_interrupted(e: &CoordinatorError) -> bool {
    matches!(e, CoordinatorError::Cancelled(_))
        || matches!(
            e,
            CoordinatorError::Duckling(DucklingError::Sql {
                kind: pond_duckling::SqlErrorKind::Interrupted,
                ..
            })
        )
}

/// Results collected whole (instead of streamed) are bounded even without
/// `--max-result-bytes`: they are held in the server's memory, outside DuckDB's limit.
const COLLECTED_RESULT_LIMIT: u64 = 256 << 20;

/// How long a read replica waits for running statements before moving a database to its
/// newest snapshot; past it, the statement runs on the snapshot the replica has.
const REPLICA_REFRESH_WAIT: Duration = Duration::from_secs(2);

/// The error of a statement interrupted by `--query-timeout`.
fn timed_out(limit: Duration) -> CoordinatorError {
    CoordinatorError::Timeout(format!(
        "the statement ran longer than the query timeout of {} (--query-timeout) and was interrupted",
        humantime::format_duration(limit)
    ))
}

impl Coordinator {
    /// Opens the coordinator on its data directory. On first start this creates the directory,
    /// the signing key and the `admin` user, and writes an admin token to `admin.token`.
    pub fn open(config: CoordinatorConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let data_dir = config.data_dir.canonicalize()?;
        let catalog = Arc::new(FileCatalog::open(&data_dir.join("catalog.json"))?);
        let auth = TokenAuthority::open(&data_dir)?;
        let token_path = data_dir.join("admin.token");
        if !token_path.exists() {
            catalog.ensure_user(ADMIN_USER)?;
            let (token, _) = auth.mint(ADMIN_USER, false, Duration::from_secs(10 * 365 * 24 * 3600))?;
            crate::auth::write_private(&token_path, format!("{token}\n").as_bytes())?;
            info!(path = %token_path.display(), "wrote the admin token");
        }
        Self::with_parts(CoordinatorConfig { data_dir, ..config }, catalog, auth, None)
    }

    /// A coordinator over a catalog and token authority held elsewhere: what a duckling
    /// process runs, with its cluster's catalog and the cluster secret.
    pub fn with_parts(
        config: CoordinatorConfig,
        catalog: Arc<dyn Catalog>,
        auth: TokenAuthority,
        cluster: Option<Arc<dyn ClusterView>>,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let data_dir = config.data_dir.canonicalize()?;
        let url = config
            .storage_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", data_dir.join("storage").display()));
        let storage = Storage::open(&StorageConfig {
            url: url.clone(),
            cache_dir: data_dir.join("cache"),
            cache_bytes: config.cache_bytes,
        })
        .map_err(DucklingError::from)?;
        Ok(Arc::new(Self {
            config: CoordinatorConfig {
                data_dir,
                storage_url: Some(url),
                ..config
            },
            catalog,
            storage,
            auth,
            known_users: Mutex::new(Default::default()),
            ducklings: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            cluster,
            read_replica: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The catalog this coordinator works on.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// The settings it runs with (`storage_url` resolved).
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The token authority (mint, verify, revoke).
    pub fn tokens(&self) -> &TokenAuthority {
        &self.auth
    }

    /// Verifies a bearer token. The user is created on first sight of a valid token.
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        let p = self.auth.verify(token)?;
        if !self.known_users.lock().contains(&p.user) {
            self.catalog.ensure_user(&p.user)?;
            self.known_users.lock().insert(p.user.clone());
        }
        Ok(p)
    }

    fn slot(&self, user: &str) -> Arc<DucklingSlot> {
        let mut ducklings = self.ducklings.lock();
        let slot = Arc::clone(ducklings.entry(user.to_string()).or_default());
        // Under the map lock, which the idle reaper holds while it decides.
        slot.touch();
        slot
    }

    fn duckling(&self, user: &str) -> Result<Arc<Duckling>> {
        let slot = self.slot(user);
        let mut cell = match slot.duckling.try_lock() {
            Some(cell) => cell,
            // Starting or stopping (which stores state through the runtime): wait off the
            // async workers, which that work needs.
            None => off_the_workers(|| slot.duckling.lock()),
        };
        if let Some(d) = &*cell {
            return Ok(Arc::clone(d));
        }
        let d = {
            let u = self.catalog.ensure_user(user)?;
            let started = std::time::Instant::now();
            let d = Duckling::open(&DucklingConfig {
                dir: self.config.data_dir.join("ducklings").join(&u.id),
                threads: self.config.duckling_threads,
                memory_limit: self.config.duckling_memory.clone(),
                storage: self.storage.clone(),
            })?;
            let replica = self.is_read_replica();
            for db in self.catalog.databases(user)? {
                if replica {
                    self.attach_latest(&d, &db)?;
                } else {
                    d.attach(&db.name, &db.id)?;
                }
            }
            let elapsed = started.elapsed();
            slot.cold_start_us
                .store(elapsed.as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            slot.started_ms
                .store(crate::catalog::now_ms(), std::sync::atomic::Ordering::Relaxed);
            info!(user, cold_start_ms = elapsed.as_secs_f64() * 1000.0, "duckling started");
            d
        };
        *cell = Some(Arc::clone(&d));
        Ok(d)
    }

    /// The semaphore that admits `user`'s statements (`--max-concurrent-queries`).
    fn admission(&self, user: &str) -> Arc<tokio::sync::Semaphore> {
        let slot = self.slot(user);
        Arc::clone(
            slot.admission
                .get_or_init(|| Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrent_queries.max(1)))),
        )
    }

    /// Makes this coordinator a read replica (before its duckling starts): databases are
    /// attached read-only at their newest snapshot and follow it, so no writer is fenced.
    pub fn serve_as_read_replica(&self) {
        self.read_replica.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_read_replica(&self) -> bool {
        self.read_replica.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Attaches `db`'s newest snapshot, following it. A database nobody has written yet has
    /// no snapshot: it is skipped, and attached by a later [`Self::follow_latest`].
    fn attach_latest(&self, d: &Duckling, db: &crate::catalog::DatabaseEntry) -> Result<()> {
        match block_on(self.storage.select(&db.id, &SnapshotSelector::Latest)) {
            Ok(seq) => Ok(d.attach_snapshot(&db.name, &db.id, seq, true)?),
            Err(pond_storage::StorageError::NoSnapshot { .. }) => {
                debug!(database = db.name, "no snapshot yet; not attached on this replica");
                Ok(())
            }
            Err(e) => Err(DucklingError::from(e).into()),
        }
    }

    /// On a read replica, moves every database to its newest snapshot, so a session sees the
    /// commits made before its statement (on the primary). Elsewhere, nothing.
    async fn follow_latest(self: &Arc<Self>, session: &Arc<Session>) -> Result<()> {
        if !self.is_read_replica() {
            return Ok(());
        }
        let (this, s) = (Arc::clone(self), Arc::clone(session));
        blocking(move || {
            let d = s.duckling();
            for db in this.catalog.databases(&s.principal().user)? {
                let mut attached = d.attached_id(&db.name);
                if attached.as_ref().is_some_and(|id| *id != db.id) {
                    // Dropped and created again under the same name: a different database.
                    d.detach(&db.name)?;
                    attached = None;
                }
                let moved = if attached.is_some() {
                    // A statement that keeps running past the wait (a long query, a stream
                    // its client reads slowly) leaves this one on the snapshot it had.
                    d.refresh_within(&db.name, REPLICA_REFRESH_WAIT).map(|shown| {
                        if shown.is_none() {
                            debug!(database = db.name, "replica busy; kept its snapshot for this statement");
                        }
                    })
                } else {
                    this.attach_latest(d, &db).map_err(|e| match e {
                        CoordinatorError::Duckling(d) => d,
                        other => DucklingError::Internal(other.to_string()),
                    })
                };
                // The snapshot it has still answers: serve it rather than fail the statement.
                if let Err(e) = moved {
                    warn!(database = db.name, error = %e, "a read replica could not move to the newest snapshot");
                }
            }
            Ok(())
        })
        .await
    }

    /// Starts `user`'s duckling now if it is not running (a duckling process does on
    /// assignment, so the user's first query does not wait for it).
    pub fn start_duckling(&self, user: &str) -> Result<()> {
        self.duckling(user).map(|_| ())
    }

    /// Whether this process runs (or is starting or stopping) any duckling.
    pub fn has_ducklings(&self) -> bool {
        self.slots()
            .iter()
            .any(|(_, s)| s.duckling.try_lock().is_none_or(|d| d.is_some()))
    }

    /// Snapshots open in this process's ducklings (garbage collection keeps them).
    pub fn pinned_snapshots(&self) -> Vec<(String, u64)> {
        let slots: Vec<_> = self.ducklings.lock().values().cloned().collect();
        slots
            .iter()
            .filter_map(|s| s.duckling.try_lock().and_then(|d| d.clone()))
            .flat_map(|d| d.pinned())
            .collect()
    }

    /// Every user's slot, copied out of the map (whose lock must not be held while a
    /// duckling starts or stops).
    fn slots(&self) -> Vec<(String, Arc<DucklingSlot>)> {
        self.ducklings
            .lock()
            .iter()
            .map(|(u, s)| (u.clone(), Arc::clone(s)))
            .collect()
    }

    /// Every duckling of this process with what it is doing, for `pond_ducklings()`.
    pub fn local_ducklings(&self) -> Vec<DucklingInfo> {
        use std::sync::atomic::Ordering::Relaxed;
        let slots = self.slots();
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        let mut out = Vec::new();
        for (user, slot) in slots {
            let Some(d) = slot.duckling.try_lock().and_then(|d| d.clone()) else {
                continue;
            };
            let mine: Vec<&Arc<Session>> = sessions.iter().filter(|s| s.principal().user == user).collect();
            let running: u64 = mine.iter().map(|s| s.running_count() as u64).sum();
            out.push(DucklingInfo {
                id: format!("in-process:{user}"),
                user: user.clone(),
                mode: "in-process".into(),
                state: if running > 0 { "running" } else { "idle" }.into(),
                address: String::new(),
                pid: Some(std::process::id()),
                started_ms: slot.started_ms.load(Relaxed),
                cold_start_ms: slot.cold_start_us.load(Relaxed) as f64 / 1000.0,
                memory_bytes: d.memory_bytes(),
                running_queries: running,
                sessions: mine.len() as u64,
                read_replica: self.read_replica.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
        out.sort_by(|a, b| a.user.cmp(&b.user));
        out
    }

    /// Stops ducklings nobody used for `--duckling-idle-timeout` and that run nothing; each
    /// restarts on its user's next query. Blocking (it stores the ducklings' final state).
    pub fn reap_idle_ducklings(&self) -> usize {
        let Some(timeout) = self.config.duckling_idle_timeout else {
            return 0;
        };
        let slots = self.slots();
        let mut stopped = 0;
        for (user, slot) in slots {
            // Starting or stopping right now: not idle.
            let Some(mut cell) = slot.duckling.try_lock() else {
                continue;
            };
            let stopping = {
                // Decided under the map lock, under which every call touches its slot first.
                let _ducklings = self.ducklings.lock();
                let mut sessions = self.sessions.lock();
                let idle = slot.last_used.lock().is_none_or(|t| t.elapsed() >= timeout);
                let busy = sessions
                    .values()
                    .any(|s| s.principal().user == user && s.running_count() > 0);
                if idle && !busy && cell.is_some() {
                    sessions.retain(|_, s| {
                        let keep = s.principal().user != user;
                        if !keep {
                            s.interrupt_all();
                        }
                        keep
                    });
                    cell.take()
                } else {
                    None
                }
            };
            if let Some(d) = stopping {
                // Still holding the slot: the user's next call waits for this, then starts anew.
                d.close();
                stopped += 1;
                info!(user, "stopped an idle duckling");
            }
        }
        stopped
    }

    /// `SHUTDOWN`: stops `user`'s duckling now, interrupting what it runs. Its sessions go,
    /// except `caller`, which keeps the statement's answer and moves to a new duckling on its
    /// next call. Blocking.
    fn stop_duckling(&self, user: &str, caller: &str) {
        let Some(slot) = self.ducklings.lock().get(user).cloned() else {
            return;
        };
        let mut cell = slot.duckling.lock();
        let Some(d) = cell.take() else {
            return;
        };
        {
            let mut sessions = self.sessions.lock();
            for s in sessions.values().filter(|s| s.principal().user == user) {
                s.interrupt_all();
            }
            sessions.retain(|id, s| s.principal().user != user || id == caller);
        }
        // Still holding the slot: the user's next call waits for this, then starts anew.
        d.close();
        info!(user, "duckling stopped by SHUTDOWN");
    }

    /// How often [`Self::reap`] should run.
    pub fn reap_interval(&self) -> Duration {
        let mut every = Duration::from_secs(30);
        if let Some(t) = self.config.duckling_idle_timeout {
            every = every.min(t / 2).max(Duration::from_millis(200));
        }
        every
    }

    /// Closes idle sessions and stops idle ducklings. Blocking.
    pub fn reap(&self) {
        let sessions = self.reap_idle_sessions();
        let ducklings = self.reap_idle_ducklings();
        if sessions + ducklings > 0 {
            debug!(sessions, ducklings, "reaped idle sessions and ducklings");
        }
    }

    /// The caller's session `id`, or a new one (`true` when new).
    pub fn session(&self, principal: &Principal, id: Option<&str>) -> Result<(Arc<Session>, bool)> {
        if let Some(id) = id {
            let found = self
                .sessions
                .lock()
                .get(id)
                .filter(|s| s.principal().user == principal.user)
                .cloned();
            if let Some(s) = found.as_ref().filter(|s| s.duckling().is_closed()) {
                // Its duckling stopped (SHUTDOWN): the session goes, a new one starts below.
                self.sessions.lock().remove(s.id());
            } else if let Some(s) = found {
                s.mark_returned();
                self.slot(&principal.user);
                return Ok((s, false));
            }
        }
        let duckling = self.duckling(&principal.user)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let limits = SessionLimits {
            admission: self.admission(&principal.user),
            query_timeout: self.config.query_timeout,
            max_result_bytes: self.config.max_result_bytes,
        };
        let s = Arc::new(Session::new(
            id.clone(),
            principal.clone(),
            duckling,
            DEFAULT_DATABASE.into(),
            limits,
        ));
        self.sessions.lock().insert(id, Arc::clone(&s));
        debug!(user = principal.user, session = s.id(), "session opened");
        Ok((s, true))
    }

    /// The session that owns `handle` (a transaction id, prepared handle or query id).
    pub fn session_of(&self, principal: &Principal, handle: &str) -> Result<Arc<Session>> {
        let id = handle.split('.').next().unwrap_or_default();
        let s = self
            .sessions
            .lock()
            .get(id)
            .cloned()
            .filter(|s| s.principal().user == principal.user)
            .ok_or_else(|| {
                CoordinatorError::NotFound(format!(
                    "{handle} does not belong to a live session: it was closed, timed out, or its duckling restarted"
                ))
            })?;
        s.touch();
        self.slot(&principal.user);
        Ok(s)
    }

    /// Closes a session: interrupts its queries; its connection (and with it any open
    /// transaction, rolled back by DuckDB) goes when the last call using it ends.
    pub fn close_session(&self, session: &Session) {
        session.interrupt_all();
        self.sessions.lock().remove(session.id());
    }

    /// Closes sessions idle for longer than the configured timeout. Returns how many.
    pub fn reap_idle_sessions(&self) -> usize {
        let (timeout, unreturned) = (self.config.session_idle_timeout, self.config.unreturned_session_timeout);
        let mut sessions = self.sessions.lock();
        let before = sessions.len();
        sessions.retain(|_, s| {
            let keep = !s.expired(timeout, unreturned);
            if !keep {
                // Stops what waits for a DoGet that will not come.
                s.interrupt_all();
            }
            keep
        });
        before - sessions.len()
    }

    /// Stops the queries started at GetFlightInfo that no DoGet fetches yet (shutdown: once
    /// the server stops taking calls, none will).
    pub fn stop_unfetched(&self) {
        for s in self.sessions.lock().values() {
            s.stop_unfetched();
        }
    }

    /// Interrupts every running query (shutdown).
    pub fn interrupt_all(&self) {
        for s in self.sessions.lock().values() {
            s.interrupt_all();
        }
    }

    /// Runs a coordinator-owned statement; returns its result.
    fn run_command(&self, session: &Arc<Session>, cmd: Command) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let principal = session.principal();
        let user = principal.user.as_str();
        let writes = !matches!(
            cmd,
            Command::ShowDatabases
                | Command::Shutdown
                | Command::Interrupt { .. }
                | Command::Use { .. }
                | Command::AttachSnapshot { .. }
                | Command::Detach { .. }
                | Command::Refresh { .. }
        );
        if writes && principal.read_only {
            return Err(CoordinatorError::PermissionDenied(
                "a read-only token cannot create, drop, restore, snapshot or alter databases".into(),
            ));
        }
        let empty = || Ok((Arc::new(Schema::empty()), vec![]));
        let duckling = session.duckling();
        match cmd {
            Command::Shutdown => {
                self.stop_duckling(user, session.id());
                empty()
            }
            Command::Interrupt { connection } => {
                let target = self
                    .sessions
                    .lock()
                    .get(&connection)
                    .filter(|s| s.principal().user == user)
                    .cloned()
                    .ok_or_else(|| CoordinatorError::NotFound(format!("you have no connection {connection}")))?;
                let interrupted = target.running_count() > 0;
                target.interrupt_all();
                let schema = Arc::new(Schema::new(vec![Field::new("interrupted", DataType::Boolean, false)]));
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(arrow::array::BooleanArray::from(vec![interrupted])) as ArrayRef],
                )
                .map_err(DucklingError::from)?;
                Ok((schema, vec![batch]))
            }
            Command::ShowDatabases => single_column(
                "database_name",
                self.catalog.databases(user)?.into_iter().map(|d| d.name).collect(),
            ),
            Command::Use { database, schema } => {
                self.own_database(user, &database)?;
                session.use_database(&database, schema.as_deref())?;
                Ok((success_schema(), vec![]))
            }
            Command::CreateDatabase {
                name,
                if_not_exists,
                from,
            } => {
                let source = match &from {
                    None => None,
                    Some(CloneSource::Local(what)) => {
                        return Err(CoordinatorError::InvalidArgument(format!(
                            "CREATE DATABASE … FROM {what} uploads a local database: run it from the pond client (pond shell), which has the file"
                        )));
                    }
                    Some(CloneSource::Database { name: src, at }) => {
                        let entry = self.own_database(user, src)?;
                        let seq = self.select_snapshot(session, &entry.id, at.as_ref())?;
                        Some((entry.id, seq))
                    }
                };
                let Some(entry) = self.catalog.create_database(user, &name, if_not_exists)? else {
                    return empty();
                };
                let made = source
                    .map(|(src, seq)| block_on(DatabaseWriter::branch(&self.storage, &entry.id, &src, seq)))
                    .transpose()
                    .map_err(DucklingError::from)
                    .and_then(|_| duckling.attach(&entry.name, &entry.id));
                if let Err(e) = made {
                    let _ = self.catalog.drop_database(user, &name, true);
                    return Err(e.into());
                }
                empty()
            }
            Command::DropDatabase { name, if_exists } => {
                let Some(entry) = self.catalog.drop_database(user, &name, if_exists)? else {
                    return empty();
                };
                // Copied out first: forget_database may wait for a session's connection, and
                // the sessions map must not stay locked meanwhile.
                let users_sessions: Vec<Arc<Session>> = self
                    .sessions
                    .lock()
                    .values()
                    .filter(|s| s.principal().user == user)
                    .cloned()
                    .collect();
                for s in users_sessions {
                    s.forget_database(&name, DEFAULT_DATABASE);
                }
                if let Err(e) = duckling.detach(&name) {
                    // Keep catalog and duckling in agreement: the database stays.
                    let _ = self.catalog.undrop_database(user, &entry.name);
                    return Err(e.into());
                }
                empty()
            }
            Command::UndropDatabase { name } => {
                let entry = self.catalog.undrop_database(user, &name)?;
                duckling.attach(&entry.name, &entry.id)?;
                empty()
            }
            Command::CreateSnapshot { name, database } => {
                self.own_database(user, &database)?;
                let seq = duckling.create_snapshot(&database, name.as_deref().unwrap_or(""))?;
                let schema = Arc::new(Schema::new(vec![Field::new("snapshot_id", DataType::UInt64, false)]));
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(arrow::array::UInt64Array::from(vec![seq])) as ArrayRef],
                )
                .map_err(DucklingError::from)?;
                Ok((schema, vec![batch]))
            }
            Command::SetRetention { database, days } => {
                self.catalog.set_retention(user, &database, days)?;
                empty()
            }
            Command::Refresh { database } => {
                if !duckling.databases().contains(&database) {
                    return Err(CoordinatorError::NotFound(format!(
                        "database {database} is not attached"
                    )));
                }
                duckling.refresh(&database)?;
                empty()
            }
            Command::AttachSnapshot { source, alias, at } => {
                if source.starts_with("_share/") {
                    return Err(CoordinatorError::Unimplemented(
                        "shares are not available on this server yet".into(),
                    ));
                }
                if self.catalog.database(user, &alias)?.is_some() {
                    return Err(CoordinatorError::AlreadyExists(format!(
                        "{alias} is the name of one of your databases; attach under another name"
                    )));
                }
                let entry = self.own_database(user, &source)?;
                let seq = self.select_snapshot(session, &entry.id, at.as_ref())?;
                duckling.attach_snapshot(&alias, &entry.id, seq, at.is_none())?;
                empty()
            }
            Command::Detach { alias, if_exists } => {
                if duckling.is_snapshot(&alias) {
                    duckling.detach(&alias)?;
                } else if self.catalog.database(user, &alias)?.is_some() {
                    return Err(CoordinatorError::InvalidArgument(format!(
                        "{alias} is one of your databases, not an attachment: use DROP DATABASE {alias}"
                    )));
                } else if !if_exists {
                    return Err(CoordinatorError::NotFound(format!("database {alias} is not attached")));
                }
                empty()
            }
        }
    }

    /// The caller's database `name`, or NOT_FOUND.
    fn own_database(&self, user: &str, name: &str) -> Result<crate::catalog::DatabaseEntry> {
        self.catalog
            .database(user, name)?
            .ok_or_else(|| CoordinatorError::NotFound(format!("database {name} does not exist")))
    }

    /// The snapshot of database `id` that `at` names (the newest when `None`).
    fn select_snapshot(&self, session: &Session, id: &str, at: Option<&SnapshotSpec>) -> Result<u64> {
        let selector = match at {
            None => SnapshotSelector::Latest,
            Some(SnapshotSpec::Id(n)) => SnapshotSelector::Id(*n),
            Some(SnapshotSpec::Name(n)) => SnapshotSelector::Name(n.clone()),
            Some(SnapshotSpec::Time(ts)) => {
                // DuckDB reads the timestamp, in every format its casts accept.
                let conn = session.duckling().connect(DEFAULT_DATABASE)?;
                let batches =
                    conn.query_all(&format!("SELECT epoch_ms(CAST({} AS TIMESTAMPTZ))", quote_literal(ts)))?;
                let ms = batches
                    .first()
                    .and_then(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<arrow::array::Int64Array>()
                            .map(|a| a.value(0))
                    })
                    .ok_or_else(|| CoordinatorError::InvalidArgument(format!("{ts} is not a timestamp")))?;
                SnapshotSelector::AtOrBefore(ms)
            }
        };
        Ok(block_on(self.storage.select(id, &selector)).map_err(DucklingError::from)?)
    }

    /// SQL to run on a query's connection before it when `sql` calls Pond's table functions:
    /// temporary table macros holding their rows as of now.
    fn prelude_for(&self, session: &Session, sql: &str) -> Result<Option<String>> {
        let lower = sql.to_ascii_lowercase();
        let mut prelude = Vec::new();
        if lower.contains("pond_active_connections") {
            prelude.push(self.connections_macro(&session.principal().user));
        }
        if lower.contains("pond_ducklings") {
            prelude.push(self.ducklings_prelude(session)?);
        }
        Ok((!prelude.is_empty()).then(|| prelude.join(";\n")))
    }

    /// `pond_active_connections()`: the caller's connections (sessions) on this duckling.
    fn connections_macro(&self, user: &str) -> String {
        let mine: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .values()
            .filter(|s| s.principal().user == user)
            .cloned()
            .collect();
        let rows: Vec<Vec<String>> = mine
            .iter()
            .map(|s| {
                let (database, _) = s.current();
                vec![
                    quote_literal(s.id()),
                    quote_literal(&database),
                    s.running_count().to_string(),
                    s.idle_for().as_secs_f64().to_string(),
                    s.in_transaction().to_string(),
                ]
            })
            .collect();
        table_macro(
            "pond_active_connections",
            &[
                ("connection_id", "VARCHAR"),
                ("current_database", "VARCHAR"),
                ("running_queries", "UBIGINT"),
                ("idle_seconds", "DOUBLE"),
                ("in_transaction", "BOOLEAN"),
            ],
            &rows,
        )
    }

    /// `pond_ducklings()`: every duckling of the server. Admins only.
    fn ducklings_prelude(&self, session: &Session) -> Result<String> {
        if session.principal().user != ADMIN_USER {
            return Err(CoordinatorError::PermissionDenied(
                "pond_ducklings() lists every user's duckling: only the admin user may call it".into(),
            ));
        }
        let rows = match &self.cluster {
            Some(cluster) => cluster.ducklings()?,
            None => self.local_ducklings(),
        };
        Ok(ducklings_macro(&rows))
    }

    /// Fills `pond_information_schema`'s tables for the caller when `sql` reads them, on a
    /// blocking thread (it lists manifests in the store and writes DuckDB tables).
    async fn fill_information_schema_for(self: &Arc<Self>, session: &Arc<Session>, sql: &str) -> Result<()> {
        if !mentions_information_schema(sql) {
            return Ok(());
        }
        let (this, s) = (Arc::clone(self), Arc::clone(session));
        blocking(move || this.refresh_information_schema(&s)).await
    }

    /// Fills `pond_information_schema`'s tables for the caller.
    fn refresh_information_schema(&self, session: &Session) -> Result<()> {
        let user = &session.principal().user;
        let ts = |ms: i64| format!("make_timestamp({}::BIGINT * 1000)", ms);
        let mut databases = Vec::new();
        let mut snapshots = Vec::new();
        for db in self.catalog.databases(user)? {
            databases.push(format!(
                "({}, {}, {})",
                quote_literal(&db.name),
                ts(db.created_ms as i64),
                db.retention_days()
            ));
            for s in block_on(self.storage.snapshots(&db.id)).map_err(DucklingError::from)? {
                snapshots.push(format!(
                    "({}, {}, {}, {}, {}, {})",
                    quote_literal(&db.name),
                    s.seq,
                    s.name.as_deref().map(quote_literal).unwrap_or_else(|| "NULL".into()),
                    ts(s.created_ms),
                    s.bytes_added,
                    s.total_bytes
                ));
            }
        }
        let schema = pond_duckling::duckling::INFORMATION_SCHEMA;
        let mut sql = format!(
            "CREATE OR REPLACE TABLE {schema}.databases (database_name VARCHAR, created_ts TIMESTAMP, snapshot_retention_days INTEGER);
             CREATE OR REPLACE TABLE {schema}.database_snapshots (database_name VARCHAR, snapshot_id UBIGINT, snapshot_name VARCHAR, created_ts TIMESTAMP, bytes_added UBIGINT, total_bytes UBIGINT);"
        );
        if !databases.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO {schema}.databases VALUES {};",
                databases.join(", ")
            ));
        }
        if !snapshots.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO {schema}.database_snapshots VALUES {};",
                snapshots.join(", ")
            ));
        }
        session.duckling().host_execute(&sql)?;
        Ok(())
    }

    /// Runs garbage collection over every database's snapshots: retention per database,
    /// snapshots open in ducklings pinned. Objects younger than `grace` are never deleted.
    /// `elsewhere` adds snapshots open in duckling processes.
    pub async fn collect_garbage(
        &self,
        grace: Duration,
        elsewhere: &[(String, u64)],
    ) -> Result<pond_storage::gc::GcReport> {
        let keep: Vec<pond_storage::gc::Retention> = self
            .catalog
            .all_databases()?
            .into_iter()
            .map(|d| pond_storage::gc::Retention {
                retention: Duration::from_secs(u64::from(d.retention_days()) * 24 * 3600),
                database: d.id,
            })
            .collect();
        let slots: Vec<_> = self.ducklings.lock().values().cloned().collect();
        let mut pinned: Vec<(String, u64)> = slots
            .iter()
            .filter_map(|c| c.duckling.try_lock().and_then(|d| d.clone()))
            .flat_map(|d| d.pinned())
            .collect();
        pinned.extend_from_slice(elsewhere);
        let report = self
            .storage
            .collect_garbage(&keep, &pinned, grace)
            .await
            .map_err(DucklingError::from)?;
        info!(?report, "garbage collection");
        Ok(report)
    }

    /// Stores every duckling's final state and detaches its databases (graceful shutdown).
    pub fn shutdown(&self) {
        let slots: Vec<_> = self.ducklings.lock().values().cloned().collect();
        for d in slots.iter().filter_map(|c| c.duckling.lock().clone()) {
            d.close();
        }
    }

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
        if let Some(cmd) = commands::parse(sql)? {
            let s = Arc::clone(session);
            let this = Arc::clone(self);
            let (schema, batches) = blocking(move || this.run_command(&s, cmd)).await?;
            let query_id = session.park(PendingQuery::Ready {
                schema: Arc::clone(&schema),
                batches,
            });
            return Ok(Planned::parked(query_id, schema));
        }
        self.follow_latest(session).await?;
        self.fill_information_schema_for(session, sql).await?;
        let prelude = self.prelude_for(session, sql)?;
        let control = commands::transaction_control(sql);
        // The fast path outside transactions. With a query timeout, queued behind the
        // concurrent-query limit, or while another started query waits for its DoGet (a client
        // may plan many queries before it fetches any), the statement is planned first and
        // runs at DoGet, holding nothing meanwhile.
        if transaction.is_none()
            && control.is_none()
            && session.limits().query_timeout.is_none()
            && !session.in_transaction()
            && !session.has_unfetched()
            && let Ok(permit) = Arc::clone(&session.limits().admission).try_acquire_owned()
        {
            return start_statement(session, sql, prelude, permit, inline.map(|n| n.min(MAX_INLINE_BYTES))).await;
        }
        let sql_owned = sql.to_string();
        let txn = transaction.map(str::to_string);
        let pending = on_connection(session, access_for(&txn, control), move |s, conn| {
            run_prelude(conn, prelude.as_deref())?;
            let (mut stmt, described) = prepare_script(conn, &sql_owned, &allowed_kinds(s.principal()))?;
            let single = described.statements == 1;
            if single && described.returns_rows() {
                return Ok(PendingQuery::Sql {
                    sql: sql_owned,
                    prelude,
                    params: None,
                    transaction: txn,
                    schema: described.dataset_schema,
                });
            }
            track_transaction(s, control, collect(&mut stmt, None, s.limits()))
        })
        .await?;
        let schema = pending.schema();
        let query_id = session.park(pending);
        Ok(Planned::parked(query_id, schema))
    }

    /// Runs an update (DoPut CommandStatementUpdate) and returns the rows changed.
    pub async fn execute_update(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
    ) -> Result<i64> {
        if let Some(cmd) = commands::parse(sql)? {
            let s = Arc::clone(session);
            let this = Arc::clone(self);
            blocking(move || this.run_command(&s, cmd)).await?;
            return Ok(0);
        }
        let sql = sql.to_string();
        let txn = transaction.map(str::to_string);
        let control = commands::transaction_control(&sql);
        on_connection(session, access_for(&txn, control), move |s, conn| {
            let (mut stmt, _) = prepare_script(conn, &sql, &allowed_kinds(s.principal()))?;
            track_transaction(s, control, stmt.execute().map(|n| n as i64).map_err(Into::into))
        })
        .await
    }

    /// Creates a Flight SQL prepared statement.
    pub async fn prepare(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
    ) -> Result<PreparedInfo> {
        let stmt = if let Some(cmd) = commands::parse(sql)? {
            let schema = match cmd {
                Command::ShowDatabases => single_column("database_name", vec![])?.0,
                Command::Interrupt { .. } => {
                    Arc::new(Schema::new(vec![Field::new("interrupted", DataType::Boolean, false)]))
                }
                // `USE` answers `Success` when run, but like DuckDB's `DROP` it prepares as a
                // statement without a result set (what JDBC's `execute` reports).
                _ => Arc::new(Schema::empty()),
            };
            PreparedStatement {
                sql: sql.to_string(),
                dataset_schema: schema,
                parameter_schema: Schema::empty(),
                params: None,
                body: PreparedBody::AsStatement,
            }
        } else {
            self.follow_latest(session).await?;
            self.fill_information_schema_for(session, sql).await?;
            let prelude = self.prelude_for(session, sql)?;
            let sql = sql.to_string();
            let txn = transaction.map(str::to_string);
            reading_on_connection(session, txn, move |_, conn| {
                run_prelude(conn, prelude.as_deref())?;
                // One statement only: a script's leading statements would run at prepare time, so
                // a script is kept as text and runs whole when executed.
                let prepared = match pond_duckling::prepare_checked(conn, &sql, &pond_duckling::any_kind) {
                    Ok(prepared) => prepared,
                    Err(e) if conn.extract(&sql).is_ok_and(|statements| statements.len() > 1) => {
                        tracing::debug!(error = %e, "a multi-statement text, prepared as text");
                        // The result is the last statement's: announce its schema when it can be
                        // prepared alone (JDBC reads an empty one as "no result set"); when it
                        // depends on the statements before it, only running tells.
                        let dataset_schema = pond_duckling::lexer::last_statement(&sql)
                            .and_then(|last| pond_duckling::prepare_checked(conn, last, &pond_duckling::any_kind).ok())
                            .and_then(|last| pond_duckling::describe(&last, 1).ok())
                            .map_or_else(|| Arc::new(Schema::empty()), |d| d.dataset_schema);
                        return Ok(PreparedStatement {
                            sql,
                            dataset_schema,
                            parameter_schema: Schema::empty(),
                            params: None,
                            body: PreparedBody::AsStatement,
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                let described = pond_duckling::describe(&prepared, 1)?;
                Ok(PreparedStatement {
                    sql,
                    dataset_schema: described.dataset_schema,
                    parameter_schema: prepared.param_schema()?,
                    params: None,
                    body: PreparedBody::Statement(described.kind),
                })
            })
            .await?
        };
        let info = PreparedInfo {
            handle: String::new(),
            dataset_schema: Arc::clone(&stmt.dataset_schema),
            parameter_schema: stmt.parameter_schema.clone(),
        };
        let handle = session.add_prepared(stmt);
        Ok(PreparedInfo { handle, ..info })
    }

    /// Plans a prepared query for GetFlightInfo.
    pub async fn plan_prepared(self: &Arc<Self>, session: &Arc<Session>, handle: &str) -> Result<Planned> {
        let stmt = session.prepared(handle)?;
        let kind = match stmt.body {
            PreparedBody::AsStatement => {
                refuse_parameters(&stmt)?;
                return self.plan_statement(session, &stmt.sql, None, None).await;
            }
            PreparedBody::Statement(kind) => kind,
        };
        self.follow_latest(session).await?;
        self.fill_information_schema_for(session, &stmt.sql).await?;
        if stmt.dataset_schema.fields().is_empty() && !is_dml(kind) {
            // DDL and the like, run through the query path: DuckDB's own (empty) result.
            let pending = on_connection(session, None, move |s, conn| {
                let (mut prepared, _) = prepare_script(conn, &stmt.sql, &allowed_kinds(s.principal()))?;
                collect(&mut prepared, stmt.params.as_ref(), s.limits())
            })
            .await?;
            let schema = pending.schema();
            let query_id = session.park(pending);
            return Ok(Planned::parked(query_id, schema));
        }
        if stmt.dataset_schema.fields().is_empty() {
            // An update run through the query path: run it now, report the count.
            let rows = self.execute_prepared_update(session, handle).await?;
            let schema = Arc::new(Schema::new(vec![Field::new("Count", DataType::Int64, true)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(arrow::array::Int64Array::from(vec![rows])) as ArrayRef],
            )
            .map_err(DucklingError::from)?;
            let query_id = session.park(PendingQuery::Ready {
                schema: Arc::clone(&schema),
                batches: vec![batch],
            });
            return Ok(Planned::parked(query_id, schema));
        }
        if stmt
            .dataset_schema
            .fields()
            .iter()
            .any(|f| f.data_type() == &DataType::Null)
        {
            // A result type hangs on a parameter type DuckDB only learns from the bound value
            // (`SELECT ? AS v`): run now, so the FlightInfo announces the real schema.
            let pending = on_connection(session, None, move |s, conn| {
                let (mut prepared, _) = prepare_script(conn, &stmt.sql, &allowed_kinds(s.principal()))?;
                collect(&mut prepared, stmt.params.as_ref(), s.limits())
            })
            .await?;
            let schema = pending.schema();
            let query_id = session.park(pending);
            return Ok(Planned::parked(query_id, schema));
        }
        let schema = Arc::clone(&stmt.dataset_schema);
        let prelude = self.prelude_for(session, &stmt.sql)?;
        let query_id = session.park(PendingQuery::Sql {
            sql: stmt.sql,
            prelude,
            params: stmt.params,
            transaction: None,
            schema: Arc::clone(&schema),
        });
        Ok(Planned::parked(query_id, schema))
    }

    /// Runs a prepared update once per bound parameter row; returns the total rows changed.
    pub async fn execute_prepared_update(self: &Arc<Self>, session: &Arc<Session>, handle: &str) -> Result<i64> {
        let stmt = session.prepared(handle)?;
        if stmt.body == PreparedBody::AsStatement {
            refuse_parameters(&stmt)?;
            return self.execute_update(session, &stmt.sql, None).await;
        }
        on_connection(session, None, move |s, conn| {
            let (mut prepared, _) = prepare_script(conn, &stmt.sql, &allowed_kinds(s.principal()))?;
            match &stmt.params {
                None => Ok(prepared.execute()? as i64),
                Some(params) => {
                    let mut total = 0i64;
                    run_in_transaction(conn, s.in_transaction(), || {
                        for row in 0..params.num_rows() {
                            prepared.bind_row(params, row)?;
                            total += prepared.execute()? as i64;
                        }
                        Ok(())
                    })?;
                    Ok(total)
                }
            }
        })
        .await
    }

    /// Streams a parked query. Batches arrive through the returned channel; dropping the
    /// receiver interrupts the query.
    pub fn stream(self: &Arc<Self>, session: &Arc<Session>, query_id: &str) -> Result<QueryStream> {
        let pending = session.take(query_id)?;
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
            PendingQuery::Sql {
                sql,
                prelude,
                params,
                transaction,
                schema,
            } => {
                let s = Arc::clone(session);
                let qid = query_id.to_string();
                let run = move |permit: tokio::sync::OwnedSemaphorePermit, tx: mpsc::Sender<Result<RecordBatch>>| {
                    let _permit = permit;
                    let query = Streaming {
                        sql: &sql,
                        prelude: prelude.as_deref(),
                        params: params.as_ref(),
                        transaction: transaction.as_deref(),
                        schema: &schema,
                    };
                    run_streaming(&s, &qid, &query, &tx)
                };
                let admitted = Arc::clone(&session.limits().admission).try_acquire_owned().ok();
                match (admitted, session.limits().query_timeout) {
                    // The common case, with no hop beyond the blocking thread.
                    (Some(permit), None) => {
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = run(permit, tx.clone()) {
                                let _ = tx.blocking_send(Err(e));
                            }
                        });
                    }
                    (admitted, timeout) => {
                        let s = Arc::clone(session);
                        let qid = query_id.to_string();
                        tokio::spawn(async move {
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
                                Some(limit)
                                    if fired.load(std::sync::atomic::Ordering::SeqCst) && is_interrupted(&error) =>
                                {
                                    timed_out(limit)
                                }
                                _ => error,
                            };
                            let _ = tx.send(Err(error)).await;
                        });
                    }
                }
            }
        }
        Ok(QueryStream {
            schema,
            first: Default::default(),
            rx,
            session: Arc::clone(session),
            query_id: query_id.to_string(),
        })
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
            let (current_db, current_schema) = s.current();
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
            run_in_transaction(conn, target.transaction.is_some() || s.in_transaction(), || {
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
        })
        .await
    }

    /// The caller's databases (Flight SQL catalogs).
    pub fn catalogs(&self, principal: &Principal) -> Result<Vec<String>> {
        Ok(self
            .catalog
            .databases(&principal.user)?
            .into_iter()
            .map(|d| d.name)
            .collect())
    }

    /// Schemas of the caller's databases, optionally filtered.
    pub async fn schemas(
        &self,
        session: &Arc<Session>,
        catalog: Option<String>,
        schema_pattern: Option<String>,
    ) -> Result<Vec<(String, String)>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |_, conn| {
            let mut sql = String::from(
                "SELECT database_name, schema_name FROM duckdb_schemas() WHERE (NOT internal OR schema_name = 'main')",
            );
            if let Some(c) = &catalog {
                sql += &format!(" AND database_name = {}", quote_literal(c));
            }
            if let Some(p) = &schema_pattern {
                sql += &format!(" AND schema_name LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            sql += " ORDER BY 1, 2";
            let mut out = Vec::new();
            for b in conn.query_all(&sql)? {
                let dbs = b.column(0).as_any().downcast_ref::<StringArray>();
                let schemas = b.column(1).as_any().downcast_ref::<StringArray>();
                if let (Some(dbs), Some(schemas)) = (dbs, schemas) {
                    for i in 0..b.num_rows() {
                        if allowed.iter().any(|a| a == dbs.value(i)) {
                            out.push((dbs.value(i).to_string(), schemas.value(i).to_string()));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Tables of the caller's databases, optionally filtered, with their Arrow schemas.
    pub async fn tables(&self, session: &Arc<Session>, filter: TableFilter) -> Result<Vec<TableInfo>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |_, conn| {
            let mut sql = String::from(
                "SELECT table_catalog, table_schema, table_name, CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END \
                 FROM information_schema.tables WHERE table_catalog NOT IN ('system', 'temp')",
            );
            if let Some(c) = &filter.catalog {
                sql += &format!(" AND table_catalog = {}", quote_literal(c));
            }
            if let Some(p) = &filter.schema_pattern {
                sql += &format!(" AND table_schema LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            if let Some(p) = &filter.table_pattern {
                sql += &format!(" AND table_name LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            sql += " ORDER BY 1, 2, 3";
            let mut out = Vec::new();
            for b in conn.query_all(&sql)? {
                let col = |i: usize| b.column(i).as_any().downcast_ref::<StringArray>().cloned();
                let (Some(c), Some(sc), Some(n), Some(t)) = (col(0), col(1), col(2), col(3)) else {
                    continue;
                };
                for i in 0..b.num_rows() {
                    if !allowed.iter().any(|a| a == c.value(i)) {
                        continue;
                    }
                    let table_type = t.value(i).to_string();
                    if !filter.table_types.is_empty() && !filter.table_types.iter().any(|x| x.eq_ignore_ascii_case(&table_type)) {
                        continue;
                    }
                    let arrow_schema = if filter.include_schema {
                        let q = format!(
                            "SELECT * FROM {}.{}.{} LIMIT 0",
                            quote_ident(c.value(i)),
                            quote_ident(sc.value(i)),
                            quote_ident(n.value(i))
                        );
                        Some(conn.prepare(&q)?.result_schema()?.as_ref().clone())
                    } else {
                        None
                    };
                    out.push(TableInfo {
                        catalog: c.value(i).to_string(),
                        schema: sc.value(i).to_string(),
                        name: n.value(i).to_string(),
                        table_type,
                        arrow_schema,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Plans a dual-execution query (see `pond-planner`): fills in the statistics of the
    /// caller's cloud tables, measured on the caller's own duckling, then runs the cost model.
    /// Cloud relations must be quoted `"database"."schema"."table"` names of the caller's
    /// databases; nothing else is run to measure them.
    pub async fn plan_dual(
        &self,
        session: &Arc<Session>,
        mut request: pond_planner::PlanRequest,
    ) -> Result<pond_planner::Plan> {
        let allowed = self.catalogs(session.principal())?;
        let mut missing = Vec::new();
        for (i, r) in request.relations.iter().enumerate() {
            if r.side != pond_planner::Side::Remote as i32 || r.statistics.is_some() {
                continue;
            }
            let parts = pond_planner::statistics::parse_quoted_name(&r.source).ok_or_else(|| {
                CoordinatorError::InvalidArgument(format!(
                    "a cloud relation must be a quoted \"database\".\"schema\".\"table\" name, not {}",
                    r.source
                ))
            })?;
            if parts.len() != 3 || !allowed.iter().any(|a| a == &parts[0]) {
                return Err(CoordinatorError::NotFound(format!(
                    "database {} does not exist",
                    parts[0]
                )));
            }
            missing.push((i, r.source.clone()));
        }
        if !missing.is_empty() {
            // Measuring reads tables: it queues for admission like any statement.
            let measured = on_connection(session, None, move |_, conn| {
                let mut out = Vec::new();
                for (i, source) in missing {
                    let schema = conn
                        .prepare(&format!("SELECT * FROM {source} LIMIT 0"))?
                        .result_schema()?;
                    let stats = pond_planner::statistics::collect(&source, &schema, |q| conn.query_all(q))?;
                    out.push((i, stats));
                }
                Ok(out)
            })
            .await?;
            for (i, stats) in measured {
                request.relations[i].statistics = Some(stats);
            }
        }
        // DataFusion's planning is CPU work; keep it off the async workers.
        tokio::task::spawn_blocking(move || pond_planner::plan(&request))
            .await
            .map_err(|e| CoordinatorError::Internal(format!("the planner failed: {e}")))
    }

    /// Primary-key and foreign-key columns from DuckDB's constraints. `pk` filters the
    /// referenced (primary) table, `fk` the referencing table; for primary keys only `pk` is set
    /// and the fk fields repeat the pk table.
    pub async fn keys(
        &self,
        session: &Arc<Session>,
        primary_only: bool,
        pk: Option<(Option<String>, Option<String>, String)>,
        fk: Option<(Option<String>, Option<String>, String)>,
    ) -> Result<Vec<KeyColumn>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |s, conn| {
            let (current_db, _) = s.current();
            let sql = if primary_only {
                "SELECT database_name, schema_name, table_name, UNNEST(constraint_column_names) AS col, \
                   UNNEST(generate_series(1, len(constraint_column_names))) AS seq, constraint_name, \
                   database_name, schema_name, table_name, constraint_name \
                 FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
            } else {
                "SELECT c.database_name, c.schema_name, c.referenced_table, UNNEST(c.referenced_column_names), \
                   UNNEST(generate_series(1, len(c.constraint_column_names))), NULL, \
                   c.database_name, c.schema_name, c.table_name, c.constraint_name, UNNEST(c.constraint_column_names) \
                 FROM duckdb_constraints() c WHERE c.constraint_type = 'FOREIGN KEY'"
            };
            let mut out = Vec::new();
            for b in conn.query_all(sql)? {
                for i in 0..b.num_rows() {
                    let text = |c: usize| -> Option<String> {
                        let a = b.column(c);
                        if a.is_null(i) {
                            return None;
                        }
                        arrow::util::display::array_value_to_string(a, i).ok()
                    };
                    let (pk_cat, pk_sch, pk_tab, pk_col) = (
                        text(0).unwrap_or_default(),
                        text(1).unwrap_or_default(),
                        text(2).unwrap_or_default(),
                        text(3).unwrap_or_default(),
                    );
                    let seq: i32 = text(4).and_then(|x| x.parse().ok()).unwrap_or(1);
                    let (fk_cat, fk_sch, fk_tab) = (
                        text(6).unwrap_or_default(),
                        text(7).unwrap_or_default(),
                        text(8).unwrap_or_default(),
                    );
                    let fk_col = if primary_only {
                        pk_col.clone()
                    } else {
                        text(10).unwrap_or_default()
                    };
                    if !allowed.contains(&pk_cat) {
                        continue;
                    }
                    let matches = |f: &Option<(Option<String>, Option<String>, String)>, c: &str, s_: &str, t: &str| {
                        f.as_ref().is_none_or(|(fc, fs, ft)| {
                            fc.as_deref().unwrap_or(current_db.as_str()) == c
                                && fs.as_deref().is_none_or(|x| x == s_)
                                && ft == t
                        })
                    };
                    if !matches(&pk, &pk_cat, &pk_sch, &pk_tab) || !matches(&fk, &fk_cat, &fk_sch, &fk_tab) {
                        continue;
                    }
                    out.push(KeyColumn {
                        pk_catalog: pk_cat,
                        pk_schema: pk_sch,
                        pk_table: pk_tab,
                        pk_column: pk_col,
                        fk_catalog: fk_cat,
                        fk_schema: fk_sch,
                        fk_table: fk_tab,
                        fk_column: fk_col,
                        key_sequence: seq,
                        fk_name: if primary_only { None } else { text(9) },
                        pk_name: if primary_only { text(5) } else { None },
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Selects a database/schema for the session (Flight SQL session options).
    pub async fn set_current(
        &self,
        session: &Arc<Session>,
        database: Option<String>,
        schema: Option<String>,
    ) -> Result<()> {
        let user = session.principal().user.clone();
        let (cur_db, _) = session.current();
        let db = database.unwrap_or(cur_db);
        if self.catalog.database(&user, &db)?.is_none() {
            return Err(CoordinatorError::NotFound(format!("database {db} does not exist")));
        }
        let s = Arc::clone(session);
        blocking(move || s.use_database(&db, schema.as_deref())).await
    }
}

/// Runs a prepared statement once per parameter row (once without parameters) and hands
/// every result batch to `f`, which returns `false` to stop early. Returns the schema of the
/// first result.
fn for_each_batch(
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
fn collect(
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

/// Runs `f` inside a transaction unless one is already open, so a multi-row operation is
/// all-or-nothing.
fn run_in_transaction(conn: &Connection, already_in_transaction: bool, f: impl FnOnce() -> Result<()>) -> Result<()> {
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

/// A parked query as it runs.
struct Streaming<'a> {
    sql: &'a str,
    prelude: Option<&'a str>,
    params: Option<&'a RecordBatch>,
    transaction: Option<&'a str>,
    schema: &'a SchemaRef,
}

/// The body of a streaming query, on a blocking thread.
fn run_streaming(
    session: &Arc<Session>,
    query_id: &str,
    query: &Streaming<'_>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    session.duckling().running(|| {
        let conn = session.acquire(&query.transaction.map(str::to_string).into())?;
        // Registered only while this connection runs the query: a cancel that arrives later
        // must not interrupt whatever the connection runs next.
        session.started(query_id, conn.interrupt_handle())?;
        let result = run_prelude(&conn, query.prelude).and_then(|()| stream_on(&conn, session, query, tx));
        session.finished(query_id);
        result
    })
}

fn stream_on(
    conn: &Connection,
    session: &Session,
    query: &Streaming<'_>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let Streaming {
        sql, params, schema, ..
    } = *query;
    let mut stmt = pond_duckling::prepare_checked(conn, sql, &allowed_kinds(session.principal()))?;
    send_batches(&mut stmt, session, sql, params, schema, |batch| {
        tx.blocking_send(Ok(batch)).is_ok()
    })
}

/// Runs prepared `stmt` and hands its result, conformed to `schema`, to `emit`, which returns
/// `false` to stop (the client went away).
fn send_batches(
    stmt: &mut pond_duckling::Prepared<'_>,
    session: &Session,
    sql: &str,
    params: Option<&RecordBatch>,
    schema: &SchemaRef,
    mut emit: impl FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let reads = is_read(stmt.kind()) && !advances_a_sequence(sql);
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

/// The fast path of [`Coordinator::plan_statement`] outside transactions: one job prepares
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
async fn start_statement(
    session: &Arc<Session>,
    sql: &str,
    prelude: Option<String>,
    permit: tokio::sync::OwnedSemaphorePermit,
    inline: Option<u64>,
) -> Result<Planned> {
    let query_id = session.new_query_id();
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
    let sql = sql.to_string();
    tokio::task::spawn_blocking(move || {
        let mut started_tx = Some(started_tx);
        let result = s.duckling().running(|| {
            let conn = s.acquire(&Access::Any)?;
            s.started(&qid, conn.interrupt_handle())?;
            let result = start_on(&conn, &s, &sql, prelude, inline, &mut started_tx, &tx);
            s.finished(&qid);
            result
        });
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
            schema,
            first,
            rx,
            sql: rerun_sql,
            prelude: rerun_prelude,
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
    conn: &Connection,
    session: &Session,
    sql: &str,
    prelude: Option<String>,
    inline: Option<u64>,
    started: &mut Option<StartedSender>,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<Option<Started>> {
    let duckling = session.duckling();
    let committed = || !session.in_transaction();
    // Pond's own temporary objects: nothing to gate.
    run_prelude(conn, prelude.as_deref())?;
    let (mut stmt, described) = duckling.prepare_script(conn, sql, &allowed_kinds(session.principal()), &committed)?;
    if described.statements > 1 || !described.returns_rows() {
        let ran = duckling.writing(|| collect(&mut stmt, None, session.limits()), committed)??;
        return Ok(Some(Started::Parked(ran)));
    }
    if !is_read(described.kind) || advances_a_sequence(sql) {
        return Ok(Some(Started::Parked(PendingQuery::Sql {
            sql: sql.to_string(),
            prelude,
            params: None,
            transaction: None,
            schema: described.dataset_schema,
        })));
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
        send_batches(&mut stmt, session, sql, None, &schema, send)?;
        return Ok(None);
    };
    // Gathered here rather than through the channel: a small result then costs one hand-off.
    let mut gathered = Some((Vec::new(), 0u64));
    send_batches(&mut stmt, session, sql, None, &schema, |batch| {
        match gathered.as_mut() {
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
        }
    })?;
    Ok(gathered.map(|(batches, _)| Started::Complete { schema, batches }))
}

/// Makes a batch carry exactly the announced schema (the FlightInfo promise), casting columns
/// whose type DuckDB resolved differently at execution.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    Ok(pond_duckling::engine::cast_to_schema(&batch, schema).map_err(DucklingError::from)?)
}

/// A query's result stream. Dropping it before the end interrupts the query.
pub struct QueryStream {
    pub schema: SchemaRef,
    /// Batches received before DoGet (while GetFlightInfo waited to inline them); sent first.
    first: std::collections::VecDeque<RecordBatch>,
    rx: mpsc::Receiver<Result<RecordBatch>>,
    session: Arc<Session>,
    query_id: String,
}

impl QueryStream {
    /// The next batch, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        match self.first.pop_front() {
            Some(b) => Some(Ok(b)),
            None => self.rx.recv().await,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.session.cancel(&self.query_id);
    }
}
