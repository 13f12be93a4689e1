//! Pond's coordinator: the catalog of users and databases, tokens, sessions, the SQL statements
//! Pond adds to DuckDB's, and dispatch of everything else to the user's duckling.
//!
//! The front door (`pond-flight-server`) only translates Flight SQL into calls on
//! [`Coordinator`]; nothing here knows about gRPC.
//!
//! - [`catalog`]: users, databases, sealed secrets, shares and readers' share attachments,
//!   persisted atomically.
//! - [`secrets`]: users' secrets for remote data: checked, sealed at rest, made DuckDB secrets
//!   inside their owner's duckling only.
//! - [`shares`]: databases published read-only to other users: access, visibility, updates,
//!   tokens and URLs (the catalog keeps them and decides who reads).
//! - [`history`]: the query history's records, the text it keeps, its files.
//! - [`auth`]: JWTs and revocation.
//! - [`commands`]: Pond's statements: databases, clones, snapshots, time travel, retention,
//!   `REFRESH`, `SHUTDOWN`, secrets and shares, recognised from DuckDB's tokens.
//! - [`classify`]: what a statement's text tells the coordinator, read once by DuckDB's lexer.
//! - [`session`]: per-connection state and the limits statements run under.
//! - [`config`]: the coordinator's settings, which are also the flags that set them.
//! - [`coordinator`]: the API the front door calls, one room per job (ducklings, running on a
//!   connection, statements, prepared statements, streaming, Pond's statements and views,
//!   metadata, ingest, dual planning).
//!
//! ```
//! use pond_coordinator::{Coordinator, CoordinatorConfig};
//! let dir = tempfile::tempdir()?;
//! let coordinator = Coordinator::open(CoordinatorConfig::new(dir.path()))?;
//! let token = std::fs::read_to_string(dir.path().join("admin.token"))?;
//! let admin = coordinator.authenticate(token.trim())?;
//! assert_eq!(coordinator.catalogs(&admin)?, vec!["my_db".to_string()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod auth;
pub mod catalog;
pub mod classify;
pub mod commands;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod history;
pub mod secrets;
pub mod session;
pub mod shares;

pub use auth::{Principal, TokenAuthority, load_or_create_key};
pub use catalog::{
    Catalog, Claim, Claimant, DatabaseEntry, DucklingDirectory, FileCatalog, NewShare, OnExisting, PgCatalog,
    TokenStore, User, WriterLease, WriterLeases,
};
pub use config::{CATALOG_ENV, CatalogUrl, child_flags, parse_byte_size};
pub use coordinator::{
    ADMIN_USER, COUNTERS, ClusterView, Coordinator, CoordinatorConfig, CounterSpec, DUCKLINGS_DIR, DucklingInfo,
    HISTOGRAMS, HistogramSpec, IfExists, IfNotExists, IngestChunk, IngestTarget, KeyColumn, MAX_INLINE_BYTES, Planned,
    PlannedResult, PreparedInfo, QueryStream, REPORTED_WORDS, TableFilter, TableInfo, open_instance,
};
pub use error::{CoordinatorError, Result};
pub use secrets::{SecretEntry, SecretOptions, SecretSpec};
pub use session::{Session, SessionLimits};
