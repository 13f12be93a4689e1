//! Retention and garbage collection.
//!
//! A snapshot is *retained* when it is its database's newest, has a name, is younger than
//! the database's retention, or is pinned by an open reader. GC keeps every manifest a
//! retained snapshot's chain needs (its delta chain back to a full manifest, and the source
//! snapshots of branches), and every object a retained snapshot's state names. It deletes the
//! rest, but only what is older than the grace period: a commit uploads its objects before its
//! manifest, and those objects must survive until the manifest lands.
//!
//! "Now" is the storage's clock ([`Storage::clock`]); ages compare it with manifests'
//! `created_ms` (retention) and with the store's last-modified times (grace).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use pond_proto::storage::manifest::Body;

use crate::Storage;
use crate::error::Result;
use crate::manifest::ObjectId;
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
        let now = self.clock.unix_ms();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use bytes::Bytes;
    use object_store::memory::InMemory;
    use pond_clock::ManualClock;
    use pond_proto::storage as pb;

    use super::*;
    use crate::StorageConfig;
    use crate::manifest::{self, Manifest};

    const GRACE: Duration = Duration::from_secs(600);

    fn storage(cache: &std::path::Path) -> Storage {
        let store = Store::new(Arc::new(InMemory::new()), "memory://");
        let config = StorageConfig {
            url: store.url().into(),
            cache_dir: cache.to_path_buf(),
            cache_bytes: 1 << 20,
        };
        Storage::with_store(store, &config).unwrap()
    }

    /// An object nothing names, and snapshot 1 of a database nobody keeps (a purged one).
    async fn unreachable(storage: &Storage) {
        let bytes = Bytes::from_static(b"an orphaned block");
        let key = Store::object_key(&ObjectId::of(&bytes));
        storage.store.put(&key, bytes).await.unwrap();
        let m = Manifest {
            database_id: "purged".into(),
            seq: 1,
            epoch: 1,
            base_seq: 1,
            body: Some(Body::Full(pb::State::default())),
            ..Default::default()
        };
        let key = Store::manifest_key("purged", 1);
        storage.store.put(&key, manifest::encode(&m)).await.unwrap();
    }

    /// The store's oldest and newest last-modified times.
    async fn write_times(storage: &Storage) -> (SystemTime, SystemTime) {
        let all = storage.store.list(&Path::from("")).await.unwrap();
        let times = || all.iter().map(|m| SystemTime::from(m.last_modified));
        (times().min().unwrap(), times().max().unwrap())
    }

    #[tokio::test]
    async fn unreachable_objects_survive_the_grace_period_and_go_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let written = storage(dir.path());
        unreachable(&written).await;
        // The writes may straddle a millisecond: the grace period is measured from the oldest
        // for "nothing goes" and past the newest for "everything goes".
        let (oldest, newest) = write_times(&written).await;
        let clock = Arc::new(ManualClock::starting_at(oldest));
        let storage = written.with_clock(clock.clone());

        clock.advance(GRACE);
        let report = storage.collect_garbage(&[], &[], GRACE).await.unwrap();
        assert_eq!(report, GcReport::default(), "within the grace period nothing goes");

        clock.advance(newest.duration_since(oldest).unwrap() + Duration::from_millis(1));
        let report = storage.collect_garbage(&[], &[], GRACE).await.unwrap();
        assert_eq!((report.objects_deleted, report.manifests_deleted), (1, 1), "{report:?}");
        assert!(storage.store.list(&Path::from("")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_clock_set_before_the_writes_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::starting_at(SystemTime::UNIX_EPOCH));
        let storage = storage(dir.path()).with_clock(clock.clone());
        unreachable(&storage).await;
        let report = storage.collect_garbage(&[], &[], Duration::ZERO).await.unwrap();
        assert_eq!(report, GcReport::default());
    }
}
