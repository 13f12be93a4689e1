//! Flight's session actions: SetSessionOptions, GetSessionOptions and CloseSession, on the
//! caller's session.
//!
//! Invariant: `catalog` and `schema` are the only options; SetSessionOptions reports an option
//! it cannot apply in its result instead of failing the call, as Flight specifies.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use pond_coordinator::Session;
use pond_proto::flight as session_pb;
use prost::Message;
use tonic::Request;

use super::{PondFlightSql, malformed};
use crate::context::context;
use crate::status::Result;

/// SetSessionOptions: its body and encoded result.
pub(super) async fn set<T>(service: &PondFlightSql, body: Bytes, request: &Request<T>) -> Result<Vec<u8>> {
    let req = session_pb::SetSessionOptionsRequest::decode(body)
        .map_err(|_| malformed("malformed SetSessionOptionsRequest"))?;
    let session = context(request)?.session()?;
    Ok(apply(service, &session, req).await.encode_to_vec())
}

/// GetSessionOptions: the encoded result.
pub(super) fn get<T>(request: &Request<T>) -> Result<Vec<u8>> {
    let session = context(request)?.session()?;
    let (db, schema) = session.current();
    let mut options = HashMap::new();
    options.insert("catalog".to_string(), string_value(&db));
    options.insert("schema".to_string(), string_value(schema.as_deref().unwrap_or("main")));
    Ok(session_pb::GetSessionOptionsResult {
        session_options: options,
    }
    .encode_to_vec())
}

/// CloseSession: the encoded result.
pub(super) fn close<T>(service: &PondFlightSql, request: &Request<T>) -> Result<Vec<u8>> {
    let session = context(request)?.session()?;
    service.coordinator.close_session(&session);
    // CloseSessionResult.Status: 1 = CLOSED.
    Ok(session_pb::CloseSessionResult { status: 1 }.encode_to_vec())
}

/// Applies SetSessionOptions: `catalog` and `schema` are the options Pond knows; any other,
/// or one the coordinator refuses, is reported in the result rather than failing the call.
async fn apply(
    service: &PondFlightSql,
    session: &Arc<Session>,
    req: session_pb::SetSessionOptionsRequest,
) -> session_pb::SetSessionOptionsResult {
    // SetSessionOptionsResult.ErrorValue: 1 = INVALID_NAME, 2 = INVALID_VALUE.
    let error = |value| session_pb::set_session_options_result::Error { value };
    let mut errors = HashMap::new();
    let mut catalog = None;
    let mut schema = None;
    for (name, value) in req.session_options {
        let text = match value.option_value {
            Some(session_pb::session_option_value::OptionValue::StringValue(s)) => Some(s),
            _ => None,
        };
        match (name.as_str(), text) {
            ("catalog", Some(v)) => catalog = Some(v),
            ("schema", Some(v)) => schema = Some(v),
            ("catalog" | "schema", None) => {
                errors.insert(name, error(2));
            }
            _ => {
                errors.insert(name, error(1));
            }
        }
    }
    if (catalog.is_some() || schema.is_some())
        && let Err(e) = service.coordinator.set_current(session, catalog, schema).await
    {
        tracing::debug!(error = %e, "SetSessionOptions refused");
        errors.insert("catalog".into(), error(2));
    }
    session_pb::SetSessionOptionsResult { errors }
}

fn string_value(v: &str) -> session_pb::SessionOptionValue {
    session_pb::SessionOptionValue {
        option_value: Some(session_pb::session_option_value::OptionValue::StringValue(
            v.to_string(),
        )),
    }
}
