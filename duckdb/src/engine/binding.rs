//! Arrow values bound to a prepared statement's parameters.
//!
//! Invariants:
//! - Every DuckDB value created here is owned by a [`Value`] and destroyed once, right after it
//!   is bound (DuckDB copies what it binds).
//! - A value travels in a DuckDB type only when DuckDB holds it exactly; anything else travels
//!   as its text form, which DuckDB parses, range-checks and casts to the parameter's type (a
//!   bad value is an error, never a crash).

use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use libduckdb_sys as ffi;

use super::Result;
use crate::error::DuckdbError;

/// Binds row `row` of `array` to parameter `index` (1-based) of `stmt`.
///
/// # Safety
/// `stmt` is a live prepared statement, used on this thread, with at least `index` parameters.
pub(super) unsafe fn bind(
    stmt: ffi::duckdb_prepared_statement,
    index: usize,
    array: &dyn Array,
    row: usize,
) -> Result<()> {
    let value = arrow_value_to_duckdb(array, row)?;
    if value.0.is_null() {
        return Err(DuckdbError::invalid(format!(
            "parameter {index} of type {} has a value DuckDB cannot represent",
            array.data_type()
        )));
    }
    // SAFETY: as the caller guarantees; the value is live and not null (DuckDB copies it).
    if unsafe { ffi::duckdb_bind_value(stmt, index as u64, value.0) } != ffi::DuckDBSuccess {
        return Err(DuckdbError::invalid(format!(
            "could not bind parameter {index} of type {}",
            array.data_type()
        )));
    }
    Ok(())
}

/// A DuckDB value we own (null when DuckDB could not create it).
struct Value(ffi::duckdb_value);

impl Drop for Value {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: owned, destroyed once.
            unsafe { ffi::duckdb_destroy_value(&mut self.0) }
        }
    }
}

/// Converts one Arrow value to a DuckDB value for parameter binding.
fn arrow_value_to_duckdb(array: &dyn Array, row: usize) -> Result<Value> {
    if let DataType::Union(..) = array.data_type() {
        let union = array.as_union();
        let child = union.child(union.type_id(row));
        return arrow_value_to_duckdb(child.as_ref(), union.value_offset(row));
    }
    // A NullArray has no validity buffer, so `is_null` says false: check its type too.
    if array.data_type() == &DataType::Null || array.is_null(row) {
        // SAFETY: plain constructor.
        return Ok(Value(unsafe { ffi::duckdb_create_null_value() }));
    }
    // SAFETY: all constructors below copy their inputs.
    let v = unsafe {
        match array.data_type() {
            DataType::Boolean => ffi::duckdb_create_bool(array.as_boolean().value(row)),
            DataType::Int8 => ffi::duckdb_create_int8(array.as_primitive::<Int8Type>().value(row)),
            DataType::Int16 => ffi::duckdb_create_int16(array.as_primitive::<Int16Type>().value(row)),
            DataType::Int32 => ffi::duckdb_create_int32(array.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => ffi::duckdb_create_int64(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => ffi::duckdb_create_uint8(array.as_primitive::<UInt8Type>().value(row)),
            DataType::UInt16 => ffi::duckdb_create_uint16(array.as_primitive::<UInt16Type>().value(row)),
            DataType::UInt32 => ffi::duckdb_create_uint32(array.as_primitive::<UInt32Type>().value(row)),
            DataType::UInt64 => ffi::duckdb_create_uint64(array.as_primitive::<UInt64Type>().value(row)),
            DataType::Float32 => ffi::duckdb_create_float(array.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => ffi::duckdb_create_double(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => varchar(array.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => varchar(array.as_string::<i64>().value(row)),
            DataType::Utf8View => varchar(array.as_string_view().value(row)),
            DataType::Binary => blob(array.as_binary::<i32>().value(row)),
            DataType::LargeBinary => blob(array.as_binary::<i64>().value(row)),
            DataType::BinaryView => blob(array.as_binary_view().value(row)),
            DataType::FixedSizeBinary(_) => blob(array.as_fixed_size_binary().value(row)),
            DataType::Date32 => ffi::duckdb_create_date(ffi::duckdb_date {
                days: array.as_primitive::<Date32Type>().value(row),
            }),
            DataType::Timestamp(unit, tz) => {
                let ts = ffi::duckdb_timestamp {
                    micros: timestamp_micros(array, *unit, row),
                };
                if tz.is_some() {
                    ffi::duckdb_create_timestamp_tz(ts)
                } else {
                    ffi::duckdb_create_timestamp(ts)
                }
            }
            DataType::Decimal128(precision, scale) => match exact_decimal(array, row, *precision, *scale) {
                Some(decimal) => ffi::duckdb_create_decimal(decimal),
                None => as_text(array, row)?,
            },
            _ => as_text(array, row)?,
        }
    };
    Ok(Value(v))
}

/// A timestamp as microseconds since the epoch, DuckDB's unit.
fn timestamp_micros(array: &dyn Array, unit: TimeUnit, row: usize) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000,
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row) * 1_000,
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row) / 1_000,
    }
}

/// The decimal at `row` as DuckDB's decimal, if DuckDB can hold it exactly.
fn exact_decimal(array: &dyn Array, row: usize, precision: u8, scale: i8) -> Option<ffi::duckdb_decimal> {
    let v = array.as_primitive::<Decimal128Type>().value(row);
    let exact = (1..=38).contains(&precision)
        && (0..=precision as i8).contains(&scale)
        && v.unsigned_abs() < 10u128.pow(precision as u32);
    exact.then_some(ffi::duckdb_decimal {
        width: precision,
        scale: scale as u8,
        value: ffi::duckdb_hugeint {
            lower: v as u64,
            upper: (v >> 64) as i64,
        },
    })
}

/// The value's text form, which DuckDB casts to the parameter type.
///
/// # Safety
/// Plain constructor; copies the text.
unsafe fn as_text(array: &dyn Array, row: usize) -> Result<ffi::duckdb_value> {
    let text = arrow::util::display::array_value_to_string(array, row)?;
    // SAFETY: as above.
    Ok(unsafe { varchar(&text) })
}

/// # Safety
/// Plain constructor; copies `s`.
unsafe fn varchar(s: &str) -> ffi::duckdb_value {
    // SAFETY: pointer and length describe `s`.
    unsafe { ffi::duckdb_create_varchar_length(s.as_ptr().cast(), s.len() as u64) }
}

/// # Safety
/// Plain constructor; copies `b`.
unsafe fn blob(b: &[u8]) -> ffi::duckdb_value {
    // SAFETY: pointer and length describe `b`.
    unsafe { ffi::duckdb_create_blob(b.as_ptr(), b.len() as u64) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};

    use crate::engine::Database;

    #[test]
    fn binds_rows_and_appends_batches() {
        let c = Database::open(None, &[]).unwrap().connect().unwrap();
        c.execute_batch("CREATE TABLE t(a BIGINT, b VARCHAR)").unwrap();
        let batch = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "b",
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut stmt = c.prepare("INSERT INTO t VALUES ($1, $2)").unwrap();
        for row in 0..batch.num_rows() {
            stmt.bind_row(&batch, row).unwrap();
            assert_eq!(stmt.execute().unwrap(), 1);
        }
        {
            let mut app = c.appender("memory", "main", "t").unwrap();
            app.append(&batch).unwrap();
            app.flush().unwrap();
        }
        let out = c.query_all("SELECT count(*), sum(a), count(b) FROM t").unwrap();
        let s = arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string();
        assert!(s.contains("| 6            | 12     | 4        |"), "{s}");
    }
}
