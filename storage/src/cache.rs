//! The object cache: bytes on local disk, the index and eviction in moka, bounded by size.
//!
//! Invariants:
//! - Every object handed out was verified against its blake3 name, from the store or disk.
//! - Concurrent misses on one object make one fetch (moka's `try_get_with` is single-flight).
//! - Evicting an entry deletes its file; a file without an entry is adopted at open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::error::{Result, StorageError};
use crate::manifest::ObjectId;
use crate::store::Store;

/// A size-bounded cache of content-addressed objects.
#[derive(Debug)]
pub struct ObjectCache {
    dir: PathBuf,
    index: Cache<ObjectId, u64>,
    store: Store,
}

impl ObjectCache {
    /// Opens the cache in `dir`, adopting the objects already there.
    pub fn open(dir: &Path, capacity_bytes: u64, store: Store) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let evict_dir = dir.to_path_buf();
        let index = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_: &ObjectId, size: &u64| (*size).min(u32::MAX as u64) as u32)
            .eviction_listener(move |id: Arc<ObjectId>, _, cause| {
                if cause != RemovalCause::Replaced {
                    let _ = std::fs::remove_file(evict_dir.join(id.to_hex()));
                }
            })
            .build();
        let cache = Self {
            dir: dir.to_path_buf(),
            index,
            store,
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(parse_hex) else {
                let _ = std::fs::remove_file(entry.path());
                continue;
            };
            futures::executor::block_on(cache.index.insert(id, entry.metadata()?.len()));
        }
        Ok(cache)
    }

    fn path(&self, id: &ObjectId) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    /// Object `id`, from disk or fetched from the store. `database` and `snapshot` name what
    /// needed it, for the error when it is missing or corrupt.
    pub async fn get(&self, id: ObjectId, database: &str, snapshot: u64) -> Result<Bytes> {
        if self.index.get(&id).await.is_some() {
            // A plain read: a hop to tokio's blocking pool per 256 KiB block costs more than
            // the read itself, and storage futures run on blocking threads (`block_on`).
            if let Ok(bytes) = std::fs::read(self.path(&id))
                && ObjectId::of(&bytes) == id
            {
                self.count_hit(bytes.len());
                return Ok(bytes.into());
            }
            self.index.invalidate(&id).await;
        }
        let fetched = Arc::new(parking_lot::Mutex::new(None));
        let slot = Arc::clone(&fetched);
        self.index
            .try_get_with(id, async move {
                let bytes = self.fetch(id, database, snapshot).await?;
                self.store.stats().cache_misses.fetch_add(1, Ordering::Relaxed);
                let len = bytes.len() as u64;
                *slot.lock() = Some(bytes);
                Ok::<_, StorageError>(len)
            })
            .await
            .map_err(StorageError::Shared)?;
        if let Some(bytes) = fetched.lock().take() {
            return Ok(bytes);
        }
        // Another caller fetched it: read what it wrote.
        match tokio::fs::read(self.path(&id)).await {
            Ok(bytes) if ObjectId::of(&bytes) == id => {
                self.count_hit(bytes.len());
                Ok(bytes.into())
            }
            _ => self.fetch(id, database, snapshot).await,
        }
    }

    fn count_hit(&self, bytes: usize) {
        let stats = self.store.stats();
        stats.cache_hits.fetch_add(1, Ordering::Relaxed);
        stats.cache_hit_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    async fn fetch(&self, id: ObjectId, database: &str, snapshot: u64) -> Result<Bytes> {
        let bytes = self.store.get(&Store::object_key(&id)).await?.ok_or_else(|| {
            StorageError::corrupt(
                database,
                snapshot,
                format!("object {} is missing from the store", id.to_hex()),
            )
        })?;
        if ObjectId::of(&bytes) != id {
            return Err(StorageError::corrupt(
                database,
                snapshot,
                format!("object {} does not match its hash", id.to_hex()),
            ));
        }
        let tmp = self.dir.join(format!(".{}.{}", id.to_hex(), rand::random::<u32>()));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, self.path(&id)).await?;
        Ok(bytes)
    }

    /// Bytes the cache holds (after pending evictions run).
    pub async fn weighted_size(&self) -> u64 {
        self.index.run_pending_tasks().await;
        self.index.weighted_size()
    }

    /// Forgets everything (benchmarks measure cold reads this way).
    pub async fn clear(&self) {
        self.index.invalidate_all();
        self.index.run_pending_tasks().await;
    }

    /// [`ObjectCache::clear`] from synchronous code.
    pub fn clear_blocking(&self) {
        crate::block_on(self.clear());
    }
}

fn parse_hex(s: &str) -> Option<ObjectId> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(ObjectId(out))
}
