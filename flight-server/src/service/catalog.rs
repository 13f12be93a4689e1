//! Catalog metadata: catalogs, schemas, tables, table types, SqlInfo and XDBC type info. Each
//! command's FlightInfo carries its schema and a ticket that is the command itself; DoGet asks
//! the coordinator and answers with one batch.
//!
//! Invariant: a caller sees only the catalogs the coordinator lists for them.

use arrow::datatypes::Schema;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo,
};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo, Ticket};
use pond_coordinator::TableFilter;
use tonic::{Request, Response};

use super::{BoxStream, PondFlightSql, metadata_info, one_batch};
use crate::context::context;
use crate::status::Result;

/// The table types DuckDB has, as GetTableTypes lists them.
const TABLE_TYPES: [&str; 3] = ["LOCAL TEMPORARY", "TABLE", "VIEW"];

type Batches = Result<Response<BoxStream<FlightData>>>;

pub(super) fn catalogs_flight_info(
    query: CommandGetCatalogs,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let schema = query.into_builder().schema();
    metadata_info(query, &schema, request)
}

pub(super) fn catalogs(service: &PondFlightSql, query: CommandGetCatalogs, request: Request<Ticket>) -> Batches {
    let ctx = context(&request)?;
    let mut b = query.into_builder();
    for c in service.coordinator.catalogs(&ctx.principal)? {
        b.append(c);
    }
    one_batch(b.build()?)
}

pub(super) fn schemas_flight_info(
    query: CommandGetDbSchemas,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let schema = query.clone().into_builder().schema();
    metadata_info(query, &schema, request)
}

pub(super) async fn schemas(service: &PondFlightSql, query: CommandGetDbSchemas, request: Request<Ticket>) -> Batches {
    let session = context(&request)?.session()?;
    let rows = service
        .coordinator
        .schemas(&session, query.catalog.clone(), query.db_schema_filter_pattern.clone())
        .await?;
    let mut b = query.into_builder();
    for (c, s) in rows {
        b.append(c, s);
    }
    one_batch(b.build()?)
}

pub(super) fn tables_flight_info(
    query: CommandGetTables,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let schema = query.clone().into_builder().schema();
    metadata_info(query, &schema, request)
}

pub(super) async fn tables(service: &PondFlightSql, query: CommandGetTables, request: Request<Ticket>) -> Batches {
    let session = context(&request)?.session()?;
    let filter = TableFilter {
        catalog: query.catalog.clone(),
        schema_pattern: query.db_schema_filter_pattern.clone(),
        table_pattern: query.table_name_filter_pattern.clone(),
        table_types: query.table_types.clone(),
        include_schema: query.include_schema,
    };
    let tables = service.coordinator.tables(&session, filter).await?;
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
}

pub(super) fn table_types_flight_info(
    query: CommandGetTableTypes,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    let schema = query.into_builder().schema();
    metadata_info(query, &schema, request)
}

pub(super) fn table_types(query: CommandGetTableTypes) -> Batches {
    let mut b = query.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    one_batch(b.build()?)
}

pub(super) fn sql_info_flight_info(
    service: &PondFlightSql,
    query: CommandGetSqlInfo,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    metadata_info(query, &service.sql_info.schema(), request)
}

pub(super) fn sql_info(service: &PondFlightSql, query: CommandGetSqlInfo) -> Batches {
    one_batch(query.into_builder(&service.sql_info).build()?)
}

pub(super) fn xdbc_type_info_flight_info(
    service: &PondFlightSql,
    query: CommandGetXdbcTypeInfo,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    metadata_info(query, &service.xdbc.schema(), request)
}

pub(super) fn xdbc_type_info(service: &PondFlightSql, query: CommandGetXdbcTypeInfo) -> Batches {
    one_batch(query.into_builder(&service.xdbc).build()?)
}
