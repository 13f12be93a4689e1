//! arrow-flight's `FlightSqlService` for [`PondFlightSql`]: the table of which room answers
//! which Flight SQL call. Each method hands its command to a function in its room and turns the
//! room's [`crate::FlightSqlError`] into a status with [`answer`] (or `?`); nothing else
//! happens here.

use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionEndSavepointRequest, ActionEndTransactionRequest, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use tonic::{Request, Response, Status, Streaming};

use super::{
    BoxStream, PondFlightSql, actions, cancel, catalog, handshake, ingest, keys, prepared, statements, transactions,
};
use crate::status::answer;

type Info = Result<Response<FlightInfo>, Status>;
type Data = Result<Response<BoxStream<FlightData>>, Status>;

#[tonic::async_trait]
impl FlightSqlService for PondFlightSql {
    type FlightService = PondFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        Ok(handshake::handshake(self, request.metadata())?)
    }

    // Statements and prepared statements.

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Info {
        answer(statements::flight_info(self, query, request)).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Info {
        answer(prepared::flight_info(self, cmd, request)).await
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, request: Request<Ticket>) -> Data {
        answer(statements::do_get(self, ticket, request)).await
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(statements::update(self, cmd, request)).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        answer(prepared::bind(cmd, request)).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(prepared::update(self, cmd, request)).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        answer(prepared::create(self, query, request)).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(prepared::close(query, request)?)
    }

    // Ingest.

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        answer(ingest::ingest(self, cmd, request)).await
    }

    // Catalog metadata.

    async fn get_flight_info_catalogs(&self, query: CommandGetCatalogs, request: Request<FlightDescriptor>) -> Info {
        Ok(catalog::catalogs_flight_info(query, request)?)
    }

    async fn do_get_catalogs(&self, query: CommandGetCatalogs, request: Request<Ticket>) -> Data {
        Ok(catalog::catalogs(self, query, request)?)
    }

    async fn get_flight_info_schemas(&self, query: CommandGetDbSchemas, request: Request<FlightDescriptor>) -> Info {
        Ok(catalog::schemas_flight_info(query, request)?)
    }

    async fn do_get_schemas(&self, query: CommandGetDbSchemas, request: Request<Ticket>) -> Data {
        answer(catalog::schemas(self, query, request)).await
    }

    async fn get_flight_info_tables(&self, query: CommandGetTables, request: Request<FlightDescriptor>) -> Info {
        Ok(catalog::tables_flight_info(query, request)?)
    }

    async fn do_get_tables(&self, query: CommandGetTables, request: Request<Ticket>) -> Data {
        answer(catalog::tables(self, query, request)).await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(catalog::table_types_flight_info(query, request)?)
    }

    async fn do_get_table_types(&self, query: CommandGetTableTypes, _request: Request<Ticket>) -> Data {
        Ok(catalog::table_types(query)?)
    }

    async fn get_flight_info_sql_info(&self, query: CommandGetSqlInfo, request: Request<FlightDescriptor>) -> Info {
        Ok(catalog::sql_info_flight_info(self, query, request)?)
    }

    async fn do_get_sql_info(&self, query: CommandGetSqlInfo, _request: Request<Ticket>) -> Data {
        Ok(catalog::sql_info(self, query)?)
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(catalog::xdbc_type_info_flight_info(self, query, request)?)
    }

    async fn do_get_xdbc_type_info(&self, query: CommandGetXdbcTypeInfo, _request: Request<Ticket>) -> Data {
        Ok(catalog::xdbc_type_info(self, query)?)
    }

    // Keys.

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(keys::primary_keys_flight_info(query, request)?)
    }

    async fn do_get_primary_keys(&self, query: CommandGetPrimaryKeys, request: Request<Ticket>) -> Data {
        answer(keys::primary_keys(self, query, request)).await
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(keys::foreign_keys_flight_info(query, request)?)
    }

    async fn do_get_exported_keys(&self, query: CommandGetExportedKeys, request: Request<Ticket>) -> Data {
        let referenced = (query.catalog, query.db_schema, query.table);
        answer(keys::foreign_keys(self, request, Some(referenced), None)).await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(keys::foreign_keys_flight_info(query, request)?)
    }

    async fn do_get_imported_keys(&self, query: CommandGetImportedKeys, request: Request<Ticket>) -> Data {
        let referencing = (query.catalog, query.db_schema, query.table);
        answer(keys::foreign_keys(self, request, None, Some(referencing))).await
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Info {
        Ok(keys::foreign_keys_flight_info(query, request)?)
    }

    async fn do_get_cross_reference(&self, query: CommandGetCrossReference, request: Request<Ticket>) -> Data {
        let referenced = (query.pk_catalog, query.pk_db_schema, query.pk_table);
        let referencing = (query.fk_catalog, query.fk_db_schema, query.fk_table);
        answer(keys::foreign_keys(self, request, Some(referenced), Some(referencing))).await
    }

    // Transactions and cancellation.

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        answer(transactions::begin(self, request)).await
    }

    async fn do_action_end_transaction(
        &self,
        query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        answer(transactions::end(self, query, request)).await
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        Err(transactions::no_savepoints().into())
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(transactions::no_savepoints().into())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        Ok(cancel::cancel_query(query, &request)?)
    }

    // Pond's own actions.

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxStream<arrow_flight::Result>>, Status> {
        answer(actions::run(self, request)).await
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(actions::list())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
