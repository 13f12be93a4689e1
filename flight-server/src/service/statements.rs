//! Queries and updates: a statement's FlightInfo (its whole result inline when small enough, a
//! ticket for DoGet otherwise), the DoGet stream, updates, and the schema a command would
//! produce (GetSchema).
//!
//! Invariants:
//! - The FlightInfo's schema, an inline result's and the DoGet stream's are all
//!   [`announced_schema`] of the planned schema, for the caller's [`Dictionaries`]. A FlightInfo
//!   with an inline result carries its schema in the result's IPC stream only, and no
//!   descriptor (the client that asked sent it).
//! - A ticket names its session and query; DoGet and cancel find the session through the
//!   caller's context, so a ticket only works for its owner.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    Any, CommandPreparedStatementQuery, CommandStatementQuery, CommandStatementUpdate, ProstMessageExt,
    TicketStatementQuery,
};
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use bytes::Bytes;
use futures::TryStreamExt;
use pond_coordinator::{MAX_INLINE_BYTES, Planned, PlannedResult, QueryStream, Session};
use pond_proto::frames;
use pond_proto::pond::QueryTicket;
use prost::Message;
use tonic::{Request, Response, Status};

use super::{BoxStream, PondFlightSql, malformed, prepared};
use crate::context::context;
use crate::encode::{self, Dictionaries, announced_schema};
use crate::status::{FlightSqlError, Result};

/// GetFlightInfo for a statement: plans it, and answers with its result or a ticket.
pub(super) async fn flight_info(
    service: &PondFlightSql,
    query: CommandStatementQuery,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let (session, txn) = service.session_for(&request, query.transaction_id.as_deref())?;
    let inline = inline_limit(&request);
    let dictionaries = Dictionaries::of(&request);
    let planned = service
        .coordinator
        .plan_statement(&session, &query.query, txn.as_deref(), inline)
        .await?;
    Ok(Response::new(statement_info(
        planned,
        &session,
        request.into_inner(),
        inline,
        dictionaries,
    )?))
}

/// The FlightInfo of a planned statement. An inline result whose encoding is larger than
/// `inline_limit` (hydrated dictionaries can make it so) is parked for DoGet instead.
pub(super) fn statement_info(
    planned: Planned,
    session: &Session,
    descriptor: FlightDescriptor,
    inline_limit: Option<u64>,
    dictionaries: Dictionaries,
) -> Result<FlightInfo> {
    let schema = Arc::new(announced_schema(&planned.schema, dictionaries));
    let info = FlightInfo::new().with_ordered(true);
    let query_id = match planned.result {
        PlannedResult::Parked(query_id) => query_id,
        PlannedResult::Inline(batches) => {
            let encoded = inline_result(&schema, &batches)?;
            let limit = inline_limit.unwrap_or(0).min(MAX_INLINE_BYTES);
            if encoded.len() as u64 <= limit {
                // The IPC stream starts with the schema, and the client that asked knows its
                // command: the FlightInfo repeats neither.
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                return Ok(info.with_total_records(rows as i64).with_app_metadata(encoded));
            }
            session.park_result(planned.schema, batches)
        }
    };
    Ok(info
        .try_with_schema(&schema)?
        .with_descriptor(descriptor)
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket(session, query_id))))
}

/// A whole result as `app_metadata`: [`pond_proto::inline::MAGIC`], then an Arrow IPC stream
/// of the announced schema, as DoGet would have sent it.
fn inline_result(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let mut out = pond_proto::inline::MAGIC.to_vec();
    // DuckDB hands a selective scan's rows over in as many chunks as threads found some; each
    // IPC message costs hundreds of bytes of header and padding, so a small result goes as one.
    let coalesced = match batches {
        [first, _, ..] => Some(
            arrow::compute::concat_batches(&first.schema(), batches)
                .map_err(|e| FlightSqlError::Internal(format!("coalescing an inline result: {e}")))?,
        ),
        _ => None,
    };
    let batches = coalesced.as_ref().map_or(batches, std::slice::from_ref);
    encode::ipc_stream(schema, batches, &mut out)
        .map_err(|e| FlightSqlError::Internal(format!("encoding an inline result: {e}")))?;
    Ok(out.into())
}

/// The inline limit a GetFlightInfo asks for with [`pond_proto::inline::REQUEST_HEADER`].
fn inline_limit<T>(request: &Request<T>) -> Option<u64> {
    request
        .metadata()
        .get(pond_proto::inline::REQUEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The ticket DoGet redeems for the result `query_id` parked in `session`.
fn ticket(session: &Session, query_id: String) -> Ticket {
    let ticket = TicketStatementQuery {
        statement_handle: QueryTicket {
            session_id: session.id().to_string(),
            query_id,
        }
        .encode_to_vec()
        .into(),
    };
    Ticket::new(ticket.as_any().encode_to_vec())
}

pub(super) fn decode_ticket(handle: &[u8]) -> Result<QueryTicket> {
    QueryTicket::decode(handle).map_err(|_| malformed("malformed statement ticket"))
}

/// DoGet for a statement's ticket: streams the result.
pub(super) async fn do_get(
    service: &PondFlightSql,
    ticket: TicketStatementQuery,
    request: Request<Ticket>,
) -> Result<Response<BoxStream<FlightData>>> {
    let t = decode_ticket(&ticket.statement_handle)?;
    let session = context(&request)?.session_of(&t.session_id)?;
    let stream = service.coordinator.stream(&session, &t.query_id)?;
    let stream = query_stream(stream, Dictionaries::of(&request));
    if !asks_for_frames(&request) {
        return Ok(Response::new(stream));
    }
    let framed = frames::frame(stream.map_err(FlightSqlError::from)).map_err(Status::from);
    let mut response = Response::new(Box::pin(framed) as BoxStream<FlightData>);
    response.metadata_mut().insert(
        frames::HEADER,
        tonic::metadata::MetadataValue::from_static(frames::ZSTD),
    );
    Ok(response)
}

/// Whether the caller asked for its answer framed in one zstd stream (Pond's client over a
/// slow link; see [`pond_proto::frames`]).
fn asks_for_frames<T>(request: &Request<T>) -> bool {
    request
        .metadata()
        .get(frames::HEADER)
        .is_some_and(|v| v.as_bytes() == frames::ZSTD.as_bytes())
}

/// Encodes a coordinator result stream as Flight data. The stream owns the [`QueryStream`], so
/// a client that goes away (or whose deadline passes) interrupts the query.
fn query_stream(q: QueryStream, dictionaries: Dictionaries) -> BoxStream<FlightData> {
    let schema = Arc::new(announced_schema(&q.schema, dictionaries));
    let batches = futures::stream::unfold(q, |mut q| async move {
        let next = q.next().await?;
        Some((next.map_err(FlightSqlError::from), q))
    });
    Box::pin(encode::flight_stream(schema, batches))
}

/// DoPut for an update: runs it, and answers with the rows it changed.
pub(super) async fn update(
    service: &PondFlightSql,
    cmd: CommandStatementUpdate,
    request: Request<PeekableFlightDataStream>,
) -> Result<i64> {
    let (session, txn) = service.session_for(&request, cmd.transaction_id.as_deref())?;
    Ok(service
        .coordinator
        .execute_update(&session, &cmd.query, txn.as_deref())
        .await?)
}

impl PondFlightSql {
    /// The schema a command would produce, without running anything (GetSchema).
    pub async fn schema_of(&self, request: Request<FlightDescriptor>) -> Result<Schema> {
        let any = Any::decode(request.get_ref().cmd.clone()).map_err(|_| malformed("malformed command"))?;
        if let Ok(Some(cmd)) = any.unpack::<CommandPreparedStatementQuery>() {
            let (handle, session) = prepared::owner(&request, &cmd.prepared_statement_handle)?;
            let stmt = session.prepared(&handle)?;
            return Ok(announced_schema(&stmt.dataset_schema, Dictionaries::of(&request)));
        }
        if let Ok(Some(cmd)) = any.unpack::<CommandStatementQuery>() {
            // Prepare (a script is at most rehearsed, and rolled back), then forget the statement.
            let (session, txn) = self.session_for(&request, cmd.transaction_id.as_deref())?;
            let info = self.coordinator.prepare(&session, &cmd.query, txn.as_deref()).await?;
            session.close_prepared(&info.handle);
            return Ok(announced_schema(&info.dataset_schema, Dictionaries::of(&request)));
        }
        // Metadata commands: their FlightInfo carries the schema and runs nothing.
        let info = <Self as FlightService>::get_flight_info(self, request)
            .await?
            .into_inner();
        Ok(info.try_decode_schema()?)
    }
}
