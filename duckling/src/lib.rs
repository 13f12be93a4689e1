//! A duckling: one user's sandboxed DuckDB instance, and the safe DuckDB API the rest of Pond
//! uses.
//!
//! - [`engine`]: a safe wrapper over DuckDB's C API, one room per job: the database, a
//!   connection (one thread at a time) and its interrupt handle (any thread), statements,
//!   parameter binding, result streams, the appender, Arrow type conversion, and the SQL text
//!   Pond writes (quoting, column types), which holds no `unsafe`.
//! - [`sandbox`]: what user SQL may do: DuckDB's own locks plus a statement check by DuckDB's
//!   parser and reviewed allow-lists.
//! - [`lexer`]: where DuckDB's SQL splits into words, names, strings and comments.
//! - [`statement_cache`]: prepared SELECTs a connection keeps and reuses for the same text.
//! - [`duckling`]: a user's instance with the user's databases attached, each a working copy
//!   of its latest snapshot in differential storage, synced after every commit.
//!
//! ```
//! use pond_duckling::{Duckling, DucklingConfig, prepare_script};
//! use pond_storage::{Storage, StorageConfig};
//! let dir = tempfile::tempdir()?;
//! let storage = Storage::open(&StorageConfig {
//!     url: "memory://".into(),
//!     cache_dir: dir.path().join("cache"),
//!     cache_bytes: 1 << 30,
//! })?;
//! let d = Duckling::open(&DucklingConfig { dir: dir.path().join("alice"), threads: Some(1), memory_limit: None, storage })?;
//! d.attach("my_db", "db-1")?;
//! let conn = d.connect("my_db")?;
//! let (mut stmt, described) = prepare_script(&conn, "SELECT 42 AS answer", &pond_duckling::any_kind)?;
//! assert!(described.returns_rows());
//! let batch = stmt.execute_streaming()?.next_batch()?.unwrap();
//! assert_eq!(batch.num_rows(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod duckling;
pub mod engine;
pub mod error;
pub mod lexer;
pub mod sandbox;
pub mod statement_cache;

pub use duckling::{
    Described, Duckling, DucklingConfig, SYSTEM_CATALOGS, any_kind, describe, prepare_checked, prepare_script,
};
pub use engine::{Connection, Database, InterruptHandle, Prepared, ResultStream, StatementKind};
pub use error::{DucklingError, SqlErrorKind};
