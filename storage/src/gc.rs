//! Retention and garbage collection.
//!
//! A snapshot is *retained* when it is its database's newest, has a name, is younger than
//! the database's retention, or is pinned by an open reader. GC keeps every manifest a
//! retained snapshot's chain needs (its delta chain back to a full manifest, and the source
//! snapshots of branches), and every object a retained snapshot's state names. It deletes the
//! rest, but only what is older than the grace period: a commit uploads its objects before its
//! manifest, and those objects must survive until the manifest lands.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use pond_proto::storage::manifest::Body;

use crate::Storage;
use crate::error::Result;
use crate::manifest::{ObjectId, now_ms};
use crate::store::Store;

/// A database GC must keep, with its retention.
#[derive(Debug, Clone)]
pub struct Retention {
    pub database: String,
    pub retention: Duration,
}

/// What a GC run removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    pub manifests_deleted: u64,
    pub objects_deleted: u64,
    pub bytes_deleted: u64,
}

impl Storage {
    /// Deletes snapshots past retention and objects nothing retained reaches. Databases not in
    /// `keep` (purged ones) lose every snapshot no retained clone needs. `pinned` snapshots are
    /// kept whatever their age.
    pub async fn collect_garbage(
        &self,
        keep: &[Retention],
        pinned: &[(String, u64)],
        grace: Duration,
    ) -> Result<GcReport> {
        let now = now_ms();
        let grace_ms = grace.as_millis() as i64;
        let mut roots: Vec<(String, u64)> = pinned.to_vec();
        // Manifests kept without keeping their objects: each epoch's first (its fence), so a
        // writer stale for longer than retention still finds its next number taken.
        let mut needed: HashSet<(String, u64)> = HashSet::new();
        for k in keep {
            let seqs = self.manifest_seqs(&k.database).await?;
            let Some(latest) = seqs.last().copied() else { continue };
            let horizon = now - k.retention.as_millis() as i64;
            let mut epoch = None;
            for seq in seqs {
                let m = self.manifest(&k.database, seq).await?;
                if seq == latest || !m.name.is_empty() || m.created_ms >= horizon {
                    roots.push((k.database.clone(), seq));
                }
                if epoch != Some(m.epoch) {
                    needed.insert((k.database.clone(), seq));
                    epoch = Some(m.epoch);
                }
            }
        }

        // Manifests the roots' chains need, following branches into their sources. Every
        // snapshot of a kept chain stays readable, so its objects are live too.
        let mut live: HashSet<ObjectId> = HashSet::new();
        let mut todo = roots;
        let mut resolved: HashSet<(String, u64)> = HashSet::new();
        while let Some((db, seq)) = todo.pop() {
            if !resolved.insert((db.clone(), seq)) {
                continue;
            }
            let m = self.manifest(&db, seq).await?;
            for s in m.base_seq.min(seq)..=seq {
                needed.insert((db.clone(), s));
                todo.push((db.clone(), s));
            }
            let base = if m.base_seq < seq {
                self.manifest(&db, m.base_seq).await?
            } else {
                m.clone()
            };
            if let Some(Body::Branch(b)) = &base.body {
                todo.push((b.database_id.clone(), b.seq));
            }
            let state = self.resolve_from(m).await?;
            live.extend(state.objects());
            for block in self.blocks(&db, seq, &state).await? {
                if let Some(id) = ObjectId::from_slice(&block.hash) {
                    live.insert(id);
                }
            }
        }

        let mut report = GcReport::default();
        let old = |meta: &object_store::ObjectMeta| now - meta.last_modified.timestamp_millis() > grace_ms;
        let databases: BTreeSet<String> = self
            .store
            .list(&Path::from("databases"))
            .await?
            .iter()
            .filter_map(|m| m.location.parts().nth(1).map(|p| p.as_ref().to_string()))
            .collect();
        for db in databases {
            for meta in self.store.list(&Store::manifests_prefix(&db)).await? {
                let Some(seq) = meta.location.filename().and_then(|f| f.parse::<u64>().ok()) else {
                    continue;
                };
                if !needed.contains(&(db.clone(), seq)) && old(&meta) {
                    self.store.delete(&meta.location).await?;
                    self.forget_manifest(&db, seq).await;
                    report.manifests_deleted += 1;
                }
            }
        }
        for meta in self.store.list(&Path::from("objects")).await? {
            let id = meta.location.filename().and_then(|f| {
                let b = blake3::Hash::from_hex(f).ok()?;
                Some(ObjectId(*b.as_bytes()))
            });
            let keep = id.is_some_and(|id| live.contains(&id));
            if !keep && old(&meta) {
                // Listed a while ago: a commit may have uploaded the same bytes since.
                match self.store.inner().head(&meta.location).await {
                    Ok(fresh) if !old(&fresh) => continue,
                    Err(object_store::Error::NotFound { .. }) => continue,
                    _ => {}
                }
                self.store.delete(&meta.location).await?;
                report.objects_deleted += 1;
                report.bytes_deleted += meta.size;
            }
        }
        Ok(report)
    }
}
