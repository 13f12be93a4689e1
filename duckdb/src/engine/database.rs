//! An open DuckDB database instance.
//!
//! Invariants:
//! - A [`Database`] is shared by every thread (`Send + Sync`): DuckDB's `DatabaseInstance`
//!   is thread-safe, and the state Pond keeps next to it (the binding generation, the list of
//!   table functions) is atomic or written once.
//! - It closes only after its last connection: every [`Connection`] holds an `Arc` of it.

use std::collections::HashSet;
use std::path::Path;
use std::ptr;
use std::sync::{Arc, OnceLock};

use libduckdb_sys as ffi;

use super::Result;
use super::connection::Connection;
use super::raw::{cstring, owned_str};
use crate::error::DuckdbError;
use crate::statement_cache::Generation;

/// An open DuckDB database instance.
pub struct Database {
    raw: ffi::duckdb_database,
    /// Advanced around every statement that may change how SQL binds (see
    /// [`crate::statement_cache`]).
    pub(super) generation: Generation,
    /// The names of the table functions DuckDB has (built in or from extensions), read once.
    pub(super) table_functions: OnceLock<HashSet<String>>,
}

// SAFETY: a duckdb_database is a thread-safe handle to DuckDB's DatabaseInstance.
unsafe impl Send for Database {}
// SAFETY: as above; all methods taking &self are thread-safe in DuckDB.
unsafe impl Sync for Database {}

impl Database {
    /// Opens (or creates) a database. `path` `None` is an in-memory database. `options` are
    /// DuckDB configuration options applied before start-up, in order.
    pub fn open(path: Option<&Path>, options: &[(&str, String)]) -> Result<Arc<Self>> {
        let path = match path {
            Some(p) => cstring(&p.to_string_lossy())?,
            None => cstring(":memory:")?,
        };
        let config = Config::new(options)?;
        let mut db: ffi::duckdb_database = ptr::null_mut();
        let mut err: *mut std::ffi::c_char = ptr::null_mut();
        // SAFETY: `path` and `config` are live for the call; the database handle becomes ours
        // (owned by the returned Database); an error string is ours to free (owned_str does).
        unsafe {
            let state = ffi::duckdb_open_ext(path.as_ptr(), &mut db, config.raw, &mut err);
            if state != ffi::DuckDBSuccess {
                let message = owned_str(err).unwrap_or_else(|| "unknown error".into());
                return Err(DuckdbError::internal(format!(
                    "could not open DuckDB database: {message}"
                )));
            }
        }
        Ok(Arc::new(Self {
            raw: db,
            generation: Generation::default(),
            table_functions: OnceLock::new(),
        }))
    }

    /// Opens a new connection to this database.
    pub fn connect(self: &Arc<Self>) -> Result<Connection> {
        let mut conn: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `self.raw` is a live database; the connection handle is handed to Connection,
        // which owns it from here on.
        if unsafe { ffi::duckdb_connect(self.raw, &mut conn) } != ffi::DuckDBSuccess {
            return Err(DuckdbError::internal("could not connect to DuckDB"));
        }
        Ok(Connection::new(conn, Arc::clone(self)))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: every connection holds an Arc<Database>, so none is left open here.
        unsafe { ffi::duckdb_close(&mut self.raw) }
    }
}

/// DuckDB configuration options, before the database starts.
struct Config {
    raw: ffi::duckdb_config,
}

impl Config {
    fn new(options: &[(&str, String)]) -> Result<Self> {
        let mut config = Config { raw: ptr::null_mut() };
        // SAFETY: the config handle is owned by `config`, whose Drop destroys it.
        if unsafe { ffi::duckdb_create_config(&mut config.raw) } != ffi::DuckDBSuccess {
            return Err(DuckdbError::internal("could not create a DuckDB config"));
        }
        for (name, value) in options {
            let (n, v) = (cstring(name)?, cstring(value)?);
            // SAFETY: a live config; DuckDB copies the name and value.
            if unsafe { ffi::duckdb_set_config(config.raw, n.as_ptr(), v.as_ptr()) } != ffi::DuckDBSuccess {
                return Err(DuckdbError::internal(format!(
                    "DuckDB refused the configuration option {name}={value}"
                )));
            }
        }
        Ok(config)
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: an owned handle, destroyed once.
            unsafe { ffi::duckdb_destroy_config(&mut self.raw) }
        }
    }
}
