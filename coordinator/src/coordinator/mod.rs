//! The coordinator: authenticates callers, keeps sessions, runs the statements it owns and
//! dispatches the rest to the caller's duckling. This module holds the coordinator itself and
//! its sessions; each job it does has its own room:
//!
//! - `ducklings`: each user's duckling: start, idle stop, `SHUTDOWN`, read
//!   replicas, garbage collection.
//! - `connection`: running work on a session's connection, off the async
//!   workers, under admission, the write gate and `--query-timeout`.
//! - `statements`: SQL statements (GetFlightInfo, updates, transactions);
//!   `prepared`: Flight SQL prepared statements.
//! - `start`: the GetFlightInfo fast path that starts a plain read at once;
//!   `quick_reads`: which reads run on the async worker itself; `streaming`: results
//!   streamed at DoGet.
//! - `pond_statements`: Pond's own statements (databases, snapshots,
//!   `SHUTDOWN`, …); `pond_views`: `pond_information_schema` and Pond's
//!   table functions.
//! - `shares`: `CREATE`/`UPDATE`/`DROP SHARE`, grants, a reader's `ATTACH` of a
//!   share, and readers' attachments kept in line with their shares.
//! - `history`: statements as they run (`recent_queries`) and once done (the
//!   query history, metrics).
//! - `metadata`: catalogs, schemas, tables and keys; `ingest`:
//!   bulk ingest; `dual`: dual-execution planning.
//!
//! Invariants:
//! - Every DuckDB call runs on a blocking thread (`spawn_blocking`), except a text whose last
//!   run was a plain read that took at most a few hundred microseconds (`quick_reads`); results
//!   stream back through bounded channels, so a slow client slows its query instead of growing
//!   server memory.
//! - A statement's text is classified once ([`crate::classify`]) where it enters, and the
//!   [`Classification`](crate::classify::Classification) travels with it.
//! - A session belongs to one user: every lookup by id or handle checks the caller is that user.
//! - The maps of ducklings and sessions are never locked while a duckling starts or stops.

mod connection;
mod dual;
mod dual_statistics;
mod ducklings;
mod history;
mod ingest;
mod metadata;
mod pond_statements;
mod pond_views;
mod prepared;
mod quick_reads;
mod shares;
mod start;
mod statements;
mod streaming;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pond_clock::{LATENCY_WORDS, LatencyHistogram};
use pond_duckling::DucklingError;
use pond_storage::{Storage, StorageConfig};
use tracing::{debug, info};

use crate::auth::{Principal, TokenAuthority};
use crate::catalog::{Catalog, DEFAULT_DATABASE};
use crate::error::{CoordinatorError, Result};
use crate::session::{Session, SessionLimits};
use connection::blocking;
use ducklings::DucklingSlot;

pub use ducklings::{ClusterView, DUCKLINGS_DIR, DucklingInfo, open_instance};
pub use history::QueryObserver;
pub use ingest::{IfExists, IfNotExists, IngestChunk, IngestTarget};
pub use metadata::{KeyColumn, TableFilter, TableInfo, TableName};
pub use prepared::PreparedInfo;
pub use shares::FOLLOW_EVERY;
pub use statements::{MAX_INLINE_BYTES, Planned, PlannedResult};
pub use streaming::QueryStream;

pub use crate::config::CoordinatorConfig;

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
    /// Held while a secret is created or dropped: a refused `CREATE OR REPLACE` puts back the
    /// secret it read before, which no other change may have replaced meanwhile.
    secret_changes: Mutex<()>,
    /// A DuckDB instance opened ahead of the next duckling's start (see
    /// [`Self::keep_a_spare_instance`]).
    spare_instance: Mutex<Option<pond_duckling::Instance>>,
    /// Asks the thread that keeps the spare for another, once one was taken.
    spare_wanted: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// That thread: joined at shutdown, so no DuckDB instance is being opened while the
    /// process exits (DuckDB's static destructors would run under it).
    spare_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Statements running and done.
    history: Arc<history::QueryLog>,
    /// The id of the duckling this process is, when it is one (`pond duckling`).
    process_duckling_id: std::sync::OnceLock<String>,
    /// The catalog's writer leases (set by [`Self::open`]).
    writer_leases: std::sync::OnceLock<Arc<dyn crate::catalog::WriterLeases>>,
    /// The catalog's directory of duckling processes (set by [`Self::open`]).
    duckling_directory: std::sync::OnceLock<Arc<dyn crate::catalog::DucklingDirectory>>,
    /// What it counts for metrics besides statements.
    counters: Counters,
    /// Dual execution's statistics of cloud tables, per version of their data.
    dual_statistics: dual_statistics::StatisticsCache,
    /// Texts whose last run was a quick plain read, which run on the async workers.
    quick_reads: Arc<quick_reads::QuickReads>,
}

/// A monotonic counter a process reports for metrics: its name (Prometheus adds `pond_` and
/// `_total`), its help, and how this process reads it.
#[derive(Clone, Copy)]
pub struct CounterSpec {
    pub name: &'static str,
    pub help: &'static str,
    read: fn(&Coordinator) -> u64,
}

/// A latency histogram a process reports for metrics: name (with `pond_` before it), help, and
/// how this process reads it.
#[derive(Clone, Copy)]
pub struct HistogramSpec {
    pub name: &'static str,
    pub help: &'static str,
    read: fn(&Coordinator) -> [u64; LATENCY_WORDS],
}

fn load(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

/// The counters every process reports, in [`Coordinator::reported_metrics`]' order: a
/// duckling process sends their values in its heartbeat and its coordinator adds them to its
/// own, so a name, its meaning and its place are defined here once.
pub const COUNTERS: [CounterSpec; 15] = [
    CounterSpec {
        name: "store_puts",
        help: "Objects written to the object store by this process",
        read: |c| load(&c.storage.store().stats().puts),
    },
    CounterSpec {
        name: "store_put_bytes",
        help: "Bytes written to the object store by this process",
        read: |c| load(&c.storage.store().stats().put_bytes),
    },
    CounterSpec {
        name: "store_gets",
        help: "Objects read from the object store by this process",
        read: |c| load(&c.storage.store().stats().gets),
    },
    CounterSpec {
        name: "store_get_bytes",
        help: "Bytes read from the object store by this process",
        read: |c| load(&c.storage.store().stats().get_bytes),
    },
    CounterSpec {
        name: "cache_hits",
        help: "Objects this process's local object cache served",
        read: |c| load(&c.storage.store().stats().cache_hits),
    },
    CounterSpec {
        name: "cache_hit_bytes",
        help: "Bytes this process's local object cache served",
        read: |c| load(&c.storage.store().stats().cache_hit_bytes),
    },
    CounterSpec {
        name: "cache_misses",
        help: "Objects this process's local object cache fetched from the store",
        read: |c| load(&c.storage.store().stats().cache_misses),
    },
    CounterSpec {
        name: "gc_runs",
        help: "Garbage collections",
        read: |c| load(&c.counters.gc_runs),
    },
    CounterSpec {
        name: "gc_objects_deleted",
        help: "Objects garbage collection deleted",
        read: |c| load(&c.counters.gc_objects_deleted),
    },
    CounterSpec {
        name: "gc_bytes_deleted",
        help: "Bytes garbage collection deleted",
        read: |c| load(&c.counters.gc_bytes_deleted),
    },
    CounterSpec {
        name: "dual_statistics_measured",
        help: "Cloud tables dual execution measured for its cost model (once per snapshot of their database)",
        read: |c| load(&c.dual_statistics.measured),
    },
    CounterSpec {
        name: "dual_statistics_reused",
        help: "Cloud table statistics dual execution took from a measure at the same snapshot",
        read: |c| load(&c.dual_statistics.reused),
    },
    CounterSpec {
        name: "quick_reads",
        help: "Statements run on an async worker because their last run was a quick plain read",
        read: |c| load(&c.quick_reads.ran),
    },
    CounterSpec {
        name: "quick_reads_declined",
        help: "Quick reads declined to run again on a blocking thread (too long, too large, or no longer a kept plain read)",
        read: |c| load(&c.quick_reads.declined),
    },
    CounterSpec {
        name: "query_history_dropped",
        help: "Query history records dropped because the writer fell behind or failed",
        read: |c| c.history_records_dropped(),
    },
];

/// The histograms every process reports, after [`COUNTERS`] in the same words.
pub const HISTOGRAMS: [HistogramSpec; 2] = [
    HistogramSpec {
        name: "commit_seconds",
        help: "Time this process's snapshot commits took (capture, uploads, manifest)",
        read: |c| c.storage.store().stats().commits.words(),
    },
    HistogramSpec {
        name: "duckling_cold_start_seconds",
        help: "Time duckling starts in this process took (open, attach, shares)",
        read: |c| c.counters.cold_starts.words(),
    },
];

/// How many words [`Coordinator::reported_metrics`] gives: each counter, then each histogram's
/// [`LATENCY_WORDS`].
pub const REPORTED_WORDS: usize = COUNTERS.len() + HISTOGRAMS.len() * LATENCY_WORDS;

/// What a coordinator counts for metrics besides statements and the store (monotonic unless
/// said).
#[derive(Debug, Default)]
pub struct Counters {
    /// Statements waiting for a turn now (`--max-concurrent-queries`); a gauge.
    pub queued: Arc<AtomicU64>,
    /// In-process duckling starts, by how long they took.
    pub cold_starts: LatencyHistogram,
    /// Garbage collections, and what they deleted.
    pub gc_runs: AtomicU64,
    pub gc_objects_deleted: AtomicU64,
    pub gc_bytes_deleted: AtomicU64,
}

/// The user with access to the whole server (`pond_ducklings()`).
pub const ADMIN_USER: &str = "admin";

/// A session whose client never came back may make room for another once idle this long
/// (and holding nothing, running no statement): a call that created it has this long to park
/// what its next call fetches (a statement is protected from its start by the history).
const SPENT_AFTER: Duration = Duration::from_millis(100);

/// Reads the token store's revocations every [`crate::auth::REVOCATION_POLL`] into the
/// coordinator's token authority, until the coordinator is gone: a token revoked on any
/// coordinator of a shared catalog is refused by all within it, and no call waits for the read.
fn follow_revocations(coordinator: std::sync::Weak<Coordinator>, tokens: Arc<dyn crate::catalog::TokenStore>) {
    let spawned = std::thread::Builder::new()
        .name("pond-revocations".into())
        .spawn(move || {
            loop {
                std::thread::sleep(crate::auth::REVOCATION_POLL);
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                match tokens.revoked_tokens() {
                    Ok(ids) => coordinator.auth.set_revoked(ids),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read token revocations; keeping the last ones read")
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start following token revocations");
    }
}

impl Coordinator {
    /// Open sessions, of every user.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// What it counts for metrics besides statements and the store.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// This process's [`COUNTERS`] then [`HISTOGRAMS`], as words that add up across processes.
    pub fn reported_metrics(&self) -> [u64; REPORTED_WORDS] {
        let counters = COUNTERS.iter().map(|c| (c.read)(self));
        let histograms = HISTOGRAMS.iter().flat_map(|h| (h.read)(self));
        let mut words = [0; REPORTED_WORDS];
        for (word, value) in words.iter_mut().zip(counters.chain(histograms)) {
            *word = value;
        }
        words
    }

    /// `user`'s sessions, copied out so the sessions map is not held while they are used.
    fn sessions_of(&self, user: &str) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .values()
            .filter(|s| s.principal().user == user)
            .cloned()
            .collect()
    }

    /// Opens the coordinator on its data directory and catalog. On first start this creates
    /// the directory, the signing key (in the catalog's token store) and the `admin` user, and
    /// writes an admin token to `admin.token`.
    pub fn open(config: CoordinatorConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let data_dir = config.data_dir.canonicalize()?;
        let opened = crate::catalog::open(&data_dir, config.catalog_url.as_ref().map(|u| u.0.as_str()))?;
        let auth = TokenAuthority::from_secret(&opened.signing_key);
        auth.set_revoked(opened.tokens.revoked_tokens()?);
        let token_path = data_dir.join("admin.token");
        if !token_path.exists() {
            opened.catalog.ensure_user(ADMIN_USER)?;
            let (token, _) = auth.mint(ADMIN_USER, false, Duration::from_secs(10 * 365 * 24 * 3600))?;
            crate::auth::write_private(&token_path, format!("{token}\n").as_bytes())?;
            info!(path = %token_path.display(), "wrote the admin token");
        }
        let coordinator = Self::with_parts(CoordinatorConfig { data_dir, ..config }, opened.catalog, auth, None)?;
        let _ = coordinator.writer_leases.set(opened.leases);
        let _ = coordinator.duckling_directory.set(opened.directory);
        follow_revocations(Arc::downgrade(&coordinator), opened.tokens);
        Ok(coordinator)
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
        // A duckling process hands every record to its coordinator, which decides.
        let keep_history = !config.query_history_retention.is_zero() || cluster.is_some();
        let history = history::QueryLog::start(Arc::clone(storage.clock()), Arc::clone(&catalog), keep_history);
        let quick_reads = Arc::new(quick_reads::QuickReads::new(config.quick_read_time));
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
            secret_changes: Mutex::new(()),
            spare_instance: Mutex::new(None),
            spare_wanted: Mutex::new(None),
            spare_thread: Mutex::new(None),
            history,
            process_duckling_id: std::sync::OnceLock::new(),
            writer_leases: std::sync::OnceLock::new(),
            duckling_directory: std::sync::OnceLock::new(),
            counters: Counters::default(),
            dual_statistics: Default::default(),
            quick_reads,
        }))
    }

    /// The catalog this coordinator works on.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// Who runs each user's writer duckling, across the coordinators of the catalog; `None` in
    /// a duckling process, whose coordinator decides.
    pub fn writer_leases(&self) -> Option<&Arc<dyn crate::catalog::WriterLeases>> {
        self.writer_leases.get()
    }

    /// The duckling processes of every coordinator of the catalog; `None` in a duckling
    /// process.
    pub fn duckling_directory(&self) -> Option<&Arc<dyn crate::catalog::DucklingDirectory>> {
        self.duckling_directory.get()
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
        // Statements whose session went another way (SHUTDOWN, an idle duckling's stop) end.
        let live: std::collections::HashSet<String> = self.sessions.lock().keys().cloned().collect();
        self.history.abandon_orphans(&live);
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
        self.make_room_for_a_session(&principal.user)?;
        let duckling = self.duckling(&principal.user)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let limits = SessionLimits {
            queued: Arc::clone(&self.counters.queued),
            admission: self.admission(&principal.user),
            query_timeout: self.config.query_timeout,
            max_result_bytes: self.config.max_result_bytes,
        };
        // One clock for the coordinator: the storage's, which also stamps its snapshots.
        let s = Arc::new(Session::with_clock(
            id.clone(),
            principal.clone(),
            duckling,
            DEFAULT_DATABASE.into(),
            limits,
            Arc::clone(self.storage.clock()),
        ));
        self.sessions.lock().insert(id, Arc::clone(&s));
        debug!(user = principal.user, session = s.id(), "session opened");
        Ok((s, true))
    }

    /// Refuses a new session of `user` past `--max-sessions` (the admin excepted, who must
    /// be able to end others) or `--max-sessions-per-user`, once the spent sessions that count
    /// are closed: those whose client never came back, idle for [`SPENT_AFTER`], holding
    /// nothing and running no statement (a client without cookies, as ADBC, opens one per
    /// statement).
    fn make_room_for_a_session(&self, user: &str) -> Result<()> {
        let (max, per_user) = (self.config.max_sessions, self.config.max_sessions_per_user);
        let full = |sessions: &HashMap<String, Arc<Session>>| {
            let total = sessions.len();
            // Counting a user's sessions walks them all: only when they could be at the limit.
            let mine = || sessions.values().filter(|s| s.principal().user == user).count();
            (
                total >= max && user != ADMIN_USER,
                total >= per_user && mine() >= per_user,
            )
        };
        let (server_full, user_full) = full(&self.sessions.lock());
        if !server_full && !user_full {
            return Ok(());
        }
        let timeout = self.config.session_idle_timeout;
        self.close_sessions_where(|s| {
            // At the user's own limit, only the user's own sessions make room.
            (server_full || s.principal().user == user)
                && s.expired(timeout, SPENT_AFTER)
                && !self.history.runs_in(s.id())
        });
        match full(&self.sessions.lock()) {
            (true, _) => Err(CoordinatorError::ResourceExhausted(format!(
                "the server holds its limit of {max} open sessions (--max-sessions): close sessions you no longer use, or try again later"
            ))),
            (_, true) => Err(CoordinatorError::ResourceExhausted(format!(
                "user {user} holds the limit of {per_user} open sessions (--max-sessions-per-user): close sessions you no longer use, or end one with pond_kill_session"
            ))),
            _ => Ok(()),
        }
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
        self.history.abandon_session(session.id());
    }

    /// Closes sessions idle for longer than the configured timeout. Returns how many.
    pub fn reap_idle_sessions(&self) -> usize {
        let (timeout, unreturned) = (self.config.session_idle_timeout, self.config.unreturned_session_timeout);
        self.close_sessions_where(|s| s.expired(timeout, unreturned))
    }

    /// Closes the sessions `close` picks: what they run (or wait to be fetched) is
    /// interrupted, and their statements end in the history. Returns how many.
    fn close_sessions_where(&self, close: impl Fn(&Session) -> bool) -> usize {
        let mut closed = Vec::new();
        self.sessions.lock().retain(|id, s| {
            let keep = !close(s);
            if !keep {
                s.interrupt_all();
                closed.push(id.clone());
            }
            keep
        });
        for id in &closed {
            debug!(session = id, "session closed");
            self.history.abandon_session(id);
        }
        closed.len()
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
        self.usable_database(&user, &db)?;
        let s = Arc::clone(session);
        blocking(move || s.use_database(&db, schema.as_deref())).await
    }
}
