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
            _ => Status::invalid_argument(message.clone()),
        },
        DucklingError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        DucklingError::InvalidInput(m) => Status::invalid_argument(m.clone()),
        DucklingError::Arrow(_) => Status::invalid_argument(e.to_string()),
        DucklingError::Io(_) | DucklingError::Internal(_) => {
            tracing::error!(error = %e, "duckling internal error");
            Status::internal(e.to_string())
        }
    }
}

/// Shorthand: `.map_err(status)`.
pub fn status(e: impl Into<CoordinatorError>) -> Status {
    to_status(e.into())
}
