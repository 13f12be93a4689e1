//! Small local results sent inside the SQL that reads them, instead of uploaded first.
//!
//! A bridge from the laptop whose result is a handful of rows (a selective filter's join
//! keys, most often) would cost an ingest call of its own, an Arrow schema and batch
//! framing: several times the rows' own bytes, and a round trip. Written as literals into the
//! remote SQL that reads it, it costs its text alone.
//!
//! Invariants:
//! - Only values whose literal text casts back to the same value inline (integers, floats,
//!   decimals, booleans, strings, dates of years 1 to 9999); any other uploads as before.
//! - Only text the duckling's sandbox reads as data inlines: no string with `(` (its backstop
//!   reads `name(` anywhere in the text as a call) or a NUL byte (SQL text cannot hold one).
//! - The literals are part of the query's text, which the server's query history keeps.
//! - Every literal carries its column's DuckDB type, so the rows bind as the uploaded table's
//!   would, NULLs included.
//! - A name is replaced where the lexer finds it as a name, never inside a string or comment.

use arrow::array::{Array, Date32Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::util::display::array_value_to_string;
use pond_duckdb::engine::{plain_sql_type, quote_ident, quote_literal};
use pond_duckdb::lexer::{TokenKind, tokenize};

/// The most rows a bridge may have to go inline.
pub(super) const INLINE_ROWS: usize = 256;
/// The longest text an inlined bridge may take.
pub(super) const INLINE_BYTES: usize = 8 << 10;

/// `batches` as a subquery of typed literals, `(SELECT * FROM (VALUES …) AS v("a", …))`, when
/// they hold 1 to [`INLINE_ROWS`] rows of inlinable types within [`INLINE_BYTES`].
pub(super) fn inline_rows(schema: &SchemaRef, batches: &[RecordBatch]) -> Option<String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 || rows > INLINE_ROWS {
        return None;
    }
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| plain_sql_type(f.data_type()))
        .collect::<Option<_>>()?;
    let mut tuples = Vec::with_capacity(rows);
    let mut length = 0;
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values: Vec<String> = batch
                .columns()
                .iter()
                .zip(&types)
                .map(|(column, ty)| literal(column.as_ref(), row, ty))
                .collect::<Option<_>>()?;
            let tuple = format!("({})", values.join(", "));
            length += tuple.len() + 2;
            if length > INLINE_BYTES {
                return None;
            }
            tuples.push(tuple);
        }
    }
    let names: Vec<String> = schema.fields().iter().map(|f| quote_ident(f.name())).collect();
    Some(format!(
        "(SELECT * FROM (VALUES {}) AS v({}))",
        tuples.join(", "),
        names.join(", ")
    ))
}

/// Days from 1970-01-01 to 0001-01-01 and to 9999-12-31: the dates whose text DuckDB reads back.
const DATES: std::ops::RangeInclusive<i32> = -719_162..=2_932_896;

/// One value as a typed literal (`'42'::BIGINT`, `NULL::VARCHAR`), if it inlines.
fn literal(column: &dyn Array, row: usize, ty: &str) -> Option<String> {
    if column.is_null(row) {
        return Some(format!("NULL::{ty}"));
    }
    if let Some(days) = column.as_any().downcast_ref::<Date32Array>()
        && !DATES.contains(&days.value(row))
    {
        return None;
    }
    let text = array_value_to_string(column, row).ok()?;
    if text.contains(['(', '\0']) {
        return None;
    }
    Some(format!("{}::{ty}", quote_literal(&text)))
}

/// `sql` with every occurrence of the (possibly qualified) name `name` replaced by `with`.
pub(super) fn replace_name(sql: &str, name: &str, with: &str) -> String {
    let (Ok(tokens), Ok(wanted)) = (tokenize(sql), tokenize(name)) else {
        return sql.to_string();
    };
    let wanted: Vec<&TokenKind> = wanted.iter().map(|t| &t.kind).collect();
    let mut out = String::with_capacity(sql.len());
    let (mut copied, mut i) = (0, 0);
    while i + wanted.len() <= tokens.len() {
        let here = &tokens[i..i + wanted.len()];
        if !wanted.is_empty() && here.iter().map(|t| &t.kind).eq(wanted.iter().copied()) {
            out.push_str(&sql[copied..here[0].span.start]);
            out.push_str(with);
            copied = here[wanted.len() - 1].span.end;
            i += wanted.len();
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, Arc<dyn Array>)>) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        (schema, batch)
    }

    /// Each inlined value reads back in DuckDB as the value it was, NULLs and quotes included.
    #[test]
    fn inlined_rows_read_back_as_they_were() {
        let (schema, rows) = batch(vec![
            ("id", Arc::new(Int64Array::from(vec![Some(4242), None, Some(-1)]))),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("O'Brien"), Some("a\"b"), None])),
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(0.1), Some(f64::NAN), Some(1e-300)])),
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from(vec![Some(1234), Some(-5), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![Some(2_932_896), None, Some(-719_162)])),
            ),
        ]);
        let sql = inline_rows(&schema, std::slice::from_ref(&rows)).expect("inlinable");
        let db = pond_duckdb::engine::Database::open(None, &[]).unwrap();
        let conn = db.connect().unwrap();
        let got = conn.query_all(&format!("SELECT * FROM {sql}")).unwrap();
        let got = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        assert_eq!(got.num_rows(), 3);
        for (i, field) in schema.fields().iter().enumerate() {
            let column = got.column(i);
            assert_eq!(column.data_type(), field.data_type(), "{}", field.name());
            for row in 0..3 {
                assert_eq!(
                    array_value_to_string(column, row).unwrap(),
                    array_value_to_string(rows.column(i), row).unwrap(),
                    "{} row {row}",
                    field.name()
                );
                assert_eq!(column.is_null(row), rows.column(i).is_null(row));
            }
        }
    }

    #[test]
    fn values_the_sandbox_or_duckdb_would_misread_do_not_inline() {
        for text in ["query(1)", "a\0b"] {
            let (schema, rows) = batch(vec![("s", Arc::new(StringArray::from(vec![text])))]);
            assert!(inline_rows(&schema, &[rows]).is_none(), "{text:?}");
        }
        for days in [i32::MAX, 2_932_897, -719_163] {
            let (schema, rows) = batch(vec![("d", Arc::new(Date32Array::from(vec![days])))]);
            assert!(inline_rows(&schema, &[rows]).is_none(), "{days}");
        }
        let (schema, rows) = batch(vec![("d", Arc::new(Date32Array::from(vec![2_932_896, -719_162])))]);
        assert!(inline_rows(&schema, &[rows]).is_some());
    }

    #[test]
    fn only_a_few_rows_of_plain_types_inline() {
        let (schema, none) = batch(vec![("id", Arc::new(Int64Array::from(Vec::<i64>::new())))]);
        assert!(
            inline_rows(&schema, &[none]).is_none(),
            "no rows: VALUES cannot be empty"
        );
        let (schema, many) = batch(vec![(
            "id",
            Arc::new(Int64Array::from_iter_values(0..=INLINE_ROWS as i64)),
        )]);
        assert!(inline_rows(&schema, &[many]).is_none());
        let (schema, listed) = batch(vec![(
            "l",
            Arc::new(arrow::array::ListArray::from_iter_primitive::<
                arrow::datatypes::Int32Type,
                _,
                _,
            >(vec![Some(vec![Some(1)])])),
        )]);
        assert!(inline_rows(&schema, &[listed]).is_none());
    }

    #[test]
    fn a_name_is_replaced_where_it_is_a_name() {
        let sql = r#"SELECT 'temp.main."k"' FROM t WHERE id IN (SELECT id FROM temp.main."k") -- temp.main."k""#;
        assert_eq!(
            replace_name(sql, r#"temp.main."k""#, "(VALUES (1))"),
            r#"SELECT 'temp.main."k"' FROM t WHERE id IN (SELECT id FROM (VALUES (1))) -- temp.main."k""#
        );
        assert_eq!(replace_name("SELECT 1", r#"temp.main."k""#, "x"), "SELECT 1");
    }
}
