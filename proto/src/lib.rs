//! Pond's own protobuf messages, compiled at build time by protox (no system `protoc`).
//!
//! - [`flight`]: Flight RPC session-option messages that arrow-flight does not generate.
//! - [`pond`]: Pond's internal messages, such as the ticket that names a parked query.
//! - [`storage`]: snapshot manifests and block-map pages, as stored in object storage.
//! - [`cluster`]: the coordinator↔duckling protocol (carried by Arrow Flight actions).
//! - [`dual`]: dual execution's planning request and plan (the `PlanDualQuery` action).
//! - [`frames`]: a Flight data stream compressed as one zstd stream (Pond's client over a slow
//!   link).
//!
//! ```
//! use prost::Message;
//! let t = pond_proto::pond::QueryTicket { session_id: "s".into(), query_id: "s.q1".into() };
//! let bytes = t.encode_to_vec();
//! assert_eq!(pond_proto::pond::QueryTicket::decode(bytes.as_slice()).unwrap(), t);
//! ```

/// Flight RPC session options (package `arrow.flight.protocol`).
pub mod flight {
    include!(concat!(env!("OUT_DIR"), "/arrow.flight.protocol.rs"));
}

/// Pond's messages (package `pond.v1`).
pub mod pond {
    include!(concat!(env!("OUT_DIR"), "/pond.v1.rs"));
}

/// Differential storage's manifests and pages (package `pond.storage.v1`).
pub mod storage {
    include!(concat!(env!("OUT_DIR"), "/pond.storage.v1.rs"));
}

/// The coordinator↔duckling protocol (package `pond.cluster.v1`).
pub mod cluster {
    include!(concat!(env!("OUT_DIR"), "/pond.cluster.v1.rs"));

    /// Names a secret's options, never their values.
    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Secret")
                .field("name", &self.name)
                .field("secret_type", &self.secret_type)
                .field("scope", &self.scope)
                .field("options", &self.options.keys().collect::<Vec<_>>())
                .finish()
        }
    }
}

pub mod frames;

/// The largest gRPC message a Pond server accepts or sends (ingest batches, large result
/// batches), and so the largest message a framed stream may carry either way.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Dual execution's plan request and plan (package `pond.dual.v1`).
pub mod dual {
    include!(concat!(env!("OUT_DIR"), "/pond.dual.v1.rs"));
}

/// Pond's client sends its bearer token under [`token::HEADER`] instead of `authorization`.
///
/// The HTTP/2 implementation under tonic (h2) never adds an `authorization` or `cookie` value
/// to HPACK's table, so a standard client resends its whole token (about 230 bytes) on every
/// call: more than the answer of a point query. A header of another name is indexed when first
/// sent and then costs a byte or two, while it stays in the connection's 4 KiB table. Indexing
/// a high-entropy token is safe (RFC 7541, section 7.1: an attacker learns an indexed value only
/// by guessing all of it, and Pond's client sends no header value derived from user input).
/// The server takes `authorization: Bearer …` first and this header only without it, so a call
/// is judged by one credential everywhere; standard clients are unaffected.
///
/// ```
/// assert!(pond_proto::token::HEADER.starts_with("x-pond-"));
/// ```
pub mod token {
    /// The request header that carries a bearer token, without the `Bearer ` scheme.
    pub const HEADER: &str = "x-pond-token";
}

/// Results inline in a FlightInfo: Pond's one-round-trip query, for clients that ask.
///
/// A standard Flight SQL query takes two round trips: GetFlightInfo, then DoGet. A client
/// that sends [`REQUEST_HEADER`](inline::REQUEST_HEADER) with GetFlightInfo
/// (CommandStatementQuery), giving the most bytes it accepts, may receive the whole result in
/// the FlightInfo's `app_metadata`: [`MAGIC`](inline::MAGIC) followed by an Arrow IPC stream.
/// Such a FlightInfo has no endpoints, no schema of its own (the stream starts with it) and
/// no descriptor (the client sent it).
/// Clients that do not ask see standard Flight SQL.
///
/// ```
/// assert!(pond_proto::inline::MAGIC.starts_with(b"POND"));
/// ```
pub mod inline {
    /// The GetFlightInfo request header that asks for an inline result, valued in bytes.
    pub const REQUEST_HEADER: &str = "x-pond-inline-limit";
    /// How an inline result's `app_metadata` starts; an Arrow IPC stream follows.
    pub const MAGIC: &[u8] = b"POND-INLINE-IPC/1\n";
}
