//! The duckling's error type.
//!
//! The engine's errors ([`DuckdbError`]) convert variant by variant into the same variants
//! here, so a caller matches `DucklingError::Sql { kind, .. }` whichever layer failed.

use pond_duckdb::DuckdbError;
pub use pond_duckdb::SqlErrorKind;

/// Everything that can go wrong inside a duckling.
#[derive(Debug, thiserror::Error)]
pub enum DucklingError {
    /// DuckDB rejected or failed the statement; `message` is DuckDB's own.
    #[error("{message}")]
    Sql { kind: SqlErrorKind, message: String },
    /// The sandbox refused the statement before it reached DuckDB.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request itself is malformed (bad parameters, bad names).
    #[error("{0}")]
    InvalidInput(String),
    /// Arrow conversion failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Snapshot storage failed (store unreachable, corruption, a newer writer).
    #[error(transparent)]
    Storage(#[from] pond_storage::StorageError),
    /// Local files of the duckling.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A bug or an unexpected state of DuckDB.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DucklingError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
}

impl From<DuckdbError> for DucklingError {
    fn from(e: DuckdbError) -> Self {
        match e {
            DuckdbError::Sql { kind, message } => Self::Sql { kind, message },
            DuckdbError::InvalidInput(message) => Self::InvalidInput(message),
            DuckdbError::Arrow(e) => Self::Arrow(e),
            DuckdbError::Internal(message) => Self::Internal(message),
        }
    }
}
