//! Metadata for Flight SQL's catalog calls: the caller's databases (catalogs), schemas,
//! tables and keys, read from DuckDB's own catalog functions.
//!
//! Invariants:
//! - Only the caller's own databases and attached shares are listed: DuckDB's answer is
//!   filtered by the catalog.
//! - Metadata never writes: it neither queues for admission nor takes the write gate.
//! - Patterns are SQL `LIKE` patterns, passed to DuckDB as quoted literals.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::Schema;
use pond_duckling::engine::{quote_ident, quote_literal};

use super::Coordinator;
use super::connection::reading_on_connection;
use crate::auth::Principal;
use crate::error::Result;
use crate::session::Session;

/// A table, for GetTables.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub table_type: String,
    pub arrow_schema: Option<Schema>,
}

/// A key column pair, for GetPrimaryKeys / Get*Keys.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    pub pk_catalog: String,
    pub pk_schema: String,
    pub pk_table: String,
    pub pk_column: String,
    pub fk_catalog: String,
    pub fk_schema: String,
    pub fk_table: String,
    pub fk_column: String,
    pub key_sequence: i32,
    pub fk_name: Option<String>,
    pub pk_name: Option<String>,
}

/// A filter for table metadata (SQL LIKE patterns where noted).
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    pub catalog: Option<String>,
    pub schema_pattern: Option<String>,
    pub table_pattern: Option<String>,
    pub table_types: Vec<String>,
    pub include_schema: bool,
}

impl Coordinator {
    /// The caller's databases and the shares they attached and may read (Flight SQL catalogs).
    pub fn catalogs(&self, principal: &Principal) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .catalog
            .databases(&principal.user)?
            .into_iter()
            .map(|d| d.name)
            .collect();
        names.extend(
            self.catalog
                .attached_shares(&principal.user)?
                .into_iter()
                .filter(|a| a.share.is_ok())
                .map(|a| a.alias),
        );
        names.sort();
        Ok(names)
    }

    /// Schemas of the caller's databases, optionally filtered.
    pub async fn schemas(
        &self,
        session: &Arc<Session>,
        catalog: Option<String>,
        schema_pattern: Option<String>,
    ) -> Result<Vec<(String, String)>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |_, conn| {
            let mut sql = String::from(
                "SELECT database_name, schema_name FROM duckdb_schemas() WHERE (NOT internal OR schema_name = 'main')",
            );
            if let Some(c) = &catalog {
                sql += &format!(" AND database_name = {}", quote_literal(c));
            }
            if let Some(p) = &schema_pattern {
                sql += &format!(" AND schema_name LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            sql += " ORDER BY 1, 2";
            let mut out = Vec::new();
            for b in conn.query_all(&sql)? {
                let dbs = b.column(0).as_any().downcast_ref::<StringArray>();
                let schemas = b.column(1).as_any().downcast_ref::<StringArray>();
                if let (Some(dbs), Some(schemas)) = (dbs, schemas) {
                    for i in 0..b.num_rows() {
                        if allowed.iter().any(|a| a == dbs.value(i)) {
                            out.push((dbs.value(i).to_string(), schemas.value(i).to_string()));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Tables of the caller's databases, optionally filtered, with their Arrow schemas.
    pub async fn tables(&self, session: &Arc<Session>, filter: TableFilter) -> Result<Vec<TableInfo>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |_, conn| {
            let mut sql = String::from(
                "SELECT table_catalog, table_schema, table_name, CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END \
                 FROM information_schema.tables WHERE table_catalog NOT IN ('system', 'temp')",
            );
            if let Some(c) = &filter.catalog {
                sql += &format!(" AND table_catalog = {}", quote_literal(c));
            }
            if let Some(p) = &filter.schema_pattern {
                sql += &format!(" AND table_schema LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            if let Some(p) = &filter.table_pattern {
                sql += &format!(" AND table_name LIKE {} ESCAPE '\\'", quote_literal(p));
            }
            sql += " ORDER BY 1, 2, 3";
            let mut out = Vec::new();
            for b in conn.query_all(&sql)? {
                let col = |i: usize| b.column(i).as_any().downcast_ref::<StringArray>().cloned();
                let (Some(c), Some(sc), Some(n), Some(t)) = (col(0), col(1), col(2), col(3)) else {
                    continue;
                };
                for i in 0..b.num_rows() {
                    if !allowed.iter().any(|a| a == c.value(i)) {
                        continue;
                    }
                    let table_type = t.value(i).to_string();
                    if !filter.table_types.is_empty() && !filter.table_types.iter().any(|x| x.eq_ignore_ascii_case(&table_type)) {
                        continue;
                    }
                    let arrow_schema = if filter.include_schema {
                        let q = format!(
                            "SELECT * FROM {}.{}.{} LIMIT 0",
                            quote_ident(c.value(i)),
                            quote_ident(sc.value(i)),
                            quote_ident(n.value(i))
                        );
                        Some(conn.prepare(&q)?.result_schema()?.as_ref().clone())
                    } else {
                        None
                    };
                    out.push(TableInfo {
                        catalog: c.value(i).to_string(),
                        schema: sc.value(i).to_string(),
                        name: n.value(i).to_string(),
                        table_type,
                        arrow_schema,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Primary-key and foreign-key columns from DuckDB's constraints. `pk` filters the
    /// referenced (primary) table, `fk` the referencing table; for primary keys only `pk` is set
    /// and the fk fields repeat the pk table.
    pub async fn keys(
        &self,
        session: &Arc<Session>,
        primary_only: bool,
        pk: Option<TableName>,
        fk: Option<TableName>,
    ) -> Result<Vec<KeyColumn>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |s, conn| {
            let (current_db, _) = s.current();
            let wanted = |f: &Option<TableName>, catalog: &str, schema: &str, table: &str| {
                f.as_ref().is_none_or(|(fc, fs, ft)| {
                    fc.as_deref().unwrap_or(current_db.as_str()) == catalog
                        && fs.as_deref().is_none_or(|x| x == schema)
                        && ft == table
                })
            };
            let sql = if primary_only { PRIMARY_KEYS } else { FOREIGN_KEYS };
            let mut out = Vec::new();
            for batch in conn.query_all(sql)? {
                for row in 0..batch.num_rows() {
                    let key = key_column(&batch, row, primary_only);
                    if allowed.contains(&key.pk_catalog)
                        && wanted(&pk, &key.pk_catalog, &key.pk_schema, &key.pk_table)
                        && wanted(&fk, &key.fk_catalog, &key.fk_schema, &key.fk_table)
                    {
                        out.push(key);
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

/// A table named by an optional catalog (default: the session's database), an optional schema
/// (default: any) and a name.
pub type TableName = (Option<String>, Option<String>, String);

/// Primary keys as [`key_column`] reads them: the fk columns repeat the pk table.
const PRIMARY_KEYS: &str = "SELECT database_name, schema_name, table_name, UNNEST(constraint_column_names) AS col, \
       UNNEST(generate_series(1, len(constraint_column_names))) AS seq, constraint_name, \
       database_name, schema_name, table_name, constraint_name \
     FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'";

/// Foreign keys as [`key_column`] reads them: referenced table first, the fk column last.
const FOREIGN_KEYS: &str = "SELECT c.database_name, c.schema_name, c.referenced_table, UNNEST(c.referenced_column_names), \
       UNNEST(generate_series(1, len(c.constraint_column_names))), NULL, \
       c.database_name, c.schema_name, c.table_name, c.constraint_name, UNNEST(c.constraint_column_names) \
     FROM duckdb_constraints() c WHERE c.constraint_type = 'FOREIGN KEY'";

/// Row `row` of [`PRIMARY_KEYS`] or [`FOREIGN_KEYS`]'s answer.
fn key_column(batch: &arrow::array::RecordBatch, row: usize, primary_only: bool) -> KeyColumn {
    let text = |c: usize| -> Option<String> {
        let a = batch.column(c);
        if a.is_null(row) {
            return None;
        }
        arrow::util::display::array_value_to_string(a, row).ok()
    };
    let pk_column = text(3).unwrap_or_default();
    KeyColumn {
        pk_catalog: text(0).unwrap_or_default(),
        pk_schema: text(1).unwrap_or_default(),
        pk_table: text(2).unwrap_or_default(),
        fk_column: if primary_only {
            pk_column.clone()
        } else {
            text(10).unwrap_or_default()
        },
        pk_column,
        fk_catalog: text(6).unwrap_or_default(),
        fk_schema: text(7).unwrap_or_default(),
        fk_table: text(8).unwrap_or_default(),
        key_sequence: text(4).and_then(|x| x.parse().ok()).unwrap_or(1),
        fk_name: if primary_only { None } else { text(9) },
        pk_name: if primary_only { text(5) } else { None },
    }
}
