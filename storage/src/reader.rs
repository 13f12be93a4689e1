//! Reading snapshots: listing and choosing them, resolving a manifest chain into a
//! [`FileState`], and materializing that state as a local DuckDB file (plus WAL).
//!
//! Invariants:
//! - A materialized file is private to whoever asked for it and never changes afterwards
//!   (callers pick a fresh path per snapshot).
//! - Materializing next to a previous snapshot's file copies it and fetches only the blocks
//!   whose hashes differ, so moving a reader from snapshot N to N+1 costs the blocks that changed.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use pond_proto::storage::{BlockRef, manifest::Body};

use crate::Storage;
use crate::error::{Result, StorageError};
use crate::layout;
use crate::manifest::{self, FileState, Manifest, ObjectId, PAGE_BLOCKS, SnapshotInfo};
use crate::store::Store;

/// Which snapshot of a database to read.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotSelector {
    Latest,
    Id(u64),
    /// The newest snapshot created at or before this time (ms since the epoch).
    AtOrBefore(i64),
    Name(String),
}

/// What materializing a snapshot cost.
#[derive(Debug, Clone, Default)]
pub struct MaterializeStats {
    /// Blocks written because the previous file did not have them.
    pub blocks_written: u64,
    /// Bytes written to the new file (blocks, header and WAL).
    pub bytes_written: u64,
}

/// Parallel object fetches while materializing.
const FETCH_CONCURRENCY: usize = 16;

impl Storage {
    /// The newest snapshot of `database`, if it has any.
    pub async fn latest_seq(&self, database: &str) -> Result<Option<u64>> {
        Ok(self.manifest_seqs(database).await?.last().copied())
    }

    /// The newest snapshot of `database`, found by probing upward from snapshot `known`
    /// (which exists): a reader moving forward reads a few manifests instead of listing all.
    pub async fn latest_after(&self, database: &str, known: u64) -> Result<u64> {
        let mut seq = known;
        loop {
            match self.manifest(database, seq + 1).await {
                Ok(_) => seq += 1,
                Err(StorageError::NoSnapshot { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        // Numbers have no gaps above the newest retained snapshot, but GC may have removed
        // `known + 1` itself if the reader is very old: then a listing settles it.
        if seq == known {
            return Ok(self.latest_seq(database).await?.unwrap_or(known).max(known));
        }
        Ok(seq)
    }

    /// Every snapshot number of `database`, ascending.
    pub async fn manifest_seqs(&self, database: &str) -> Result<Vec<u64>> {
        let mut seqs: Vec<u64> = self
            .store
            .list(&Store::manifests_prefix(database))
            .await?
            .iter()
            .filter_map(|m| m.location.filename()?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Snapshot `seq`'s manifest, verified.
    pub async fn manifest(&self, database: &str, seq: u64) -> Result<Manifest> {
        let key = (database.to_string(), seq);
        if let Some(m) = self.manifests.get(&key).await {
            return Ok(m);
        }
        let bytes = self
            .store
            .get(&Store::manifest_key(database, seq))
            .await?
            .ok_or_else(|| StorageError::NoSnapshot {
                database: database.to_string(),
                what: seq.to_string(),
            })?;
        let m = manifest::decode(database, seq, &bytes)?;
        self.manifests.insert(key, m.clone()).await;
        Ok(m)
    }

    /// Forgets a deleted manifest.
    pub(crate) async fn forget_manifest(&self, database: &str, seq: u64) {
        self.manifests.invalidate(&(database.to_string(), seq)).await;
    }

    /// The state of snapshot `seq` of `database`.
    pub async fn resolve(&self, database: &str, seq: u64) -> Result<FileState> {
        let m = self.manifest(database, seq).await?;
        self.resolve_from(m).await
    }

    pub(crate) async fn resolve_from(&self, m: Manifest) -> Result<FileState> {
        match &m.body {
            Some(Body::Full(_)) => {
                let mut state = FileState::default();
                manifest::apply(&mut state, &m)?;
                Ok(state)
            }
            Some(Body::Branch(b)) => Box::pin(self.resolve(&b.database_id, b.seq)).await,
            Some(Body::Delta(_)) => {
                let db = m.database_id.clone();
                if m.base_seq >= m.seq || m.seq - m.base_seq > 2 * manifest::FULL_EVERY {
                    return Err(StorageError::corrupt(
                        &db,
                        m.seq,
                        format!("bad base snapshot {}", m.base_seq),
                    ));
                }
                let chain: Vec<Manifest> = futures::stream::iter(m.base_seq..m.seq)
                    .map(|s| self.manifest(&db, s))
                    .buffered(FETCH_CONCURRENCY)
                    .try_collect()
                    .await?;
                let mut chain = chain.into_iter();
                let base = chain
                    .next()
                    .ok_or_else(|| StorageError::corrupt(&db, m.seq, "empty chain"))?;
                let mut state = match &base.body {
                    Some(Body::Delta(_)) | None => {
                        return Err(StorageError::corrupt(
                            &db,
                            m.seq,
                            format!("base snapshot {} is not a full or branch manifest", base.seq),
                        ));
                    }
                    _ => Box::pin(self.resolve_from(base)).await?,
                };
                for d in chain.chain(std::iter::once(m)) {
                    manifest::apply(&mut state, &d)?;
                }
                Ok(state)
            }
            None => Err(StorageError::corrupt(&m.database_id, m.seq, "manifest has no body")),
        }
    }

    /// Every snapshot of `database`, oldest first, with its total size.
    pub async fn snapshots(&self, database: &str) -> Result<Vec<SnapshotInfo>> {
        let seqs = self.manifest_seqs(database).await?;
        let manifests: Vec<Manifest> = futures::stream::iter(seqs)
            .map(|s| self.manifest(database, s))
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut state = FileState::default();
        let mut out = Vec::with_capacity(manifests.len());
        for m in manifests {
            let info = |state: &FileState, m: &Manifest| SnapshotInfo {
                seq: m.seq,
                name: (!m.name.is_empty()).then(|| m.name.clone()),
                created_ms: m.created_ms,
                bytes_added: m.bytes_added,
                total_bytes: state.total_bytes(),
            };
            match &m.body {
                Some(Body::Branch(b)) => state = Box::pin(self.resolve(&b.database_id, b.seq)).await?,
                _ => manifest::apply(&mut state, &m)?,
            }
            out.push(info(&state, &m));
        }
        Ok(out)
    }

    /// The snapshot number `selector` picks.
    pub async fn select(&self, database: &str, selector: &SnapshotSelector) -> Result<u64> {
        let none = |what: String| StorageError::NoSnapshot {
            database: database.to_string(),
            what,
        };
        match selector {
            SnapshotSelector::Latest => self.latest_seq(database).await?.ok_or_else(|| none("at all".into())),
            SnapshotSelector::Id(n) => {
                self.manifest(database, *n).await?;
                Ok(*n)
            }
            SnapshotSelector::AtOrBefore(ms) => self
                .snapshots(database)
                .await?
                .iter()
                .rev()
                .find(|s| s.created_ms <= *ms)
                .map(|s| s.seq)
                .ok_or_else(|| none(format!("at or before {ms} ms"))),
            SnapshotSelector::Name(name) => self
                .snapshots(database)
                .await?
                .iter()
                .rev()
                .find(|s| s.name.as_deref() == Some(name))
                .map(|s| s.seq)
                .ok_or_else(|| none(format!("named {name}"))),
        }
    }

    /// The block list of a state (its pages, fetched through the cache).
    pub async fn blocks(&self, database: &str, seq: u64, state: &FileState) -> Result<Vec<BlockRef>> {
        let n = layout::block_count(state.file_len);
        // Owned items: a stream over borrowed ones is not `Send` for every lifetime.
        let wanted: Vec<(u64, ObjectId)> = state.pages.iter().map(|(i, id)| (*i, *id)).collect();
        let pages: Vec<(u64, bytes::Bytes)> = futures::stream::iter(wanted)
            .map(|(i, id)| async move { Ok::<_, StorageError>((i, self.cache.get(id, database, seq).await?)) })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut blocks = Vec::with_capacity(n as usize);
        for (i, bytes) in pages {
            if i * PAGE_BLOCKS != blocks.len() as u64 {
                return Err(StorageError::corrupt(
                    database,
                    seq,
                    format!("block-map page {i} is out of place"),
                ));
            }
            blocks.extend(manifest::decode_page(database, seq, &bytes)?.blocks);
        }
        if blocks.len() as u64 != n {
            return Err(StorageError::corrupt(
                database,
                seq,
                format!("block map has {} blocks, the file needs {n}", blocks.len()),
            ));
        }
        Ok(blocks)
    }

    /// Writes snapshot `seq` of `database` (state `state`) to `dest` and its WAL next to it.
    /// With `previous` (a materialized file and its block list), copies it first and writes
    /// only the blocks that differ. Returns the block list and what it cost.
    pub async fn materialize(
        &self,
        database: &str,
        seq: u64,
        state: &FileState,
        dest: &Path,
        previous: Option<(&Path, &[BlockRef])>,
    ) -> Result<(Vec<BlockRef>, MaterializeStats)> {
        let blocks = self.blocks(database, seq, state).await?;
        let mut stats = MaterializeStats::default();
        let wal = layout::wal_path(dest);
        let _ = std::fs::remove_file(&wal);
        if state.file_len == 0 {
            // No file yet: DuckDB creates it on attach.
            let _ = std::fs::remove_file(dest);
            return Ok((blocks, stats));
        }
        let same: Vec<bool> = match previous {
            Some((prev, prev_blocks)) => {
                std::fs::copy(prev, dest)?;
                (0..blocks.len())
                    .map(|i| prev_blocks.get(i).is_some_and(|p| p.hash == blocks[i].hash))
                    .collect()
            }
            None => {
                let _ = std::fs::remove_file(dest);
                vec![false; blocks.len()]
            }
        };
        let file = OpenOptions::new().create(true).write(true).truncate(false).open(dest)?;
        file.set_len(state.file_len)?;
        if let Some(h) = state.header {
            let bytes = self.cache.get(h, database, seq).await?;
            file.write_all_at(&bytes, 0)?;
            stats.bytes_written += bytes.len() as u64;
        }
        let wanted: Vec<(usize, Option<ObjectId>)> = (0..blocks.len())
            .filter(|i| !same[*i])
            .map(|i| (i, ObjectId::from_slice(&blocks[i].hash)))
            .collect();
        let mut fetches = futures::stream::iter(wanted)
            .map(|(i, id)| async move {
                let id = id.ok_or_else(|| StorageError::corrupt(database, seq, "a block hash is not 32 bytes"))?;
                Ok::<_, StorageError>((i, self.cache.get(id, database, seq).await?))
            })
            .buffer_unordered(FETCH_CONCURRENCY);
        while let Some(r) = fetches.next().await {
            let (i, bytes) = r?;
            let (start, end) = layout::block_range(i as u64, state.file_len);
            if bytes.len() as u64 != end - start {
                return Err(StorageError::corrupt(
                    database,
                    seq,
                    format!("block {i} has the wrong length"),
                ));
            }
            file.write_all_at(&bytes, start)?;
            stats.blocks_written += 1;
            stats.bytes_written += bytes.len() as u64;
        }
        drop(fetches);
        if !state.wal.is_empty() {
            let mut out = Vec::with_capacity(state.wal_len() as usize);
            for (id, len) in &state.wal {
                let bytes = self.cache.get(*id, database, seq).await?;
                if bytes.len() as u64 != *len {
                    return Err(StorageError::corrupt(
                        database,
                        seq,
                        "a WAL segment has the wrong length",
                    ));
                }
                out.extend_from_slice(&bytes);
            }
            stats.bytes_written += out.len() as u64;
            std::fs::write(&wal, out)?;
        }
        Ok((blocks, stats))
    }
}
