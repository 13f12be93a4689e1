//! The coordinator's error type. The front door maps it to gRPC statuses in one place.

use pond_duckling::DucklingError;

/// Everything a coordinator call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// No valid credentials. Never says why, so tokens cannot be probed.
    #[error("invalid or expired token")]
    Unauthenticated,
    /// The principal may not do this; the message names what was refused.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A named thing (database, session, prepared statement, transaction) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A named thing exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The feature is not available in this build.
    #[error("{0}")]
    Unimplemented(String),
    /// The query was cancelled by the client, its deadline or shutdown.
    #[error("query cancelled: {0}")]
    Cancelled(String),
    /// A statement ran past `--query-timeout` and was interrupted.
    #[error("{0}")]
    Timeout(String),
    /// A limit was hit (`--max-result-bytes`); the message names the flag.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The duckling is gone or stopping; a retry reaches a new one.
    #[error("{0}")]
    Unavailable(String),
    /// The duckling failed.
    #[error(transparent)]
    Duckling(#[from] DucklingError),
    /// Catalog files.
    #[error("catalog I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// DuckDB's own errors (the engine in `pond-duckdb`) arrive as the duckling's, kind unchanged.
impl From<pond_duckling::DuckdbError> for CoordinatorError {
    fn from(e: pond_duckling::DuckdbError) -> Self {
        Self::Duckling(e.into())
    }
}

/// Shorthand for coordinator results.
pub type Result<T, E = CoordinatorError> = std::result::Result<T, E>;
