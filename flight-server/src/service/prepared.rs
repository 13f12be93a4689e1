//! Prepared statements: create one (its result and parameter schemas), bind parameters sent by
//! DoPut, plan it for DoGet, run it as an update, close it.
//!
//! Invariants:
//! - A handle resolves only in its owner's session (through the caller's context).
//! - The dataset schema a client is told at creation is [`announced_schema`] of DuckDB's, as
//!   every FlightInfo of the statement will be.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, DoPutPreparedStatementResult,
};
use arrow_flight::{Action, FlightDescriptor, FlightInfo, IpcMessage, SchemaAsIpc};
use bytes::Bytes;
use futures::StreamExt;
use pond_coordinator::Session;
use tonic::{Request, Response};

use super::{PondFlightSql, decode_put, malformed, statements, utf8};
use crate::context::context;
use crate::encode::{Dictionaries, announced_schema};
use crate::status::{FlightSqlError, Result};

/// A prepared statement's handle, and the caller's session that holds it.
pub(super) fn owner<T>(request: &Request<T>, handle: &[u8]) -> Result<(String, Arc<Session>)> {
    let handle = utf8(handle, "prepared statement handle")?;
    let session = context(request)?.session_of(&handle)?;
    Ok((handle, session))
}

/// CreatePreparedStatement: prepares the query in the command's session and transaction.
pub(super) async fn create(
    service: &PondFlightSql,
    query: ActionCreatePreparedStatementRequest,
    request: Request<Action>,
) -> Result<ActionCreatePreparedStatementResult> {
    let (session, txn) = service.session_for(&request, query.transaction_id.as_deref())?;
    let info = service
        .coordinator
        .prepare(&session, &query.query, txn.as_deref())
        .await?;
    Ok(ActionCreatePreparedStatementResult {
        prepared_statement_handle: Bytes::from(info.handle),
        dataset_schema: schema_bytes(&announced_schema(&info.dataset_schema, Dictionaries::of(&request)))?,
        parameter_schema: schema_bytes(&info.parameter_schema)?,
    })
}

fn schema_bytes(schema: &Schema) -> Result<Bytes> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| FlightSqlError::Internal(format!("could not encode a schema: {e}")))?;
    Ok(bytes)
}

/// ClosePreparedStatement. Closing a handle the caller cannot see is not an error: there is
/// nothing left to close.
pub(super) fn close(query: ActionClosePreparedStatementRequest, request: Request<Action>) -> Result<()> {
    let handle = utf8(&query.prepared_statement_handle, "prepared statement handle")?;
    if let Ok(session) = context(&request)?.session_of(&handle) {
        session.close_prepared(&handle);
    }
    Ok(())
}

/// GetFlightInfo for a prepared query: plans it with its bound parameters.
pub(super) async fn flight_info(
    service: &PondFlightSql,
    cmd: CommandPreparedStatementQuery,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let (handle, session) = owner(&request, &cmd.prepared_statement_handle)?;
    let dictionaries = Dictionaries::of(&request);
    let planned = service.coordinator.plan_prepared(&session, &handle).await?;
    Ok(Response::new(statements::statement_info(
        planned,
        &session,
        request.into_inner(),
        None,
        dictionaries,
    )?))
}

/// DoPut for a prepared query: binds the parameter rows (or none) for the next run.
pub(super) async fn bind(
    cmd: CommandPreparedStatementQuery,
    request: Request<PeekableFlightDataStream>,
) -> Result<DoPutPreparedStatementResult> {
    let (handle, session) = owner(&request, &cmd.prepared_statement_handle)?;
    let (schema, batches) = read_batches(request.into_inner()).await?;
    session.bind(&handle, concat(schema, batches)?)?;
    Ok(DoPutPreparedStatementResult {
        prepared_statement_handle: Some(cmd.prepared_statement_handle),
    })
}

/// DoPut for a prepared update: binds the parameter rows sent, if any, and runs it.
pub(super) async fn update(
    service: &PondFlightSql,
    cmd: CommandPreparedStatementUpdate,
    request: Request<PeekableFlightDataStream>,
) -> Result<i64> {
    let (handle, session) = owner(&request, &cmd.prepared_statement_handle)?;
    let (schema, batches) = read_batches(request.into_inner()).await?;
    if let Some(params) = concat(schema, batches)? {
        session.bind(&handle, Some(params))?;
    }
    Ok(service.coordinator.execute_prepared_update(&session, &handle).await?)
}

/// Reads the parameter rows of a DoPut stream.
async fn read_batches(stream: PeekableFlightDataStream) -> Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
    let mut decoded = decode_put(stream);
    let mut batches = Vec::new();
    while let Some(b) = decoded.next().await {
        batches.push(b?);
    }
    Ok((decoded.schema().cloned(), batches))
}

/// Joins parameter batches into one. Batches without columns bind nothing: the JDBC driver
/// sends one for statements that have no parameters.
fn concat(schema: Option<SchemaRef>, mut batches: Vec<RecordBatch>) -> Result<Option<RecordBatch>> {
    batches.retain(|b| b.num_columns() > 0);
    match (schema, batches.len()) {
        (_, 0) => Ok(None),
        (_, 1) => Ok(batches.into_iter().next()),
        (Some(s), _) => arrow::compute::concat_batches(&s, &batches)
            .map(Some)
            .map_err(|e| FlightSqlError::InvalidArgument(e.to_string())),
        (None, _) => Err(malformed("parameter batches without a schema")),
    }
}
