//! Database copies between the laptop and the cloud: `CREATE DATABASE d FROM 'file.duckdb'`
//! (or `FROM CURRENT_DATABASE()`) uploads a local database into a new cloud one, and
//! `COPY FROM DATABASE a TO b` copies every table across, in whichever direction.
//!
//! Invariant: uploads are ingests (all or nothing per table) and report progress as batches
//! are handed to the stream; a database this module attaches locally to read it is detached
//! again, on success or error.

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::DataType;
use pond_duckdb::engine::{quote_ident, quote_literal};

use super::{DualSession, Outcome, Progress};
use crate::sql_words::Lexed;
use crate::{ClientError, IngestTarget};

impl DualSession {
    /// `CREATE DATABASE d FROM 'file.duckdb'` or `FROM CURRENT_DATABASE()`: uploads every
    /// table of a local database into a new cloud database.
    pub(super) async fn upload_database(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        if !lexed.starts_with(&["create", "database"]) {
            return Err(ClientError::Invalid("expected CREATE DATABASE name FROM …".into()));
        }
        let name = lexed
            .identifier(2)
            .ok_or_else(|| ClientError::Invalid("CREATE DATABASE needs a name".into()))?;
        if !lexed.is_word(3, "from") {
            return Err(ClientError::Invalid("expected FROM after the database name".into()));
        }
        let (source, attached_here) = if lexed.is_word(4, "current_database") {
            let current = self
                .local
                .scalar_string("SELECT current_database()")?
                .unwrap_or_else(|| self.local.catalog().to_string());
            (current, false)
        } else {
            let path = lexed
                .string_value(4)
                .ok_or_else(|| ClientError::Invalid("FROM needs 'file.duckdb' or CURRENT_DATABASE()".into()))?;
            self.local
                .execute(&format!("ATTACH {} AS __pond_upload (READ_ONLY)", quote_literal(&path)))?;
            ("__pond_upload".to_string(), true)
        };
        let result = self.upload_tables(&source, &name).await;
        if attached_here {
            let _ = self.local.execute("DETACH __pond_upload");
        }
        let (tables, rows) = result?;
        self.attached.insert(name.clone(), name.clone());
        Ok(Outcome::client(format!(
            "uploaded {tables} table(s), {rows} rows, into cloud database {name}"
        )))
    }

    fn local_tables(&self, database: &str) -> Result<Vec<(String, String)>, ClientError> {
        let (_, batches) = self.local.query(&format!(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = {} AND NOT temporary ORDER BY 1, 2",
            quote_literal(database)
        ))?;
        Ok(pairs(&batches))
    }

    async fn upload_tables(&mut self, source: &str, database: &str) -> Result<(usize, u64), ClientError> {
        let tables = self.local_tables(source)?;
        let cloud = self.cloud_client("CREATE DATABASE … FROM a local database")?;
        cloud
            .execute(&format!("CREATE DATABASE {}", quote_ident(database)))
            .await?;
        self.copy_up(source, database, &tables).await
    }

    async fn copy_up(
        &mut self,
        source: &str,
        database: &str,
        tables: &[(String, String)],
    ) -> Result<(usize, u64), ClientError> {
        let mut total = 0;
        for (schema, table) in tables {
            if schema != "main" {
                let statement = format!(
                    "CREATE SCHEMA IF NOT EXISTS {}.{}",
                    quote_ident(database),
                    quote_ident(schema)
                );
                self.cloud_client("an upload")?.execute(&statement).await?;
            }
            let what = format!("{schema}.{table}");
            let (batch_schema, mut batches) = self.local.query(&format!(
                "SELECT * FROM {}.{}.{}",
                quote_ident(source),
                quote_ident(schema),
                quote_ident(table)
            ))?;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(batch_schema));
            }
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let target = IngestTarget {
                catalog: Some(database.to_string()),
                schema: Some(schema.clone()),
                table: table.clone(),
                temporary: false,
                replace: false,
            };
            // Progress is reported as batches are handed to the upload stream.
            let progress = self.progress.clone();
            let label = what.clone();
            let mut sent = 0u64;
            let stream = futures::stream::iter(batches.into_iter().map(move |b| {
                sent += b.num_rows() as u64;
                if let Some(p) = &progress {
                    p(&Progress {
                        what: label.clone(),
                        rows: sent,
                        done: false,
                    });
                }
                Ok(b)
            }));
            let result = self.cloud_client("an upload")?.ingest_stream(target, stream).await;
            result?;
            self.report(&what, rows, true);
            total += rows;
        }
        Ok((tables.len(), total))
    }

    /// `COPY FROM DATABASE a TO b` where one side is cloud: copies every table across.
    pub(super) async fn copy_database(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        let text = lexed.text;
        if !lexed.starts_with(&["copy", "from", "database"]) {
            return self.run_local(text);
        }
        let from = lexed
            .identifier(3)
            .ok_or_else(|| ClientError::Invalid("COPY FROM DATABASE needs a source".into()))?;
        if !lexed.is_word(4, "to") {
            return Err(ClientError::Invalid("expected TO".into()));
        }
        let to = lexed
            .identifier(5)
            .ok_or_else(|| ClientError::Invalid("COPY FROM DATABASE needs a target".into()))?;
        match (self.cloud_database(&from), self.cloud_database(&to)) {
            (None, None) => self.run_local(text),
            (Some(_), Some(_)) => {
                let sql = self.rewrite_cloud_names_mapped(text);
                self.run_remote(&sql.sql).await.map_err(|e| sql.user_error(text, e))
            }
            (None, Some(db)) => {
                let tables = self.local_tables(&from)?;
                let (n, rows) = self.copy_up(&from, &db, &tables).await?;
                Ok(Outcome::client(format!(
                    "copied {n} table(s), {rows} rows, to cloud database {to}"
                )))
            }
            (Some(db), None) => {
                let (n, rows) = self.copy_down(&db, &to).await?;
                Ok(Outcome::client(format!(
                    "copied {n} table(s), {rows} rows, from cloud database {from}"
                )))
            }
        }
    }

    /// Copies every table of cloud database `db` into local database `to`.
    async fn copy_down(&mut self, db: &str, to: &str) -> Result<(usize, u64), ClientError> {
        let listing = format!(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = {} AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            quote_literal(db)
        );
        let (_, batches) = self
            .cloud_client("COPY FROM a cloud database")?
            .query_with_schema(&listing)
            .await?;
        let tables = pairs(&batches);
        let mut total = 0;
        for (schema, table) in &tables {
            if schema != "main" {
                self.local.execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {}.{}",
                    quote_ident(to),
                    quote_ident(schema)
                ))?;
            }
            let q = format!(
                "SELECT * FROM {}.{}.{}",
                quote_ident(db),
                quote_ident(schema),
                quote_ident(table)
            );
            let cloud = self.cloud_client("COPY FROM a cloud database")?;
            let (batch_schema, batches) = cloud.query_with_schema(&q).await?;
            let temp = "__pond_copy";
            let statement = format!(
                "CREATE TABLE {}.{}.{} AS SELECT * FROM {}",
                quote_ident(to),
                quote_ident(schema),
                quote_ident(table),
                pond_planner::temp_name(temp)
            );
            let copied = self
                .local
                .load_temp(temp, &batch_schema, &batches)
                .and_then(|rows| self.local.execute(&statement).map(|()| rows));
            self.local.drop_temp(temp);
            let rows = copied?;
            self.report(&format!("{schema}.{table}"), rows, true);
            total += rows;
        }
        Ok((tables.len(), total))
    }
}

fn pairs(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in batches {
        let col = |i: usize| {
            arrow::compute::cast(b.column(i), &DataType::Utf8)
                .ok()
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        };
        if let (Some(s), Some(t)) = (col(0), col(1)) {
            for i in 0..b.num_rows() {
                out.push((s.value(i).to_string(), t.value(i).to_string()));
            }
        }
    }
    out
}
