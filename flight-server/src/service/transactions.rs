//! Transactions: BeginTransaction and EndTransaction, and the savepoints DuckDB does not have.
//!
//! Invariant: a transaction id resolves only in its owner's session; statements that name it
//! run in that session (see `PondFlightSql::session_for`).

use arrow_flight::Action;
use arrow_flight::sql::{ActionBeginTransactionResult, ActionEndTransactionRequest, EndTransaction};
use bytes::Bytes;
use tonic::Request;

use super::{PondFlightSql, malformed, utf8};
use crate::context::context;
use crate::status::{FlightSqlError, Result};

pub(super) async fn begin(service: &PondFlightSql, request: Request<Action>) -> Result<ActionBeginTransactionResult> {
    let session = context(&request)?.session()?;
    let id = service.coordinator.begin(&session).await?;
    Ok(ActionBeginTransactionResult {
        transaction_id: Bytes::from(id),
    })
}

/// Commits or rolls back the transaction the request names.
pub(super) async fn end(
    service: &PondFlightSql,
    query: ActionEndTransactionRequest,
    request: Request<Action>,
) -> Result<()> {
    let id = utf8(&query.transaction_id, "transaction id")?;
    let session = context(&request)?.session_of(&id)?;
    let commit = match EndTransaction::try_from(query.action) {
        Ok(EndTransaction::Commit) => true,
        Ok(EndTransaction::Rollback) => false,
        _ => return Err(malformed("EndTransaction needs COMMIT or ROLLBACK")),
    };
    Ok(service.coordinator.end(&session, &id, commit).await?)
}

/// What BeginSavepoint and EndSavepoint answer.
pub(super) fn no_savepoints() -> FlightSqlError {
    FlightSqlError::Unsupported("DuckDB does not support savepoints".into())
}
