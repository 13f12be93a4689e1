//! Storage errors. Corruption always names the database and the snapshot.

/// What can go wrong in differential storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("database {database}, snapshot {snapshot}: {detail}")]
    Corrupt {
        database: String,
        snapshot: u64,
        detail: String,
    },
    #[error("database {database} has no snapshot {what}")]
    NoSnapshot { database: String, what: String },
    #[error(
        "database {database}: snapshot {seq} was committed by a newer writer (epoch {theirs}, ours {ours}); this writer is fenced"
    )]
    Fenced {
        database: String,
        seq: u64,
        ours: u64,
        theirs: u64,
    },
    /// The store answered an upload, but keeps other bytes than were sent (a proxy or the
    /// network changed the body). Transient: the next attempt may get through.
    #[error(
        "the object store kept other bytes at {key} than were uploaded ({stored} for {sent}): the body was changed on its way"
    )]
    UploadMismatch { key: String, sent: u64, stored: u64 },
    /// An error shared by every caller of one single-flight fetch.
    #[error("{0}")]
    Shared(std::sync::Arc<StorageError>),
    #[error("invalid storage URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl StorageError {
    /// Whether retrying the same operation may succeed (a store hiccup, not a verdict).
    pub fn is_transient(&self) -> bool {
        if let StorageError::Shared(e) = self {
            return e.is_transient();
        }
        matches!(
            self,
            StorageError::Store(object_store::Error::Generic { .. } | object_store::Error::JoinError { .. })
                | StorageError::Io(_)
                | StorageError::UploadMismatch { .. }
        )
    }

    pub(crate) fn corrupt(database: &str, snapshot: u64, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            database: database.to_string(),
            snapshot,
            detail: detail.into(),
        }
    }
}

/// Storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
