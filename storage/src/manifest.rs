//! Manifests: what snapshot `seq` of a database is.
//!
//! A manifest is stored as `MAGIC || blake3(body) || body`, where `body` is a protobuf
//! [`Manifest`]. A manifest whose checksum, database or sequence number disagrees with its key
//! is corruption, reported with the database and snapshot it claims to be.
//!
//! Invariants:
//! - Manifests of a database are numbered 1, 2, 3, ... without gaps; each is written once.
//! - A delta's `base_seq` names a full or branch manifest of the same database at most
//!   [`FULL_EVERY`] snapshots back, so resolving a state reads a bounded chain.
//! - A manifest's `created_ms` is its storage's clock ([`crate::Storage::clock`]) when it was
//!   written: retention and time travel compare against it.

use std::collections::BTreeMap;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use pond_proto::storage::{self as pb, manifest::Body};
use prost::Message;

use crate::error::{Result, StorageError};
use crate::layout;

pub use pb::Manifest;

const MAGIC: &[u8; 8] = b"PONDMNF1";

/// Blocks per page of the block map: 256 blocks of 256 KiB, 64 MiB of database per page.
pub const PAGE_BLOCKS: u64 = 256;

/// A full state is written every this many snapshots, bounding the delta chain.
pub const FULL_EVERY: u64 = 64;

/// The blake3 hash naming a content-addressed object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

/// The logical state of a database file at one snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileState {
    /// Length of the main file; 0 for a database that has no file yet.
    pub file_len: u64,
    /// The header region's object.
    pub header: Option<ObjectId>,
    /// Block-map pages by index.
    pub pages: BTreeMap<u64, ObjectId>,
    /// WAL segments, in order, since the last checkpoint.
    pub wal: Vec<(ObjectId, u64)>,
}

impl FileState {
    /// Bytes of WAL the snapshot carries.
    pub fn wal_len(&self) -> u64 {
        self.wal.iter().map(|(_, n)| n).sum()
    }

    /// Main file plus WAL.
    pub fn total_bytes(&self) -> u64 {
        self.file_len + self.wal_len()
    }

    fn apply(&mut self, d: &pb::Delta, database: &str, seq: u64) -> Result<()> {
        self.file_len = d.file_len;
        if !d.header.is_empty() {
            self.header = Some(id(&d.header, database, seq)?);
        }
        for p in &d.pages {
            self.pages.insert(p.index, id(&p.hash, database, seq)?);
        }
        let pages = layout::block_count(self.file_len).div_ceil(PAGE_BLOCKS);
        self.pages.retain(|i, _| *i < pages);
        if d.wal_reset {
            self.wal.clear();
        }
        for w in &d.wal {
            self.wal.push((id(&w.hash, database, seq)?, w.len));
        }
        Ok(())
    }

    pub(crate) fn from_proto(s: &pb::State, database: &str, seq: u64) -> Result<Self> {
        let mut state = Self {
            file_len: s.file_len,
            header: if s.header.is_empty() {
                None
            } else {
                Some(id(&s.header, database, seq)?)
            },
            ..Default::default()
        };
        for p in &s.pages {
            state.pages.insert(p.index, id(&p.hash, database, seq)?);
        }
        for w in &s.wal {
            state.wal.push((id(&w.hash, database, seq)?, w.len));
        }
        Ok(state)
    }

    pub(crate) fn to_proto(&self) -> pb::State {
        pb::State {
            file_len: self.file_len,
            header: self.header.map(|h| h.0.to_vec()).unwrap_or_default(),
            pages: self
                .pages
                .iter()
                .map(|(i, h)| pb::PageRef {
                    index: *i,
                    hash: h.0.to_vec(),
                })
                .collect(),
            wal: self.wal.iter().map(|(h, n)| segment(h, *n)).collect(),
        }
    }

    /// Every object the state names directly (pages name blocks in turn).
    pub(crate) fn objects(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.header
            .iter()
            .copied()
            .chain(self.pages.values().copied())
            .chain(self.wal.iter().map(|(h, _)| *h))
    }
}

pub(crate) fn segment(h: &ObjectId, len: u64) -> pb::WalSegment {
    pb::WalSegment {
        hash: h.0.to_vec(),
        len,
    }
}

fn id(bytes: &[u8], database: &str, seq: u64) -> Result<ObjectId> {
    ObjectId::from_slice(bytes).ok_or_else(|| StorageError::corrupt(database, seq, "an object hash is not 32 bytes"))
}

/// Sets `m.bytes_added` to `uploaded` plus the manifest's own encoded size, and encodes it.
/// (The size counts itself, so it is settled by re-encoding until it stops changing.)
pub(crate) fn seal(m: &mut Manifest, uploaded: u64) -> Bytes {
    let mut len = encode(m).len() as u64;
    loop {
        m.bytes_added = uploaded + len;
        let bytes = encode(m);
        if bytes.len() as u64 == len {
            return bytes;
        }
        len = bytes.len() as u64;
    }
}

/// Encodes a manifest with its checksum.
pub(crate) fn encode(m: &Manifest) -> Bytes {
    let body = m.encode_to_vec();
    let mut out = BytesMut::with_capacity(MAGIC.len() + 32 + body.len());
    out.put_slice(MAGIC);
    out.put_slice(blake3::hash(&body).as_bytes());
    out.put_slice(&body);
    out.freeze()
}

/// Decodes and verifies the manifest stored for snapshot `seq` of `database`.
pub(crate) fn decode(database: &str, seq: u64, bytes: &[u8]) -> Result<Manifest> {
    let corrupt = |d: &str| StorageError::corrupt(database, seq, format!("manifest {d}"));
    if bytes.len() < MAGIC.len() + 32 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("is not a Pond manifest"));
    }
    let (sum, body) = bytes[MAGIC.len()..].split_at(32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(corrupt("fails its checksum"));
    }
    let m = Manifest::decode(body).map_err(|e| corrupt(&format!("does not decode: {e}")))?;
    if m.database_id != database || m.seq != seq {
        return Err(corrupt(&format!(
            "claims to be snapshot {} of database {}",
            m.seq, m.database_id
        )));
    }
    if m.body.is_none() {
        return Err(corrupt("has no body"));
    }
    Ok(m)
}

/// Applies manifest `m` (a delta or full state) to `state`. Branches are resolved by the caller.
pub(crate) fn apply(state: &mut FileState, m: &Manifest) -> Result<()> {
    match &m.body {
        Some(Body::Full(s)) => *state = FileState::from_proto(s, &m.database_id, m.seq)?,
        Some(Body::Delta(d)) => state.apply(d, &m.database_id, m.seq)?,
        Some(Body::Branch(_)) | None => {
            return Err(StorageError::corrupt(
                &m.database_id,
                m.seq,
                "a branch manifest in the middle of a delta chain",
            ));
        }
    }
    Ok(())
}

/// One row of `pond_information_schema.database_snapshots`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub seq: u64,
    pub name: Option<String>,
    pub created_ms: i64,
    pub bytes_added: u64,
    /// Main file plus WAL at this snapshot (filled when the state was resolved).
    pub total_bytes: u64,
}

/// The page objects of a block list.
pub(crate) fn encode_page(blocks: &[pb::BlockRef]) -> Bytes {
    pb::Page {
        blocks: blocks.to_vec(),
    }
    .encode_to_vec()
    .into()
}

pub(crate) fn decode_page(database: &str, seq: u64, bytes: &[u8]) -> Result<pb::Page> {
    pb::Page::decode(bytes)
        .map_err(|e| StorageError::corrupt(database, seq, format!("a block-map page does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            database_id: "db1".into(),
            seq: 7,
            epoch: 2,
            created_ms: 1,
            name: String::new(),
            bytes_added: 10,
            base_seq: 7,
            writer_id: "w".into(),
            body: Some(Body::Full(pb::State::default())),
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let bytes = encode(&manifest());
        assert_eq!(decode("db1", 7, &bytes).unwrap(), manifest());
        let mut bad = bytes.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        let err = decode("db1", 7, &bad).unwrap_err().to_string();
        assert!(
            err.contains("db1") && err.contains("snapshot 7") && err.contains("checksum"),
            "{err}"
        );
        let err = decode("db2", 7, &bytes).unwrap_err().to_string();
        assert!(err.contains("claims to be snapshot 7 of database db1"), "{err}");
        assert!(decode("db1", 7, b"garbage").is_err());
    }

    #[test]
    fn deltas_drop_pages_past_the_end_and_reset_the_wal() {
        let h = ObjectId::of(b"x");
        let mut s = FileState {
            file_len: layout::HEADER_LEN + 300 * layout::BLOCK_LEN,
            header: Some(h),
            pages: [(0, h), (1, h)].into(),
            wal: vec![(h, 5)],
        };
        let d = pb::Delta {
            file_len: layout::HEADER_LEN + 10 * layout::BLOCK_LEN,
            wal_reset: true,
            wal: vec![segment(&h, 3)],
            ..Default::default()
        };
        s.apply(&d, "db", 1).unwrap();
        assert_eq!(s.pages.len(), 1);
        assert_eq!(s.wal_len(), 3);
    }
}
