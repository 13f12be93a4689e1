//! DataFusion filter expressions rendered as DuckDB SQL, for the bridges that move reduced
//! relations.
//!
//! Only a small, unambiguous subset is rendered: columns, literals of plain types,
//! comparisons, boolean logic, `IS [NOT] NULL`, `BETWEEN`, `IN (…)`, `[I]LIKE` and casts to
//! plain types. Anything else yields `None` and the filter is not pushed: rows move that the
//! final query will drop, which costs bytes but never changes a result. Arithmetic is not
//! rendered, because DataFusion's and DuckDB's rules differ (integer division, for one).

use arrow::datatypes::DataType;
use datafusion_common::ScalarValue;
use datafusion_expr::expr::{Cast, InList, Like, TryCast};
use datafusion_expr::{Between, BinaryExpr, Expr, Operator};
use pond_duckdb::engine::{quote_ident, quote_literal};

/// Renders a filter over one relation; `column` maps a (lower-cased) column to its real name.
pub(crate) fn render_filter(expr: &Expr, column: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    Some(match expr {
        Expr::Column(c) => quote_ident(&column(&c.name)?),
        Expr::Literal(v, _) => literal(v)?,
        // Arithmetic of literals alone (`1200 + 11` in TPC-DS's ranges): DuckDB computes it as
        // the user's query would; arithmetic over columns is not rendered (see above).
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if constant(expr) => {
            let op = match op {
                Operator::Plus => "+",
                Operator::Minus => "-",
                _ => "*",
            };
            format!(
                "({} {op} {})",
                render_filter(left, column)?,
                render_filter(right, column)?
            )
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let op = match op {
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                Operator::And => "AND",
                Operator::Or => "OR",
                Operator::IsDistinctFrom => "IS DISTINCT FROM",
                Operator::IsNotDistinctFrom => "IS NOT DISTINCT FROM",
                _ => return None,
            };
            format!(
                "({} {op} {})",
                render_filter(left, column)?,
                render_filter(right, column)?
            )
        }
        Expr::Not(e) => format!("(NOT {})", render_filter(e, column)?),
        Expr::IsNull(e) => format!("({} IS NULL)", render_filter(e, column)?),
        Expr::IsNotNull(e) => format!("({} IS NOT NULL)", render_filter(e, column)?),
        Expr::IsTrue(e) => format!("({} IS TRUE)", render_filter(e, column)?),
        Expr::IsFalse(e) => format!("({} IS FALSE)", render_filter(e, column)?),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => format!(
            "({} {}BETWEEN {} AND {})",
            render_filter(expr, column)?,
            if *negated { "NOT " } else { "" },
            render_filter(low, column)?,
            render_filter(high, column)?
        ),
        Expr::InList(InList { expr, list, negated }) => {
            let items = list
                .iter()
                .map(|e| render_filter(e, column))
                .collect::<Option<Vec<_>>>()?;
            format!(
                "({} {}IN ({}))",
                render_filter(expr, column)?,
                if *negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char,
            case_insensitive,
        }) => {
            let escape = match escape_char {
                Some(c) => format!(" ESCAPE {}", quote_literal(&c.to_string())),
                None => String::new(),
            };
            format!(
                "({} {}{} {}{escape})",
                render_filter(expr, column)?,
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                render_filter(pattern, column)?
            )
        }
        Expr::Cast(Cast { expr, field }) => format!(
            "CAST({} AS {})",
            render_filter(expr, column)?,
            sql_type(field.data_type())?
        ),
        Expr::TryCast(TryCast { expr, field }) => {
            format!(
                "TRY_CAST({} AS {})",
                render_filter(expr, column)?,
                sql_type(field.data_type())?
            )
        }
        _ => return None,
    })
}

/// A literal, or `+`, `-` or `*` of such.
fn constant(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(..) => true,
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Plus | Operator::Minus | Operator::Multiply,
            right,
        }) => constant(left) && constant(right),
        _ => false,
    }
}

/// A literal as DuckDB SQL of the same type, for the plain types only.
pub(crate) fn literal(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return Some("NULL".into());
    }
    Some(match v {
        ScalarValue::Boolean(Some(b)) => b.to_string().to_uppercase(),
        ScalarValue::Int8(Some(x)) => x.to_string(),
        ScalarValue::Int16(Some(x)) => x.to_string(),
        ScalarValue::Int32(Some(x)) => x.to_string(),
        ScalarValue::Int64(Some(x)) => format!("{x}::BIGINT"),
        ScalarValue::UInt8(Some(x)) => x.to_string(),
        ScalarValue::UInt16(Some(x)) => x.to_string(),
        ScalarValue::UInt32(Some(x)) => x.to_string(),
        ScalarValue::UInt64(Some(x)) => format!("{x}::UBIGINT"),
        ScalarValue::Float32(Some(x)) if x.is_finite() => format!("CAST('{x:?}' AS FLOAT)"),
        ScalarValue::Float64(Some(x)) if x.is_finite() => format!("CAST('{x:?}' AS DOUBLE)"),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            quote_literal(s)
        }
        ScalarValue::Decimal128(Some(x), p, s) => {
            format!("CAST('{}' AS DECIMAL({p},{s}))", decimal_text(*x, *s))
        }
        ScalarValue::Date32(Some(_)) => format!("DATE '{v}'"),
        _ => return None,
    })
}

fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        return (value * 10i128.pow((-scale) as u32)).to_string();
    }
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if negative { "-" } else { "" })
}

/// The DuckDB type of a rendered cast, only for targets whose casts DataFusion and DuckDB
/// agree on.
fn sql_type(dt: &DataType) -> Option<String> {
    pond_duckdb::engine::plain_sql_type(dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_expr::{col, lit};

    #[test]
    fn renders_plain_filters_and_refuses_arithmetic() {
        let real = |c: &str| Some(c.to_uppercase());
        let e = col("a").gt(lit(5i32)).and(col("b").like(lit("x%")));
        assert_eq!(render_filter(&e, &real).unwrap(), "((\"A\" > 5) AND (\"B\" LIKE 'x%'))");
        let e = col("d").eq(lit(ScalarValue::Date32(Some(19723))));
        assert_eq!(render_filter(&e, &real).unwrap(), "(\"D\" = DATE '2024-01-01')");
        let e = col("m").lt_eq(lit(ScalarValue::Decimal128(Some(-1205), 10, 2)));
        assert_eq!(
            render_filter(&e, &real).unwrap(),
            "(\"M\" <= CAST('-12.05' AS DECIMAL(10,2)))"
        );
        assert!(render_filter(&(col("a") / lit(2i32)).gt(lit(1i32)), &real).is_none());
        assert!(render_filter(&(col("a") + lit(2i32)).gt(lit(1i32)), &real).is_none());
        assert!(render_filter(&col("a").gt(lit(6i32) / lit(2i32)), &real).is_none());
        // Literals' arithmetic is DuckDB's to compute.
        assert_eq!(
            render_filter(
                &col("a").between(lit(1200i32), lit(1200i32) + lit(11i32) * lit(2i32)),
                &real
            )
            .unwrap(),
            "(\"A\" BETWEEN 1200 AND (1200 + (11 * 2)))"
        );
        assert!(
            render_filter(&col("a").in_list(vec![lit("o'k")], true), &real)
                .unwrap()
                .contains("NOT IN ('o''k')")
        );
    }

    #[test]
    fn casts_render_only_to_plain_types() {
        let real = |c: &str| Some(c.to_string());
        let cast = |to: DataType| render_filter(&Expr::Cast(Cast::new(Box::new(col("a")), to)), &real);
        assert_eq!(cast(DataType::Int64).unwrap(), "CAST(\"a\" AS BIGINT)");
        assert_eq!(cast(DataType::UInt16).unwrap(), "CAST(\"a\" AS USMALLINT)");
        assert_eq!(cast(DataType::Float32).unwrap(), "CAST(\"a\" AS FLOAT)");
        assert_eq!(cast(DataType::Utf8View).unwrap(), "CAST(\"a\" AS VARCHAR)");
        assert_eq!(
            cast(DataType::Decimal128(12, 3)).unwrap(),
            "CAST(\"a\" AS DECIMAL(12,3))"
        );
        // Types DuckDB names too, but whose casts may differ from DataFusion's, are not pushed.
        for to in [
            DataType::Null,
            DataType::Float16,
            DataType::Date64,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            DataType::Decimal256(50, 2),
        ] {
            assert!(cast(to.clone()).is_none(), "{to}");
        }
    }

    #[test]
    fn decimal_text_places_the_point() {
        assert_eq!(decimal_text(5, 2), "0.05");
        assert_eq!(decimal_text(-123456, 3), "-123.456");
        assert_eq!(decimal_text(7, 0), "7");
    }
}
