//! A small, safe wrapper over DuckDB's C API: databases, connections, prepared statements,
//! streaming Arrow results, parameter binding from Arrow, and the Arrow appender.
//!
//! Why our own wrapper rather than the `duckdb` crate: a server needs results that stream
//! chunk by chunk and fail cleanly when interrupted (the crate's streaming iterator panics on a
//! mid-stream error), the result schema of a statement *before* it runs (Flight SQL's
//! `dataset_schema`), the statement type DuckDB's own parser assigns (the sandbox relies on it),
//! and an interrupt handle that outlives a borrowed statement.
//!
//! The rooms:
//! - `database`: an open DuckDB instance, shared by every thread.
//! - `connection`: a connection, used by one thread at a time, and its [`InterruptHandle`],
//!   the one part other threads may use.
//! - `statement` and `statement_kind`: statements split and prepared by DuckDB's parser,
//!   their kind, parameters and result schema, and running them.
//! - `binding`: Arrow values bound to a statement's parameters.
//! - `stream`: a running query's result as Arrow batches, and the recovery of an error a
//!   DuckDB worker thread raised but DuckDB did not report.
//! - `appender`: Arrow batches appended to a table.
//! - `arrow_types`: DuckDB's logical types as Arrow schemas, with DuckDB's own conversion.
//! - `sql`: SQL text Pond writes for DuckDB (quoting, column types); no `unsafe`.
//! - `raw`: strings and errors read out of the C API.
//!
//! Invariants (each module states its own at its top):
//! - Every raw DuckDB handle is owned by exactly one Rust value and destroyed in its `Drop`.
//! - A [`Connection`] is used by one thread at a time, and its type says so: it is `Send` but
//!   not `Sync`. The only calls made from other threads are `duckdb_interrupt` and
//!   `duckdb_query_progress`, through an [`InterruptHandle`], which DuckDB allows.
//! - Arrow data crosses the boundary through the C Data Interface; the release callback of every
//!   array runs exactly once (DuckDB nulls it when it takes ownership, arrow-rs otherwise).
//! - Every `unsafe` block says why it is sound in a `// SAFETY:` comment (the workspace denies
//!   `clippy::undocumented_unsafe_blocks`).

mod appender;
mod arrow_types;
mod binding;
mod connection;
mod database;
mod raw;
mod sql;
mod statement;
mod statement_kind;
mod stream;

pub use appender::Appender;
pub use connection::{Connection, InterruptHandle};
pub use database::Database;
pub use sql::{cast_to_schema, column_definitions, duckdb_type_for_arrow, plain_sql_type, quote_ident, quote_literal};
pub use statement::{Extracted, Prepared};
pub use statement_kind::StatementKind;
pub use stream::ResultStream;

type Result<T, E = crate::error::DuckdbError> = std::result::Result<T, E>;
