//! The Flight SQL handlers: each one decodes a command, calls the coordinator, and encodes the
//! answer. No SQL semantics live here.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionEndSavepointRequest, ActionEndTransactionRequest, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, EndTransaction, ProstMessageExt, SqlInfo, TableExistsOption, TableNotExistOption,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use pond_coordinator::{
    Coordinator, IfExists, IfNotExists, IngestChunk, IngestTarget, KeyColumn, MAX_INLINE_BYTES, Planned, PlannedResult,
    QueryStream, Session, TableFilter,
};
use pond_proto::flight as session_pb;
use pond_proto::pond::QueryTicket;
use prost::Message;
use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::context::context;
use crate::encode::{self, Dictionaries, announced_schema};
use crate::status::{FlightSqlError, Result, answer};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Names of the Flight actions handled beyond Flight SQL's own.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
pub const CLOSE_SESSION: &str = "CloseSession";
/// Pond's dual-execution planning action: body and result are `pond.dual.v1` messages.
pub const PLAN_DUAL_QUERY: &str = "PlanDualQuery";

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

fn schema_bytes(schema: &Schema) -> Result<Bytes> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| FlightSqlError::Internal(format!("could not encode a schema: {e}")))?;
    Ok(bytes)
}

/// The FlightInfo of a planned statement. An inline result whose encoding is larger than
/// `inline_limit` (hydrated dictionaries can make it so) is parked for DoGet instead.
fn statement_info(
    planned: Planned,
    session: &Session,
    descriptor: FlightDescriptor,
    inline_limit: Option<u64>,
    dictionaries: Dictionaries,
) -> Result<FlightInfo> {
    let schema = announced_schema(&planned.schema, dictionaries);
    let info = FlightInfo::new()
        .try_with_schema(&schema)?
        .with_descriptor(descriptor)
        .with_ordered(true);
    let query_id = match planned.result {
        PlannedResult::Parked(query_id) => query_id,
        PlannedResult::Inline(batches) => {
            let encoded = inline_result(&Arc::new(schema), &batches)?;
            let limit = inline_limit.unwrap_or(0).min(MAX_INLINE_BYTES);
            if encoded.len() as u64 <= limit {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                return Ok(info.with_total_records(rows as i64).with_app_metadata(encoded));
            }
            session.park_result(planned.schema, batches)
        }
    };
    let ticket = TicketStatementQuery {
        statement_handle: QueryTicket {
            session_id: session.id().to_string(),
            query_id,
        }
        .encode_to_vec()
        .into(),
    };
    Ok(info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()))))
}

/// A whole result as `app_metadata`: [`pond_proto::inline::MAGIC`], then an Arrow IPC stream
/// of the announced schema, as DoGet would have sent it.
fn inline_result(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let mut out = pond_proto::inline::MAGIC.to_vec();
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

fn metadata_info(command: impl ProstMessageExt, schema: &Schema, descriptor: FlightDescriptor) -> Result<FlightInfo> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor))
}

/// Encodes a coordinator result stream as Flight data. The stream owns the [`QueryStream`], so
/// a client that goes away (or whose deadline passes) interrupts the query.
fn query_stream(q: QueryStream, dictionaries: Dictionaries) -> BoxStream<arrow_flight::FlightData> {
    let schema = Arc::new(announced_schema(&q.schema, dictionaries));
    let batches = futures::stream::unfold(q, |mut q| async move {
        let next = q.next().await?;
        Some((next.map_err(FlightSqlError::from), q))
    });
    Box::pin(encode::flight_stream(schema, batches))
}

/// A metadata answer: one batch, streamed as Flight data.
fn one_batch(batch: RecordBatch) -> Result<Response<BoxStream<arrow_flight::FlightData>>> {
    let schema = batch.schema();
    Ok(Response::new(Box::pin(encode::flight_stream(
        schema,
        futures::stream::once(futures::future::ready(Ok(batch))),
    ))))
}

fn keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from(it.collect::<Vec<_>>()))
}

fn opt_strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from(it.collect::<Vec<_>>()))
}

fn keys_batch(keys: &[KeyColumn]) -> Result<RecordBatch> {
    // DuckDB enforces foreign keys as RESTRICT (NO ACTION) on update and delete: rule 3.
    let rules: ArrayRef = Arc::new(UInt8Array::from(vec![3u8; keys.len()]));
    Ok(RecordBatch::try_new(
        keys_schema(),
        vec![
            strings(keys.iter().map(|k| k.pk_catalog.as_str())),
            strings(keys.iter().map(|k| k.pk_schema.as_str())),
            strings(keys.iter().map(|k| k.pk_table.as_str())),
            strings(keys.iter().map(|k| k.pk_column.as_str())),
            strings(keys.iter().map(|k| k.fk_catalog.as_str())),
            strings(keys.iter().map(|k| k.fk_schema.as_str())),
            strings(keys.iter().map(|k| k.fk_table.as_str())),
            strings(keys.iter().map(|k| k.fk_column.as_str())),
            Arc::new(Int32Array::from(
                keys.iter().map(|k| k.key_sequence).collect::<Vec<_>>(),
            )),
            opt_strings(keys.iter().map(|k| k.fk_name.as_deref())),
            opt_strings(keys.iter().map(|k| k.pk_name.as_deref())),
            Arc::clone(&rules),
            rules,
        ],
    )?)
}

/// Reads parameter rows (or ingest data) from a DoPut stream into one batch.
/// Decodes a DoPut stream. Messages that carry only the flight descriptor (no IPC header) are
/// skipped: clients send one to name the command before, or instead of, any data.
fn decode_put(stream: PeekableFlightDataStream) -> FlightRecordBatchStream {
    let data = stream
        .try_filter(|fd| futures::future::ready(!fd.data_header.is_empty()))
        .map_err(FlightError::from);
    FlightRecordBatchStream::new_from_flight_data(data)
}

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

/// A request the client sent that Pond cannot use: bytes that do not decode, a missing field.
fn malformed(what: &str) -> FlightSqlError {
    FlightSqlError::InvalidArgument(what.to_string())
}

fn decode_ticket(handle: &[u8]) -> Result<QueryTicket> {
    QueryTicket::decode(handle).map_err(|_| malformed("malformed statement ticket"))
}

fn no_savepoints() -> FlightSqlError {
    FlightSqlError::Unsupported("DuckDB does not support savepoints".into())
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

fn session_value(v: &str) -> session_pb::SessionOptionValue {
    session_pb::SessionOptionValue {
        option_value: Some(session_pb::session_option_value::OptionValue::StringValue(
            v.to_string(),
        )),
    }
}

#[tonic::async_trait]
impl FlightSqlService for PondFlightSql {
    type FlightService = PondFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let token = self.handshake_token(request.metadata())?;
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

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        answer(async move {
            let (session, txn) = self.session_for(&request, query.transaction_id.as_deref())?;
            let inline = inline_limit(&request);
            let dictionaries = Dictionaries::of(&request);
            let planned = self
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
        })
        .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        answer(async move {
            let handle = utf8(&cmd.prepared_statement_handle, "prepared statement handle")?;
            let session = context(&request)?.session_of(&handle)?;
            let dictionaries = Dictionaries::of(&request);
            let planned = self.coordinator.plan_prepared(&session, &handle).await?;
            Ok(Response::new(statement_info(
                planned,
                &session,
                request.into_inner(),
                None,
                dictionaries,
            )?))
        })
        .await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.sql_info.schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(metadata_info(
            query,
            &primary_keys_schema(),
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(metadata_info(
            query,
            &keys_schema(),
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(metadata_info(
            query,
            &keys_schema(),
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(metadata_info(
            query,
            &keys_schema(),
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.xdbc.schema();
        Ok(Response::new(metadata_info(query, &schema, request.into_inner())?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let t = decode_ticket(&ticket.statement_handle)?;
            let session = context(&request)?.session_of(&t.session_id)?;
            let stream = self.coordinator.stream(&session, &t.query_id)?;
            Ok(Response::new(query_stream(stream, Dictionaries::of(&request))))
        })
        .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let ctx = context(&request)?;
            let mut b = query.into_builder();
            for c in self.coordinator.catalogs(&ctx.principal)? {
                b.append(c);
            }
            one_batch(b.build()?)
        })
        .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let rows = self
                .coordinator
                .schemas(&session, query.catalog.clone(), query.db_schema_filter_pattern.clone())
                .await?;
            let mut b = query.into_builder();
            for (c, s) in rows {
                b.append(c, s);
            }
            one_batch(b.build()?)
        })
        .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let filter = TableFilter {
                catalog: query.catalog.clone(),
                schema_pattern: query.db_schema_filter_pattern.clone(),
                table_pattern: query.table_name_filter_pattern.clone(),
                table_types: query.table_types.clone(),
                include_schema: query.include_schema,
            };
            let tables = self.coordinator.tables(&session, filter).await?;
            let mut b = query.into_builder();
            let empty = Schema::empty();
            for t in &tables {
                b.append(
                    &t.catalog,
                    &t.schema,
                    &t.name,
                    &t.table_type,
                    t.arrow_schema.as_ref().unwrap_or(&empty),
                )?;
            }
            one_batch(b.build()?)
        })
        .await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let mut b = query.into_builder();
            for t in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
                b.append(t);
            }
            one_batch(b.build()?)
        })
        .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move { one_batch(query.into_builder(&self.sql_info).build()?) }).await
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let keys = self
                .coordinator
                .keys(
                    &session,
                    true,
                    Some((query.catalog, query.db_schema, query.table)),
                    None,
                )
                .await?;
            let batch = RecordBatch::try_new(
                primary_keys_schema(),
                vec![
                    strings(keys.iter().map(|k| k.pk_catalog.as_str())),
                    strings(keys.iter().map(|k| k.pk_schema.as_str())),
                    strings(keys.iter().map(|k| k.pk_table.as_str())),
                    strings(keys.iter().map(|k| k.pk_column.as_str())),
                    opt_strings(keys.iter().map(|k| k.pk_name.as_deref())),
                    Arc::new(Int32Array::from(
                        keys.iter().map(|k| k.key_sequence).collect::<Vec<_>>(),
                    )),
                ],
            )?;
            one_batch(batch)
        })
        .await
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let keys = self
                .coordinator
                .keys(
                    &session,
                    false,
                    Some((query.catalog, query.db_schema, query.table)),
                    None,
                )
                .await?;
            one_batch(keys_batch(&keys)?)
        })
        .await
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let keys = self
                .coordinator
                .keys(
                    &session,
                    false,
                    None,
                    Some((query.catalog, query.db_schema, query.table)),
                )
                .await?;
            one_batch(keys_batch(&keys)?)
        })
        .await
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let keys = self
                .coordinator
                .keys(
                    &session,
                    false,
                    Some((query.pk_catalog, query.pk_db_schema, query.pk_table)),
                    Some((query.fk_catalog, query.fk_db_schema, query.fk_table)),
                )
                .await?;
            one_batch(keys_batch(&keys)?)
        })
        .await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        answer(async move { one_batch(query.into_builder(&self.xdbc).build()?) }).await
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(async move {
            let (session, txn) = self.session_for(&request, cmd.transaction_id.as_deref())?;
            Ok(self
                .coordinator
                .execute_update(&session, &cmd.query, txn.as_deref())
                .await?)
        })
        .await
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(self.ingest(cmd, request)).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        answer(async move {
            let handle = utf8(&cmd.prepared_statement_handle, "prepared statement handle")?;
            let session = context(&request)?.session_of(&handle)?;
            let (schema, batches) = read_batches(request.into_inner()).await?;
            session.bind(&handle, concat(schema, batches)?)?;
            Ok(DoPutPreparedStatementResult {
                prepared_statement_handle: Some(cmd.prepared_statement_handle),
            })
        })
        .await
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(async move {
            let handle = utf8(&cmd.prepared_statement_handle, "prepared statement handle")?;
            let session = context(&request)?.session_of(&handle)?;
            let (schema, batches) = read_batches(request.into_inner()).await?;
            if let Some(params) = concat(schema, batches)? {
                session.bind(&handle, Some(params))?;
            }
            Ok(self.coordinator.execute_prepared_update(&session, &handle).await?)
        })
        .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        answer(async move {
            let (session, txn) = self.session_for(&request, query.transaction_id.as_deref())?;
            let info = self.coordinator.prepare(&session, &query.query, txn.as_deref()).await?;
            Ok(ActionCreatePreparedStatementResult {
                prepared_statement_handle: Bytes::from(info.handle),
                dataset_schema: schema_bytes(&announced_schema(&info.dataset_schema, Dictionaries::of(&request)))?,
                parameter_schema: schema_bytes(&info.parameter_schema)?,
            })
        })
        .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let handle = utf8(&query.prepared_statement_handle, "prepared statement handle")?;
        if let Ok(session) = context(&request)?.session_of(&handle) {
            session.close_prepared(&handle);
        }
        Ok(())
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        answer(async move {
            let session = context(&request)?.session()?;
            let id = self.coordinator.begin(&session).await?;
            Ok(ActionBeginTransactionResult {
                transaction_id: Bytes::from(id),
            })
        })
        .await
    }

    async fn do_action_end_transaction(
        &self,
        query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        answer(async move {
            let id = utf8(&query.transaction_id, "transaction id")?;
            let session = context(&request)?.session_of(&id)?;
            let commit = match EndTransaction::try_from(query.action) {
                Ok(EndTransaction::Commit) => true,
                Ok(EndTransaction::Rollback) => false,
                _ => return Err(malformed("EndTransaction needs COMMIT or ROLLBACK")),
            };
            Ok(self.coordinator.end(&session, &id, commit).await?)
        })
        .await
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        Err(no_savepoints().into())
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(no_savepoints().into())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info).map_err(|_| malformed("malformed FlightInfo"))?;
        let cancelled = self.cancel(&request, &info)?;
        // CancelResult: 1 = CANCELLED, 3 = NOT_CANCELLABLE.
        Ok(ActionCancelQueryResult {
            result: if cancelled { 1 } else { 3 },
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxStream<arrow_flight::Result>>, Status> {
        answer(async move {
            let body = request.get_ref().body.clone();
            let reply = |bytes: Vec<u8>| -> Response<BoxStream<arrow_flight::Result>> {
                Response::new(Box::pin(futures::stream::iter(vec![Ok(arrow_flight::Result {
                    body: bytes.into(),
                })])))
            };
            match request.get_ref().r#type.as_str() {
                CANCEL_FLIGHT_INFO => {
                    let req = CancelFlightInfoRequest::decode(body)
                        .map_err(|_| malformed("malformed CancelFlightInfoRequest"))?;
                    let info = req
                        .info
                        .ok_or_else(|| malformed("CancelFlightInfo needs a FlightInfo"))?;
                    let cancelled = self.cancel(&request, &info)?;
                    let status = if cancelled {
                        CancelStatus::Cancelled
                    } else {
                        CancelStatus::NotCancellable
                    };
                    Ok(reply(CancelFlightInfoResult { status: status as i32 }.encode_to_vec()))
                }
                SET_SESSION_OPTIONS => {
                    let req = session_pb::SetSessionOptionsRequest::decode(body)
                        .map_err(|_| malformed("malformed SetSessionOptionsRequest"))?;
                    let session = context(&request)?.session()?;
                    let result = self.set_session_options(&session, req).await;
                    Ok(reply(result.encode_to_vec()))
                }
                GET_SESSION_OPTIONS => {
                    let session = context(&request)?.session()?;
                    let (db, schema) = session.current();
                    let mut options = std::collections::HashMap::new();
                    options.insert("catalog".to_string(), session_value(&db));
                    options.insert("schema".to_string(), session_value(schema.as_deref().unwrap_or("main")));
                    Ok(reply(
                        session_pb::GetSessionOptionsResult {
                            session_options: options,
                        }
                        .encode_to_vec(),
                    ))
                }
                CLOSE_SESSION => {
                    let session = context(&request)?.session()?;
                    self.coordinator.close_session(&session);
                    // CloseSessionResult.Status: 1 = CLOSED.
                    Ok(reply(session_pb::CloseSessionResult { status: 1 }.encode_to_vec()))
                }
                PLAN_DUAL_QUERY => {
                    let req =
                        pond_proto::dual::PlanRequest::decode(body).map_err(|_| malformed("malformed PlanRequest"))?;
                    let session = context(&request)?.session()?;
                    let plan = self.coordinator.plan_dual(&session, req).await?;
                    Ok(reply(plan.encode_to_vec()))
                }
                other => Err(FlightSqlError::Unsupported(format!(
                    "action {other:?} is not supported"
                ))),
            }
        })
        .await
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
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
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl PondFlightSql {
    /// Ingests a DoPut stream into a table. The stream is handed to the coordinator batch by
    /// batch and ends with an explicit end marker, so a stream that fails rolls back.
    async fn ingest(&self, cmd: CommandStatementIngest, request: Request<PeekableFlightDataStream>) -> Result<i64> {
        let (session, transaction) = self.session_for(&request, cmd.transaction_id.as_deref())?;
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
        let target = IngestTarget {
            table: cmd.table,
            schema: cmd.schema,
            catalog: cmd.catalog,
            temporary: cmd.temporary,
            if_not_exists,
            if_exists,
            transaction,
        };
        let mut decoded = decode_put(request.into_inner());
        let first = decoded.next().await.transpose()?;
        let schema = decoded
            .schema()
            .cloned()
            .ok_or_else(|| malformed("ingest stream has no schema"))?;
        let (tx, rx) = mpsc::channel(4);
        let coordinator = Arc::clone(&self.coordinator);
        // If this call is dropped (client gone), `tx` goes without an End and the ingest rolls
        // back; the task itself finishes on its own.
        let task = tokio::spawn(async move { coordinator.ingest(&session, target, schema, rx).await });
        let mut next = first.map(Ok);
        loop {
            let item = match next.take() {
                Some(item) => Some(item),
                None => decoded.next().await,
            };
            let chunk = match item {
                Some(Ok(b)) => IngestChunk::Batch(b),
                Some(Err(e)) => {
                    drop(tx);
                    let _ = task.await;
                    return Err(e.into());
                }
                None => IngestChunk::End,
            };
            let end = matches!(chunk, IngestChunk::End);
            if tx.send(chunk).await.is_err() || end {
                break;
            }
        }
        drop(tx);
        Ok(task
            .await
            .map_err(|e| FlightSqlError::Internal(format!("ingest task failed: {e}")))??)
    }

    /// Applies SetSessionOptions: `catalog` and `schema` are the options Pond knows; any other,
    /// or one the coordinator refuses, is reported in the result rather than failing the call.
    async fn set_session_options(
        &self,
        session: &Arc<Session>,
        req: session_pb::SetSessionOptionsRequest,
    ) -> session_pb::SetSessionOptionsResult {
        // SetSessionOptionsResult.ErrorValue: 1 = INVALID_NAME, 2 = INVALID_VALUE.
        let error = |value| session_pb::set_session_options_result::Error { value };
        let mut errors = std::collections::HashMap::new();
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
            && let Err(e) = self.coordinator.set_current(session, catalog, schema).await
        {
            tracing::debug!(error = %e, "SetSessionOptions refused");
            errors.insert("catalog".into(), error(2));
        }
        session_pb::SetSessionOptionsResult { errors }
    }

    /// The token a handshake's credentials prove: `Basic user:token`, whose user must be the
    /// token's, or `Bearer token`.
    fn handshake_token(&self, metadata: &MetadataMap) -> Result<String> {
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(FlightSqlError::Unauthenticated)?;
        if let Some(basic) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) {
            let (user, token) = basic_credentials(basic).ok_or(FlightSqlError::Unauthenticated)?;
            if self.coordinator.authenticate(&token)?.user != user {
                return Err(FlightSqlError::Unauthenticated);
            }
            return Ok(token);
        }
        let token = crate::context::bearer(metadata).ok_or(FlightSqlError::Unauthenticated)?;
        self.coordinator.authenticate(&token)?;
        Ok(token)
    }

    /// Cancels the query a FlightInfo names; whether there was anything to cancel.
    fn cancel<T>(&self, request: &Request<T>, info: &FlightInfo) -> Result<bool> {
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

    /// The schema a command would produce, without running anything (GetSchema).
    pub async fn schema_of(&self, request: Request<FlightDescriptor>) -> Result<Schema> {
        let any = Any::decode(request.get_ref().cmd.clone()).map_err(|_| malformed("malformed command"))?;
        if let Ok(Some(cmd)) = any.unpack::<CommandPreparedStatementQuery>() {
            let handle = utf8(&cmd.prepared_statement_handle, "prepared statement handle")?;
            let session = context(&request)?.session_of(&handle)?;
            let stmt = session.prepared(&handle)?;
            return Ok(announced_schema(&stmt.dataset_schema, Dictionaries::of(&request)));
        }
        if let Ok(Some(cmd)) = any.unpack::<CommandStatementQuery>() {
            // Prepare without running, then forget the statement.
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

#[cfg(test)]
mod tests {
    use super::*;

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
