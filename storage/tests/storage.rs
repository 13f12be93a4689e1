//! The storage crate's integration tests: real files shaped like DuckDB's (header region,
//! then 256 KiB blocks that start with a checksum), real object stores (memory and local
//! directory), and a fault-injecting wrapper.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use pond_clock::ManualClock;
use pond_storage::gc::Retention;
use pond_storage::layout::{BLOCK_LEN, HEADER_LEN, wal_path};
use pond_storage::manifest::FULL_EVERY;
use pond_storage::{
    DatabaseWriter, FaultConfig, FaultyStore, SnapshotSelector, Storage, StorageConfig, StorageError, Store,
};

struct Fixture {
    dir: tempfile::TempDir,
    storage: Storage,
}

fn fixture_with(inner: Arc<dyn ObjectStore>) -> Fixture {
    fixture_with_store(Store::new(inner, "memory://"))
}

fn fixture_with_store(store: Store) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        url: store.url().into(),
        cache_dir: dir.path().join("cache"),
        cache_bytes: 1 << 30,
    };
    let storage = Storage::with_store(store, &config).unwrap();
    Fixture { dir, storage }
}

fn fixture() -> Fixture {
    fixture_with(Arc::new(InMemory::new()))
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes block `i` of a DuckDB-shaped file: a checksum of `fill`, then `fill` bytes.
fn write_block(path: &Path, i: u64, fill: u8) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .unwrap();
    let mut block = vec![fill; BLOCK_LEN as usize];
    block[..8].copy_from_slice(&(fill as u64 * 7919 + i).to_le_bytes());
    f.write_all_at(&block, HEADER_LEN + i * BLOCK_LEN).unwrap();
}

fn write_header(path: &Path, fill: u8) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.write_all_at(&vec![fill; HEADER_LEN as usize], 0).unwrap();
}

fn append_wal(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(wal_path(path))
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn database_file(path: &Path, blocks: u64) {
    write_header(path, 1);
    for i in 0..blocks {
        write_block(path, i, (i % 250) as u8 + 1);
    }
}

/// A DuckDB-shaped file of `blocks` blocks named `name`, its writer for `database`, and the
/// first snapshot stored.
async fn first_snapshot(f: &Fixture, name: &str, database: &str, blocks: u64) -> (PathBuf, DatabaseWriter) {
    let path = f.path(name);
    database_file(&path, blocks);
    let mut w = DatabaseWriter::open(&f.storage, database, &path).await.unwrap();
    w.sync().await.unwrap();
    (path, w)
}

fn read(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (std::fs::read(path).unwrap(), std::fs::read(wal_path(path)).ok())
}

async fn materialized(f: &Fixture, db: &str, seq: u64, name: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let state = f.storage.resolve(db, seq).await.unwrap();
    let dest = f.path(name);
    f.storage.materialize(db, seq, &state, &dest, None).await.unwrap();
    read(&dest)
}

#[tokio::test]
async fn commits_upload_only_what_changed_and_every_snapshot_reads_back() {
    let f = fixture();
    let path = f.path("work.db");
    database_file(&path, 40);
    let mut w = DatabaseWriter::open(&f.storage, "db1", &path).await.unwrap();
    let first = w.sync().await.unwrap().expect("a first snapshot");
    assert_eq!((first.seq, first.blocks), (1, 40));
    let v1 = read(&path);

    append_wal(&path, b"commit one");
    let second = w.sync().await.unwrap().unwrap();
    assert_eq!((second.seq, second.blocks, second.wal_bytes), (2, 0, 10));
    assert!(second.bytes < 1024, "a WAL-only commit stored {} bytes", second.bytes);
    let v2 = read(&path);

    write_block(&path, 7, 200);
    append_wal(&path, b"commit two");
    let third = w.sync().await.unwrap().unwrap();
    assert_eq!((third.blocks, third.wal_bytes), (1, 10));
    assert!(third.bytes < BLOCK_LEN + 64 * 1024, "{}", third.bytes);
    let v3 = read(&path);

    // A checkpoint: the header changes and DuckDB deletes the WAL.
    write_header(&path, 9);
    std::fs::remove_file(wal_path(&path)).unwrap();
    let fourth = w.sync().await.unwrap().unwrap();
    assert_eq!(fourth.wal_bytes, 0);
    let v4 = read(&path);
    assert!(w.sync().await.unwrap().is_none(), "nothing changed, nothing stored");

    assert_eq!(materialized(&f, "db1", 1, "s1").await, v1);
    assert_eq!(materialized(&f, "db1", 2, "s2").await, v2);
    assert_eq!(materialized(&f, "db1", 3, "s3").await, v3);
    assert_eq!(materialized(&f, "db1", 4, "s4").await, v4);
    assert_eq!(v4.1, None);
}

#[tokio::test]
async fn a_growing_and_shrinking_file_and_long_delta_chains_resolve() {
    let f = fixture();
    let (path, mut w) = first_snapshot(&f, "work.db", "db", 3).await;
    for i in 0..150u64 {
        append_wal(&path, format!("c{i};").as_bytes());
        if i % 10 == 0 {
            write_block(&path, 3 + i / 10, 5);
        }
        w.sync().await.unwrap().unwrap();
    }
    let grown = read(&path);
    assert_eq!(materialized(&f, "db", w.seq(), "grown").await, grown);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(HEADER_LEN + 2 * BLOCK_LEN)
        .unwrap();
    write_header(&path, 3);
    w.sync().await.unwrap().unwrap();
    assert_eq!(materialized(&f, "db", w.seq(), "shrunk").await, read(&path));
}

#[tokio::test]
async fn reopening_reuses_a_matching_copy_rebuilds_a_diverged_one_and_fences_the_old_writer() {
    let f = fixture();
    let (path, mut old) = first_snapshot(&f, "work.db", "db", 5).await;
    append_wal(&path, b"durable");
    old.sync().await.unwrap();
    let durable = read(&path);

    // A commit that never reached the store: the reopened writer drops it.
    append_wal(&path, b"lost");
    write_block(&path, 1, 99);
    let mut new = DatabaseWriter::open(&f.storage, "db", &path).await.unwrap();
    assert_eq!(read(&path), durable);
    assert!(new.seq() > old.seq(), "the new writer fenced");

    append_wal(&path, b"stale");
    let err = old.sync().await.unwrap_err();
    assert!(matches!(err, StorageError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("fenced"), "{err}");
    new.sync().await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failing_store_leaves_no_half_visible_snapshot_and_the_next_sync_catches_up() {
    let faulty = Arc::new(FaultyStore::new(Arc::new(InMemory::new()), FaultConfig::default()));
    let f = fixture_with(faulty.clone());
    let (path, mut w) = first_snapshot(&f, "work.db", "db", 4).await;
    let before = f.storage.latest_seq("db").await.unwrap();

    faulty.set(FaultConfig {
        put_error_rate: 1.0,
        latency: Duration::from_millis(1),
        ..Default::default()
    });
    write_block(&path, 2, 77);
    append_wal(&path, b"x");
    let err = w.sync().await.unwrap_err();
    assert!(err.to_string().contains("injected put failure"), "{err}");
    assert_eq!(f.storage.latest_seq("db").await.unwrap(), before);

    // Flaky, not dead: retries get through.
    faulty.set(FaultConfig {
        put_error_rate: 0.3,
        ..Default::default()
    });
    let mut synced = false;
    for _ in 0..20 {
        if w.sync().await.is_ok() {
            synced = true;
            break;
        }
    }
    assert!(synced);
    faulty.set(FaultConfig::default());
    assert_eq!(materialized(&f, "db", w.seq(), "after").await, read(&path));
}

#[tokio::test]
async fn corruption_is_an_error_naming_the_database_and_snapshot() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let f = fixture_with(inner.clone());
    first_snapshot(&f, "work.db", "db7", 2).await;

    let key = object_store::path::Path::from("databases/db7/manifests/00000000000000000001");
    let mut bytes = inner.get(&key).await.unwrap().bytes().await.unwrap().to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    inner.put(&key, bytes.into()).await.unwrap();
    let err = f.storage.resolve("db7", 1).await.unwrap_err().to_string();
    assert!(
        err.contains("database db7, snapshot 1") && err.contains("checksum"),
        "{err}"
    );

    let missing = f.storage.resolve("db7", 9).await.unwrap_err().to_string();
    assert!(missing.contains("db7") && missing.contains('9'), "{missing}");

    // A block that vanished from the store.
    let f2 = fixture();
    first_snapshot(&f2, "w2.db", "db8", 2).await;
    let objects: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(f2.storage.store().inner().list(Some(&"objects".into()))).await;
    for o in objects {
        f2.storage.store().inner().delete(&o.unwrap().location).await.unwrap();
    }
    f2.storage.cache().clear().await;
    let state = f2.storage.resolve("db8", 1).await.unwrap();
    let err = f2
        .storage
        .materialize("db8", 1, &state, &f2.path("x"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("database db8, snapshot 1") && err.contains("missing"),
        "{err}"
    );
}

#[tokio::test]
async fn clones_are_small_share_blocks_and_diverge() {
    let f = fixture();
    let (path, mut w) = first_snapshot(&f, "src.db", "src", 64).await;
    let at_clone = read(&path);
    let (put_before, _) = f.storage.store().stats().bytes();
    let bytes = DatabaseWriter::branch(&f.storage, "copy", "src", w.seq())
        .await
        .unwrap();
    let (put_after, _) = f.storage.store().stats().bytes();
    assert!(bytes < 64 * 1024 && put_after - put_before == bytes, "{bytes}");

    let copy_path = f.path("copy.db");
    let mut c = DatabaseWriter::open(&f.storage, "copy", &copy_path).await.unwrap();
    assert_eq!(read(&copy_path), at_clone);
    write_block(&copy_path, 0, 42);
    c.sync().await.unwrap().unwrap();
    write_block(&path, 1, 43);
    w.sync().await.unwrap().unwrap();
    assert_eq!(materialized(&f, "copy", c.seq(), "c").await, read(&copy_path));
    assert_eq!(materialized(&f, "src", w.seq(), "s").await, read(&path));
    assert_ne!(read(&path), read(&copy_path));
}

#[tokio::test]
async fn snapshots_are_chosen_by_id_name_and_time() {
    let clock = Arc::new(ManualClock::new());
    let mut f = fixture();
    f.storage = f.storage.with_clock(clock.clone());
    let (path, mut w) = first_snapshot(&f, "w.db", "db", 1).await;
    let named = w.snapshot("before").await.unwrap();
    clock.advance(Duration::from_millis(20));
    append_wal(&path, b"later");
    w.sync().await.unwrap();
    let list = f.storage.snapshots("db").await.unwrap();
    assert_eq!(list.last().unwrap().seq, w.seq());
    assert_eq!(
        list.iter().find(|s| s.seq == named).unwrap().name.as_deref(),
        Some("before")
    );
    let sel = async |s: SnapshotSelector| f.storage.select("db", &s).await;
    assert_eq!(sel(SnapshotSelector::Name("before".into())).await.unwrap(), named);
    assert_eq!(sel(SnapshotSelector::Latest).await.unwrap(), w.seq());
    let t = list.iter().find(|s| s.seq == named).unwrap().created_ms;
    assert_eq!(sel(SnapshotSelector::AtOrBefore(t)).await.unwrap(), named);
    assert!(sel(SnapshotSelector::AtOrBefore(0)).await.is_err());
    assert!(
        sel(SnapshotSelector::Name("nope".into()))
            .await
            .unwrap_err()
            .to_string()
            .contains("named nope")
    );
}

#[tokio::test]
async fn moving_a_reader_one_snapshot_fetches_only_the_changed_blocks() {
    let f = fixture();
    let (path, mut w) = first_snapshot(&f, "w.db", "db", 100).await;
    let s1 = w.seq();
    write_block(&path, 50, 3);
    w.sync().await.unwrap();
    let s2 = w.seq();
    assert_eq!(f.storage.latest_after("db", s1).await.unwrap(), s2);
    assert_eq!(f.storage.latest_after("db", s2).await.unwrap(), s2);

    let state1 = f.storage.resolve("db", s1).await.unwrap();
    let r1 = f.path("r1");
    let (blocks1, _) = f.storage.materialize("db", s1, &state1, &r1, None).await.unwrap();
    let (_, got_before) = f.storage.store().stats().bytes();
    let state2 = f.storage.resolve("db", s2).await.unwrap();
    let r2 = f.path("r2");
    let (_, stats) = f
        .storage
        .materialize("db", s2, &state2, &r2, Some((&r1, &blocks1)))
        .await
        .unwrap();
    let (_, got_after) = f.storage.store().stats().bytes();
    assert_eq!(stats.blocks_written, 1);
    assert!(
        got_after - got_before < BLOCK_LEN + 64 * 1024,
        "{}",
        got_after - got_before
    );
    assert_eq!(read(&r2), read(&path));
}

#[tokio::test]
async fn gc_keeps_what_retained_snapshots_clones_and_pins_reach() {
    let f = fixture();
    let (path, mut w) = first_snapshot(&f, "w.db", "db", 8).await;
    let named = w.snapshot("keep").await.unwrap();
    for i in 0..5 {
        write_block(&path, i, 100 + i as u8);
        w.sync().await.unwrap();
    }
    let pinned = w.seq();
    // Enough commits for a full manifest: the snapshots between the pinned one and it are
    // neither retained nor in a retained chain.
    for fill in 120..200u8 {
        write_block(&path, 0, fill);
        w.sync().await.unwrap();
    }
    DatabaseWriter::branch(&f.storage, "clone", "db", pinned - 2)
        .await
        .unwrap();
    let expected_named = materialized(&f, "db", named, "n").await;
    let expected_pinned = materialized(&f, "db", pinned, "p").await;
    let expected_clone = materialized(&f, "clone", 1, "c").await;

    let keep = [
        Retention {
            database: "db".into(),
            retention: Duration::ZERO,
        },
        Retention {
            database: "clone".into(),
            retention: Duration::ZERO,
        },
    ];
    let report = f
        .storage
        .collect_garbage(&keep, &[("db".into(), pinned)], Duration::ZERO)
        .await
        .unwrap();
    assert!(report.objects_deleted > 0 && report.manifests_deleted > 0, "{report:?}");
    f.storage.cache().clear().await;
    assert_eq!(materialized(&f, "db", named, "n2").await, expected_named);
    assert_eq!(materialized(&f, "db", pinned, "p2").await, expected_pinned);
    assert_eq!(materialized(&f, "clone", 1, "c2").await, expected_clone);
    assert_eq!(materialized(&f, "db", w.seq(), "l2").await, read(&path));

    // A grace period protects young objects even when unreachable.
    let again = f
        .storage
        .collect_garbage(&[], &[], Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(again, Default::default());
}

#[tokio::test]
async fn retention_keeps_snapshots_until_the_clock_passes_it() {
    const RETENTION: Duration = Duration::from_secs(3600);
    let clock = Arc::new(ManualClock::new());
    let mut f = fixture();
    f.storage = f.storage.with_clock(clock.clone());
    let (path, mut w) = first_snapshot(&f, "w.db", "db", 2).await;
    let first = w.seq();
    // Enough commits for a full manifest, so the older snapshots leave the latest's chain.
    for fill in 0..FULL_EVERY as u8 {
        write_block(&path, 0, 100 + fill);
        w.sync().await.unwrap();
    }
    let expected_first = materialized(&f, "db", first, "first").await;
    let keep = [Retention {
        database: "db".into(),
        retention: RETENTION,
    }];
    let gc = async || f.storage.collect_garbage(&keep, &[], Duration::ZERO).await.unwrap();

    clock.advance(RETENTION - Duration::from_secs(60));
    assert_eq!(gc().await, Default::default(), "every snapshot is within retention");
    f.storage.cache().clear().await;
    assert_eq!(materialized(&f, "db", first, "first2").await, expected_first);

    clock.advance(Duration::from_secs(120));
    let report = gc().await;
    assert!(report.manifests_deleted > 0 && report.objects_deleted > 0, "{report:?}");
    let seqs = f.storage.manifest_seqs("db").await.unwrap();
    // The epoch's first manifest stays as its fence; the latest stays whole.
    assert_eq!(seqs, vec![1, w.seq()]);
    f.storage.cache().clear().await;
    assert_eq!(materialized(&f, "db", w.seq(), "latest").await, read(&path));
}

#[tokio::test]
async fn the_local_directory_backend_refuses_a_second_manifest_with_the_same_number() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let storage = Storage::open(&StorageConfig {
        url: url.clone(),
        cache_dir: dir.path().join("cache"),
        cache_bytes: 1 << 20,
    })
    .unwrap();
    let path = dir.path().join("w.db");
    database_file(&path, 2);
    let mut a = DatabaseWriter::open(&storage, "db", &path).await.unwrap();
    a.sync().await.unwrap();
    let mut b = DatabaseWriter::open(&storage, "db", &path).await.unwrap();
    append_wal(&path, b"b");
    b.sync().await.unwrap().unwrap();
    append_wal(&path, b"a");
    assert!(matches!(a.sync().await.unwrap_err(), StorageError::Fenced { .. }));
    assert!(
        Store::open("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("unknown scheme ftp")
    );
}

// ---- uploads the store keeps otherwise than sent ------------------------------------------

/// What [`ProxiedS3`] does to put bodies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mangle {
    Off,
    /// Every body emptied, as the broken proxy did.
    All,
    /// Only manifests' bodies emptied: the objects of a commit get through.
    Manifests,
}

/// S3 behind a proxy that mangles bodies, on a server that verifies no checksum (moto): a put
/// stores what arrived and answers with S3's ETag, the MD5 of what it stored. With
/// `opaque_etags` it answers ETags that are no MD5 of anything, as SSE-KMS buckets do.
#[derive(Debug)]
struct ProxiedS3 {
    inner: InMemory,
    mangle: parking_lot::Mutex<Mangle>,
    opaque_etags: bool,
    gets: std::sync::atomic::AtomicU64,
}

impl ProxiedS3 {
    fn new(opaque_etags: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: InMemory::new(),
            mangle: parking_lot::Mutex::new(Mangle::Off),
            opaque_etags,
            gets: Default::default(),
        })
    }

    fn set(&self, m: Mangle) {
        *self.mangle.lock() = m;
    }

    fn store(self: &Arc<Self>) -> Store {
        Store::new(self.clone(), "s3://proxied").checking_etags()
    }
}

impl std::fmt::Display for ProxiedS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxiedS3")
    }
}

#[async_trait::async_trait]
impl ObjectStore for ProxiedS3 {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        let mut body = bytes::Bytes::from(payload);
        let mangle = *self.mangle.lock();
        if mangle == Mangle::All || (mangle == Mangle::Manifests && location.as_ref().contains("/manifests/")) {
            body = bytes::Bytes::new();
        }
        use md5::Digest;
        let mut digest = md5::Md5::digest(&body).to_vec();
        if self.opaque_etags {
            digest.reverse();
        }
        let e_tag: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.inner.put_opts(location, body.into(), opts).await?;
        Ok(object_store::PutResult {
            e_tag: Some(format!("\"{e_tag}\"")),
            version: None,
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Reads snapshot `seq` through a fresh cache: what the store itself holds.
async fn materialized_from_store(f: &Fixture, db: &str, seq: u64, name: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let config = StorageConfig {
        url: f.storage.store().url().into(),
        cache_dir: f.path(&format!("{name}.cache")),
        cache_bytes: 1 << 30,
    };
    let fresh = Storage::with_store(f.storage.store().clone(), &config).unwrap();
    let state = fresh.resolve(db, seq).await.unwrap();
    let dest = f.path(name);
    fresh.materialize(db, seq, &state, &dest, None).await.unwrap();
    read(&dest)
}

#[tokio::test]
async fn an_upload_the_store_keeps_mangled_is_never_acknowledged() {
    let s3 = ProxiedS3::new(false);
    let f = fixture_with_store(s3.store());
    let (path, mut w) = first_snapshot(&f, "work.db", "db", 4).await;
    append_wal(&path, b"acknowledged");
    w.sync().await.unwrap().unwrap();
    let acked = w.seq();
    let acked_bytes = read(&path);

    for mangle in [Mangle::All, Mangle::Manifests] {
        s3.set(mangle);
        write_block(&path, 2, 77);
        append_wal(&path, b"refused");
        let err = w.sync().await.unwrap_err();
        assert!(matches!(err, StorageError::UploadMismatch { .. }), "{mangle:?}: {err}");
        assert!(err.is_transient());
        assert_eq!(w.seq(), acked, "{mangle:?}");
        // The writer removed the manifest it found mangled: the number is free, nothing
        // undecodable is left for readers or for its own retry.
        assert_eq!(f.storage.latest_seq("db").await.unwrap(), Some(acked), "{mangle:?}");
        assert!(
            s3.inner
                .head(&object_store::path::Path::from(format!(
                    "databases/db/manifests/{:020}",
                    acked + 1
                )))
                .await
                .is_err()
        );
    }
    assert_eq!(materialized_from_store(&f, "db", acked, "acked").await, acked_bytes);

    // Once bodies get through, the next commit stores everything since the last acknowledged.
    s3.set(Mangle::Off);
    append_wal(&path, b"after");
    let stats = w.sync().await.unwrap().unwrap();
    assert_eq!(stats.seq, acked + 1);
    assert_eq!(materialized_from_store(&f, "db", stats.seq, "after").await, read(&path));
    assert_eq!(
        materialized_from_store(&f, "db", acked, "acked_again").await,
        acked_bytes
    );
}

#[tokio::test]
async fn bytes_an_acknowledged_snapshot_names_are_not_sent_again() {
    let s3 = ProxiedS3::new(false);
    let f = fixture_with_store(s3.store());
    let (path, mut w) = first_snapshot(&f, "work.db", "db", 4).await;
    append_wal(&path, b"same bytes");
    w.sync().await.unwrap().unwrap();
    let acked = w.seq();
    let acked_bytes = read(&path);

    // The same WAL bytes again: a segment with the same name as the acknowledged one. Sent
    // through a mangling path, it would overwrite that one with nothing.
    s3.set(Mangle::All);
    append_wal(&path, b"same bytes");
    assert!(matches!(
        w.sync().await.unwrap_err(),
        StorageError::UploadMismatch { .. }
    ));
    assert_eq!(materialized_from_store(&f, "db", acked, "acked").await, acked_bytes);

    s3.set(Mangle::Off);
    let (put_before, _) = f.storage.store().stats().bytes();
    let stats = w.sync().await.unwrap().unwrap();
    let (put_after, _) = f.storage.store().stats().bytes();
    assert_eq!(stats.wal_bytes, 10);
    assert!(
        put_after - put_before < 10 + 1024 && stats.bytes == put_after - put_before,
        "only the manifest went up: {stats:?}"
    );
    assert_eq!(materialized_from_store(&f, "db", stats.seq, "after").await, read(&path));
}

#[tokio::test]
async fn etags_that_are_not_md5s_stop_the_check_after_one_read() {
    let s3 = ProxiedS3::new(true);
    let f = fixture_with_store(s3.store());
    let (path, mut w) = first_snapshot(&f, "work.db", "db", 2).await;
    let gets = s3.gets.load(std::sync::atomic::Ordering::Relaxed);
    assert!(gets >= 1, "the first differing ETag is settled by reading the object");
    append_wal(&path, b"x");
    w.sync().await.unwrap().unwrap();
    assert_eq!(s3.gets.load(std::sync::atomic::Ordering::Relaxed), gets);
    assert_eq!(materialized_from_store(&f, "db", w.seq(), "m").await, read(&path));
}
