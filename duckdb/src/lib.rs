//! DuckDB itself, as both sides of Pond use it: the server's ducklings and the client's local
//! DuckDB. Nothing here knows about storage, users or the sandbox.
//!
//! - [`engine`]: a safe wrapper over DuckDB's C API, one room per job: the database, a
//!   connection (one thread at a time) and its interrupt handle (any thread), statements,
//!   parameter binding, result streams, the appender, Arrow type conversion, and the SQL text
//!   Pond writes (quoting, column types), which holds no `unsafe`.
//! - [`statement_cache`]: prepared SELECTs a connection keeps and reuses for the same text.
//! - [`lexer`]: where DuckDB's SQL splits into words, names, strings and comments.
//! - [`extensions`]: the official extensions Pond ships (httpfs), found and verified.
//! - [`error`]: what the engine returns, [`DuckdbError`], with DuckDB's [`SqlErrorKind`].
//!
//! Which DuckDB is linked is decided by this crate's `build.rs`: DuckDB's official shared
//! library by default, or the sources bundled in libduckdb-sys with `--features bundled-duckdb`.
//!
//! ```
//! use pond_duckdb::Database;
//! let conn = Database::open(None, &[])?.connect()?;
//! let batches = conn.query_all("SELECT 42 AS answer")?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok::<(), pond_duckdb::DuckdbError>(())
//! ```

pub mod engine;
pub mod error;
pub mod extensions;
pub mod lexer;
pub mod statement_cache;

pub use engine::{Appender, Connection, Database, InterruptHandle, Prepared, ResultStream, StatementKind};
pub use error::{DuckdbError, SqlErrorKind};
