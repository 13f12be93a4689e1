//! Bulk ingest over DoPut: the stream's batches go to the coordinator as they arrive.
//!
//! Invariant: ingest is all or nothing. The stream is handed to the coordinator batch by batch
//! and ends with an explicit end marker; a stream that fails or stops without it (client error,
//! disconnect, this call dropped) rolls back.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use futures::StreamExt;
use pond_coordinator::{IfExists, IfNotExists, IngestChunk, IngestTarget};
use tokio::sync::mpsc;
use tonic::Request;

use super::{PondFlightSql, decode_put, malformed};
use crate::status::{FlightSqlError, Result};

/// Ingests a DoPut stream into the table `cmd` names; the rows ingested.
pub(super) async fn ingest(
    service: &PondFlightSql,
    cmd: CommandStatementIngest,
    request: Request<PeekableFlightDataStream>,
) -> Result<i64> {
    let (session, transaction) = service.session_for(&request, cmd.transaction_id.as_deref())?;
    let target = target(cmd, transaction);
    let mut decoded = decode_put(request.into_inner());
    let first = decoded.next().await.transpose()?;
    let schema = decoded
        .schema()
        .cloned()
        .ok_or_else(|| malformed("ingest stream has no schema"))?;
    let (tx, rx) = mpsc::channel(4);
    let coordinator = Arc::clone(&service.coordinator);
    // If this call is dropped (client gone), `tx` goes without an End and the ingest rolls
    // back; the task itself finishes on its own.
    let task = tokio::spawn(async move { coordinator.ingest(&session, target, schema, rx).await });
    if let Err(e) = forward(first, &mut decoded, &tx).await {
        drop(tx);
        let _ = task.await;
        return Err(e.into());
    }
    drop(tx);
    Ok(task
        .await
        .map_err(|e| FlightSqlError::Internal(format!("ingest task failed: {e}")))??)
}

/// Where the rows go, and what to do when the table exists or does not.
fn target(cmd: CommandStatementIngest, transaction: Option<String>) -> IngestTarget {
    let opts = cmd.table_definition_options.unwrap_or_default();
    let if_not_exists = match TableNotExistOption::try_from(opts.if_not_exist) {
        Ok(TableNotExistOption::Fail) => IfNotExists::Fail,
        _ => IfNotExists::Create,
    };
    let if_exists = match TableExistsOption::try_from(opts.if_exists) {
        Ok(TableExistsOption::Append) => IfExists::Append,
        Ok(TableExistsOption::Replace) => IfExists::Replace,
        _ => IfExists::Fail,
    };
    IngestTarget {
        table: cmd.table,
        schema: cmd.schema,
        catalog: cmd.catalog,
        temporary: cmd.temporary,
        if_not_exists,
        if_exists,
        transaction,
    }
}

/// Sends `first`, then the stream's other batches, then the end marker, until the coordinator
/// stops listening. A batch that does not decode is returned, and no end marker is sent.
async fn forward(
    first: Option<RecordBatch>,
    decoded: &mut FlightRecordBatchStream,
    tx: &mpsc::Sender<IngestChunk>,
) -> Result<(), FlightError> {
    let mut next = first.map(Ok);
    loop {
        let item = match next.take() {
            Some(item) => Some(item),
            None => decoded.next().await,
        };
        let chunk = match item {
            Some(Ok(b)) => IngestChunk::Batch(b),
            Some(Err(e)) => return Err(e),
            None => IngestChunk::End,
        };
        let end = matches!(chunk, IngestChunk::End);
        if tx.send(chunk).await.is_err() || end {
            return Ok(());
        }
    }
}
