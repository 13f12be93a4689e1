//! Primary and foreign keys. Flight SQL asks for foreign keys three ways (those a table's
//! primary key is referenced by, those a table references, those between two tables); they are
//! one question with a filter on either side, answered by [`foreign_keys`].
//!
//! Invariant: DuckDB enforces foreign keys as RESTRICT (NO ACTION) on update and delete, so
//! every key reports rule 3 for both.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::{CommandGetPrimaryKeys, ProstMessageExt};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo, Ticket};
use pond_coordinator::KeyColumn;
use pond_coordinator::coordinator::TableName;
use tonic::{Request, Response};

use super::{BoxStream, PondFlightSql, metadata_info, one_batch};
use crate::context::context;
use crate::status::Result;

/// Flight SQL's `UpdateDeleteRules.RESTRICT`.
const RESTRICT: u8 = 3;

pub(super) fn primary_keys_flight_info(
    query: CommandGetPrimaryKeys,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    metadata_info(query, &primary_keys_schema(), request)
}

/// The FlightInfo of any of the three foreign-key commands: they share one schema.
pub(super) fn foreign_keys_flight_info(
    query: impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>> {
    metadata_info(query, &foreign_keys_schema(), request)
}

pub(super) async fn primary_keys(
    service: &PondFlightSql,
    query: CommandGetPrimaryKeys,
    request: Request<Ticket>,
) -> Result<Response<BoxStream<FlightData>>> {
    let session = context(&request)?.session()?;
    let table = (query.catalog, query.db_schema, query.table);
    let keys = service.coordinator.keys(&session, true, Some(table), None).await?;
    let batch = RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            strings(keys.iter().map(|k| k.pk_catalog.as_str())),
            strings(keys.iter().map(|k| k.pk_schema.as_str())),
            strings(keys.iter().map(|k| k.pk_table.as_str())),
            strings(keys.iter().map(|k| k.pk_column.as_str())),
            opt_strings(keys.iter().map(|k| k.pk_name.as_deref())),
            key_sequences(&keys),
        ],
    )?;
    one_batch(batch)
}

/// The foreign keys whose referenced (primary-key) table is `referenced` and whose referencing
/// table is `referencing`; a side that is `None` is not filtered. GetExportedKeys names the
/// referenced table, GetImportedKeys the referencing one, GetCrossReference both.
pub(super) async fn foreign_keys(
    service: &PondFlightSql,
    request: Request<Ticket>,
    referenced: Option<TableName>,
    referencing: Option<TableName>,
) -> Result<Response<BoxStream<FlightData>>> {
    let session = context(&request)?.session()?;
    let keys = service
        .coordinator
        .keys(&session, false, referenced, referencing)
        .await?;
    one_batch(foreign_keys_batch(&keys)?)
}

fn foreign_keys_schema() -> SchemaRef {
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

fn foreign_keys_batch(keys: &[KeyColumn]) -> Result<RecordBatch> {
    let rules: ArrayRef = Arc::new(UInt8Array::from(vec![RESTRICT; keys.len()]));
    Ok(RecordBatch::try_new(
        foreign_keys_schema(),
        vec![
            strings(keys.iter().map(|k| k.pk_catalog.as_str())),
            strings(keys.iter().map(|k| k.pk_schema.as_str())),
            strings(keys.iter().map(|k| k.pk_table.as_str())),
            strings(keys.iter().map(|k| k.pk_column.as_str())),
            strings(keys.iter().map(|k| k.fk_catalog.as_str())),
            strings(keys.iter().map(|k| k.fk_schema.as_str())),
            strings(keys.iter().map(|k| k.fk_table.as_str())),
            strings(keys.iter().map(|k| k.fk_column.as_str())),
            key_sequences(keys),
            opt_strings(keys.iter().map(|k| k.fk_name.as_deref())),
            opt_strings(keys.iter().map(|k| k.pk_name.as_deref())),
            Arc::clone(&rules),
            rules,
        ],
    )?)
}

fn key_sequences(keys: &[KeyColumn]) -> ArrayRef {
    Arc::new(Int32Array::from(
        keys.iter().map(|k| k.key_sequence).collect::<Vec<_>>(),
    ))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from(it.collect::<Vec<_>>()))
}

fn opt_strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from(it.collect::<Vec<_>>()))
}
