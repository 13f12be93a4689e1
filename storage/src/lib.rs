//! Differential storage: a Pond database is a DuckDB file whose durable home is object storage,
//! as immutable, content-addressed layers plus one manifest per snapshot. Local disk is a cache.
//!
//! # The choice: WAL segments plus changed blocks
//! DuckDB writes a small commit only to its write-ahead log (a one-row INSERT adds ~116 bytes),
//! and a bulk commit writes new blocks into the main file before the WAL points at them (see
//! `../shared/FACTS.md`). So each commit's layer is
//! - the WAL bytes it appended (one [`WalSegment`](pond_proto::storage::WalSegment) object), and
//! - the main-file blocks whose 8-byte DuckDB checksum changed (found by [`layout::scan`] only
//!   when inotify saw the main file written), and the 12 KiB header region if it changed (a
//!   checkpoint happened: the WAL then starts over).
//!
//! A one-row commit thus uploads a few hundred bytes whatever the database's size; a commit
//! that checkpoints uploads the 2–4 blocks DuckDB rewrote.
//!
//! # Objects and keys
//! - `objects/<hh>/<blake3>`: blocks, header regions, WAL segments and block-map pages, named
//!   by the blake3 of their bytes. Immutable; every read is verified against its name.
//! - `databases/<id>/manifests/<seq>`: snapshot `seq` of database `id` (see [`manifest`]).
//!   A manifest is a *delta* on the previous one, a *full* state every [`manifest::FULL_EVERY`]
//!   snapshots, or a *branch* (a zero-copy clone of another database's snapshot), so a commit
//!   writes only what changed and the chain a reader walks stays short.
//!
//! # Invariants
//! - Objects are written before the manifest that names them; a manifest is written with a
//!   conditional put (`PutMode::Create`) on its sequence-numbered key. So a snapshot is either
//!   wholly visible or absent, and two writers can never both commit snapshot `n`.
//! - A writer that opens a database writes a fencing manifest with a higher epoch; a stale
//!   writer's next commit finds its sequence number taken by a newer epoch and stops.
//! - A commit is acknowledged only after its manifest is in the object store, and only with
//!   bytes the store verifiably kept: S3 uploads carry a SHA-256 checksum the server checks, and
//!   their ETags are compared with the MD5 of what was sent ([`StorageError::UploadMismatch`];
//!   see `store.rs`). A manifest the store kept mangled is deleted by the writer that created
//!   it, and an object the durable snapshot already names is never uploaded again, so a faulty
//!   path cannot overwrite acknowledged bytes.
//! - Readers open private, immutable copies built from cached objects: no file ever changes
//!   under an open DuckDB.
//! - Garbage collection deletes only what no retained manifest (or pinned reader) reaches, and
//!   only objects older than a grace period, so uploads of a commit in flight survive.
//! - Time is read from the storage's injected [`Clock`] ([`Storage::with_clock`]; the system
//!   clock by default): manifests' creation times and GC's horizons alike.

mod cache;
mod error;
pub mod gc;
pub mod layout;
pub mod manifest;
mod reader;
mod store;
mod watch;
mod writer;

pub use cache::ObjectCache;
pub use error::{Result, StorageError};
pub use manifest::{FileState, ObjectId, SnapshotInfo};
pub use reader::{MaterializeStats, SnapshotSelector};
pub use store::{FaultConfig, FaultyStore, Store, StoreStats};
pub use writer::{CommitStats, DatabaseWriter};

use std::path::PathBuf;
use std::sync::Arc;

use pond_clock::Clock;

/// Where snapshots live and where their bytes are cached. Plain data: the binary fills it.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `file:///abs/path`, `memory://`, or `s3://bucket/prefix`.
    pub url: String,
    /// Local directory for cached objects.
    pub cache_dir: PathBuf,
    /// The cache's size bound in bytes.
    pub cache_bytes: u64,
}

/// The object store plus its local cache: what writers, readers and GC share.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Store,
    cache: Arc<ObjectCache>,
    /// Decoded manifests by (database, seq): immutable once written, so a reader walking a
    /// chain, a `database_snapshots` query and GC each fetch a manifest once.
    manifests: moka::future::Cache<(String, u64), manifest::Manifest>,
    /// Stamps manifests and decides GC's horizons.
    clock: Arc<dyn Clock>,
}

/// Manifests kept decoded in memory.
const MANIFEST_CACHE_ENTRIES: u64 = 100_000;

impl Storage {
    /// Opens the store named by `config.url` and the cache under `config.cache_dir`.
    pub fn open(config: &StorageConfig) -> Result<Self> {
        let store = Store::open(&config.url)?;
        Self::with_store(store, config)
    }

    /// Uses an already opened store (tests wrap theirs in a [`FaultyStore`]).
    pub fn with_store(store: Store, config: &StorageConfig) -> Result<Self> {
        let cache = Arc::new(ObjectCache::open(&config.cache_dir, config.cache_bytes, store.clone())?);
        Ok(Self {
            store,
            cache,
            manifests: moka::future::Cache::new(MANIFEST_CACHE_ENTRIES),
            clock: pond_clock::system(),
        })
    }

    /// The same storage reading time from `clock` (the system clock unless replaced here).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// The clock that stamps manifests and decides GC's retention and grace horizons.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The object cache.
    pub fn cache(&self) -> &ObjectCache {
        &self.cache
    }
}

/// Runs a storage future to completion from synchronous code: DuckDB work runs on blocking
/// threads, and storage calls made there wait for the store without an async caller.
///
/// On a multi-thread runtime's thread this uses `block_in_place`; elsewhere it drives the
/// future on a small runtime of the crate's own.
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let own = || {
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("pond-storage")
                .enable_all()
                .build()
                .expect("a tokio runtime for storage I/O")
        })
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| h.block_on(f)),
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| own().block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Err(_) => own().block_on(f),
    }
}
