//! The kind of a statement, as DuckDB's parser classified it.
//!
//! Invariants:
//! - One list names every kind with its DuckDB constant; the enum, [`StatementKind::ALL`] and
//!   the mapping from DuckDB's statement types all come from it.
//! - A statement type this build does not know is [`StatementKind::Invalid`], never a kind it
//!   is not (the sandbox refuses what it does not recognize).

use libduckdb_sys as ffi;

/// Declares [`StatementKind`] from one list of (kind = DuckDB constant) pairs: the enum, the
/// list of all kinds, and the mapping from DuckDB's statement types.
macro_rules! statement_kinds {
    ($($kind:ident = $ffi:ident),* $(,)?) => {
        /// The kind of statement, as DuckDB's parser classified it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum StatementKind {
            $($kind,)*
            /// A statement type this build does not know.
            Invalid,
        }

        impl StatementKind {
            /// Every kind, for exhaustive checks and tests.
            pub const ALL: &'static [StatementKind] = &[$(StatementKind::$kind,)* StatementKind::Invalid];

            pub(super) fn from_duckdb(t: ffi::duckdb_statement_type) -> Self {
                match t {
                    $(ffi::$ffi => StatementKind::$kind,)*
                    _ => StatementKind::Invalid,
                }
            }
        }
    };
}

statement_kinds! {
    Select = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT,
    Insert = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT,
    Update = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE,
    Delete = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE,
    Merge = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO,
    Explain = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN,
    Create = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE,
    Drop = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP,
    Alter = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER,
    Transaction = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION,
    Copy = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY,
    CopyDatabase = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE,
    Export = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT,
    Attach = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH,
    Detach = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH,
    Load = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD,
    Extension = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION,
    UpdateExtensions = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS,
    Set = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET,
    VariableSet = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET,
    Pragma = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA,
    Call = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL,
    Prepare = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE,
    Execute = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE,
    Analyze = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE,
    Vacuum = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM,
    CreateFunction = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC,
    Relation = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION,
    LogicalPlan = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN,
    Multi = duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI,
}
