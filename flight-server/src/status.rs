//! The one place where errors become gRPC statuses.

use pond_coordinator::CoordinatorError;
use pond_duckling::{DucklingError, SqlErrorKind};
use tonic::Status;

/// Maps a coordinator error to the status a Flight SQL client expects: SQL errors are
/// INVALID_ARGUMENT with DuckDB's message, refusals PERMISSION_DENIED, cancelled queries
/// CANCELLED, and missing features UNIMPLEMENTED (ADBC falls back on it).
pub fn to_status(e: CoordinatorError) -> Status {
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

/// A Flight decoding error (an ingest or parameter stream from the client) as a status.
pub fn flight_status(e: arrow_flight::error::FlightError) -> Status {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => *s,
        other => Status::invalid_argument(other.to_string()),
    }
}

fn duckling_status(e: DucklingError) -> Status {
    match &e {
        DucklingError::Sql { kind, message } => match kind {
            SqlErrorKind::Interrupted => Status::cancelled(format!("query cancelled: {message}")),
            SqlErrorKind::Permission => Status::permission_denied(message.clone()),
            SqlErrorKind::OutOfMemory => Status::resource_exhausted(message.clone()),
            SqlErrorKind::Internal => Status::internal(message.clone()),
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

/// Shorthand: `.map_err(status)`.
pub fn status(e: impl Into<CoordinatorError>) -> Status {
    to_status(e.into())
}
