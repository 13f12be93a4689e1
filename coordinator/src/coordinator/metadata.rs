//! Metadata for Flight SQL's catalog calls: the caller's databases (catalogs), schemas,
//! tables and keys, read from DuckDB's own catalog functions.
//!
//! Invariants:
//! - Only the caller's own databases are listed: DuckDB's answer is filtered by the catalog.
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
    /// The caller's databases (Flight SQL catalogs).
    pub fn catalogs(&self, principal: &Principal) -> Result<Vec<String>> {
        Ok(self
            .catalog
            .databases(&principal.user)?
            .into_iter()
            .map(|d| d.name)
            .collect())
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
        pk: Option<(Option<String>, Option<String>, String)>,
        fk: Option<(Option<String>, Option<String>, String)>,
    ) -> Result<Vec<KeyColumn>> {
        let allowed = self.catalogs(session.principal())?;
        reading_on_connection(session, None, move |s, conn| {
            let (current_db, _) = s.current();
            let sql = if primary_only {
                "SELECT database_name, schema_name, table_name, UNNEST(constraint_column_names) AS col, \
                   UNNEST(generate_series(1, len(constraint_column_names))) AS seq, constraint_name, \
                   database_name, schema_name, table_name, constraint_name \
                 FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
            } else {
                "SELECT c.database_name, c.schema_name, c.referenced_table, UNNEST(c.referenced_column_names), \
                   UNNEST(generate_series(1, len(c.constraint_column_names))), NULL, \
                   c.database_name, c.schema_name, c.table_name, c.constraint_name, UNNEST(c.constraint_column_names) \
                 FROM duckdb_constraints() c WHERE c.constraint_type = 'FOREIGN KEY'"
            };
            let mut out = Vec::new();
            for b in conn.query_all(sql)? {
                for i in 0..b.num_rows() {
                    let text = |c: usize| -> Option<String> {
                        let a = b.column(c);
                        if a.is_null(i) {
                            return None;
                        }
                        arrow::util::display::array_value_to_string(a, i).ok()
                    };
                    let (pk_cat, pk_sch, pk_tab, pk_col) = (
                        text(0).unwrap_or_default(),
                        text(1).unwrap_or_default(),
                        text(2).unwrap_or_default(),
                        text(3).unwrap_or_default(),
                    );
                    let seq: i32 = text(4).and_then(|x| x.parse().ok()).unwrap_or(1);
                    let (fk_cat, fk_sch, fk_tab) = (
                        text(6).unwrap_or_default(),
                        text(7).unwrap_or_default(),
                        text(8).unwrap_or_default(),
                    );
                    let fk_col = if primary_only {
                        pk_col.clone()
                    } else {
                        text(10).unwrap_or_default()
                    };
                    if !allowed.contains(&pk_cat) {
                        continue;
                    }
                    let matches = |f: &Option<(Option<String>, Option<String>, String)>, c: &str, s_: &str, t: &str| {
                        f.as_ref().is_none_or(|(fc, fs, ft)| {
                            fc.as_deref().unwrap_or(current_db.as_str()) == c
                                && fs.as_deref().is_none_or(|x| x == s_)
                                && ft == t
                        })
                    };
                    if !matches(&pk, &pk_cat, &pk_sch, &pk_tab) || !matches(&fk, &fk_cat, &fk_sch, &fk_tab) {
                        continue;
                    }
                    out.push(KeyColumn {
                        pk_catalog: pk_cat,
                        pk_schema: pk_sch,
                        pk_table: pk_tab,
                        pk_column: pk_col,
                        fk_catalog: fk_cat,
                        fk_schema: fk_sch,
                        fk_table: fk_tab,
                        fk_column: fk_col,
                        key_sequence: seq,
                        fk_name: if primary_only { None } else { text(9) },
                        pk_name: if primary_only { text(5) } else { None },
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}
