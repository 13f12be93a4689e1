//! The error edge: the one place where errors become gRPC statuses.
//!
//! Handlers fail with a [`FlightSqlError`], whose `From` conversions let `?` take the
//! coordinator's, a duckling's, Arrow's and Flight's errors as they come, and whose one
//! `From<FlightSqlError> for Status` decides what a client is told. The cluster crate maps its
//! own errors into [`FlightSqlError`] too, so a call answers the same in every mode.
//!
//! Invariants:
//! - SQL errors are INVALID_ARGUMENT with DuckDB's message, refusals PERMISSION_DENIED,
//!   interrupted queries CANCELLED, missing features UNIMPLEMENTED (ADBC falls back on it),
//!   bytes a client sent that do not decode INVALID_ARGUMENT.
//! - A failed credential check never says why: every one is "invalid or expired token".
//! - Internal errors and storage failures are logged here, once, where they leave the server.

use std::future::Future;

use arrow::error::ArrowError;
use arrow_flight::error::FlightError;
use pond_coordinator::CoordinatorError;
use pond_duckling::{DucklingError, SqlErrorKind};
use tonic::Status;

/// Everything a call to Pond's front door can fail with.
#[derive(Debug, thiserror::Error)]
pub enum FlightSqlError {
    /// The coordinator's answer, a duckling's or the storage's failure included.
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// No valid credentials (missing, malformed or not matching). Never says why, so tokens
    /// cannot be probed.
    #[error("invalid or expired token")]
    Unauthenticated,
    /// A request Pond cannot use: bytes that do not decode (a command, a ticket, a handle, an
    /// action's body), an unknown action, an argument out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// A Flight data stream from the client (ingest, parameters) that does not decode.
    #[error(transparent)]
    Stream(#[from] FlightError),
    /// What Flight SQL allows and Pond does not do.
    #[error("{0}")]
    Unsupported(String),
    /// A refusal the coordinator did not make (a duckling serving another user).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A call that comes too early (a duckling not yet assigned its user).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The component doing the work is gone or stopping; a retry reaches a new one.
    #[error("{0}")]
    Unavailable(String),
    /// An answer that could not be built (Arrow encoding): a bug.
    #[error("{0}")]
    Internal(String),
    /// Arrow failed building an answer: a bug.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// A peer's status (a duckling's, the coordinator's), passed on as it is.
    #[error(transparent)]
    Peer(#[from] Status),
    /// A framed answer (see `pond_proto::frames`) that could not be compressed: a bug.
    #[error(transparent)]
    Frames(#[from] pond_proto::frames::FramesError),
}

impl From<DucklingError> for FlightSqlError {
    fn from(e: DucklingError) -> Self {
        Self::Coordinator(e.into())
    }
}

/// Shorthand for results at the edge.
pub type Result<T, E = FlightSqlError> = std::result::Result<T, E>;

impl From<FlightSqlError> for Status {
    fn from(e: FlightSqlError) -> Self {
        match e {
            FlightSqlError::Coordinator(e) => coordinator_status(e),
            FlightSqlError::Unauthenticated => Status::unauthenticated(e.to_string()),
            FlightSqlError::InvalidArgument(m) => Status::invalid_argument(m),
            FlightSqlError::Stream(FlightError::Tonic(s)) => *s,
            FlightSqlError::Stream(other) => Status::invalid_argument(other.to_string()),
            FlightSqlError::Unsupported(m) => Status::unimplemented(m),
            FlightSqlError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
            FlightSqlError::FailedPrecondition(m) => Status::failed_precondition(m),
            FlightSqlError::Unavailable(m) => Status::unavailable(m),
            FlightSqlError::Internal(_) | FlightSqlError::Arrow(_) | FlightSqlError::Frames(_) => {
                tracing::error!(error = %e, "internal error");
                Status::internal(e.to_string())
            }
            FlightSqlError::Peer(s) => s,
        }
    }
}

/// Runs a handler whose `?` yields [`FlightSqlError`]s, and answers with the status its failure
/// maps to: the shape of every gRPC method whose signature demands a [`Status`].
pub async fn answer<T>(handler: impl Future<Output = Result<T>>) -> Result<T, Status> {
    Ok(handler.await?)
}

fn coordinator_status(e: CoordinatorError) -> Status {
    match e {
        CoordinatorError::Unauthenticated => Status::unauthenticated(e.to_string()),
        CoordinatorError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        CoordinatorError::NotFound(m) => Status::not_found(m),
        CoordinatorError::AlreadyExists(m) => Status::already_exists(m),
        CoordinatorError::InvalidArgument(m) => Status::invalid_argument(m),
        CoordinatorError::Unimplemented(m) => Status::unimplemented(m),
        CoordinatorError::Cancelled(_) => Status::cancelled(e.to_string()),
        CoordinatorError::Timeout(m) => Status::deadline_exceeded(m),
        CoordinatorError::ResourceExhausted(m) => Status::resource_exhausted(m),
        CoordinatorError::Unavailable(m) => Status::unavailable(m),
        CoordinatorError::Duckling(d) => duckling_status(d),
        CoordinatorError::Io(_) | CoordinatorError::Internal(_) => {
            tracing::error!(error = %e, "internal error");
            Status::internal(e.to_string())
        }
    }
}

fn duckling_status(e: DucklingError) -> Status {
    match &e {
        DucklingError::Sql { kind, message } => match kind {
            SqlErrorKind::Interrupted => Status::cancelled(format!("query cancelled: {message}")),
            SqlErrorKind::Permission => Status::permission_denied(message.clone()),
            SqlErrorKind::OutOfMemory => Status::resource_exhausted(message.clone()),
            SqlErrorKind::Internal => Status::internal(message.clone()),
            SqlErrorKind::Io => io_status(message),
            _ => Status::invalid_argument(message.clone()),
        },
        DucklingError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        DucklingError::InvalidInput(m) => Status::invalid_argument(m.clone()),
        DucklingError::Arrow(_) => Status::invalid_argument(e.to_string()),
        DucklingError::Storage(s) => storage_status(s, &e),
        DucklingError::Io(_) | DucklingError::Internal(_) => {
            tracing::error!(error = %e, "duckling internal error");
            Status::internal(e.to_string())
        }
    }
}

/// A file or URL that could not be read or written, by what DuckDB says of it: the store
/// refused (PERMISSION_DENIED, with the store's message), the object or bucket is missing
/// (NOT_FOUND), the store could not be reached or failed (UNAVAILABLE: a retry may succeed).
/// A refusal or a failure on an `s3://` path says how a user gives Pond credentials.
fn io_status(message: &str) -> Status {
    let has = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
    let s3 = has(&["s3://", "amazonaws.com", "r2://", "gcs://", "gs://"]);
    let credentials = if s3 {
        " (the path may need a secret of yours: CREATE SECRET name IN POND (TYPE s3, KEY_ID '…', SECRET '…', \
         SCOPE 's3://bucket/'); SHOW SECRETS lists them)"
    } else {
        ""
    };
    if has(&[
        "HTTP 401",
        "HTTP 403",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ]) {
        Status::permission_denied(format!("{message}{credentials}"))
    } else if has(&["HTTP 404", "NoSuchKey", "NoSuchBucket", "No files found"]) {
        Status::not_found(message.to_string())
    } else if has(&[
        "Could not establish connection",
        "Could not connect",
        "Could not resolve",
        "Failure when receiving data from the peer",
        "Failure when sending data to the peer",
        "Connection refused",
        "Connection error",
        "HTTP 429",
        "HTTP 5",
        "SlowDown",
        "timed out",
        "Timeout",
    ]) {
        Status::unavailable(format!("{message}{credentials}"))
    } else {
        Status::invalid_argument(message.to_string())
    }
}

/// Storage: a missing snapshot is NOT_FOUND, corruption DATA_LOSS, a fenced writer ABORTED,
/// an unreachable store UNAVAILABLE (retry later).
fn storage_status(s: &pond_storage::StorageError, e: &DucklingError) -> Status {
    use pond_storage::StorageError as S;
    match s {
        S::NoSnapshot { .. } => Status::not_found(e.to_string()),
        S::Corrupt { .. } => {
            tracing::error!(error = %e, "corrupt snapshot");
            Status::data_loss(e.to_string())
        }
        S::Fenced { .. } => Status::aborted(e.to_string()),
        S::InvalidUrl { .. } => Status::invalid_argument(e.to_string()),
        S::Shared(inner) if matches!(**inner, S::Corrupt { .. }) => Status::data_loss(e.to_string()),
        _ => {
            tracing::warn!(error = %e, "storage unavailable");
            Status::unavailable(format!("snapshot storage failed, the commit is not acknowledged: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn status(e: impl Into<FlightSqlError>) -> Status {
        e.into().into()
    }

    #[test]
    fn a_remote_read_fails_with_the_status_its_cause_deserves() {
        let io = |message: &str| {
            status(CoordinatorError::Duckling(DucklingError::Sql {
                kind: SqlErrorKind::Io,
                message: message.into(),
            }))
        };
        let denied = io("HTTP Error: HTTP GET error on 'https://b.s3.amazonaws.com/x' (HTTP 403)");
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("CREATE SECRET name IN POND"));
        assert_eq!(
            io("IO Error: No files found that match the pattern \"s3://b/x\"").code(),
            Code::NotFound
        );
        assert_eq!(
            io("HTTP Error: HTTP HEAD error on 'http://h/b/403.parquet' (HTTP 404)").code(),
            Code::NotFound
        );
        let gone = io("IO Error: Could not connect to server error for HTTP GET to 'http://127.0.0.1:9/b/x'");
        assert_eq!(gone.code(), Code::Unavailable);
        assert!(!gone.message().contains("CREATE SECRET"));
        assert_eq!(io("HTTP Error: ... (HTTP 503)").code(), Code::Unavailable);
        assert_eq!(
            io("IO Error: Cannot open file \"x\": Is a directory").code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn every_credential_failure_reads_the_same() {
        let edge = status(FlightSqlError::Unauthenticated);
        let coordinator = status(CoordinatorError::Unauthenticated);
        for s in [edge, coordinator] {
            assert_eq!(s.code(), Code::Unauthenticated);
            assert_eq!(s.message(), "invalid or expired token");
        }
    }

    #[test]
    fn refusals_name_what_was_refused() {
        let edge = status(FlightSqlError::PermissionDenied(
            "this duckling serves another user".into(),
        ));
        let coordinator = status(CoordinatorError::PermissionDenied(
            "this duckling serves another user".into(),
        ));
        for s in [edge, coordinator] {
            assert_eq!(s.code(), Code::PermissionDenied);
            assert_eq!(s.message(), "permission denied: this duckling serves another user");
        }
    }

    #[test]
    fn sql_errors_carry_duckdbs_message() {
        let s = status(DucklingError::Sql {
            kind: SqlErrorKind::Catalog,
            message: "Catalog Error: Table with name nope does not exist!".into(),
        });
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "Catalog Error: Table with name nope does not exist!");
        let s = status(DucklingError::Sql {
            kind: SqlErrorKind::Interrupted,
            message: "INTERRUPT Error".into(),
        });
        assert_eq!(s.code(), Code::Cancelled);
    }

    #[test]
    fn peer_statuses_and_flight_statuses_pass_unchanged() {
        let s = status(Status::not_found("no such database"));
        assert_eq!((s.code(), s.message()), (Code::NotFound, "no such database"));
        let s = status(FlightError::Tonic(Box::new(Status::cancelled("client went away"))));
        assert_eq!((s.code(), s.message()), (Code::Cancelled, "client went away"));
        let s = status(FlightError::DecodeError("bad IPC".into()));
        assert_eq!(s.code(), Code::InvalidArgument);
    }
}
