//! The Flight SQL handlers: each one decodes a command, calls the coordinator, and encodes the
//! answer. No SQL semantics live here.
//!
//! [`PondFlightSql`] implements arrow-flight's `FlightSqlService` in `flight_sql.rs`, where each
//! method is a line into the room that does its job:
//! - `handshake.rs`: the credentials a handshake proves and the bearer token it answers with;
//! - `statements.rs`: queries and updates: a statement's FlightInfo (inline result or ticket),
//!   DoGet, and the schema a command would produce (GetSchema);
//! - `prepared.rs`: prepared statements: create, bind parameters, plan, run updates, close;
//! - `catalog.rs`: catalogs, schemas, tables, table types, SqlInfo and XDBC type info;
//! - `keys.rs`: primary keys, and foreign keys from either side or both;
//! - `transactions.rs`: begin and end, and the savepoints DuckDB lacks;
//! - `actions.rs`: the Flight actions beyond Flight SQL's own, listed and dispatched;
//! - `sessions.rs`: session options (catalog, schema) and closing a session;
//! - `cancel.rs`: cancelling the query a FlightInfo names;
//! - `ingest.rs`: bulk ingest over DoPut.
//!
//! Invariants:
//! - Every room fails with a [`FlightSqlError`]; the trait methods hand it to
//!   [`crate::status::answer`] (or `?`), so `status.rs` stays the one place a status is built.
//! - A handle a client sends (transaction, prepared statement, ticket) is resolved through the
//!   caller's context, which checks that it belongs to the caller.

mod actions;
mod cancel;
mod catalog;
mod flight_sql;
mod handshake;
mod ingest;
mod keys;
mod prepared;
mod sessions;
mod statements;
mod transactions;

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::ProstMessageExt;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::{Stream, TryStreamExt};
use pond_coordinator::{Coordinator, Session};
use pond_proto::frames;
use prost::Message;
use tonic::{Request, Response, Status};

pub use actions::{CANCEL_FLIGHT_INFO, CLOSE_SESSION, GET_SESSION_OPTIONS, PLAN_DUAL_QUERY, SET_SESSION_OPTIONS};

use crate::context::context;
use crate::encode;
use crate::status::{FlightSqlError, Result};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight SQL service.
pub struct PondFlightSql {
    coordinator: Arc<Coordinator>,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
}

impl PondFlightSql {
    /// Builds the service; computes SqlInfo and XDBC type info once.
    pub fn new(coordinator: Arc<Coordinator>) -> Result<Self> {
        Ok(Self {
            coordinator,
            sql_info: crate::metadata::sql_info()?,
            xdbc: crate::metadata::xdbc_type_info()?,
        })
    }

    /// The coordinator behind the service.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// The session a command runs in, and its transaction: the transaction's session when the
    /// command names one, the caller's otherwise.
    fn session_for<T>(
        &self,
        request: &Request<T>,
        transaction: Option<&[u8]>,
    ) -> Result<(Arc<Session>, Option<String>)> {
        let ctx = context(request)?;
        match transaction {
            Some(t) if !t.is_empty() => {
                let id = utf8(t, "transaction id")?;
                Ok((ctx.session_of(&id)?, Some(id)))
            }
            _ => Ok((ctx.session()?, None)),
        }
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(&format!("{what} is not valid UTF-8")))
}

/// A request the client sent that Pond cannot use: bytes that do not decode, a missing field.
fn malformed(what: &str) -> FlightSqlError {
    FlightSqlError::InvalidArgument(what.to_string())
}

/// Decodes a DoPut stream (parameters or ingest data), framed or not ([`frames`]). Messages
/// that carry only the flight descriptor (no IPC header) are skipped: clients send one to name
/// the command before, or instead of, any data.
fn decode_put(stream: PeekableFlightDataStream) -> FlightRecordBatchStream {
    let data = frames::unframe(stream.map_err(FlightError::from), crate::MAX_MESSAGE_BYTES)
        .try_filter(|fd| futures::future::ready(!fd.data_header.is_empty()));
    FlightRecordBatchStream::new_from_flight_data(data)
}

/// The FlightInfo of a metadata command: its schema, and a ticket that is the command itself,
/// so DoGet runs it.
fn metadata_info(
    command: impl ProstMessageExt,
    schema: &Schema,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
    Ok(Response::new(
        FlightInfo::new()
            .try_with_schema(schema)?
            .with_endpoint(endpoint)
            .with_descriptor(request.into_inner()),
    ))
}

/// A metadata answer: one batch, streamed as Flight data.
fn one_batch(batch: RecordBatch) -> Result<Response<BoxStream<FlightData>>> {
    let schema = batch.schema();
    Ok(Response::new(Box::pin(encode::flight_stream(
        schema,
        futures::stream::once(futures::future::ready(Ok(batch))),
    ))))
}

#[cfg(test)]
mod tests {
    use arrow_flight::CancelFlightInfoRequest;
    use arrow_flight::sql::Any;
    use pond_proto::flight as session_pb;
    use pond_proto::pond::QueryTicket;

    use super::*;
    use crate::service::statements::decode_ticket;

    proptest::proptest! {
        /// Fuzz the decoding of what clients send: tickets, commands, actions' bodies. Garbage
        /// is an error, never a panic.
        #[test]
        fn decoding_client_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_ticket(&bytes);
            if let Ok(any) = Any::decode(bytes.as_slice()) {
                let _ = arrow_flight::sql::Command::try_from(any);
            }
            let _ = session_pb::SetSessionOptionsRequest::decode(bytes.as_slice());
            let _ = CancelFlightInfoRequest::decode(bytes.as_slice());
            let _ = FlightInfo::decode(bytes.as_slice()).map(|i| i.try_decode_schema());
        }

        /// A ticket round-trips.
        #[test]
        fn tickets_round_trip(session in "[a-f0-9]{32}", n in 0u64..1_000_000) {
            let t = QueryTicket { session_id: session.clone(), query_id: format!("{session}.q{n}") };
            proptest::prop_assert_eq!(decode_ticket(&t.encode_to_vec()).unwrap(), t);
        }
    }
}
