//! Table statistics, the cost model's input, collected with DuckDB SQL on either side.
//!
//! The same queries run on the client's local DuckDB and on the user's duckling, so both
//! sides describe their tables alike: the row count (`count(*)`, which DuckDB answers from
//! metadata for tables and from footers for Parquet), DuckDB's own per-column statistics
//! (`stats(col)`, whose `Approx Unique` is a HyperLogLog estimate kept with the table), and
//! the average width of variable-width columns, measured on the first rows.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use pond_duckdb::engine::quote_ident;
use pond_proto::dual::{ColumnStatistics, TableStatistics};

/// Rows read to measure variable-width columns.
const WIDTH_SAMPLE_ROWS: usize = 2048;

/// The query that counts rows.
pub fn count_query(source: &str) -> String {
    format!("SELECT count(*)::DOUBLE FROM {source}")
}

/// The query that reads DuckDB's per-column statistics (one row; none when the table is
/// empty).
pub fn stats_query(source: &str, schema: &Schema) -> Option<String> {
    if schema.fields().is_empty() {
        return None;
    }
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("stats({})::VARCHAR", quote_ident(f.name())))
        .collect();
    Some(format!("SELECT {} FROM {source} LIMIT 1", cols.join(", ")))
}

/// The query that measures the average width of variable-width columns, if there are any.
pub fn width_query(source: &str, schema: &Schema) -> Option<String> {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| fixed_width(f.data_type()).is_none())
        .map(|f| format!("avg(strlen(CAST({} AS VARCHAR)))::DOUBLE", quote_ident(f.name())))
        .collect();
    if cols.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT {} FROM (SELECT * FROM {source} LIMIT {WIDTH_SAMPLE_ROWS})",
        cols.join(", ")
    ))
}

/// Collects statistics for `source` with `schema`, running SQL through `run`.
pub fn collect<E>(
    source: &str,
    schema: &Schema,
    mut run: impl FnMut(&str) -> Result<Vec<RecordBatch>, E>,
) -> Result<TableStatistics, E> {
    let rows = first_f64(&run(&count_query(source))?, 0).unwrap_or(0.0);
    let stats: Vec<Option<String>> = match stats_query(source, schema) {
        Some(q) => {
            let batches = run(&q)?;
            (0..schema.fields().len()).map(|i| first_string(&batches, i)).collect()
        }
        None => Vec::new(),
    };
    let widths = match width_query(source, schema) {
        Some(q) => run(&q)?,
        None => Vec::new(),
    };
    let mut variable = 0;
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let avg_bytes = match fixed_width(f.data_type()) {
                Some(w) => w,
                None => {
                    let measured = first_f64(&widths, variable).unwrap_or(16.0);
                    variable += 1;
                    measured + 4.0
                }
            };
            let distinct = stats
                .get(i)
                .and_then(|s| s.as_deref())
                .and_then(approx_unique)
                .unwrap_or(0.0)
                .min(rows.max(1.0));
            let range = stats.get(i).and_then(|s| s.as_deref()).and_then(value_range);
            ColumnStatistics {
                name: f.name().clone(),
                avg_bytes,
                distinct,
                has_range: range.is_some(),
                min: range.map_or(0.0, |r| r.0),
                max: range.map_or(0.0, |r| r.1),
            }
        })
        .collect();
    Ok(TableStatistics {
        rows,
        arrow_schema: encode_schema(schema),
        columns,
    })
}

/// Bytes per value of a fixed-width Arrow type in IPC; `None` for variable width.
pub fn fixed_width(dt: &DataType) -> Option<f64> {
    Some(match dt {
        DataType::Null => 0.0,
        DataType::Boolean => 0.125,
        DataType::Int8 | DataType::UInt8 => 1.0,
        DataType::Int16 | DataType::UInt16 | DataType::Float16 => 2.0,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 | DataType::Time32(_) => 4.0,
        DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Date64
        | DataType::Time64(_)
        | DataType::Timestamp(..)
        | DataType::Duration(_) => 8.0,
        DataType::Decimal32(..) => 4.0,
        DataType::Decimal64(..) => 8.0,
        DataType::Decimal128(..) | DataType::Interval(_) => 16.0,
        DataType::Decimal256(..) => 32.0,
        DataType::FixedSizeBinary(n) => *n as f64,
        _ => return None,
    })
}

/// Parses `Approx Unique: N` out of DuckDB's `stats()` text.
fn approx_unique(stats: &str) -> Option<f64> {
    let at = stats.find("Approx Unique: ")? + "Approx Unique: ".len();
    let digits: String = stats[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Parses `Min: a, Max: b` out of DuckDB's `stats()` text, for numbers and dates.
fn value_range(stats: &str) -> Option<(f64, f64)> {
    let field = |key: &str| -> Option<f64> {
        let at = stats.find(key)? + key.len();
        let text: String = stats[at..].chars().take_while(|c| *c != ',' && *c != ']').collect();
        number_or_date(text.trim())
    };
    Some((field("Min: ")?, field("Max: ")?))
}

/// A number, or a `YYYY-MM-DD` date as days since 1970-01-01.
pub fn number_or_date(text: &str) -> Option<f64> {
    if let Ok(v) = text.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let mut parts = text.get(..10)?.split('-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    Some(days_from_civil(y, m, d) as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn first_f64(batches: &[RecordBatch], column: usize) -> Option<f64> {
    let b = batches.iter().find(|b| b.num_rows() > 0 && b.num_columns() > column)?;
    let col = arrow::compute::cast(b.column(column), &DataType::Float64).ok()?;
    let col = col.as_any().downcast_ref::<arrow::array::Float64Array>()?;
    (!col.is_null(0)).then(|| col.value(0))
}

fn first_string(batches: &[RecordBatch], column: usize) -> Option<String> {
    let b = batches.iter().find(|b| b.num_rows() > 0 && b.num_columns() > column)?;
    let col = arrow::compute::cast(b.column(column), &DataType::Utf8).ok()?;
    let col = col.as_any().downcast_ref::<arrow::array::StringArray>()?;
    (!col.is_null(0)).then(|| col.value(0).to_string())
}

/// IPC-encodes a schema for [`TableStatistics::arrow_schema`].
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let data = arrow::ipc::writer::IpcDataGenerator::default();
    let mut tracker = arrow::ipc::writer::DictionaryTracker::new(false);
    let encoded = data.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
    encoded.ipc_message
}

/// Decodes [`TableStatistics::arrow_schema`].
pub fn decode_schema(bytes: &[u8]) -> Option<Schema> {
    let message = arrow::ipc::root_as_message(bytes).ok()?;
    let ipc = message.header_as_schema()?;
    Some(arrow::ipc::convert::fb_to_schema(ipc))
}

/// Parses `"a"."b"."c"` (double-quoted identifiers only, as the client writes cloud tables)
/// into its parts; anything else is `None`, so that no other SQL rides along as a "name".
pub fn parse_quoted_name(source: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = source;
    loop {
        let body = rest.strip_prefix('"')?;
        let mut part = String::new();
        let mut chars = body.char_indices().peekable();
        let end = loop {
            let (i, c) = chars.next()?;
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                    part.push('"');
                } else {
                    break i + 1;
                }
            } else {
                part.push(c);
            }
        };
        parts.push(part);
        rest = &body[end..];
        if rest.is_empty() {
            return Some(parts);
        }
        rest = rest.strip_prefix('.')?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn parses_duckdb_stats_text() {
        let s = "[Min: 0, Max: 999][Has Null: false, Has No Null: true][Approx Unique: 1000]";
        assert_eq!(approx_unique(s), Some(1000.0));
        assert_eq!(approx_unique("[Min: 0]"), None);
        assert_eq!(value_range(s), Some((0.0, 999.0)));
        let d = "[Min: 2023-01-01, Max: 2023-01-31][Has Null: true, Has No Null: true][Approx Unique: 31]";
        assert_eq!(value_range(d), Some((19358.0, 19388.0)));
        assert_eq!(value_range("[Min: abc, Max: abd]"), None);
    }

    #[test]
    fn only_quoted_names_parse() {
        assert_eq!(
            parse_quoted_name(r#""my ""db"""."main"."t""#).unwrap(),
            vec!["my \"db\"", "main", "t"]
        );
        assert!(parse_quoted_name(r#""a"."b"; DROP TABLE x"#).is_none());
        assert!(parse_quoted_name("read_csv('/etc/passwd')").is_none());
        assert!(parse_quoted_name(r#""a".b"#).is_none());
    }

    #[test]
    fn schemas_round_trip() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, false),
        ]);
        assert_eq!(decode_schema(&encode_schema(&schema)).unwrap(), schema);
    }
}
