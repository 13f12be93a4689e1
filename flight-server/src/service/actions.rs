//! The Flight actions Pond handles beyond Flight SQL's own: listed for ListActions, and
//! dispatched by name to the room that does each.
//!
//! Invariant: every action answers with exactly one result message; an unknown action is
//! UNIMPLEMENTED.

use arrow_flight::{Action, ActionType};
use bytes::Bytes;
use prost::Message;
use tonic::{Request, Response, Status};

use super::{BoxStream, PondFlightSql, cancel, malformed, sessions};
use crate::context::context;
use crate::status::{FlightSqlError, Result};

/// Names of the Flight actions handled beyond Flight SQL's own.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
pub const CLOSE_SESSION: &str = "CloseSession";
/// Pond's dual-execution planning action: body and result are `pond.dual.v1` messages.
pub const PLAN_DUAL_QUERY: &str = "PlanDualQuery";

/// Runs the action `request` names, and answers with its one result.
pub(super) async fn run(
    service: &PondFlightSql,
    request: Request<Action>,
) -> Result<Response<BoxStream<arrow_flight::Result>>> {
    let body = request.get_ref().body.clone();
    let reply = match request.get_ref().r#type.as_str() {
        CANCEL_FLIGHT_INFO => cancel::cancel_flight_info(body, &request)?,
        SET_SESSION_OPTIONS => sessions::set(service, body, &request).await?,
        GET_SESSION_OPTIONS => sessions::get(&request)?,
        CLOSE_SESSION => sessions::close(service, &request)?,
        PLAN_DUAL_QUERY => plan_dual_query(service, body, &request).await?,
        other => {
            return Err(FlightSqlError::Unsupported(format!(
                "action {other:?} is not supported"
            )));
        }
    };
    Ok(Response::new(Box::pin(futures::stream::iter(vec![Ok(
        arrow_flight::Result { body: reply.into() },
    )]))))
}

/// PlanDualQuery: the coordinator's plan of a query over local and cloud relations.
async fn plan_dual_query(service: &PondFlightSql, body: Bytes, request: &Request<Action>) -> Result<Vec<u8>> {
    let req = pond_proto::dual::PlanRequest::decode(body).map_err(|_| malformed("malformed PlanRequest"))?;
    let session = context(request)?.session()?;
    let plan = service.coordinator.plan_dual(&session, req).await?;
    Ok(plan.encode_to_vec())
}

/// The actions ListActions names beyond Flight SQL's own.
pub(super) fn list() -> Vec<Result<ActionType, Status>> {
    let action = |name: &str, description: &str| {
        Ok(ActionType {
            r#type: name.to_string(),
            description: description.to_string(),
        })
    };
    vec![
        action(
            CANCEL_FLIGHT_INFO,
            "Cancels a running or planned query.\nRequest: CancelFlightInfoRequest\nResponse: CancelFlightInfoResult",
        ),
        action(
            SET_SESSION_OPTIONS,
            "Sets session options (catalog, schema).\nRequest: SetSessionOptionsRequest\nResponse: SetSessionOptionsResult",
        ),
        action(
            GET_SESSION_OPTIONS,
            "Gets session options.\nRequest: GetSessionOptionsRequest\nResponse: GetSessionOptionsResult",
        ),
        action(
            CLOSE_SESSION,
            "Closes the session.\nRequest: CloseSessionRequest\nResponse: CloseSessionResult",
        ),
        action(
            PLAN_DUAL_QUERY,
            "Plans a query over local and cloud relations (dual execution).\nRequest: pond.dual.v1.PlanRequest\nResponse: pond.dual.v1.Plan",
        ),
    ]
}
