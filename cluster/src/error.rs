//! The cluster's error type, mapped to gRPC statuses in one place ([`ClusterError::into_status`]).

use pond_coordinator::CoordinatorError;

/// Everything cluster calls can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A peer without a valid cluster token.
    #[error("invalid or expired token")]
    Unauthenticated,
    /// Bad settings (secret, addresses).
    #[error("{0}")]
    Config(String),
    /// A message that does not decode, or an unexpected answer.
    #[error("{0}")]
    Protocol(String),
    /// No duckling can take the work now, or the one doing it stopped.
    #[error("{0}")]
    Unavailable(String),
    /// A duckling asked for something outside its user.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The coordinator's own answer (catalog operations).
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// A call to a peer failed.
    #[error("{0}")]
    Rpc(#[from] tonic::Status),
    /// Connecting to a peer failed.
    #[error("cannot reach the peer: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for cluster results.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

impl ClusterError {
    /// The status a client or peer gets.
    pub fn into_status(self) -> tonic::Status {
        match self {
            ClusterError::Unauthenticated => tonic::Status::unauthenticated(self.to_string()),
            ClusterError::Config(m) | ClusterError::Protocol(m) => tonic::Status::invalid_argument(m),
            ClusterError::Unavailable(m) => tonic::Status::unavailable(m),
            ClusterError::PermissionDenied(_) => tonic::Status::permission_denied(self.to_string()),
            ClusterError::Coordinator(e) => pond_flight_server::status::to_status(e),
            ClusterError::Rpc(s) => s,
            ClusterError::Transport(_) | ClusterError::Io(_) => tonic::Status::unavailable(self.to_string()),
        }
    }
}
