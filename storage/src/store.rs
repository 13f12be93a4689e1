//! The object store: which backend a URL names, the key layout, byte counters, and a
//! fault-injecting wrapper for tests and benchmarks.
//!
//! Conditional puts (`PutMode::Create`) are what make manifests safe. The local directory and
//! `memory://` support them natively; S3 supports them through `If-None-Match: *` (AWS since
//! 2024, MinIO, moto), which `object_store` uses by default.
//!
//! An upload is only as good as the bytes the server kept. A proxy that empties or cuts request
//! bodies makes a server store them as sent, and answer 200. So S3 uploads are checked twice:
//! - they carry `x-amz-checksum-sha256`, which AWS and MinIO verify (moto does not), refusing
//!   a body that does not match (the commit fails and is retried; nothing is overwritten);
//! - the answer's ETag, which S3 computes as the MD5 of what it stored (for a single-part
//!   upload without KMS or customer keys), is compared with the MD5 of what was sent. This
//!   catches servers that ignore the checksum header (moto does). When an ETag differs but a
//!   read shows the stored bytes intact, the bucket's ETags are not MD5s and this check stops.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use rand::Rng;
use tracing::{info, warn};

use crate::error::{Result, StorageError};
use crate::manifest::ObjectId;

/// Bytes and requests that went to and came from the store, for benchmarks and tests.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub put_bytes: AtomicU64,
    pub puts: AtomicU64,
    pub get_bytes: AtomicU64,
    pub gets: AtomicU64,
    /// How long the snapshots committed through this store took to commit (capture, uploads
    /// and the manifest's conditional put).
    pub commits: pond_clock::LatencyHistogram,
    /// Objects the local cache served, and their bytes; objects it had to fetch (the fetches'
    /// bytes are in `get_bytes`).
    pub cache_hits: AtomicU64,
    pub cache_hit_bytes: AtomicU64,
    pub cache_misses: AtomicU64,
}

impl StoreStats {
    /// (bytes put, bytes got) so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.put_bytes.load(Ordering::Relaxed),
            self.get_bytes.load(Ordering::Relaxed),
        )
    }
}

/// An object store with Pond's key layout.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    url: String,
    stats: Arc<StoreStats>,
    /// Set for stores whose put answers carry S3's ETags (see the module's documentation).
    etags: Option<Arc<EtagCheck>>,
}

/// The ETag check's state, shared by every clone of a store.
#[derive(Debug)]
struct EtagCheck {
    /// Cleared for good once the store shows that its ETags are not MD5 digests.
    md5: AtomicBool,
    /// Keys this store created conditionally with a mangled body and could not delete: the
    /// next conditional put of one deletes it first, so a retry is not refused by the bad
    /// bytes of its own earlier attempt.
    stranded: parking_lot::Mutex<HashSet<Path>>,
}

impl EtagCheck {
    fn stop(&self, etag: &str) {
        if self.md5.swap(false, Ordering::Relaxed) {
            info!(
                etag,
                "the store's ETags are not MD5 digests: uploads rest on its checksum check alone"
            );
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl {
        url: url.to_string(),
        reason: reason.into(),
    }
}

impl Store {
    /// Opens `file:///abs/dir`, `memory://` or `s3://bucket[/prefix]`. S3 takes its
    /// credentials, region and endpoint from the usual `AWS_*` variables (`AWS_ENDPOINT` for an
    /// S3-compatible server, `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
    pub fn open(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(url, e.to_string()))?;
        let inner: Arc<dyn ObjectStore> = match parsed.scheme() {
            "memory" => Arc::new(InMemory::new()),
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| invalid(url, "a file URL needs an absolute path"))?;
                std::fs::create_dir_all(&dir)?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir)?)
            }
            "s3" => {
                let bucket = parsed.host_str().ok_or_else(|| invalid(url, "no bucket"))?;
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                    .build()?;
                let prefix = parsed.path().trim_matches('/');
                let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                };
                return Ok(Self::new(inner, url).checking_etags());
            }
            other => {
                return Err(invalid(
                    url,
                    format!("unknown scheme {other}: use file://, memory:// or s3://"),
                ));
            }
        };
        Ok(Self::new(inner, url))
    }

    /// Wraps any object store.
    pub fn new(inner: Arc<dyn ObjectStore>, url: &str) -> Self {
        Self {
            inner,
            url: url.to_string(),
            stats: Arc::default(),
            etags: None,
        }
    }

    /// Compares every put's ETag with the MD5 of the bytes sent, as S3 stores are opened: an
    /// upload the store kept otherwise fails with [`StorageError::UploadMismatch`].
    pub fn checking_etags(mut self) -> Self {
        self.etags = Some(Arc::new(EtagCheck {
            md5: AtomicBool::new(true),
            stranded: Default::default(),
        }));
        self
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Byte and request counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The underlying object store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    pub(crate) fn object_key(id: &ObjectId) -> Path {
        let hex = id.to_hex();
        Path::from(format!("objects/{}/{hex}", &hex[..2]))
    }

    pub(crate) fn manifests_prefix(database: &str) -> Path {
        Path::from(format!("databases/{database}/manifests"))
    }

    pub(crate) fn manifest_key(database: &str, seq: u64) -> Path {
        Path::from(format!("databases/{database}/manifests/{seq:020}"))
    }

    /// Writes `bytes` at `key`, replacing what was there (content-addressed objects: an
    /// overwrite refreshes the object's age, which GC's grace period relies on).
    pub(crate) async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        let n = bytes.len() as u64;
        let r = self
            .inner
            .put_opts(key, bytes.clone().into(), PutOptions::default())
            .await?;
        self.count_put(n);
        self.check_upload(key, &bytes, r.e_tag.as_deref()).await
    }

    /// Writes `bytes` at `key` only if nothing is there; `false` when something was.
    pub(crate) async fn put_if_absent(&self, key: &Path, bytes: Bytes) -> Result<bool> {
        if let Some(check) = &self.etags
            && check.stranded.lock().contains(key)
        {
            self.delete(key).await?;
            check.stranded.lock().remove(key);
        }
        let n = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let r = match self.inner.put_opts(key, bytes.clone().into(), opts).await {
            Ok(r) => r,
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        self.count_put(n);
        match self.check_upload(key, &bytes, r.e_tag.as_deref()).await {
            Err(e @ StorageError::UploadMismatch { .. }) => {
                // This put created the key and what it holds cannot be decoded, so nothing
                // can have been built on it: remove it, or it would block its own retry.
                if let Err(d) = self.delete(key).await {
                    warn!(%key, error = %d, "could not remove a mangled upload; the next attempt will");
                    if let Some(check) = &self.etags {
                        check.stranded.lock().insert(key.clone());
                    }
                }
                Err(e)
            }
            other => other.map(|()| true),
        }
    }

    /// Checks what the store says it kept at `key` against `sent` (see the module's
    /// documentation); a no-op unless [`Store::checking_etags`].
    async fn check_upload(&self, key: &Path, sent: &Bytes, etag: Option<&str>) -> Result<()> {
        let Some(check) = &self.etags else { return Ok(()) };
        if !check.md5.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(etag) = etag.map(|e| e.trim_matches('"')) else {
            return Ok(());
        };
        if etag.len() != 32 || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            check.stop(etag);
            return Ok(());
        }
        if etag.eq_ignore_ascii_case(&md5_hex(sent)) {
            return Ok(());
        }
        // Either the body changed on its way, or this bucket's ETags are not MD5s (KMS or
        // customer keys). The stored bytes tell which.
        let stored = match self.inner.get_opts(key, GetOptions::default()).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => Bytes::new(),
            Err(e) => return Err(e.into()),
        };
        if stored == *sent {
            check.stop(etag);
            return Ok(());
        }
        warn!(
            %key,
            sent = sent.len(),
            stored = stored.len(),
            "the store kept other bytes than were uploaded"
        );
        Err(StorageError::UploadMismatch {
            key: key.to_string(),
            sent: sent.len() as u64,
            stored: stored.len() as u64,
        })
    }

    /// The bytes at `key`, or `None` when there is no such object.
    pub(crate) async fn get(&self, key: &Path) -> Result<Option<Bytes>> {
        match self.inner.get_opts(key, GetOptions::default()).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                self.stats.gets.fetch_add(1, Ordering::Relaxed);
                self.stats.get_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(Some(bytes))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix`.
    pub(crate) async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut stream = self.inner.list(Some(prefix));
        while let Some(meta) = stream.next().await {
            out.push(meta?);
        }
        Ok(out)
    }

    /// Deletes `key`; deleting a missing object is not an error.
    pub(crate) async fn delete(&self, key: &Path) -> Result<()> {
        let mut s = self
            .inner
            .delete_stream(futures::stream::once(futures::future::ready(Ok(key.clone()))).boxed());
        while let Some(r) = s.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn count_put(&self, n: u64) {
        self.stats.puts.fetch_add(1, Ordering::Relaxed);
        self.stats.put_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    use std::fmt::Write;
    let mut hex = String::with_capacity(32);
    for b in md5::Md5::digest(bytes) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// What a [`FaultyStore`] does to the calls it passes on.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Probability that a put fails (before reaching the store).
    pub put_error_rate: f64,
    /// Probability that a get fails.
    pub get_error_rate: f64,
    /// Added to every call.
    pub latency: Duration,
}

/// An object store that injects errors and latency into another: for the fault tests and for
/// benchmarking against a remote-like store.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    config: parking_lot::RwLock<FaultConfig>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, config: FaultConfig) -> Self {
        Self {
            inner,
            config: parking_lot::RwLock::new(config),
        }
    }

    /// Changes the faults from now on.
    pub fn set(&self, config: FaultConfig) {
        *self.config.write() = config;
    }

    async fn before(&self, error_rate: impl Fn(&FaultConfig) -> f64, what: &str) -> object_store::Result<()> {
        let (latency, rate) = {
            let c = self.config.read();
            (c.latency, error_rate(&c))
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if rate > 0.0 && rand::rng().random_bool(rate.min(1.0)) {
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: format!("injected {what} failure").into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.before(|c| c.put_error_rate, "put").await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.before(|c| c.put_error_rate, "put").await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.before(|c| c.get_error_rate, "get").await?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.before(|c| c.get_error_rate, "get").await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
