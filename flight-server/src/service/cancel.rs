//! Cancelling a query: Flight SQL's CancelQuery action and Flight's CancelFlightInfo both name
//! the query by the FlightInfo it was planned with.
//!
//! Invariant: a cancel interrupts only the queries its FlightInfo's tickets name, and only in
//! sessions the caller owns; tickets of other sessions are ignored, not reported.

use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, Any, TicketStatementQuery};
use arrow_flight::{CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo};
use bytes::Bytes;
use prost::Message;
use tonic::Request;

use super::malformed;
use super::statements::decode_ticket;
use crate::context::context;
use crate::status::Result;

/// Flight SQL's CancelQuery.
pub(super) fn cancel_query<T>(
    query: ActionCancelQueryRequest,
    request: &Request<T>,
) -> Result<ActionCancelQueryResult> {
    let info = FlightInfo::decode(query.info).map_err(|_| malformed("malformed FlightInfo"))?;
    let cancelled = cancel(request, &info)?;
    // CancelResult: 1 = CANCELLED, 3 = NOT_CANCELLABLE.
    Ok(ActionCancelQueryResult {
        result: if cancelled { 1 } else { 3 },
    })
}

/// Flight's CancelFlightInfo action: its body and encoded result.
pub(super) fn cancel_flight_info<T>(body: Bytes, request: &Request<T>) -> Result<Vec<u8>> {
    let req = CancelFlightInfoRequest::decode(body).map_err(|_| malformed("malformed CancelFlightInfoRequest"))?;
    let info = req
        .info
        .ok_or_else(|| malformed("CancelFlightInfo needs a FlightInfo"))?;
    let status = if cancel(request, &info)? {
        CancelStatus::Cancelled
    } else {
        CancelStatus::NotCancellable
    };
    Ok(CancelFlightInfoResult { status: status as i32 }.encode_to_vec())
}

/// Cancels the query a FlightInfo names; whether there was anything to cancel.
fn cancel<T>(request: &Request<T>, info: &FlightInfo) -> Result<bool> {
    let ctx = context(request)?;
    let mut cancelled = false;
    for endpoint in &info.endpoint {
        let Some(ticket) = &endpoint.ticket else { continue };
        let Ok(any) = Any::decode(ticket.ticket.clone()) else {
            continue;
        };
        let Ok(Some(t)) = any.unpack::<TicketStatementQuery>() else {
            continue;
        };
        let qt = decode_ticket(&t.statement_handle)?;
        if let Ok(session) = ctx.session_of(&qt.session_id) {
            cancelled |= session.cancel(&qt.query_id);
        }
    }
    Ok(cancelled)
}
