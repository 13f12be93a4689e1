//! The embedded local DuckDB: the user's own database file (or memory), unsandboxed, because
//! it runs on the user's machine with the user's rights.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use pond_duckdb::engine::{Connection, Database, ResultStream, column_definitions, quote_ident};

use crate::ClientError;

/// A local DuckDB database and the one connection the client uses on it.
pub struct LocalDb {
    conn: Connection,
    _db: Arc<Database>,
    /// The name DuckDB gives the database (`memory`, or the file's stem).
    catalog: String,
}

impl LocalDb {
    /// Opens `path`, or an in-memory database.
    pub fn open(path: Option<&Path>) -> Result<Self, ClientError> {
        let db = Database::open(path, &[])?;
        let conn = db.connect()?;
        let mut local = Self {
            conn,
            _db: db,
            catalog: String::new(),
        };
        local.catalog = local
            .scalar_string("SELECT current_database()")?
            .unwrap_or_else(|| "memory".into());
        Ok(local)
    }

    /// A handle that interrupts the running local query from another thread (Ctrl-C).
    pub fn interrupt_handle(&self) -> pond_duckdb::InterruptHandle {
        self.conn.interrupt_handle()
    }

    /// The name of the default local catalog.
    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    /// Runs one statement and returns its schema and batches.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        let mut stream = self.query_stream(sql)?;
        let mut out = Vec::new();
        while let Some(b) = stream.next_batch()? {
            out.push(b);
        }
        Ok((stream.schema(), out))
    }

    /// Runs one statement; its batches are fetched one by one as the stream is read.
    pub fn query_stream(&self, sql: &str) -> Result<ResultStream<'_>, ClientError> {
        Ok(self.conn.prepare(sql)?.into_stream()?)
    }

    /// Runs statements, discarding results.
    pub fn execute(&self, sql: &str) -> Result<(), ClientError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    /// The schema a query would return, without running it.
    pub fn describe(&self, sql: &str) -> Result<SchemaRef, ClientError> {
        Ok(self.conn.prepare(sql)?.result_schema()?)
    }

    /// The first column of the first row, as text.
    pub fn scalar_string(&self, sql: &str) -> Result<Option<String>, ClientError> {
        let (_, batches) = self.query(sql)?;
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
        let s = col.as_any().downcast_ref::<arrow::array::StringArray>();
        Ok(s.filter(|s| !s.is_null(0)).map(|s| s.value(0).to_string()))
    }

    /// DuckDB's JSON serialization of a query, for [`crate::analyze`].
    pub fn serialize(&self, sql: &str) -> Result<String, ClientError> {
        let q = format!("SELECT json_serialize_sql({})", pond_duckdb::engine::quote_literal(sql));
        Ok(self.scalar_string(&q)?.unwrap_or_default())
    }

    /// Creates (or replaces) the temporary table `name` with `schema` and appends `batches`.
    pub fn load_temp(&self, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64, ClientError> {
        self.create_temp(name, schema)?;
        self.append_temp(name, batches)
    }

    /// Creates (or replaces) the empty temporary table `name`, to be filled by
    /// [`Self::append_temp`].
    pub fn create_temp(&self, name: &str, schema: &SchemaRef) -> Result<(), ClientError> {
        self.execute(&format!(
            "CREATE OR REPLACE TEMP TABLE {} ({})",
            quote_ident(name),
            column_definitions(schema.fields())?
        ))
    }

    /// Appends `batches` to the temporary table `name`; returns the rows appended. The
    /// appender lives only for the call, so a caller may await between calls and stay `Send`.
    pub fn append_temp(&self, name: &str, batches: &[RecordBatch]) -> Result<u64, ClientError> {
        if batches.is_empty() {
            return Ok(0);
        }
        let mut appender = self.conn.appender("temp", "main", name)?;
        for b in batches {
            appender.append(b)?;
        }
        appender.flush()?;
        Ok(batches.iter().map(|b| b.num_rows() as u64).sum())
    }

    /// Drops a temporary table if it exists.
    pub fn drop_temp(&self, name: &str) {
        let _ = self.execute(&format!("DROP TABLE IF EXISTS temp.main.{}", quote_ident(name)));
    }
}
