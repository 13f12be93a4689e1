//! What the planner's unit tests share: relations as a client describes them.

use arrow::datatypes::{DataType, Field, Schema};
use pond_proto::dual::{ColumnStatistics, Relation, Side, TableStatistics};

use crate::statistics::encode_schema;

/// A relation of `rows` rows whose columns (name, type, distinct values) are 8 bytes wide each.
pub(crate) fn relation(name: &str, side: Side, source: &str, rows: f64, columns: &[(&str, DataType, f64)]) -> Relation {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(c, t, _)| Field::new(*c, t.clone(), true))
        .collect();
    Relation {
        name: name.into(),
        side: side as i32,
        source: source.into(),
        statistics: Some(TableStatistics {
            rows,
            arrow_schema: encode_schema(&Schema::new(fields)),
            columns: columns
                .iter()
                .map(|(c, _, distinct)| ColumnStatistics {
                    name: c.to_string(),
                    avg_bytes: 8.0,
                    distinct: *distinct,
                    ..Default::default()
                })
                .collect(),
        }),
    }
}
