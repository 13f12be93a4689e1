//! The writer: turns what DuckDB committed to a local database file into a snapshot.
//!
//! After each commit, [`DatabaseWriter::sync`] compares the file with the last snapshot: the
//! WAL bytes appended since (or the whole WAL, after a checkpoint rewrote the header), and, when
//! inotify saw the main file written, the blocks whose DuckDB checksum changed. It uploads those
//! objects and the block-map pages that name them, then commits the manifest.
//!
//! Invariants:
//! - The caller guarantees DuckDB is not writing the file during `sync` (the duckling's write
//!   gate), so what is read is what DuckDB committed.
//! - In-memory state moves forward only after the manifest is stored; a failed commit leaves
//!   the writer at the last durable snapshot and makes the next `sync` rescan everything.
//! - Opening a writer makes the local file exactly the latest snapshot (reusing it when it
//!   already is, which is checked: header, block checksums, WAL bytes) and fences older writers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use pond_proto::storage::{self as pb, BlockRef, manifest::Body};
use tracing::{Instrument, debug, warn};

use crate::Storage;
use crate::error::{Result, StorageError};
use crate::layout;
use crate::manifest::{self, FULL_EVERY, FileState, Manifest, ObjectId, PAGE_BLOCKS};
use crate::store::Store;
use crate::watch::ModifyWatch;

/// What one commit stored.
#[derive(Debug, Clone, Default)]
pub struct CommitStats {
    pub seq: u64,
    /// Bytes uploaded: blocks, header, pages, WAL and the manifest.
    pub bytes: u64,
    pub blocks: u64,
    pub wal_bytes: u64,
}

/// Retries of a commit whose store calls failed transiently.
const COMMIT_ATTEMPTS: u32 = 4;

/// The single writer of one database.
#[derive(Debug)]
pub struct DatabaseWriter {
    storage: Storage,
    database: String,
    path: PathBuf,
    epoch: u64,
    /// The newest durable snapshot (0: none yet).
    seq: u64,
    /// The full or branch manifest the current delta chain starts from.
    base_seq: u64,
    state: FileState,
    blocks: Vec<BlockRef>,
    header: Vec<u8>,
    watch: Option<ModifyWatch>,
    rescan: bool,
    writer_id: String,
}

/// What changed in the local file since the last snapshot.
#[derive(Default)]
struct Capture {
    file_len: u64,
    header: Option<(Vec<u8>, ObjectId)>,
    blocks: Vec<(u64, Bytes, BlockRef)>,
    wal_reset: bool,
    wal: Option<(Bytes, ObjectId)>,
    /// Whether the main file had to be scanned (inotify saw it written).
    scanned: bool,
}

fn read_wal(path: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

fn len_or_zero(path: &Path) -> std::io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

impl DatabaseWriter {
    /// Opens `database` for writing with its working copy at `path`, which nothing else may
    /// have open. A database without snapshots starts from whatever is at `path` (nothing, or
    /// a file from before it had storage): the first `sync` stores it whole.
    pub async fn open(storage: &Storage, database: &str, path: &Path) -> Result<Self> {
        let mut w = Self {
            storage: storage.clone(),
            database: database.to_string(),
            path: path.to_path_buf(),
            epoch: 1,
            seq: 0,
            base_seq: 0,
            state: FileState::default(),
            blocks: Vec::new(),
            header: Vec::new(),
            watch: None,
            rescan: true,
            writer_id: format!("{:016x}", rand::random::<u64>()),
        };
        let Some(seq) = storage.latest_seq(database).await? else {
            w.watch_if_present();
            return Ok(w);
        };
        let m = storage.manifest(database, seq).await?;
        w.epoch = m.epoch + 1;
        w.seq = seq;
        w.base_seq = match m.body {
            Some(Body::Delta(_)) => m.base_seq,
            _ => seq,
        };
        w.state = storage.resolve_from(m).await?;
        w.blocks = storage.blocks(database, seq, &w.state).await?;
        if !w.local_matches()? {
            debug!(database, seq, "rebuilding the working copy from the store");
            // Built beside, then renamed: a crash mid-rebuild leaves a copy that fails the
            // check above, never a torn one that passes it.
            let tmp = path.with_extension("rebuild");
            storage.materialize(database, seq, &w.state, &tmp, None).await?;
            let _ = std::fs::remove_file(layout::wal_path(path));
            if w.state.file_len > 0 {
                std::fs::rename(&tmp, path)?;
            } else {
                let _ = std::fs::remove_file(path);
            }
            if w.state.wal_len() > 0 {
                std::fs::rename(layout::wal_path(&tmp), layout::wal_path(path))?;
            }
        }
        w.header = match std::fs::File::open(path) {
            Ok(f) => layout::read_header(&f, w.state.file_len)?,
            Err(_) => Vec::new(),
        };
        w.watch_if_present();
        w.rescan = false;
        // Fence: a snapshot with our epoch, so an older writer's next commit fails.
        let state = w.state.clone();
        w.commit_manifest(Body::Delta(w.empty_delta()), &state, String::new(), 0)
            .await?;
        Ok(w)
    }

    /// The database id.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The database it writes.
    pub fn database_id(&self) -> &str {
        &self.database
    }

    /// The newest durable snapshot.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The state of the newest durable snapshot.
    pub fn state(&self) -> &FileState {
        &self.state
    }

    fn watch_if_present(&mut self) {
        if self.watch.is_none() && self.path.exists() {
            self.watch = Some(ModifyWatch::new(&self.path));
            self.rescan = true;
        }
    }

    fn local_matches(&self) -> Result<bool> {
        let wal_path = layout::wal_path(&self.path);
        if self.state.file_len == 0 {
            return Ok(!self.path.exists() && !wal_path.exists());
        }
        let Ok(file) = std::fs::File::open(&self.path) else {
            return Ok(false);
        };
        if file.metadata()?.len() != self.state.file_len {
            return Ok(false);
        }
        if Some(ObjectId::of(&layout::read_header(&file, self.state.file_len)?)) != self.state.header {
            return Ok(false);
        }
        let sums = layout::scan(&file, self.state.file_len)?;
        if sums.len() != self.blocks.len() || sums.iter().zip(&self.blocks).any(|(s, b)| *s != b.duckdb_checksum) {
            return Ok(false);
        }
        if len_or_zero(&wal_path)? != self.state.wal_len() {
            return Ok(false);
        }
        if self.state.wal.is_empty() {
            return Ok(true);
        }
        let wal = read_wal(&wal_path, 0)?;
        let mut at = 0usize;
        for (id, len) in &self.state.wal {
            let end = at + *len as usize;
            if wal.get(at..end).map(ObjectId::of) != Some(*id) {
                return Ok(false);
            }
            at = end;
        }
        Ok(true)
    }

    fn capture(&mut self) -> Result<Capture> {
        self.watch_if_present();
        let file_len = len_or_zero(&self.path)?;
        let mut c = Capture {
            file_len,
            ..Default::default()
        };
        let modified = std::mem::take(&mut self.rescan)
            | self.watch.as_ref().is_none_or(|w| w.take_modified())
            | (file_len != self.state.file_len);
        let wal_path = layout::wal_path(&self.path);
        let wal_len = len_or_zero(&wal_path)?;
        let have = self.state.wal_len();
        if !modified && wal_len == have {
            // The common case for a statement that wrote nothing: two stats and one read of
            // the inotify queue. (A checkpoint rewrites the header, which inotify sees.)
            return Ok(c);
        }
        c.scanned = modified;
        if file_len > 0 {
            let file = std::fs::File::open(&self.path)?;
            let header = layout::read_header(&file, file_len)?;
            if header != self.header {
                let id = ObjectId::of(&header);
                c.header = Some((header, id));
            }
            if modified || c.header.is_some() {
                for (i, sum) in layout::scan(&file, file_len)?.into_iter().enumerate() {
                    if self.blocks.get(i).is_some_and(|b| b.duckdb_checksum == sum) {
                        continue;
                    }
                    let bytes = layout::read_block(&file, i as u64, file_len)?;
                    let r = BlockRef {
                        hash: ObjectId::of(&bytes).0.to_vec(),
                        duckdb_checksum: layout::checksum_of(&bytes),
                    };
                    c.blocks.push((i as u64, bytes.into(), r));
                }
            }
        }
        c.wal_reset = c.header.is_some() || wal_len < have;
        let from = if c.wal_reset { 0 } else { have };
        if wal_len > from {
            let bytes = read_wal(&wal_path, from)?;
            let id = ObjectId::of(&bytes);
            c.wal = Some((bytes.into(), id));
        }
        Ok(c)
    }

    fn empty_delta(&self) -> pb::Delta {
        pb::Delta {
            file_len: self.state.file_len,
            ..Default::default()
        }
    }

    /// Stores what DuckDB committed since the last snapshot as a new snapshot. Returns `None`
    /// when nothing changed. Call it with DuckDB quiet on this file (after a commit, under the
    /// duckling's write gate).
    pub async fn sync(&mut self) -> Result<Option<CommitStats>> {
        let c = match self.capture() {
            Ok(c) => c,
            Err(e) => {
                self.rescan = true;
                return Err(e);
            }
        };
        let unchanged = c.file_len == self.state.file_len
            && c.header.is_none()
            && c.blocks.is_empty()
            && c.wal.is_none()
            && (!c.wal_reset || self.state.wal.is_empty());
        if unchanged && self.seq > 0 {
            return Ok(None);
        }
        // Exported with `--otlp-endpoint`, under the statement that committed.
        let span = tracing::info_span!(
            target: "pond_trace",
            "storage.commit",
            pond.database_id = %self.database,
            pond.snapshot = tracing::field::Empty,
            pond.bytes_uploaded = tracing::field::Empty,
            pond.blocks = tracing::field::Empty,
            pond.attempts = tracing::field::Empty,
        );
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            attempt += 1;
            match self.commit_capture(&c).instrument(span.clone()).await {
                Ok(stats) => {
                    self.storage.store().stats().commits.observe(started.elapsed());
                    // As i64: OpenTelemetry has no unsigned integers.
                    span.record("pond.snapshot", stats.seq as i64);
                    span.record("pond.bytes_uploaded", stats.bytes as i64);
                    span.record("pond.blocks", stats.blocks as i64);
                    span.record("pond.attempts", attempt as i64);
                    debug!(
                        database = self.database,
                        seq = stats.seq,
                        bytes = stats.bytes,
                        blocks = stats.blocks,
                        scanned = c.scanned,
                        "snapshot committed"
                    );
                    return Ok(Some(stats));
                }
                Err(e) if e.is_transient() && attempt < COMMIT_ATTEMPTS => {
                    warn!(database = self.database, attempt, error = %e, "snapshot commit failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << (2 * attempt))).await;
                }
                Err(e) => {
                    self.rescan = true;
                    return Err(e);
                }
            }
        }
    }

    async fn commit_capture(&mut self, c: &Capture) -> Result<CommitStats> {
        let store = self.storage.store().clone();
        let mut uploads: Vec<(ObjectId, Bytes)> = Vec::new();
        let n = layout::block_count(c.file_len) as usize;
        let mut touched: std::collections::BTreeSet<u64> = Default::default();
        // The block list is only rebuilt when blocks changed: a WAL-only commit (the common
        // case) must not cost O(database size).
        let new_blocks = if c.blocks.is_empty() && n == self.blocks.len() {
            None
        } else {
            let mut blocks = self.blocks.clone();
            blocks.truncate(n);
            for (i, bytes, r) in &c.blocks {
                let i = *i as usize;
                if i >= blocks.len() {
                    blocks.resize(i + 1, BlockRef::default());
                }
                blocks[i] = r.clone();
                touched.insert(i as u64 / PAGE_BLOCKS);
                uploads.push((ObjectId::of(bytes), bytes.clone()));
            }
            if blocks.len() != n {
                return Err(StorageError::corrupt(
                    &self.database,
                    self.seq + 1,
                    "captured block map has holes",
                ));
            }
            if n != self.blocks.len() && n > 0 {
                touched.insert((n as u64 - 1) / PAGE_BLOCKS);
            }
            Some(blocks)
        };
        let blocks = new_blocks.as_deref().unwrap_or(&self.blocks);
        let mut state = self.state.clone();
        state.file_len = c.file_len;
        let pages = (n as u64).div_ceil(PAGE_BLOCKS);
        state.pages.retain(|i, _| *i < pages);
        let mut delta = pb::Delta {
            file_len: c.file_len,
            wal_reset: c.wal_reset,
            ..Default::default()
        };
        for p in touched {
            let start = (p * PAGE_BLOCKS) as usize;
            let end = (start + PAGE_BLOCKS as usize).min(n);
            let bytes = manifest::encode_page(&blocks[start..end]);
            let id = ObjectId::of(&bytes);
            state.pages.insert(p, id);
            delta.pages.push(pb::PageRef {
                index: p,
                hash: id.0.to_vec(),
            });
            uploads.push((id, bytes));
        }
        if let Some((bytes, id)) = &c.header {
            state.header = Some(*id);
            delta.header = id.0.to_vec();
            uploads.push((*id, Bytes::copy_from_slice(bytes)));
        }
        if c.wal_reset {
            state.wal.clear();
        }
        let mut wal_bytes = 0;
        if let Some((bytes, id)) = &c.wal {
            state.wal.push((*id, bytes.len() as u64));
            delta.wal.push(manifest::segment(id, bytes.len() as u64));
            wal_bytes = bytes.len() as u64;
            uploads.push((*id, bytes.clone()));
        }
        // Bytes the durable snapshot already names are in the store (checked when they went
        // up) and kept from GC by the newest manifest. Sending them again could only replace
        // good bytes with whatever a faulty path delivers, on a server that checks nothing.
        let mut skip: HashSet<ObjectId> = self.state.objects().collect();
        if !c.blocks.is_empty() {
            skip.extend(self.blocks.iter().filter_map(|b| ObjectId::from_slice(&b.hash)));
        }
        uploads.retain(|(id, _)| skip.insert(*id));
        let uploaded: u64 = uploads.iter().map(|(_, b)| b.len() as u64).sum();
        futures::future::try_join_all(uploads.into_iter().map(|(id, bytes)| {
            let store = store.clone();
            async move { store.put(&Store::object_key(&id), bytes).await }
        }))
        .await?;
        let bytes = self
            .commit_manifest(Body::Delta(delta), &state, String::new(), uploaded)
            .await?;
        let seq = self.seq;
        self.state = state;
        if let Some(blocks) = new_blocks {
            self.blocks = blocks;
        }
        if let Some((header, _)) = &c.header {
            self.header = header.clone();
        }
        Ok(CommitStats {
            seq,
            bytes,
            blocks: c.blocks.len() as u64,
            wal_bytes,
        })
    }

    /// Writes manifest `seq + 1` with `body`, whose resulting state is `state` (a delta
    /// becomes a full state every [`FULL_EVERY`] snapshots); returns the bytes it added.
    async fn commit_manifest(&mut self, body: Body, state: &FileState, name: String, uploaded: u64) -> Result<u64> {
        let seq = self.seq + 1;
        let body = match body {
            Body::Delta(_) if seq == 1 || seq - self.base_seq >= FULL_EVERY => Body::Full(state.to_proto()),
            other => other,
        };
        let base_seq = match body {
            Body::Delta(_) => self.base_seq,
            _ => seq,
        };
        let mut m = Manifest {
            database_id: self.database.clone(),
            seq,
            epoch: self.epoch,
            created_ms: self.storage.clock().unix_ms(),
            name,
            bytes_added: uploaded,
            base_seq,
            writer_id: self.writer_id.clone(),
            body: Some(body),
        };
        let bytes = manifest::seal(&mut m, uploaded);
        let total = m.bytes_added;
        let key = Store::manifest_key(&self.database, seq);
        if !self.storage.store().put_if_absent(&key, bytes).await? {
            let theirs = self.storage.manifest(&self.database, seq).await?;
            // Our own earlier attempt, stored although its answer was lost: that is success.
            let ours = theirs.writer_id == m.writer_id && theirs.body == m.body && theirs.name == m.name;
            if !ours {
                return Err(StorageError::Fenced {
                    database: self.database.clone(),
                    seq,
                    ours: self.epoch,
                    theirs: theirs.epoch,
                });
            }
        }
        self.seq = seq;
        self.base_seq = base_seq;
        Ok(total)
    }

    /// Syncs, then cuts snapshot `name` (kept until dropped). Returns its number.
    pub async fn snapshot(&mut self, name: &str) -> Result<u64> {
        self.sync().await?;
        let state = self.state.clone();
        self.commit_manifest(Body::Delta(self.empty_delta()), &state, name.to_string(), 0)
            .await?;
        Ok(self.seq)
    }

    /// Creates database `database` as a zero-copy clone of `source` at snapshot `seq`: one
    /// small manifest, whatever the size. Returns the bytes written.
    pub async fn branch(storage: &Storage, database: &str, source: &str, seq: u64) -> Result<u64> {
        storage.manifest(source, seq).await?;
        let mut m = Manifest {
            database_id: database.to_string(),
            seq: 1,
            epoch: 1,
            created_ms: storage.clock().unix_ms(),
            name: String::new(),
            bytes_added: 0,
            base_seq: 1,
            writer_id: String::new(),
            body: Some(Body::Branch(pb::Branch {
                database_id: source.to_string(),
                seq,
            })),
        };
        let bytes = manifest::seal(&mut m, 0);
        let n = m.bytes_added;
        if !storage
            .store()
            .put_if_absent(&Store::manifest_key(database, 1), bytes)
            .await?
        {
            return Err(StorageError::corrupt(
                database,
                1,
                "a new clone's first snapshot already exists",
            ));
        }
        Ok(n)
    }
}
