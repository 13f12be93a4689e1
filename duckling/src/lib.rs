//! A duckling: one user's sandboxed DuckDB instance.
//!
//! - [`sandbox`]: what user SQL may do: DuckDB's own locks plus a statement check by DuckDB's
//!   parser and reviewed allow-lists.
//! - [`duckling`]: a user's instance with the user's databases attached, each a working copy
//!   of its latest snapshot in differential storage, synced after every commit.
//! - [`egress`]: the loopback proxy every remote read and write goes through, which refuses
//!   link-local (and, unless allowed, private) addresses.
//! - [`parallelism`]: the instances' DuckDB threads, one while the CPUs are contended.
//! - [`error`]: [`DucklingError`], which carries the engine's errors unchanged in kind.
//!
//! DuckDB itself (the C API wrapper [`engine`], the [`statement_cache`], DuckDB's [`lexer`])
//! lives in `pond-duckdb`, which the client uses without the server's storage; it is
//! re-exported here under its old paths.
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
//! let d = Duckling::open(&DucklingConfig { dir: dir.path().join("alice"), threads: Some(1), adaptive_threads: false, memory_limit: None, storage, remote: Default::default() })?;
//! d.attach("my_db", "db-1")?;
//! let conn = d.connect("my_db")?;
//! let (mut stmt, described) = prepare_script(&conn, "SELECT 42 AS answer", &pond_duckling::any_kind)?;
//! assert!(described.returns_rows());
//! let batch = stmt.execute_streaming()?.next_batch()?.unwrap();
//! assert_eq!(batch.num_rows(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod duckling;
pub mod egress;
pub mod error;
pub mod parallelism;
pub mod sandbox;

pub use duckling::{
    Described, Duckling, DucklingConfig, Instance, InstanceOptions, RemoteAccess, SYSTEM_CATALOGS, SharedCopy,
    any_kind, describe, prepare_checked, prepare_kept, prepare_script,
};
pub use error::DucklingError;
pub use pond_duckdb::{
    Connection, Database, DuckdbError, InterruptHandle, Prepared, ResultStream, SqlErrorKind, StatementKind, engine,
    extensions, lexer, statement_cache,
};
