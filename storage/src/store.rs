//! The object store: which backend a URL names, the key layout, byte counters, and a
//! fault-injecting wrapper for tests and benchmarks.
//!
//! Conditional puts (`PutMode::Create`) are what make manifests safe. The local directory and
//! `memory://` support them natively; S3 supports them through `If-None-Match: *` (AWS since
//! 2024, MinIO, moto), which `object_store` uses by default.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

use crate::error::{Result, StorageError};
use crate::manifest::ObjectId;

/// Bytes and requests that went to and came from the store, for benchmarks and tests.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub put_bytes: AtomicU64,
    pub puts: AtomicU64,
    pub get_bytes: AtomicU64,
    pub gets: AtomicU64,
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
                    .build()?;
                let prefix = parsed.path().trim_matches('/');
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                }
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
        }
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

    /// Writes `bytes` at `key`, replacing what was there (content-addressed objects).
    pub(crate) async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        let n = bytes.len() as u64;
        self.inner.put_opts(key, bytes.into(), PutOptions::default()).await?;
        self.count_put(n);
        Ok(())
    }

    /// Writes `bytes` at `key` only if nothing is there; `false` when something was.
    pub(crate) async fn put_if_absent(&self, key: &Path, bytes: Bytes) -> Result<bool> {
        let n = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.inner.put_opts(key, bytes.into(), opts).await {
            Ok(_) => {
                self.count_put(n);
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
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
