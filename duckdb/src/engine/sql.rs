//! SQL text Pond writes for DuckDB: quoted names and literals, column types for Arrow
//! fields, and batches cast to an announced schema.
//!
//! Invariants:
//! - Pure functions over text and Arrow data: no `unsafe`, no DuckDB call (the compiler holds
//!   this module to it).
//! - Anything user-supplied that reaches SQL text Pond writes goes through [`quote_ident`] or
//!   [`quote_literal`]: DuckDB reads the result back as exactly the name or string given.

#![forbid(unsafe_code)]

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use super::Result;
use crate::error::DuckdbError;

/// DuckDB's SQL name for an Arrow type, for `CREATE TABLE` during ingest.
pub fn duckdb_type_for_arrow(dt: &DataType) -> Result<String> {
    Ok(match dt {
        DataType::Null => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => match (unit, tz) {
            (_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
            (TimeUnit::Second, None) => "TIMESTAMP_S".into(),
            (TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
            (TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
            (TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        },
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if *p <= 38 => {
            format!("DECIMAL({p},{s})")
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => "DOUBLE".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::LargeListView(f) => {
            format!("{}[]", duckdb_type_for_arrow(f.data_type())?)
        }
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", duckdb_type_for_arrow(f.data_type())?),
        DataType::Struct(fields) => format!("STRUCT({})", column_definitions(fields)?),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                duckdb_type_for_arrow(kv[0].data_type())?,
                duckdb_type_for_arrow(kv[1].data_type())?
            ),
            other => return Err(DuckdbError::invalid(format!("unsupported Arrow map layout {other}"))),
        },
        DataType::Dictionary(_, value) => duckdb_type_for_arrow(value)?,
        other => {
            return Err(DuckdbError::invalid(format!(
                "Arrow type {other} has no DuckDB column type"
            )));
        }
    })
}

/// `batch` with each column cast to the type of `schema`'s field in its place, keeping the
/// row count (even of a batch without columns).
pub fn cast_to_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast_column(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `array` cast to `to`, member by member for unions (which Arrow's cast does not reach into).
fn cast_column(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, arrow::error::ArrowError> {
    match (array.data_type(), to) {
        (DataType::Union(_, mode), DataType::Union(fields, to_mode)) if mode == to_mode && array.data_type() != to => {
            let union = array.as_union();
            let children = fields
                .iter()
                .map(|(id, f)| cast_column(union.child(id), f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(arrow::array::UnionArray::try_new(
                fields.clone(),
                union.type_ids().clone(),
                union.offsets().cloned(),
                children,
            )?))
        }
        _ => arrow::compute::cast(array, to),
    }
}

/// `"name" TYPE, …` for Arrow fields: a `CREATE TABLE` column list, or a `STRUCT`'s members.
pub fn column_definitions(fields: &arrow::datatypes::Fields) -> Result<String> {
    let parts = fields
        .iter()
        .map(|f| {
            Ok(format!(
                "{} {}",
                quote_ident(f.name()),
                duckdb_type_for_arrow(f.data_type())?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(", "))
}

/// Quotes an SQL identifier for DuckDB.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// DuckDB's SQL name for a plain Arrow type: one whose values DuckDB reads back exactly from
/// their text in a cast (`'42'::BIGINT`), and whose casts DataFusion and DuckDB agree on.
/// `None` for any other type (nested, binary, times, intervals…).
pub fn plain_sql_type(dt: &DataType) -> Option<String> {
    let plain = matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Date32
    ) || matches!(dt, DataType::Decimal128(p, _) if *p <= 38);
    plain.then(|| duckdb_type_for_arrow(dt).ok()).flatten()
}

/// Quotes an SQL string literal for DuckDB.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Fields};

    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident(r#"my "db""#), r#""my ""db""""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn column_definitions_name_duckdb_types() {
        let fields = Fields::from(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]);
        assert_eq!(
            column_definitions(&fields).unwrap(),
            r#""id" BIGINT, "tags" VARCHAR[], "at" TIMESTAMP WITH TIME ZONE"#
        );
    }
}
