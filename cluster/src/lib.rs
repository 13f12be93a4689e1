//! Ducklings as processes: the coordinator↔duckling protocol, the duckling pool and the
//! Flight proxy.
//!
//! `pond serve --ducklings process` (or `remote`) runs a coordinator whose front door is a
//! [`proxy::Proxy`]: it authenticates the client's token, picks the user's duckling from the
//! [`pool::Pool`] (spawning a `pond duckling` child, or assigning a registered remote one),
//! and forwards the Flight SQL call to it, streaming the answer back as it comes. A duckling
//! process ([`worker`]) is a full Pond Flight SQL server for one user whose catalog is its
//! coordinator's ([`remote_catalog`]), so every statement behaves as in the in-process mode.
//!
//! The protocol is in `proto/proto/cluster.proto`; it rides on Arrow Flight actions
//! ([`protocol`]).
//!
//! Invariants:
//! - **One user per duckling.** A duckling is assigned one user and refuses calls for any
//!   other; the coordinator answers its catalog requests only for that user.
//! - **One writer per database.** Only a user's primary duckling attaches databases
//!   writable; a replacement opens them with a higher storage epoch, which fences the old one
//!   (`pond-storage`). Read replicas attach snapshots.
//! - **A lost duckling fails only its running calls**, with UNAVAILABLE; the next call
//!   reaches a new duckling, and committed data is in object storage before it was
//!   acknowledged.
//! - **Advertised addresses are routable**: never an unspecified address such as 0.0.0.0.
//! - **Cluster traffic is as private as the front door**: behind a TLS front door,
//!   coordinator and ducklings verify each other with certificates of the cluster CA
//!   ([`tls`]), which only holders of the cluster secret can issue.
//! - **Errors answer as the front door's do.** A [`ClusterError`] becomes a status only by
//!   converting into the front door's `FlightSqlError` ([`error`]); a duckling's own status
//!   passes through the proxy unchanged, unless the duckling died (then UNAVAILABLE).

pub mod error;
pub mod pool;
pub mod protocol;
pub mod proxy;
pub mod remote_catalog;
pub mod tls;
pub mod worker;

use arrow_flight::flight_service_client::FlightServiceClient;
use tonic::transport::{Channel, Endpoint};

pub use error::{ClusterError, Result};
pub use pool::{DucklingMode, Endpoints, Pool, PoolConfig};
pub use protocol::ClusterKey;
pub use proxy::Proxy;
pub use tls::ClusterTls;
pub use worker::{DucklingKey, WorkerConfig, WorkerTls, run_duckling};

pub(crate) use pond_flight_server::context::bearer;

/// The header naming the duckling behind a cluster action.
pub const DUCKLING_ID_HEADER: &str = "x-pond-duckling";

/// A Flight client with Pond's message limits.
pub(crate) fn flight_client(channel: Channel) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(channel)
        .max_decoding_message_size(pond_flight_server::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(pond_flight_server::MAX_MESSAGE_BYTES)
}

/// A lazily connecting channel to `grpc://host:port`, `grpc+tls://host:port` or `host:port`:
/// over TLS when `tls` is given (then the scheme says nothing).
pub(crate) fn channel(address: &str, tls: Option<tonic::transport::ClientTlsConfig>) -> Result<Channel> {
    let address = address.trim_start_matches("grpc+tls://").trim_start_matches("grpc://");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(|e| ClusterError::Config(format!("invalid address {address}: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .http2_keep_alive_interval(std::time::Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| ClusterError::Config(format!("TLS to {address}: {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

/// Sets `authorization: Bearer <token>`, the only credential the call then carries: a token
/// the client sent under Pond's own header ([`pond_proto::token`]) goes no further.
pub(crate) fn set_bearer(metadata: &mut tonic::metadata::MetadataMap, token: &str) -> Result<()> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| ClusterError::Protocol("a token is not a valid header value".into()))?;
    metadata.insert("authorization", value);
    metadata.remove(pond_proto::token::HEADER);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forwarded call carries one credential: the client's, under either header, is replaced.
    #[test]
    fn set_bearer_leaves_only_its_token() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", "Bearer client".parse().unwrap());
        metadata.insert(pond_proto::token::HEADER, "client".parse().unwrap());
        set_bearer(&mut metadata, "cluster").unwrap();
        assert_eq!(metadata.get(pond_proto::token::HEADER), None);
        assert_eq!(bearer(&metadata).as_deref(), Some("cluster"));
        assert_eq!(metadata.get_all("authorization").iter().count(), 1);
    }
}
