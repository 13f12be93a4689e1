//! The handshake: the one call that authenticates itself. It accepts `Basic user:token` (whose
//! user must be the token's) or `Bearer token`, and answers with the token, as payload and as
//! the `authorization` header clients then send.
//!
//! Invariant: every failed credential check is UNAUTHENTICATED "invalid or expired token",
//! whatever was wrong ([`FlightSqlError::Unauthenticated`], or the coordinator's own).

use arrow_flight::HandshakeResponse;
use base64::Engine;
use bytes::Bytes;
use tonic::Response;
use tonic::metadata::MetadataMap;

use super::{BoxStream, PondFlightSql};
use crate::status::{FlightSqlError, Result};

pub(super) fn handshake(
    service: &PondFlightSql,
    metadata: &MetadataMap,
) -> Result<Response<BoxStream<HandshakeResponse>>> {
    let token = token(service, metadata)?;
    let reply = HandshakeResponse {
        protocol_version: 0,
        payload: Bytes::from(token.clone()),
    };
    let mut response: Response<BoxStream<HandshakeResponse>> =
        Response::new(Box::pin(futures::stream::iter(vec![Ok(reply)])));
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| FlightSqlError::Internal("token is not a valid header value".into()))?;
    response.metadata_mut().insert("authorization", value);
    Ok(response)
}

/// The token a handshake's credentials prove.
fn token(service: &PondFlightSql, metadata: &MetadataMap) -> Result<String> {
    let header = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(basic) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) {
        let (user, token) = basic_credentials(basic).ok_or(FlightSqlError::Unauthenticated)?;
        if service.coordinator.authenticate(&token)?.user != user {
            return Err(FlightSqlError::Unauthenticated);
        }
        return Ok(token);
    }
    let token = crate::context::bearer(metadata).ok_or(FlightSqlError::Unauthenticated)?;
    service.coordinator.authenticate(&token)?;
    Ok(token)
}

/// The user and token of a handshake's `Basic` credentials, if they decode.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    // Clients differ on base64 padding (Go's ADBC driver omits it): accept both.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = String::from_utf8(lenient.decode(encoded.trim()).ok()?).ok()?;
    let (user, token) = decoded.split_once(':')?;
    Some((user.to_string(), token.to_string()))
}
