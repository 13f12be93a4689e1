//! The cluster's error type. It becomes a gRPC status through the front door's edge
//! ([`pond_flight_server::status`]), never here.

use pond_coordinator::CoordinatorError;
use pond_flight_server::FlightSqlError;

/// Everything cluster calls can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A peer without a valid cluster token.
    #[error("invalid or expired token")]
    Unauthenticated,
    /// Bad settings (secret, addresses).
    #[error("{0}")]
    Config(String),
    /// The cluster is set up so that the call cannot be served (coordinators of one catalog
    /// with different cluster keys).
    #[error("{0}")]
    Misconfigured(String),
    /// A message that does not decode, or an unexpected answer.
    #[error("{0}")]
    Protocol(String),
    /// No duckling can take the work now, or the one doing it stopped.
    #[error("{0}")]
    Unavailable(String),
    /// A duckling asked for something outside its user, or a user called another's duckling.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A user call reached a duckling before its user was assigned.
    #[error("this duckling has no user assigned yet")]
    Unassigned,
    /// The coordinator's own answer (catalog operations).
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// The front door's own failure (starting a duckling's Flight SQL service).
    #[error(transparent)]
    FrontDoor(#[from] FlightSqlError),
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

/// The cluster's errors cross the same edge as the front door's, so a client is told the same
/// in every mode; a peer's status passes on unchanged.
impl From<ClusterError> for FlightSqlError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unauthenticated => FlightSqlError::Unauthenticated,
            ClusterError::Config(m) | ClusterError::Protocol(m) => FlightSqlError::InvalidArgument(m),
            ClusterError::Unavailable(m) => FlightSqlError::Unavailable(m),
            ClusterError::PermissionDenied(m) => FlightSqlError::PermissionDenied(m),
            ClusterError::Unassigned => FlightSqlError::FailedPrecondition(e.to_string()),
            ClusterError::Misconfigured(m) => FlightSqlError::FailedPrecondition(m),
            ClusterError::Coordinator(e) => FlightSqlError::Coordinator(e),
            ClusterError::FrontDoor(e) => e,
            ClusterError::Rpc(s) => FlightSqlError::Peer(s),
            ClusterError::Transport(_) | ClusterError::Io(_) => FlightSqlError::Unavailable(e.to_string()),
        }
    }
}

/// Lets `?` answer a gRPC call with a cluster error; the status itself is built at the edge.
impl From<ClusterError> for tonic::Status {
    fn from(e: ClusterError) -> Self {
        FlightSqlError::from(e).into()
    }
}
