//! What DuckDB itself returns: its SQL errors with their kind, and the engine's own failures.
//!
//! Crates above (the duckling, the client) wrap [`DuckdbError`] in their own error types; the
//! duckling keeps [`SqlErrorKind`] as is, so an SQL error reads the same at every layer.

use libduckdb_sys as ffi;

/// What kind of SQL error DuckDB reported; the front door maps kinds to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlErrorKind {
    /// Syntax errors.
    Parser,
    /// A missing table, schema or function.
    Catalog,
    /// Binding, type and conversion errors.
    Binder,
    /// Constraint violations.
    Constraint,
    /// Transaction conflicts.
    Transaction,
    /// The query was interrupted (cancel, deadline, shutdown).
    Interrupted,
    /// DuckDB itself refused an operation (its own permission checks).
    Permission,
    /// Out of memory.
    OutOfMemory,
    /// DuckDB hit an internal or fatal error.
    Internal,
    /// Reading or writing a file or URL failed (DuckDB's IO and HTTP errors): a missing
    /// object, a refusal by the store, a store that cannot be reached.
    Io,
    /// Anything else that is the statement's fault.
    Other,
}

impl SqlErrorKind {
    pub(crate) fn from_duckdb(t: ffi::duckdb_error_type) -> Self {
        match t {
            ffi::duckdb_error_type_DUCKDB_ERROR_PARSER | ffi::duckdb_error_type_DUCKDB_ERROR_SYNTAX => Self::Parser,
            ffi::duckdb_error_type_DUCKDB_ERROR_CATALOG => Self::Catalog,
            ffi::duckdb_error_type_DUCKDB_ERROR_BINDER
            | ffi::duckdb_error_type_DUCKDB_ERROR_CONVERSION
            | ffi::duckdb_error_type_DUCKDB_ERROR_MISMATCH_TYPE
            | ffi::duckdb_error_type_DUCKDB_ERROR_INVALID_TYPE
            | ffi::duckdb_error_type_DUCKDB_ERROR_PARAMETER_NOT_RESOLVED => Self::Binder,
            ffi::duckdb_error_type_DUCKDB_ERROR_CONSTRAINT => Self::Constraint,
            ffi::duckdb_error_type_DUCKDB_ERROR_TRANSACTION => Self::Transaction,
            ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT => Self::Interrupted,
            ffi::duckdb_error_type_DUCKDB_ERROR_PERMISSION => Self::Permission,
            ffi::duckdb_error_type_DUCKDB_ERROR_OUT_OF_MEMORY => Self::OutOfMemory,
            ffi::duckdb_error_type_DUCKDB_ERROR_INTERNAL | ffi::duckdb_error_type_DUCKDB_ERROR_FATAL => Self::Internal,
            ffi::duckdb_error_type_DUCKDB_ERROR_IO | ffi::duckdb_error_type_DUCKDB_ERROR_HTTP => Self::Io,
            _ => Self::Other,
        }
    }

    /// A write to a database attached read-only (a snapshot, a share) is DuckDB's
    /// `InvalidInput`, but to the user it is a refusal: they may read it and never write it.
    pub(crate) fn refined(self, message: &str) -> Self {
        if self == Self::Other && message.contains("\" which is attached in read-only mode!") {
            Self::Permission
        } else {
            self
        }
    }

    /// Prepare errors only come as text; DuckDB prefixes them with the error class.
    pub(crate) fn from_message(message: &str) -> Self {
        let class = message.split(" Error:").next().unwrap_or("");
        match class {
            "Parser" | "Syntax" => Self::Parser,
            "Catalog" => Self::Catalog,
            "Binder" | "Conversion" | "Mismatch Type" | "Invalid Type" => Self::Binder,
            "Constraint" => Self::Constraint,
            "TransactionContext" | "Transaction" => Self::Transaction,
            "INTERRUPT" | "Interrupt" => Self::Interrupted,
            "Permission" => Self::Permission,
            "Out of Memory" => Self::OutOfMemory,
            "INTERNAL" | "FATAL" => Self::Internal,
            "IO" | "HTTP" => Self::Io,
            _ => Self::Other,
        }
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DuckdbError {
    /// DuckDB rejected or failed the statement; `message` is DuckDB's own.
    #[error("{message}")]
    Sql { kind: SqlErrorKind, message: String },
    /// The request itself is malformed (bad parameters, a NUL in SQL text, an Arrow type DuckDB
    /// has no column type for).
    #[error("{0}")]
    InvalidInput(String),
    /// Arrow conversion failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A bug or an unexpected state of DuckDB.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DuckdbError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }
}
