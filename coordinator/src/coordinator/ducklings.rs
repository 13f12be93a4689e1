//! Each user's duckling: started on first use, stopped when idle or by `SHUTDOWN`, attached
//! read-only at the newest snapshots on a read replica; and what runs over all of them
//! (`pond_ducklings()`, garbage collection, shutdown).
//!
//! Invariants:
//! - One duckling per user per process, behind the user's [`DucklingSlot`]: a duckling that
//!   starts or stops blocks only its own user's calls, which then find it running or start anew.
//! - The map of slots is copied out, never held, while a duckling starts or stops; the idle
//!   reaper decides under it, because every call touches its slot under it first.
//! - A read replica never opens a database for writing, so it fences no writer.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pond_duckling::{Duckling, DucklingConfig, DucklingError};
use pond_storage::{SnapshotSelector, block_on};
use tracing::{debug, info, warn};

use super::Coordinator;
use super::connection::{blocking, off_the_workers};
use crate::error::{CoordinatorError, Result};
use crate::session::Session;

/// A user's duckling, started on first use. The cell makes a duckling that is starting block
/// only its own user's calls.
#[derive(Default)]
pub(super) struct DucklingSlot {
    /// Held while the duckling starts or stops: a call for the user waits, then finds it
    /// running, or starts a new one.
    pub(super) duckling: Mutex<Option<Arc<Duckling>>>,
    /// Statements of this user that may run at once (the rest queue).
    admission: once_cell::sync::OnceCell<Arc<tokio::sync::Semaphore>>,
    last_used: Mutex<Option<std::time::Instant>>,
    started_ms: std::sync::atomic::AtomicU64,
    cold_start_us: std::sync::atomic::AtomicU64,
    /// Held while the user's share attachments are followed or one is attached (`shares.rs`).
    pub(super) shares: Mutex<()>,
    /// Follows in a row that found no share attachment (`shares.rs` follows such a duckling
    /// less often).
    pub(super) idle_follows: std::sync::atomic::AtomicU32,
    /// Whether the last follow failed: a failure is logged as a warning once, not every round
    /// (a duckling whose coordinator died fails each one until it stops).
    pub(super) follow_failing: std::sync::atomic::AtomicBool,
}

impl DucklingSlot {
    fn touch(&self) {
        *self.last_used.lock() = Some(std::time::Instant::now());
    }
}

/// One duckling as `pond_ducklings()` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The coordinator that runs it (its writer-lease id); empty in-process.
    #[serde(default)]
    pub coordinator: String,
}

/// What a coordinator in a duckling process asks its cluster for `pond_ducklings()`.
pub trait ClusterView: Send + Sync {
    fn ducklings(&self) -> Result<Vec<DucklingInfo>>;
}

/// How long a read replica waits for running statements before moving a database to its
/// newest snapshot; past it, the statement runs on the snapshot the replica has.
const REPLICA_REFRESH_WAIT: Duration = Duration::from_secs(2);

/// The folder of a coordinator's data directory that holds its ducklings' files (working
/// copies, snapshot copies, DuckDB's temporary files), one folder per user id.
pub const DUCKLINGS_DIR: &str = "ducklings";

/// Opens a DuckDB instance for the ducklings of a coordinator configured with `config`, ahead of
/// their start (see [`pond_duckling::Instance`]). Blocking.
pub fn open_instance(config: &crate::CoordinatorConfig) -> Result<pond_duckling::Instance> {
    Ok(pond_duckling::Instance::open_with(config.instance_options())?)
}

impl Coordinator {
    pub(super) fn slot(&self, user: &str) -> Arc<DucklingSlot> {
        let mut ducklings = self.ducklings.lock();
        let slot = Arc::clone(ducklings.entry(user.to_string()).or_default());
        // Under the map lock, which the idle reaper holds while it decides.
        slot.touch();
        slot
    }

    pub(super) fn duckling(&self, user: &str) -> Result<Arc<Duckling>> {
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
            let config = self.duckling_config(self.config.data_dir.join(DUCKLINGS_DIR).join(&u.id));
            let spare = self.spare_instance.lock().take();
            let took_spare = spare.is_some();
            let d = match spare {
                Some(instance) => Duckling::with_instance(instance, &config)?,
                None => Duckling::open(&config)?,
            };
            self.sync_secrets(&d, user)?;
            let replica = self.is_read_replica();
            for db in self.catalog.databases(user)? {
                if replica {
                    self.attach_latest(&d, &db)?;
                } else {
                    d.attach(&db.name, &db.id)?;
                }
            }
            // A share that cannot be shown now is no reason to refuse the user their own data.
            if let Err(e) = self.follow_shares_of(&d, user) {
                warn!(user, error = %e, "could not attach the user's shares at start");
            }
            let elapsed = started.elapsed();
            slot.cold_start_us
                .store(elapsed.as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            self.counters.cold_starts.observe(elapsed);
            slot.started_ms
                .store(crate::catalog::now_ms(), std::sync::atomic::Ordering::Relaxed);
            info!(
                user,
                cold_start_ms = elapsed.as_secs_f64() * 1000.0,
                took_spare,
                "duckling started"
            );
            // The next spare is opened once this start no longer needs the cores.
            if took_spare && let Some(wanted) = &*self.spare_wanted.lock() {
                let _ = wanted.send(());
            }
            d
        };
        *cell = Some(Arc::clone(&d));
        Ok(d)
    }

    /// How this coordinator starts a duckling in `dir`.
    fn duckling_config(&self, dir: std::path::PathBuf) -> DucklingConfig {
        let options = self.config.instance_options();
        DucklingConfig {
            dir,
            threads: options.threads,
            adaptive_threads: self.config.adaptive_threads,
            memory_limit: options.memory_limit,
            storage: self.storage.clone(),
            remote: options.remote,
        }
    }

    /// Keeps `instance` (from [`open_instance`] with this coordinator's config) for the next
    /// duckling's start.
    pub fn give_spare_instance(&self, instance: pond_duckling::Instance) {
        *self.spare_instance.lock() = Some(instance);
    }

    /// Keeps a DuckDB instance opened ahead of the next duckling's start, so that a user's
    /// first query waits for the lockdown and the attaches only (see
    /// [`pond_duckling::Instance`]), and another each time one is taken. The work happens on
    /// a thread of its own, which ends at [`Self::shutdown`] or with the coordinator.
    pub fn keep_a_spare_instance(self: &Arc<Self>) {
        let (wanted, requests) = std::sync::mpsc::channel::<()>();
        *self.spare_wanted.lock() = Some(wanted);
        let coordinator = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("pond-spare-instance".into())
            .spawn(move || {
                loop {
                    let options = match coordinator.upgrade() {
                        Some(c) => c.config.instance_options(),
                        None => return,
                    };
                    match pond_duckling::Instance::open_with(options) {
                        Ok(instance) => match coordinator.upgrade() {
                            Some(c) => *c.spare_instance.lock() = Some(instance),
                            None => return,
                        },
                        Err(e) => warn!(error = %e, "could not open a spare DuckDB instance"),
                    }
                    // Until a start takes it; shutdown (or the coordinator's end) drops the sender.
                    if requests.recv().is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(thread) => *self.spare_thread.lock() = Some(thread),
            Err(e) => warn!(error = %e, "could not start the thread that keeps a spare DuckDB instance"),
        }
    }

    /// The semaphore that admits `user`'s statements (`--max-concurrent-queries`).
    pub(super) fn admission(&self, user: &str) -> Arc<tokio::sync::Semaphore> {
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
    pub(super) async fn follow_latest(self: &Arc<Self>, session: &Arc<Session>) -> Result<()> {
        if !self.is_read_replica() {
            return Ok(());
        }
        let (this, s) = (Arc::clone(self), Arc::clone(session));
        blocking(move || {
            let d = s.duckling();
            // A replica serves while the user's primary changes secrets: a dropped one stops
            // working here by this statement.
            this.sync_secrets(d, &s.principal().user)?;
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

    /// Makes `d`'s secrets the ones `user` has in the catalog. A secret DuckDB refuses is left
    /// out and logged with its values masked; the others load.
    pub(super) fn sync_secrets(&self, d: &Duckling, user: &str) -> Result<()> {
        let secrets = self.catalog.secrets(user)?;
        let wanted = secrets
            .iter()
            .map(|s| (s.spec.name.clone(), s.spec.create_sql()))
            .collect();
        for (name, e) in d.sync_secrets(&wanted) {
            let masked = secrets
                .iter()
                .find(|s| s.spec.name == name)
                .map_or_else(|| e.to_string(), |s| s.spec.mask(&e.to_string()));
            warn!(secret = name, error = masked, "a stored secret was not loaded");
        }
        Ok(())
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
                coordinator: String::new(),
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
    pub(super) fn stop_duckling(&self, user: &str, caller: &str) {
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

    /// Runs garbage collection over every database's snapshots: retention per database,
    /// snapshots open in ducklings and those MANUAL shares publish pinned. Objects younger than `grace` are never deleted.
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
        pinned.extend(self.catalog.published_snapshots()?);
        let report = self
            .storage
            .collect_garbage(&keep, &pinned, grace)
            .await
            .map_err(DucklingError::from)?;
        info!(?report, "garbage collection");
        let add = |n: &std::sync::atomic::AtomicU64, v: u64| n.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
        add(&self.counters.gc_runs, 1);
        add(&self.counters.gc_objects_deleted, report.objects_deleted);
        add(&self.counters.gc_bytes_deleted, report.bytes_deleted);
        Ok(report)
    }

    /// Stores every duckling's final state and detaches its databases (graceful shutdown).
    /// The spare instance is closed, after the thread that opens it has stopped.
    pub fn shutdown(&self) {
        self.spare_wanted.lock().take();
        let thread = self.spare_thread.lock().take();
        if let Some(thread) = thread {
            // It ends after the open under way, if any: its sender is gone.
            let _ = thread.join();
        }
        self.spare_instance.lock().take();
        let slots: Vec<_> = self.ducklings.lock().values().cloned().collect();
        for d in slots.iter().filter_map(|c| c.duckling.lock().clone()) {
            d.close();
        }
        self.close_history();
    }
}
