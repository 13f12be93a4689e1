//! One duckling: a user's sandboxed DuckDB instance with the user's databases attached.
//!
//! Invariants:
//! - A duckling serves exactly one user; its private directory holds only that user's files.
//! - The instance is locked down (see [`crate::sandbox`]) before any connection is handed out.
//! - Databases are attached under their user-visible names from files whose names the
//!   coordinator chose (ids, never user text), so names cannot steer paths.
//! - Each writable database is a working copy of its latest snapshot. Statements that may
//!   write run under the duckling's write gate, and every commit is synced to storage under
//!   that same gate before it is acknowledged ([`Duckling::writing`]), so a sync never reads
//!   a file DuckDB is writing.
//! - Snapshot attachments (time travel) are private read-only copies that never change.
//! - Every ATTACH and every change of the instance's threads runs on the host connection,
//!   under its lock ([`Duckling::set_threads`] says why).
//! - An idle connection ([`Duckling::give_back`]) holds nothing of the session that used it:
//!   only plain reads ran on it, at its database, with no setting changed. Detaching a
//!   database drops the idle connections at it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use parking_lot::Mutex;
use pond_proto::storage::BlockRef;
use pond_storage::{DatabaseWriter, Storage, block_on};
use tracing::{debug, warn};

use crate::engine::{Connection, Database, Prepared, StatementKind, quote_ident, quote_literal};
use crate::error::DucklingError;
use crate::sandbox::{self, Allowed};

/// How to start a duckling. Plain data: the binary parses flags, libraries take this.
#[derive(Debug, Clone)]
pub struct DucklingConfig {
    /// The user's private directory: working copies, snapshot copies and DuckDB's temp files.
    pub dir: PathBuf,
    /// DuckDB worker threads (`None`: DuckDB's default, the number of cores).
    pub threads: Option<usize>,
    /// One thread instead while the CPUs are contended ([`crate::parallelism`]).
    pub adaptive_threads: bool,
    /// DuckDB's memory limit, e.g. `"4GB"` (`None`: DuckDB's default, 80% of RAM).
    pub memory_limit: Option<String>,
    /// Where the databases' snapshots live.
    pub storage: Storage,
    /// What it may reach beyond its private directory.
    pub remote: RemoteAccess,
}

/// What a duckling may reach outside its private directory, through DuckDB's httpfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteAccess {
    /// URL prefixes a user's statements may read and write (`s3://`, `https://`, a host's
    /// prefix…); empty: none, and httpfs is not loaded.
    pub prefixes: Vec<String>,
    /// Whether loopback and private addresses may be reached (a local MinIO); link-local ones
    /// never are (see [`crate::egress`]).
    pub private_endpoints: bool,
}

/// A WAL longer than this many segments or bytes gets a checkpoint after the commit that grew
/// it, so readers replay a short WAL and cold opens fetch few objects.
const CHECKPOINT_SEGMENTS: usize = 1000;
const CHECKPOINT_WAL_BYTES: u64 = 16 << 20;

/// An attached database.
#[derive(Debug)]
enum Attachment {
    /// A user database: the working copy and its writer.
    Writable(Box<DatabaseWriter>),
    /// A read-only snapshot of a database (time travel, or a share another user publishes).
    Snapshot {
        database_id: String,
        seq: u64,
        /// Whether REFRESH moves it to the newest snapshot (attached without a snapshot id).
        follows_latest: bool,
        /// Attached for a share: the coordinator moves it to what the share publishes, and
        /// detaches it when the share can no longer be read.
        share: bool,
        path: PathBuf,
        blocks: Vec<BlockRef>,
    },
}

/// How long an explicit REFRESH waits for running statements before it gives up.
pub const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A user's DuckDB instance.
pub struct Duckling {
    db: Arc<Database>,
    host: Mutex<Connection>,
    attached: Mutex<BTreeMap<String, Attachment>>,
    dir: PathBuf,
    storage: Storage,
    /// Held by statements that may write and by syncs (see the module invariants).
    gate: Mutex<()>,
    /// Held shared by every statement while it runs and exclusively by a refresh while it
    /// swaps an attachment's copy, so no statement sees a database vanish for that moment.
    /// Taken before `gate`.
    swap: parking_lot::RwLock<()>,
    /// Set by [`Self::close`].
    closed: std::sync::atomic::AtomicBool,
    /// Snapshot copies no longer attached, newest last: attaching the same snapshot again
    /// reuses its copy, and a copy of the same database is the base for a newer one.
    spare: Mutex<Vec<SpareCopy>>,
    /// The user's secrets as temporary DuckDB secrets of this instance: name → the host SQL
    /// that created it (see [`Self::sync_secrets`]).
    secrets: Mutex<BTreeMap<String, String>>,
    /// Connections given back clean, with the database each has selected: a client that opens
    /// a session per query (no cookies) gets one with its prepared statements still warm
    /// instead of a new connection, a `USE` and a cold prepare.
    idle: Mutex<Vec<(String, Connection)>>,
    /// Its thread counts when it adapts to the CPUs' contention ([`crate::parallelism`]).
    threads: Option<crate::parallelism::Threads>,
}

/// Idle connections kept per duckling.
const IDLE_CONNECTIONS: usize = 16;

/// A materialized snapshot copy kept after its DETACH. DuckDB opened it read-only, which
/// leaves the file untouched, so it is still exactly the snapshot.
#[derive(Debug)]
struct SpareCopy {
    database_id: String,
    seq: u64,
    path: PathBuf,
    blocks: Vec<BlockRef>,
}

/// A share attachment as [`Duckling::shares`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCopy {
    pub alias: String,
    pub database_id: String,
    /// The snapshot it shows.
    pub seq: u64,
    /// Attached to follow the newest snapshot (an AUTOMATIC share).
    pub follows_latest: bool,
}

/// Spare copies kept per duckling.
const SPARE_COPIES: usize = 4;

/// The DuckDB catalogs that exist in every instance and are not user databases.
pub const SYSTEM_CATALOGS: &[&str] = &["memory", "system", "temp", INFORMATION_SCHEMA];

/// The in-memory catalog holding `pond_information_schema`'s tables.
pub const INFORMATION_SCHEMA: &str = "pond_information_schema";

/// A DuckDB instance made ready for a duckling before its user is known: opened with the
/// duckling's options, httpfs loaded (DuckDB checks its signature, some 30 ms) behind the
/// process's egress proxy, the server's credentials reset, the system's table functions read. No user statement ever runs on it before
/// [`Duckling::with_instance`] locks it down to the user's directory; a coordinator keeps one
/// ready so a user's first query does not wait for it.
pub struct Instance {
    db: Arc<Database>,
    host: Connection,
    settings: std::collections::HashSet<String>,
    /// The remote prefixes its lockdown allows: the configured ones when httpfs is loaded.
    prefixes: Vec<String>,
    /// What it was opened for: an instance serves only a config asking the same.
    shape: InstanceOptions,
}

/// What a DuckDB instance is opened with: the part of a [`DucklingConfig`] that does not
/// depend on the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOptions {
    pub threads: Option<usize>,
    pub memory_limit: Option<String>,
    pub remote: RemoteAccess,
}

impl InstanceOptions {
    fn of(config: &DucklingConfig) -> Self {
        Self {
            threads: config.threads,
            memory_limit: config.memory_limit.clone(),
            remote: config.remote.clone(),
        }
    }
}

impl Instance {
    /// Opens an instance for ducklings started with `config` (its directory and storage do
    /// not matter yet).
    pub fn open(config: &DucklingConfig) -> Result<Self, DucklingError> {
        Self::open_with(InstanceOptions::of(config))
    }

    /// Opens an instance for ducklings whose config asks for `shape`.
    pub fn open_with(shape: InstanceOptions) -> Result<Self, DucklingError> {
        let opts = sandbox::open_options(shape.threads, shape.memory_limit.as_deref());
        let db = Database::open(None, &opts)?;
        let host = db.connect()?;
        host.execute_batch(&format!("ATTACH ':memory:' AS {INFORMATION_SCHEMA}"))?;
        // httpfs adds settings of its own: the names are read once it is loaded.
        let proxy = match (shape.remote.prefixes.is_empty(), crate::extensions::httpfs()) {
            (true, _) => None,
            (false, Ok(httpfs)) => {
                host.execute_batch(&format!("LOAD {}", quote_literal(&httpfs.display().to_string())))?;
                Some(crate::egress::proxy(shape.remote.private_endpoints)?)
            }
            (false, Err(why)) => {
                warn!(why, "the duckling reads no remote data");
                None
            }
        };
        let settings = host.setting_names()?;
        // The sandbox reads these on an instance's first statement: some 40 ms, paid here.
        host.system_table_functions()?;
        let prefixes = match proxy {
            Some(proxy) => {
                host.execute_batch(&sandbox::remote_sql(&proxy, &settings))?;
                shape.remote.prefixes.clone()
            }
            None => Vec::new(),
        };
        Ok(Self {
            db,
            host,
            settings,
            prefixes,
            shape,
        })
    }

    /// Whether it was opened for ducklings started with `config`.
    pub fn fits(&self, config: &DucklingConfig) -> bool {
        self.shape == InstanceOptions::of(config)
    }
}

impl Duckling {
    /// Opens an in-memory DuckDB instance, locked down to `config.dir`.
    pub fn open(config: &DucklingConfig) -> Result<Arc<Self>, DucklingError> {
        Self::with_instance(Instance::open(config)?, config)
    }

    /// A duckling on `instance`, locked down to `config.dir` before anything else runs on it.
    pub fn with_instance(instance: Instance, config: &DucklingConfig) -> Result<Arc<Self>, DucklingError> {
        // One opened for other options (the flags changed) is not used: a new one is.
        let instance = if instance.fits(config) {
            instance
        } else {
            Instance::open(config)?
        };
        std::fs::create_dir_all(config.dir.join("tmp"))?;
        std::fs::create_dir_all(config.dir.join("snapshots"))?;
        let dir = config.dir.canonicalize()?;
        // Snapshot copies of an earlier run are never reused: REFRESH and ATTACH build anew.
        for entry in std::fs::read_dir(dir.join("snapshots"))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let Instance {
            db,
            host,
            settings,
            prefixes,
            ..
        } = instance;
        host.execute_batch(&sandbox::lockdown_sql(&dir, &prefixes, &settings))?;
        let threads = match config.adaptive_threads {
            true => host.query_i64("SELECT current_setting('threads')::BIGINT")?,
            false => None,
        }
        .and_then(|wide| usize::try_from(wide).ok())
        .filter(|wide| *wide > 1)
        .map(crate::parallelism::Threads::new);
        let duckling = Arc::new(Self {
            db,
            host: Mutex::new(host),
            attached: Mutex::new(BTreeMap::new()),
            dir,
            storage: config.storage.clone(),
            gate: Mutex::new(()),
            swap: parking_lot::RwLock::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
            secrets: Mutex::new(BTreeMap::new()),
            idle: Mutex::new(Vec::new()),
            threads,
        });
        if duckling.threads.is_some() {
            crate::parallelism::adapt(&duckling);
        }
        Ok(duckling)
    }

    /// Its thread counts, when it adapts to the CPUs' contention.
    pub(crate) fn threads(&self) -> Option<&crate::parallelism::Threads> {
        self.threads.as_ref()
    }

    /// Sets the instance's DuckDB threads (the host's own setting; no user statement may).
    pub fn set_threads(&self, count: usize) -> Result<(), DucklingError> {
        // On the host connection, under its lock, which every ATTACH runs under too. DuckDB
        // replays an attached file's log with a query of its own, on whichever thread runs the
        // ATTACH (at times a worker), and that query's end waits for the scheduler's thread
        // lock; a thread change holds that lock while it joins the workers, so one beside an
        // ATTACH could wait forever for the worker that waits for it.
        Ok(self
            .host
            .lock()
            .execute_batch(&format!("SET GLOBAL threads = {count}"))?)
    }

    /// The duckling's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage its databases live in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The memory DuckDB accounts for (`duckdb_memory()`), in bytes; 0 if it cannot say.
    pub fn memory_bytes(&self) -> u64 {
        let batches = self
            .host
            .lock()
            .query_all("SELECT COALESCE(sum(memory_usage_bytes), 0)::UBIGINT FROM duckdb_memory()");
        batches
            .ok()
            .and_then(|b| {
                b.first().and_then(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::UInt64Array>()
                        .map(|a| a.value(0))
                })
            })
            .unwrap_or(0)
    }

    /// Runs SQL on the host connection (Pond's own statements, never user SQL).
    pub fn host_execute(&self, sql: &str) -> Result<(), DucklingError> {
        Ok(self.host.lock().execute_batch(sql)?)
    }

    /// Appends `batch` to table `pond_information_schema.<table>`, whose columns it matches.
    pub fn append_to_information_schema(&self, table: &str, batch: &RecordBatch) -> Result<(), DucklingError> {
        let host = self.host.lock();
        let mut appender = host.appender(INFORMATION_SCHEMA, "main", table)?;
        appender.append(batch)?;
        appender.flush()?;
        Ok(())
    }

    /// Creates (or replaces) secret `name` with `create_sql`, host SQL that makes a temporary
    /// DuckDB secret of that name.
    pub fn put_secret(&self, name: &str, create_sql: &str) -> Result<(), DucklingError> {
        let mut secrets = self.secrets.lock();
        self.host_execute(create_sql)?;
        secrets.insert(name.to_string(), create_sql.to_string());
        Ok(())
    }

    /// Removes secret `name`.
    pub fn drop_secret(&self, name: &str) -> Result<(), DucklingError> {
        let mut secrets = self.secrets.lock();
        self.host_execute(&format!("DROP TEMPORARY SECRET IF EXISTS {}", quote_ident(name)))?;
        secrets.remove(name);
        Ok(())
    }

    /// Makes the instance's secrets exactly `wanted` (name → create SQL), creating, replacing
    /// and dropping only what differs; returns the secrets DuckDB refused, with why.
    pub fn sync_secrets(&self, wanted: &BTreeMap<String, String>) -> Vec<(String, DucklingError)> {
        let held = self.secrets.lock().clone();
        let mut refused = Vec::new();
        for name in held.keys().filter(|n| !wanted.contains_key(*n)) {
            if let Err(e) = self.drop_secret(name) {
                refused.push((name.clone(), e));
            }
        }
        for (name, sql) in wanted.iter().filter(|(n, sql)| held.get(*n) != Some(*sql)) {
            if let Err(e) = self.put_secret(name, sql) {
                refused.push((name.clone(), e));
            }
        }
        refused
    }

    /// Attaches database `database_id` as `name`: its working copy is made the latest
    /// snapshot (fencing any older writer), then attached read-write.
    pub fn attach(&self, name: &str, database_id: &str) -> Result<(), DucklingError> {
        let _gate = self.gate.lock();
        let mut attached = self.attached.lock();
        match attached.get(name) {
            Some(Attachment::Writable(_)) => return Ok(()),
            Some(Attachment::Snapshot { .. }) => {
                return Err(DucklingError::invalid(format!(
                    "{name} is attached as a snapshot; DETACH it first"
                )));
            }
            None => {}
        }
        let path = self.dir.join(format!("{database_id}.duckdb"));
        let mut writer = block_on(DatabaseWriter::open(&self.storage, database_id, &path))?;
        self.host.lock().execute_batch(&attach_sql(&path, name, false))?;
        // A new database's first snapshot; nothing for an existing one.
        if let Err(e) = block_on(writer.sync()) {
            let _ = self.host.lock().execute_batch(&detach_sql(name));
            return Err(e.into());
        }
        attached.insert(name.to_string(), Attachment::Writable(Box::new(writer)));
        Ok(())
    }

    /// Attaches snapshot `seq` of database `database_id` read-only as `alias`.
    pub fn attach_snapshot(
        &self,
        alias: &str,
        database_id: &str,
        seq: u64,
        follows_latest: bool,
    ) -> Result<(), DucklingError> {
        self.attach_copy(alias, database_id, seq, follows_latest, false)
    }

    /// Attaches snapshot `seq` of database `database_id`, which a share publishes, read-only as
    /// `alias` (see [`Self::move_within`] and [`Self::withdraw_share`]).
    pub fn attach_share(
        &self,
        alias: &str,
        database_id: &str,
        seq: u64,
        follows_latest: bool,
    ) -> Result<(), DucklingError> {
        self.attach_copy(alias, database_id, seq, follows_latest, true)
    }

    fn attach_copy(
        &self,
        alias: &str,
        database_id: &str,
        seq: u64,
        follows_latest: bool,
        share: bool,
    ) -> Result<(), DucklingError> {
        let taken = || DucklingError::invalid(format!("a database named {alias} is already attached"));
        if self.attached.lock().contains_key(alias) {
            return Err(taken());
        }
        // Built before the locks: a large copy holds up neither writes nor other attachments.
        let (path, blocks) = self.copy_of(database_id, seq)?;
        let _gate = self.gate.lock();
        let mut attached = self.attached.lock();
        if attached.contains_key(alias) {
            remove_copy(&path);
            return Err(taken());
        }
        if let Err(e) = self.host.lock().execute_batch(&attach_sql(&path, alias, true)) {
            remove_copy(&path);
            return Err(e.into());
        }
        attached.insert(
            alias.to_string(),
            Attachment::Snapshot {
                database_id: database_id.to_string(),
                seq,
                follows_latest,
                share,
                path,
                blocks,
            },
        );
        Ok(())
    }

    /// A private copy of snapshot `seq`: a spare copy of it if there is one, else one built
    /// beside the newest spare copy of the same database, else one built from the cache.
    fn copy_of(&self, database_id: &str, seq: u64) -> Result<(PathBuf, Vec<BlockRef>), DucklingError> {
        let mut spare = self.spare.lock();
        if let Some(i) = spare.iter().position(|c| c.database_id == database_id && c.seq == seq) {
            let c = spare.remove(i);
            return Ok((c.path, c.blocks));
        }
        let base = spare.iter().rev().find(|c| c.database_id == database_id);
        self.materialize(database_id, seq, base.map(|c| (c.path.as_path(), c.blocks.as_slice())))
    }

    /// Keeps a detached snapshot copy for reuse, dropping the oldest beyond [`SPARE_COPIES`].
    fn keep_spare(&self, copy: SpareCopy) {
        let mut spare = self.spare.lock();
        spare.push(copy);
        while spare.len() > SPARE_COPIES {
            remove_copy(&spare.remove(0).path);
        }
    }

    fn materialize(
        &self,
        database_id: &str,
        seq: u64,
        previous: Option<(&Path, &[BlockRef])>,
    ) -> Result<(PathBuf, Vec<BlockRef>), DucklingError> {
        let path = self
            .dir
            .join("snapshots")
            .join(format!("{database_id}.{seq}.{:08x}.duckdb", rand::random::<u32>()));
        let state = block_on(self.storage.resolve(database_id, seq))?;
        let (blocks, stats) = block_on(self.storage.materialize(database_id, seq, &state, &path, previous))?;
        debug!(
            database_id,
            seq,
            blocks = stats.blocks_written,
            "materialized a snapshot"
        );
        Ok((path, blocks))
    }

    /// Runs one statement's work: attachments are not swapped meanwhile (see [`Self::refresh`]).
    pub fn running<T>(&self, f: impl FnOnce() -> T) -> T {
        let _running = self.swap.read();
        f()
    }

    /// [`Self::running`] only if no attachment is being swapped now: `None` instead of waiting.
    pub fn try_running<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        let _running = self.swap.try_read()?;
        Some(f())
    }

    /// Moves snapshot attachment `alias` to its database's newest snapshot, fetching only
    /// the blocks that changed. Returns the snapshot it now shows. It waits for running
    /// statements to end, up to [`REFRESH_WAIT`].
    pub fn refresh(&self, alias: &str) -> Result<u64, DucklingError> {
        self.refresh_within(alias, REFRESH_WAIT)?.ok_or_else(|| {
            DucklingError::invalid(format!(
                "{alias} is in use by running queries; REFRESH again when they end"
            ))
        })
    }

    /// [`Self::refresh`], giving up (`Ok(None)`) when statements still run after `wait`.
    pub fn refresh_within(&self, alias: &str, wait: std::time::Duration) -> Result<Option<u64>, DucklingError> {
        self.move_within(alias, None, wait)
    }

    /// Moves snapshot attachment `alias` to snapshot `target` (the newest when `None`, which
    /// only an attachment that follows the latest allows). The new copy is built beside the one
    /// shown, fetching only the blocks that changed, before statements are held up; the swap
    /// then waits for running statements, and gives up (`Ok(None)`, the copy kept for the next
    /// try) when they still run after `wait`.
    pub fn move_within(
        &self,
        alias: &str,
        target: Option<u64>,
        wait: std::time::Duration,
    ) -> Result<Option<u64>, DucklingError> {
        let (database_id, seq, path, blocks) = match self.attached.lock().get(alias) {
            Some(Attachment::Snapshot {
                database_id,
                seq,
                follows_latest,
                path,
                blocks,
                ..
            }) if *follows_latest || target.is_some() => (database_id.clone(), *seq, path.clone(), blocks.clone()),
            Some(Attachment::Snapshot { .. }) => {
                return Err(DucklingError::invalid(format!(
                    "{alias} is attached at a fixed snapshot; attach it without SNAPSHOT_* to follow the latest"
                )));
            }
            // A user's own database is always at its newest snapshot.
            Some(Attachment::Writable(w)) => return Ok(Some(w.seq())),
            None => return Err(DucklingError::invalid(format!("database {alias} is not attached"))),
        };
        let wanted = match target {
            Some(t) => t,
            None => block_on(self.storage.latest_after(&database_id, seq))?,
        };
        if wanted == seq {
            return Ok(Some(seq));
        }
        let (new_path, new_blocks) = {
            let mut spare = self.spare.lock();
            match spare
                .iter()
                .position(|c| c.database_id == database_id && c.seq == wanted)
            {
                Some(i) => {
                    let c = spare.remove(i);
                    (c.path, c.blocks)
                }
                None => {
                    drop(spare);
                    // The copy shown is read-only: a safe base while statements read it.
                    self.materialize(&database_id, wanted, Some((path.as_path(), blocks.as_slice())))?
                }
            }
        };
        let built = SpareCopy {
            database_id: database_id.clone(),
            seq: wanted,
            path: new_path,
            blocks: new_blocks,
        };
        let Some(_swapping) = self.swap.try_write_for(wait) else {
            self.keep_spare(built);
            return Ok(None);
        };
        let _gate = self.gate.lock();
        let mut attached = self.attached.lock();
        let Some(Attachment::Snapshot {
            database_id: shown_id,
            seq: shown,
            path: shown_path,
            blocks: shown_blocks,
            ..
        }) = attached.get_mut(alias)
        else {
            self.keep_spare(built);
            return Ok(None);
        };
        if *shown_id != database_id || *shown != seq {
            // Moved or replaced meanwhile: this copy was built for what it showed before.
            self.keep_spare(built);
            return Ok(None);
        }
        let host = self.host.lock();
        if let Err(e) = host
            .execute_batch(&detach_sql(alias))
            .and_then(|_| host.execute_batch(&attach_sql(&built.path, alias, true)))
        {
            remove_copy(&built.path);
            // Back to the copy it had, if DuckDB let it go.
            let _ = host.execute_batch(&attach_sql(shown_path, alias, true));
            return Err(e.into());
        }
        drop(host);
        let previous = SpareCopy {
            database_id,
            seq: std::mem::replace(shown, wanted),
            path: std::mem::replace(shown_path, built.path),
            blocks: std::mem::replace(shown_blocks, built.blocks),
        };
        self.keep_spare(previous);
        Ok(Some(wanted))
    }

    /// Detaches share attachment `alias` because its reader may no longer read it, and deletes
    /// its copy and the older copies of its database kept for reuse: the reader's SQL reaches
    /// the files of its own directory. DuckDB lets a running query finish on the copy it reads
    /// (its file stays open); new statements no longer find `alias`.
    pub fn withdraw_share(&self, alias: &str) -> Result<(), DucklingError> {
        let database_id = self.attached_id(alias);
        self.detach_keeping(alias, false)?;
        if let Some(id) = database_id {
            self.spare.lock().retain(|c| {
                let theirs = c.database_id == id;
                if theirs {
                    remove_copy(&c.path);
                }
                !theirs
            });
        }
        Ok(())
    }

    /// The share attachments and what each shows.
    pub fn shares(&self) -> Vec<SharedCopy> {
        self.attached
            .lock()
            .iter()
            .filter_map(|(alias, a)| match a {
                Attachment::Snapshot {
                    database_id,
                    seq,
                    follows_latest,
                    share: true,
                    ..
                } => Some(SharedCopy {
                    alias: alias.clone(),
                    database_id: database_id.clone(),
                    seq: *seq,
                    follows_latest: *follows_latest,
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether `name` is a share attachment.
    pub fn is_share(&self, name: &str) -> bool {
        matches!(
            self.attached.lock().get(name),
            Some(Attachment::Snapshot { share: true, .. })
        )
    }

    /// Detaches `name`. A writable database's last state (DuckDB checkpoints on detach) is
    /// synced first, so it reattaches without rebuilding.
    pub fn detach(&self, name: &str) -> Result<(), DucklingError> {
        self.detach_keeping(name, true)
    }

    /// [`Self::detach`]; a snapshot copy is kept for reuse only when `keep_copy`.
    fn detach_keeping(&self, name: &str, keep_copy: bool) -> Result<(), DucklingError> {
        let _gate = self.gate.lock();
        let mut attached = self.attached.lock();
        if !attached.contains_key(name) {
            return Ok(());
        }
        self.host.lock().execute_batch(&detach_sql(name))?;
        let stale: Vec<(String, Connection)> = {
            let mut idle = self.idle.lock();
            let (stale, kept) = std::mem::take(&mut *idle).into_iter().partition(|(d, _)| d == name);
            *idle = kept;
            stale
        };
        drop(stale);
        match attached.remove(name) {
            Some(Attachment::Writable(mut w)) => {
                // Every commit is already stored; this stores DuckDB's detach checkpoint. If it
                // fails, the next attach finds the copy ahead of the store and rebuilds it.
                if let Err(e) = block_on(w.sync()) {
                    warn!(database = name, error = %e, "could not store the detach checkpoint");
                }
            }
            Some(Attachment::Snapshot { path, .. }) if !keep_copy => remove_copy(&path),
            Some(Attachment::Snapshot {
                database_id,
                seq,
                path,
                blocks,
                ..
            }) => self.keep_spare(SpareCopy {
                database_id,
                seq,
                path,
                blocks,
            }),
            None => {}
        }
        Ok(())
    }

    /// Runs `op` under the write gate; then, if `committed()` says the connection is no
    /// longer inside a transaction, stores what it committed as snapshots before returning.
    /// An op that fails still syncs: a script may have committed statements before failing.
    pub fn writing<T>(&self, op: impl FnOnce() -> T, committed: impl FnOnce() -> bool) -> Result<T, DucklingError> {
        let _gate = self.gate.lock();
        let out = op();
        if committed() {
            self.sync_locked()?;
        }
        Ok(out)
    }

    /// Stores every attached database's committed changes. Callers hold the gate.
    fn sync_locked(&self) -> Result<(), DucklingError> {
        let mut attached = self.attached.lock();
        let mut first_error = None;
        for (name, a) in attached.iter_mut() {
            let Attachment::Writable(w) = a else { continue };
            match block_on(w.sync()) {
                Ok(Some(_)) => {
                    let s = w.state();
                    if s.wal.len() > CHECKPOINT_SEGMENTS || s.wal_len() > CHECKPOINT_WAL_BYTES {
                        // Best effort: DuckDB refuses while another transaction writes.
                        if self
                            .host
                            .lock()
                            .execute_batch(&format!("CHECKPOINT {}", quote_ident(name)))
                            .is_ok()
                            && let Err(e) = block_on(w.sync())
                        {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(database = name, error = %e, "could not store a snapshot");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Cuts snapshot `snapshot_name` of database `name` now; returns its id.
    pub fn create_snapshot(&self, name: &str, snapshot_name: &str) -> Result<u64, DucklingError> {
        let _gate = self.gate.lock();
        let mut attached = self.attached.lock();
        match attached.get_mut(name) {
            Some(Attachment::Writable(w)) => Ok(block_on(w.snapshot(snapshot_name))?),
            _ => Err(DucklingError::invalid(format!("database {name} is not one of yours"))),
        }
    }

    /// Snapshots held open by snapshot attachments (GC must keep them).
    pub fn pinned(&self) -> Vec<(String, u64)> {
        self.attached
            .lock()
            .values()
            .filter_map(|a| match a {
                Attachment::Snapshot { database_id, seq, .. } => Some((database_id.clone(), *seq)),
                Attachment::Writable(_) => None,
            })
            .collect()
    }

    /// Detaches everything, storing each database's final state (graceful shutdown).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.idle.lock());
        drop(idle);
        let names: Vec<String> = self.attached.lock().keys().cloned().collect();
        for name in names {
            if let Err(e) = self.detach(&name) {
                warn!(database = name, error = %e, "could not detach on shutdown");
            }
        }
    }

    /// The id of the database attached as `name`, if any.
    pub fn attached_id(&self, name: &str) -> Option<String> {
        self.attached_version(name).map(|(id, _)| id)
    }

    /// The database attached as `name` and the snapshot its committed data is at, if any:
    /// equal versions hold equal committed data (a writable database's moves with every commit
    /// it stores). Waits while a commit uploads: call from a blocking thread.
    pub fn attached_version(&self, name: &str) -> Option<(String, u64)> {
        match self.attached.lock().get(name)? {
            Attachment::Writable(w) => Some((w.database_id().to_string(), w.seq())),
            Attachment::Snapshot { database_id, seq, .. } => Some((database_id.clone(), *seq)),
        }
    }

    /// Whether [`Self::close`] ran: its databases are gone, and sessions must move to a new
    /// duckling.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The attached user databases (own and snapshot attachments).
    pub fn databases(&self) -> Vec<String> {
        self.attached.lock().keys().cloned().collect()
    }

    /// Whether `name` is a snapshot attachment.
    pub fn is_snapshot(&self, name: &str) -> bool {
        matches!(self.attached.lock().get(name), Some(Attachment::Snapshot { .. }))
    }

    /// A connection with `database` selected: an idle one ([`Self::give_back`]) if there is
    /// one, else a new one.
    pub fn connect(&self, database: &str) -> Result<Connection, DucklingError> {
        let reused = {
            let mut idle = self.idle.lock();
            let at = idle.iter().rposition(|(d, _)| d == database);
            at.map(|i| idle.swap_remove(i).1)
        };
        if let Some(conn) = reused {
            // A cancel of its last query must not stop the next session's first statement.
            drop(conn.interrupt_handle());
            return Ok(conn);
        }
        let conn = self.db.connect()?;
        conn.execute_batch(&format!("USE {}", quote_ident(database)))?;
        Ok(conn)
    }

    /// Keeps `conn`, which has `database` selected, for the next [`Self::connect`]. The caller
    /// vouches that nothing of its session is in it: only plain reads ran on it, no `USE` of a
    /// schema, no setting, no transaction left open. Beyond [`IDLE_CONNECTIONS`], or once the
    /// duckling is closed or `database` detached, it closes.
    pub fn give_back(&self, database: &str, conn: Connection) {
        // Held while the connection is kept, so a detach of `database` cannot slip between.
        // Held also while a commit uploads: then the connection closes rather than wait.
        let Some(attached) = self.attached.try_lock() else {
            return;
        };
        if self.is_closed() || !attached.contains_key(database) {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < IDLE_CONNECTIONS {
            idle.push((database.to_string(), conn));
        }
    }
}

/// `ATTACH` of a file we chose under the name the user sees.
fn attach_sql(path: &Path, name: &str, read_only: bool) -> String {
    format!(
        "ATTACH {} AS {}{}",
        quote_literal(&path.display().to_string()),
        quote_ident(name),
        if read_only { " (READ_ONLY)" } else { "" }
    )
}

fn detach_sql(name: &str) -> String {
    format!("DETACH {}", quote_ident(name))
}

fn remove_copy(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(pond_storage::layout::wal_path(path));
}

/// What a user statement is, learned by preparing it.
#[derive(Debug, Clone)]
pub struct Described {
    pub kind: StatementKind,
    /// The result schema; empty for statements that only report a row count.
    pub dataset_schema: SchemaRef,
    /// How many statements the SQL text held (all but the last already ran).
    pub statements: usize,
}

impl Described {
    /// Whether the statement returns rows (a query) rather than a count (an update).
    pub fn returns_rows(&self) -> bool {
        !self.dataset_schema.fields().is_empty()
    }
}

/// Whether a prepared statement of `kind` with result `schema` is a query rather than an update.
fn is_query(kind: StatementKind, schema: &Schema) -> bool {
    use StatementKind::*;
    let count_only = schema.fields().len() == 1
        && schema.field(0).name() == "Count"
        && schema.field(0).data_type() == &DataType::Int64;
    match kind {
        Select | Explain | Pragma | Call | Relation => true,
        Insert | Update | Delete | Merge | Execute => !count_only,
        _ => false,
    }
}

/// Splits user SQL into statements, checks each with the sandbox, runs all but the last and
/// prepares the last. A single statement is only prepared.
///
/// `allow` sees every statement's kind before it runs (the read-only check), after the sandbox.
pub fn prepare_script<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<(Prepared<'c>, Described), DucklingError> {
    prepare_script_with(conn, sql, allow, &|_| true, &mut |run| run())
}

/// A single statement `conn` has kept prepared from an earlier run of `sql`, and what it
/// returns: `None` when there is none (never run here, or dropped since a change to what SQL
/// binds to). Nothing is parsed, planned or checked again, so it takes microseconds: what a
/// statement on an async worker may do.
pub fn prepare_kept<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<Option<(Prepared<'c>, Described)>, DucklingError> {
    let Some(prepared) = take_kept(conn, sql, allow)? else {
        return Ok(None);
    };
    let described = describe(&prepared, 1)?;
    Ok(Some((prepared, described)))
}

/// A script's statements before its last, run by whoever calls [`prepare_script_with`].
type Earlier<'a> = &'a mut dyn FnMut() -> Result<(), DucklingError>;

impl Duckling {
    /// [`prepare_script`] for callers outside the write gate: a script's earlier statements,
    /// which may write, run under it (`committed` as in [`Self::writing`]), while a single
    /// statement is prepared without waiting for writers.
    pub fn prepare_script<'c>(
        &self,
        conn: &'c Connection,
        sql: &str,
        allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
        committed: &dyn Fn() -> bool,
    ) -> Result<(Prepared<'c>, Described), DucklingError> {
        prepare_script_with(conn, sql, allow, &|_| true, &mut |run| self.writing(run, committed)?)
    }
}

/// `runs` says which of a script's earlier statements run (a rehearsal's choice); the others are
/// checked and prepared only.
fn prepare_script_with<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
    runs: &dyn Fn(StatementKind) -> bool,
    run_earlier: &mut dyn FnMut(Earlier<'_>) -> Result<(), DucklingError>,
) -> Result<(Prepared<'c>, Described), DucklingError> {
    if let Some(prepared) = take_kept(conn, sql, allow)? {
        let described = describe(&prepared, 1)?;
        return Ok((prepared, described));
    }
    // Before DuckDB sees the text at all: extracting statements already runs PRAGMA handlers.
    sandbox::check_text(sql, conn.system_table_functions()?)?;
    let extracted = conn.extract(sql)?;
    let last = extracted.len() - 1;
    // Each statement's own text, where the lexer splits the script as DuckDB's parser did
    // (DuckDB expands some statements, PIVOT among them, into several).
    let texts = match last {
        0 => Some(vec![sql]),
        _ => crate::lexer::statements(sql).filter(|t| t.len() == extracted.len()),
    };
    // A text that does not start the way its statement's kind does belongs to another statement.
    let aligned = |text: &str, kind: StatementKind| {
        let first = crate::lexer::tokenize(text)
            .ok()
            .and_then(|t| t.first().and_then(|t| t.name()));
        let sets = matches!(first.as_deref(), Some("set" | "reset" | "pragma"));
        sets == (kind == StatementKind::Set) || kind == StatementKind::Pragma
    };
    let check = |i: usize, kind: StatementKind| -> Result<Allowed, DucklingError> {
        let text = match (&texts, kind) {
            (Some(texts), _) if aligned(texts[i], kind) => texts[i],
            // SET and PRAGMA are checked by their own text, which this script does not give.
            (_, StatementKind::Set | StatementKind::Pragma) => {
                return Err(DucklingError::PermissionDenied(
                    "SET and PRAGMA must be sent as a statement of their own in this script".into(),
                ));
            }
            _ => sql,
        };
        let allowed = sandbox::check(kind, text)?;
        if let Some((true, explained)) = sandbox::explained(text)? {
            // EXPLAIN ANALYZE runs what it explains, which the kind `Explain` does not show.
            let inner = conn.prepare(explained)?.kind();
            if inner != StatementKind::Select {
                return Err(DucklingError::PermissionDenied(format!(
                    "EXPLAIN ANALYZE of a {inner:?} statement is not allowed (only queries may be analyzed)"
                )));
            }
        }
        allow(kind)?;
        Ok(allowed)
    };
    if last > 0 {
        run_earlier(&mut || {
            for i in 0..last {
                let mut stmt = extracted.prepare(i)?;
                if let Allowed::Instead(text) = check(i, stmt.kind())? {
                    stmt = conn.prepare(&text)?;
                }
                if runs(stmt.kind()) {
                    stmt.execute()?;
                }
            }
            Ok(())
        })?;
    }
    let mut prepared = extracted.prepare(last)?;
    if let Allowed::Instead(text) = check(last, prepared.kind())? {
        prepared = conn.prepare(&text)?;
    }
    let described = describe(&prepared, extracted.len())?;
    if last == 0 {
        prepared.keep_for_reuse(sql);
    }
    Ok((prepared, described))
}

/// What a rehearsal runs: statements that change the catalog, which a later statement's result
/// type may depend on, and which DuckDB undoes on `ROLLBACK`.
const REHEARSAL_RUNS: &[StatementKind] = &[StatementKind::Create, StatementKind::Drop, StatementKind::Alter];

/// Whether a statement's text creates, drops or alters something (what [`REHEARSAL_RUNS`]
/// holds), read from its first word: for a statement of a script that cannot be prepared before
/// the ones ahead of it have run.
pub fn changes_the_catalog(statement: &str) -> bool {
    crate::lexer::tokenize(statement)
        .ok()
        .and_then(|tokens| tokens.first().and_then(|t| t.name()))
        .is_some_and(|word| matches!(word.as_str(), "create" | "drop" | "alter"))
}

/// What a rehearsal checks and prepares but does not run: statements that change only rows
/// (or nothing), so no later statement's result type.
const REHEARSAL_SKIPS: &[StatementKind] = &[
    StatementKind::Select,
    StatementKind::Relation,
    StatementKind::Insert,
    StatementKind::Update,
    StatementKind::Delete,
    StatementKind::Merge,
];

/// How long a rehearsal waits for the write gate before it gives up (it is best-effort: the
/// script then announces no schema).
const REHEARSAL_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Duckling {
    /// The result schema of a script whose last statement needs the ones before it (`CREATE
    /// TABLE t …; SELECT * FROM t`), which only running them tells: the script is rehearsed on
    /// `conn` in a transaction that is always rolled back, running only what changes the
    /// catalog ([`REHEARSAL_RUNS`]), its last statement prepared, not run.
    ///
    /// `conn` must be a connection of its own, in no transaction (a failed `BEGIN` would abort
    /// a caller's). The rehearsal holds the write gate (a `CREATE TABLE … AS` may write blocks
    /// before it is rolled back), waiting for it at most [`REHEARSAL_GATE_WAIT`]. Refused, never
    /// run: statements outside [`REHEARSAL_RUNS`] and [`REHEARSAL_SKIPS`], a script whose
    /// statements before the last call `nextval` or `setval` (a sequence does not roll back;
    /// when DuckDB expands a statement into several, as PIVOT, the whole text). A sequence advanced out of
    /// sight (a `CREATE TABLE … AS` over a view that calls `nextval`) keeps a gap, as after
    /// any rolled-back statement.
    pub fn rehearse(
        &self,
        conn: &Connection,
        sql: &str,
        allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
    ) -> Result<SchemaRef, DucklingError> {
        let refused = |why: &str| DucklingError::PermissionDenied(format!("not rehearsed: {why}"));
        let statements = crate::lexer::statements(sql).unwrap_or_default();
        let Some((_, earlier)) = statements.split_last() else {
            return Err(refused("the lexer cannot read the script"));
        };
        let advances_a_sequence =
            |text: &&str| crate::lexer::tokenize(text).is_ok_and(|t| crate::lexer::advances_a_sequence(&t));
        // DuckDB expands some statements (PIVOT) into several: their texts are not the
        // lexer's, so the whole text is judged.
        let expanded = conn.extract(sql)?.len() != statements.len();
        if earlier.iter().any(advances_a_sequence) || (expanded && advances_a_sequence(&sql)) {
            return Err(refused("a statement before the last advances a sequence"));
        }
        let rehearsable = |kind: StatementKind| {
            if !REHEARSAL_RUNS.contains(&kind) && !REHEARSAL_SKIPS.contains(&kind) {
                return Err(refused(&format!("the script has a {kind:?} statement")));
            }
            allow(kind)
        };
        let Some(_gate) = self.gate.try_lock_for(REHEARSAL_GATE_WAIT) else {
            return Err(refused("the user's writes hold the write gate"));
        };
        conn.execute_batch("BEGIN TRANSACTION")?;
        let runs = |kind: StatementKind| REHEARSAL_RUNS.contains(&kind);
        let described = prepare_script_with(conn, sql, &rehearsable, &runs, &mut |run| run()).map(|(_, d)| d);
        let rolled_back = conn.execute_batch("ROLLBACK");
        let described = described?;
        rolled_back?;
        Ok(described.dataset_schema)
    }
}

/// Describes a prepared statement (the last of `statements`).
pub fn describe(prepared: &Prepared<'_>, statements: usize) -> Result<Described, DucklingError> {
    let kind = prepared.kind();
    let result_schema = prepared.result_schema()?;
    let dataset_schema = if is_query(kind, &result_schema) {
        result_schema
    } else {
        Arc::new(Schema::empty())
    };
    Ok(Described {
        kind,
        dataset_schema,
        statements,
    })
}

/// Prepares one user statement the sandbox (and `allow`) permit, without describing it.
pub fn prepare_checked<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<Prepared<'c>, DucklingError> {
    if let Some(kept) = take_kept(conn, sql, allow)? {
        return Ok(kept);
    }
    sandbox::check_text(sql, conn.system_table_functions()?)?;
    let mut prepared = conn.prepare(sql)?;
    if let Some((true, _)) = sandbox::explained(sql)? {
        // Judged with its inner statement's kind, as a script's statements are.
        drop(prepared);
        return prepare_script(conn, sql, allow).map(|(prepared, _)| prepared);
    }
    if let Allowed::Instead(text) = sandbox::check(prepared.kind(), sql)? {
        prepared = conn.prepare(&text)?;
    }
    allow(prepared.kind())?;
    prepared.keep_for_reuse(sql);
    Ok(prepared)
}

/// The statement `conn` kept for `sql` (a single SELECT), if the caller's `allow` permits it.
/// The sandbox is not asked again: only this module keeps statements, each after the sandbox
/// passed its exact text, and the sandbox's verdict depends on nothing else (the text, its
/// kind, and the database's system table functions, listed once).
fn take_kept<'c>(
    conn: &'c Connection,
    sql: &str,
    allow: &dyn Fn(StatementKind) -> Result<(), DucklingError>,
) -> Result<Option<Prepared<'c>>, DucklingError> {
    let Some(kept) = conn.take_prepared(sql) else {
        return Ok(None);
    };
    allow(kept.kind())?;
    Ok(Some(kept))
}

/// An `allow` that permits every kind the sandbox permits.
pub fn any_kind(_: StatementKind) -> Result<(), DucklingError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duckling() -> (tempfile::TempDir, Arc<Duckling>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&pond_storage::StorageConfig {
            url: "memory://".into(),
            cache_dir: dir.path().join("cache"),
            cache_bytes: 1 << 30,
        })
        .unwrap();
        let d = Duckling::open(&DucklingConfig {
            dir: dir.path().join("u1"),
            threads: Some(1),
            adaptive_threads: false,
            memory_limit: None,
            storage,
            remote: Default::default(),
        })
        .unwrap();
        d.attach("my_db", "db1").unwrap();
        (dir, d)
    }

    /// A configuration for another duckling in `dir`'s `name`, on `d`'s storage.
    fn config_beside(
        d: &Duckling,
        dir: &tempfile::TempDir,
        name: &str,
        threads: usize,
        adaptive: bool,
    ) -> DucklingConfig {
        DucklingConfig {
            dir: dir.path().join(name),
            threads: Some(threads),
            adaptive_threads: adaptive,
            memory_limit: None,
            storage: d.storage().clone(),
            remote: Default::default(),
        }
    }

    /// A refusal by Pond's statement check or by DuckDB's own lock.
    fn refused(e: &DucklingError) -> bool {
        matches!(
            e,
            DucklingError::PermissionDenied(_)
                | DucklingError::Sql {
                    kind: crate::SqlErrorKind::Permission,
                    ..
                }
        )
    }

    #[test]
    fn a_connection_given_back_serves_the_next_connect_at_its_database_until_that_is_detached() {
        let (_dir, d) = duckling();
        d.attach("other_db", "db2").unwrap();
        let conn = d.connect("my_db").unwrap();
        let (mut p, _) = prepare_script(&conn, "SELECT 42 AS v", &any_kind).unwrap();
        p.execute().unwrap();
        drop(p);
        let warm = conn.kept_statements();
        assert!(warm >= 1, "a SELECT is kept for reuse");
        d.give_back("my_db", conn);
        // Another database gets a new connection; the same database gets the warm one.
        assert_eq!(d.connect("other_db").unwrap().kept_statements(), 0);
        let again = d.connect("my_db").unwrap();
        assert_eq!(again.kept_statements(), warm);
        assert_eq!(
            d.connect("my_db").unwrap().kept_statements(),
            0,
            "it was taken, not copied"
        );
        d.give_back("my_db", again);
        d.detach("my_db").unwrap();
        // A connection at a detached database is never handed out: a new one fails its USE.
        assert!(d.connect("my_db").is_err());
        // Nor is one given back for a database no longer attached, or once closed.
        d.give_back("my_db", d.connect("other_db").unwrap());
        assert!(d.connect("my_db").is_err());
        let kept = d.connect("other_db").unwrap();
        d.close();
        d.give_back("other_db", kept);
        assert!(d.idle.lock().is_empty());
    }

    #[test]
    fn an_instance_opened_for_other_options_is_not_used() {
        let (dir, d) = duckling();
        let config = config_beside(&d, &dir, "u2", 1, false);
        let other = Instance::open(&DucklingConfig {
            threads: Some(2),
            adaptive_threads: false,
            ..config.clone()
        })
        .unwrap();
        assert!(!other.fits(&config));
        let spare = Instance::open(&config).unwrap();
        assert!(spare.fits(&config));
        for instance in [other, spare] {
            let d2 = Duckling::with_instance(instance, &config).unwrap();
            let conn = d2.db.connect().unwrap();
            assert_eq!(
                conn.query_i64("SELECT current_setting('threads')::BIGINT").unwrap(),
                Some(1)
            );
            // Locked down whichever instance it got.
            let err = prepare_script(&conn, "SELECT * FROM read_csv('/etc/passwd')", &any_kind)
                .and_then(|(mut p, _)| Ok(p.execute()?))
                .unwrap_err();
            assert!(refused(&err), "{err:?}");
            d2.close();
        }
    }

    #[test]
    fn only_the_host_changes_threads_after_the_lockdown() {
        let (dir, d) = duckling();
        let config = config_beside(&d, &dir, "u3", 2, true);
        let adapting = Duckling::open(&config).unwrap();
        assert_eq!(adapting.threads().map(|t| t.wide), Some(2));
        let threads = |d: &Duckling| {
            d.db.connect()
                .unwrap()
                .query_i64("SELECT current_setting('threads')::BIGINT")
                .unwrap()
        };
        for count in [1, 2] {
            adapting.set_threads(count).unwrap();
            assert_eq!(threads(&adapting), Some(count as i64));
        }
        // The lock still holds for every other server setting.
        let err = adapting.host_execute("SET memory_limit = '1GB'").unwrap_err();
        assert!(err.to_string().contains("locked"), "{err}");
        // One thread configured (or adaptivity off): nothing to adapt.
        assert!(d.threads().is_none());
        let single = Duckling::open(&DucklingConfig {
            dir: dir.path().join("u4"),
            threads: Some(1),
            ..config
        })
        .unwrap();
        assert!(single.threads().is_none());
    }

    #[test]
    fn fewer_threads_take_effect_while_a_long_query_runs() {
        let (dir, d) = duckling();
        let adapting = Duckling::open(&config_beside(&d, &dir, "u5", 2, true)).unwrap();
        adapting.attach("my_db", "db-5").unwrap();
        let conn = adapting.connect("my_db").unwrap();
        // A table scan is parallel (a range is not): hours of work for both threads.
        conn.execute_batch("CREATE TEMP TABLE t AS SELECT range AS x FROM range(4000000)")
            .unwrap();
        let interrupt = conn.interrupt_handle();
        let long = std::thread::spawn(move || conn.query_i64("SELECT sum(hash(x, y.range)) FROM t, range(100000) y"));
        std::thread::sleep(std::time::Duration::from_millis(300));
        // DuckDB applies it at the end of the statement that sets it, joining the worker it
        // stops: that worker must give up its task within a few chunks, not at its end.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let setter = Arc::clone(&adapting);
        std::thread::spawn(move || done_tx.send(setter.set_threads(1)).unwrap());
        let set = done_rx.recv_timeout(std::time::Duration::from_secs(60));
        let still_running = !long.is_finished();
        interrupt.interrupt();
        assert!(long.join().unwrap().is_err(), "the long query ran to its end");
        assert!(set.is_ok(), "setting one thread waited for the long query");
        assert!(still_running);
        set.unwrap().unwrap();
    }

    #[test]
    fn a_thread_change_beside_an_attach_that_replays_a_log_completes() {
        // DuckDB replays an attached file's log with a query of its own, on whichever thread
        // runs the ATTACH (at times a worker); that query's end waits for the scheduler's
        // thread lock, which a thread change holds while it joins the workers. Seen hung in CI.
        let (dir, d) = duckling();
        let adapting = Duckling::open(&config_beside(&d, &dir, "u6", 4, true)).unwrap();
        adapting.attach("my_db", "db-6").unwrap();
        let conn = adapting.connect("my_db").unwrap();
        let commit = |sql: &str| adapting.writing(|| conn.execute_batch(sql), || true).unwrap().unwrap();
        commit("CREATE TABLE t AS SELECT range AS i FROM range(100000)");
        commit("CHECKPOINT");
        // A small commit stays in the log: the snapshot's copy has one to replay.
        commit("INSERT INTO t VALUES (-1)");
        let seq = block_on(adapting.storage().latest_seq("db-6")).unwrap().unwrap();

        // Each side keeps going for a while: the ATTACH must land on a worker that a change
        // is joining, which took from a few to many hundred attachments in trials.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let setter = Arc::clone(&adapting);
        let setting_done = done_tx.clone();
        std::thread::spawn(move || {
            let mut wide = false;
            let mut outcome = Ok(());
            while outcome.is_ok() && std::time::Instant::now() < until {
                wide = !wide;
                outcome = setter.set_threads(if wide { 4 } else { 1 });
            }
            setting_done.send(outcome.map(|()| "set")).unwrap();
        });
        let attacher = Arc::clone(&adapting);
        std::thread::spawn(move || {
            let mut outcome = Ok(());
            while outcome.is_ok() && std::time::Instant::now() < until {
                outcome = attacher.attach_snapshot("past", "db-6", seq, false).and_then(|()| {
                    assert_eq!(count(&attacher, "past", "SELECT count(*) FROM t"), 100001);
                    attacher.detach("past")
                });
            }
            done_tx.send(outcome.map(|()| "attached")).unwrap();
        });
        for _ in 0..2 {
            let done = done_rx.recv_timeout(std::time::Duration::from_secs(60));
            assert!(done.is_ok(), "a thread change and an ATTACH deadlocked");
            done.unwrap().unwrap();
        }
    }

    #[test]
    fn sandbox_blocks_server_files() {
        let (_dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        let marker = std::env::temp_dir().join(format!("pond_escape_{}.csv", std::process::id()));
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')".to_string(),
            format!("COPY (SELECT 1) TO '{}'", marker.display()),
            "SET enable_external_access = true".to_string(),
            "INSTALL httpfs".to_string(),
            format!("ATTACH '{}' AS x", marker.display()),
        ] {
            let err = prepare_script(&conn, &sql, &any_kind)
                .and_then(|(mut p, _)| Ok(p.execute()?))
                .unwrap_err();
            assert!(refused(&err), "{sql}: {err:?}");
        }
        assert!(!marker.exists());
    }

    #[test]
    fn a_rehearsal_learns_a_scripts_schema_and_leaves_nothing_behind() {
        let (_dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        conn.execute_batch("CREATE SEQUENCE s").unwrap();
        let script = "CREATE TABLE r(i INTEGER); INSERT INTO r VALUES (1); SELECT i, nextval('s') AS n FROM r";
        let schema = d.rehearse(&conn, script, &any_kind).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["i", "n"]);
        // Rolled back, and the last statement's nextval was only prepared.
        assert_eq!(
            count(
                &d,
                "my_db",
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'r'"
            ),
            0
        );
        assert_eq!(count(&d, "my_db", "SELECT nextval('s')"), 1);
        // Not rehearsed: what a rollback would not undo, before the last statement.
        for refused_script in [
            "SELECT nextval('s'); CREATE TABLE r2 AS SELECT 1 AS x; SELECT * FROM r2",
            "SET VARIABLE v = 1; CREATE TABLE r3 AS SELECT 1 AS x; SELECT * FROM r3",
            "CREATE TABLE r4(i INTEGER); COPY r4 TO 'x.csv'; SELECT * FROM r4",
        ] {
            let err = d.rehearse(&conn, refused_script, &any_kind).unwrap_err();
            assert!(refused(&err), "{refused_script}: {err:?}");
        }
        // Rows change no result type: an INSERT is prepared, not run (its default's nextval
        // would survive the rollback).
        conn.execute_batch("CREATE TABLE seqt(id BIGINT DEFAULT nextval('s'), v INTEGER)")
            .unwrap();
        let script = "INSERT INTO seqt(v) VALUES (1); CREATE TABLE r5(x INTEGER); SELECT * FROM r5";
        d.rehearse(&conn, script, &any_kind).unwrap();
        assert_eq!(count(&d, "my_db", "SELECT count(*) FROM seqt"), 0);
        assert_eq!(count(&d, "my_db", "SELECT nextval('s')"), 2);
        assert_eq!(
            count(
                &d,
                "my_db",
                "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'r%'"
            ),
            0
        );
        // The connection is usable, outside any transaction, after each.
        conn.execute_batch("BEGIN; COMMIT").unwrap();
    }

    fn count(d: &Duckling, db: &str, sql: &str) -> i64 {
        d.connect(db).unwrap().query_i64(sql).unwrap().unwrap()
    }

    #[test]
    fn commits_become_snapshots_another_duckling_rebuilds_exactly() {
        let (dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        let commit = |sql: &str| d.writing(|| conn.execute_batch(sql), || true).unwrap().unwrap();
        commit("CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)");
        commit("INSERT INTO t VALUES (-1, 'x')");
        commit("CHECKPOINT");
        commit("DELETE FROM t WHERE i < 10");
        commit("INSERT INTO t SELECT range + 1000000, 'bulk' FROM range(300000)");
        let first = block_on(d.storage().latest_seq("db1")).unwrap().unwrap();
        let expected = count(&d, "my_db", "SELECT count(*) FROM t");
        assert_eq!(expected, 200000 + 1 - 11 + 300000, "the DELETE takes -1 too");

        // Time travel: a read-only copy of an earlier snapshot, in the same instance.
        d.attach_snapshot("past", "db1", first - 1, false).unwrap();
        assert_eq!(count(&d, "past", "SELECT count(*) FROM t"), 200000 + 1 - 11);
        assert!(d.pinned().contains(&("db1".to_string(), first - 1)));
        // Detached, its copy is kept: attaching the same snapshot again reuses it unchanged.
        let copies = |d: &Duckling| std::fs::read_dir(d.dir().join("snapshots")).unwrap().count();
        let before = copies(&d);
        d.detach("past").unwrap();
        assert_eq!(copies(&d), before, "the copy is kept as a spare");
        d.attach_snapshot("past", "db1", first - 1, false).unwrap();
        assert_eq!(copies(&d), before, "and reused, not rebuilt");
        assert_eq!(count(&d, "past", "SELECT count(*) FROM t"), 200000 + 1 - 11);

        // Another duckling with its own directory rebuilds the database from the store alone.
        let other = Duckling::open(&config_beside(&d, &dir, "u2", 1, false)).unwrap();
        other.attach("my_db", "db1").unwrap();
        assert_eq!(count(&other, "my_db", "SELECT count(*) FROM t"), expected);
        // It fenced the first writer: that one's next commit is refused, not forked.
        let err = d
            .writing(|| conn.execute_batch("INSERT INTO t VALUES (7, 'late')"), || true)
            .unwrap_err();
        assert!(err.to_string().contains("fenced"), "{err}");
    }

    #[test]
    fn classifies_queries_and_updates() {
        let (_dir, d) = duckling();
        let conn = d.connect("my_db").unwrap();
        let (_, desc) = prepare_script(&conn, "CREATE TABLE t(a INT)", &any_kind).unwrap();
        assert!(!desc.returns_rows());
        conn.execute_batch("CREATE TABLE t(a INT)").unwrap();
        let (_, desc) = prepare_script(&conn, "INSERT INTO t VALUES (1)", &any_kind).unwrap();
        assert!(!desc.returns_rows());
        let (_, desc) = prepare_script(&conn, "INSERT INTO t VALUES (1) RETURNING a", &any_kind).unwrap();
        assert!(desc.returns_rows());
        let (stmt, desc) = prepare_script(&conn, "SELECT a FROM t WHERE a = ?", &any_kind).unwrap();
        assert!(desc.returns_rows());
        assert_eq!(stmt.param_schema().unwrap().fields().len(), 1);
    }
}
