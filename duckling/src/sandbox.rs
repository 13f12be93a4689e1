//! The sandbox: what a user's SQL may do inside a duckling.
//!
//! Two layers, both always on:
//! 1. DuckDB's own locks, set by the host before any user SQL runs: external access off except
//!    for the duckling's private directory, no extension install or autoload, and the
//!    configuration locked (see [`lockdown_sql`]).
//! 2. A check of the text before DuckDB prepares it ([`check_text`]) and of the prepared
//!    statement before it runs ([`check`]): DuckDB's parser
//!    classifies every statement ([`StatementKind`]); kinds that touch files, extensions or
//!    settings are refused. Table functions, `CALL`s and `PRAGMA`s pass only from reviewed
//!    allow-lists ([`ALLOWED_TABLE_FUNCTIONS`], [`ALLOWED_PRAGMAS`]); settings only from
//!    [`SESSION_SETTINGS`], and always for the session alone.
//!
//! Invariants: user SQL reaches DuckDB's prepare only through [`check_text`], and runs only
//! through [`check`], as the text [`check`] returns;
//! host SQL (attach, lockdown) goes through `Connection::execute_batch` and never carries user
//! text except quoted names. A session's setting never changes what another session sees.

use std::collections::HashSet;
use std::path::Path;

use crate::engine::{StatementKind, quote_ident, quote_literal};
use crate::error::DucklingError;
use crate::lexer::{self, Token};

/// Options applied when the duckling's DuckDB instance opens.
pub fn open_options(threads: Option<usize>, memory_limit: Option<&str>) -> Vec<(&'static str, String)> {
    let mut opts = vec![
        ("autoinstall_known_extensions", "false".to_string()),
        ("autoload_known_extensions", "false".to_string()),
        ("allow_community_extensions", "false".to_string()),
        ("allow_unsigned_extensions", "false".to_string()),
        // Users see arrow strings as plain Utf8 and UUIDs as text: what every Flight SQL
        // client (JDBC included) can read.
        ("produce_arrow_string_view", "false".to_string()),
        ("arrow_lossless_conversion", "false".to_string()),
        ("checkpoint_threshold", "64MB".to_string()),
        // DuckDB's own persistent secrets live in the server's home directory, which the
        // lockdown hides: the secret manager would fail half-initialized on first use.
        ("allow_persistent_secrets", "false".to_string()),
        // Worker threads return to the scheduler every few chunks instead of running a task
        // to its end: fewer threads ([`crate::parallelism`]) take effect at the end of the next
        // statement, which waits for the workers it stops, so a long scan must not hold it.
        ("scheduler_process_partial", "true".to_string()),
    ];
    if let Some(t) = threads {
        opts.push(("threads", t.to_string()));
    }
    if let Some(m) = memory_limit {
        opts.push(("max_memory", m.to_string()));
    }
    opts
}

/// Host SQL run once httpfs is loaded, before the lockdown: every request goes through the
/// egress proxy at `proxy` ([`crate::egress`]); the `s3_*` settings httpfs copied from the
/// server's environment (`AWS_ACCESS_KEY_ID`, …, which are the server's own storage
/// credentials) are reset, so a path without a user's secret goes out anonymous; and TLS
/// certificates are verified. `settings` are the names this DuckDB has.
pub fn remote_sql(proxy: &str, settings: &HashSet<String>) -> String {
    let mut sql: Vec<String> = settings
        .iter()
        .filter(|name| name.starts_with("s3_"))
        .map(|name| format!("RESET GLOBAL {}", quote_ident(name)))
        .collect();
    sql.sort();
    sql.push(format!("SET GLOBAL http_proxy = {}", quote_literal(proxy)));
    for (name, value) in [
        ("enable_global_s3_configuration", "false"),
        ("enable_server_cert_verification", "true"),
        ("enable_curl_server_cert_verification", "true"),
    ] {
        if settings.contains(name) {
            sql.push(format!("SET GLOBAL {name} = {value}"));
        }
    }
    sql.join(";\n") + ";"
}

/// Host SQL that locks the instance down once its private directory exists: the private
/// directory and the `remote` prefixes (`s3://`, …) are all DuckDB may reach. DuckDB requires
/// `allowed_directories` before `enable_external_access = false`, and keeps them fixed once
/// the configuration is locked. `settings` are the names of the settings this DuckDB has
/// (lowercased): DuckDB refuses to allow one it does not know, and a build without ICU has no
/// `TimeZone`.
pub fn lockdown_sql(private_dir: &Path, remote: &[String], settings: &HashSet<String>) -> String {
    let dir = std::iter::once(format!("{}/", private_dir.display()))
        .chain(remote.iter().cloned())
        .map(|d| quote_literal(&d))
        .collect::<Vec<_>>()
        .join(", ");
    let tmp = private_dir.join("tmp");
    let allowed: Vec<String> = SESSION_SETTINGS
        .iter()
        .chain(HOST_MANAGED_SETTINGS)
        .filter(|s| settings.contains(**s))
        .map(|s| quote_literal(s))
        .collect();
    format!(
        "SET temp_directory = {tmp};\n\
         SET allowed_directories = [{dir}];\n\
         SET enable_external_access = false;\n\
         SET allowed_configs = [{allowed}];\n\
         SET lock_configuration = true;",
        tmp = quote_literal(&tmp.display().to_string()),
        dir = dir,
        allowed = allowed.join(", "),
    )
}

/// Table functions (reached by `FROM f(…)` and `CALL f(…)`) a user statement may call. Every
/// other table function DuckDB has (see [`crate::engine::Connection::system_table_functions`])
/// is refused by name, so one that a new DuckDB release adds stays refused until reviewed here.
///
/// Reviewed as: catalog listings of the user's own instance, pure generators, and readers whose
/// every path DuckDB's own external-access lock checks. Left out on purpose: `query` and
/// `query_table` and `json_execute_serialized_sql` (they run SQL this check never sees), the
/// pointer-taking `arrow_scan*` and `pandas_scan`, logging and profiling switches (instance-wide,
/// and `enable_logging` with a storage path aborts the process), `checkpoint`s (the write gate
/// owns them), and listings that show the server's own paths (`duckdb_extensions`,
/// `duckdb_temporary_files`, `duckdb_external_file_cache`) or other sessions' statements
/// (`duckdb_logs*`).
pub const ALLOWED_TABLE_FUNCTIONS: &[&str] = &[
    // The instance's catalog, as DuckDB lists it.
    "duckdb_approx_database_count",
    "duckdb_columns",
    "duckdb_connection_count",
    "duckdb_constraints",
    "duckdb_coordinate_systems",
    "duckdb_databases",
    "duckdb_dependencies",
    "duckdb_functions",
    "duckdb_indexes",
    "duckdb_keywords",
    "duckdb_memory",
    "duckdb_optimizers",
    "duckdb_prepared_statements",
    "duckdb_schemas",
    "duckdb_secret_types",
    "duckdb_secrets",
    "duckdb_sequences",
    "duckdb_settings",
    "duckdb_table_sample",
    "duckdb_tables",
    "duckdb_types",
    "duckdb_variables",
    "duckdb_views",
    "which_secret",
    "pragma_collations",
    "pragma_database_size",
    "pragma_metadata_info",
    "pragma_platform",
    "pragma_show",
    "pragma_storage_info",
    "pragma_table_info",
    "pragma_user_agent",
    "pragma_version",
    "icu_calendar_names",
    "pg_timezone_names",
    // Generators and table-shaped views of values.
    "generate_series",
    "range",
    "repeat",
    "repeat_row",
    "unnest",
    "summary",
    "json_each",
    "json_tree",
    "test_all_types",
    "test_vector_types",
    "histogram",
    "histogram_values",
    // Readers: DuckDB checks each path against the duckling's allowed directories.
    "glob",
    "read_blob",
    "read_text",
    "read_csv",
    "read_csv_auto",
    "sniff_csv",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_json_objects_auto",
    "read_ndjson",
    "read_ndjson_auto",
    "read_ndjson_objects",
    "parquet_scan",
    "read_parquet",
    "parquet_metadata",
    "parquet_schema",
    "parquet_file_metadata",
    "parquet_kv_metadata",
    "parquet_full_metadata",
    "parquet_bloom_probe",
];

/// Scalar functions no user statement may call: they read the server's environment.
const REFUSED_SCALAR_FUNCTIONS: &[&str] = &["getenv"];

/// PRAGMAs a user may run: each only reads catalog metadata.
pub const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "show",
    "show_tables",
    "show_tables_expanded",
    "show_databases",
    "database_list",
    "database_size",
    "storage_info",
    "version",
    "platform",
    "functions",
    "collations",
    "metadata_info",
    "user_agent",
];

/// Settings the host changes after the lockdown ([`crate::parallelism`]). DuckDB's lock lets
/// them through, but no user statement reaches them: [`session_scoped_set`] allows only
/// [`SESSION_SETTINGS`].
pub const HOST_MANAGED_SETTINGS: &[&str] = &["threads"];

/// Settings a user may change, always for the session alone. DuckDB keeps most of them
/// instance-wide, where a plain `SET` would change every session of the user; Pond runs each
/// user `SET`/`RESET` as `SET SESSION`/`RESET SESSION` (see [`check`]), which DuckDB scopes to
/// the connection. Each alters only how that session's queries behave or read, never files,
/// extensions, resources or what other sessions see.
pub const SESSION_SETTINGS: &[&str] = &[
    "preserve_identifier_case",
    "default_order",
    "default_null_order",
    "null_order",
    "integer_division",
    "errors_as_json",
    "explain_output",
    "order_by_non_integer_literal",
    "preserve_insertion_order",
    "default_collation",
    "scalar_subquery_error_on_multiple_rows",
    "ieee_floating_point_ops",
    "search_path",
    "schema",
    "enable_progress_bar",
    "enable_progress_bar_print",
    "progress_bar_time",
    "timezone",
    "calendar",
];

/// A user statement the sandbox lets through: as written, or as Pond must run it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    AsWritten,
    /// Run this text in its place (a `SET` scoped to the session).
    Instead(String),
}

/// Checks the text of user SQL before DuckDB prepares any of it (preparing binds table
/// functions and runs PRAGMA handlers, so a refusal must come first): the table functions and
/// PRAGMAs it calls. `table_functions` are the table functions DuckDB has. Names what is refused.
pub fn check_text(sql: &str, table_functions: &HashSet<String>) -> Result<(), DucklingError> {
    let tokens = tokens(sql)?;
    if let Some(what) = pragma_refusal(&tokens).or_else(|| statement_refusal(&tokens)) {
        return Err(DucklingError::PermissionDenied(format!("{what} is not allowed")));
    }
    let refused = |name: &str| {
        (table_functions.contains(name) && !ALLOWED_TABLE_FUNCTIONS.contains(&name))
            || REFUSED_SCALAR_FUNCTIONS.contains(&name)
    };
    // The lexer's calls, and, should it ever split a text differently from DuckDB, every
    // refused name that the raw text follows with `(`.
    let mut calls = lexer::called_names(&tokens).chain(raw_calls(sql));
    if let Some(name) = calls.find(|name| refused(name)) {
        return Err(DucklingError::PermissionDenied(format!(
            "the function {name} is not allowed"
        )));
    }
    if reaches_duckdbs_secrets(&tokens) {
        return Err(DucklingError::PermissionDenied(
            "duckdb_secrets may only be called, unqualified, in a query: duckdb_secrets()".into(),
        ));
    }
    if unicode_escaped(&tokens) {
        // `U&"quer\0079"` names `query` in a way no name check here reads.
        return Err(DucklingError::PermissionDenied(
            "Unicode-escaped names and strings (U&\"…\") are not allowed".into(),
        ));
    }
    if creates_a_secret(&tokens) {
        // Pond takes `CREATE SECRET` sent alone; in a script it would reach DuckDB's parser,
        // whose errors quote the text, values and all.
        return Err(DucklingError::PermissionDenied(
            "CREATE SECRET must be sent as a statement of its own (CREATE SECRET name IN POND (…))".into(),
        ));
    }
    Ok(())
}

/// Whether the text has `U&` right before a quoted name or string: DuckDB reads its escapes.
fn unicode_escaped(tokens: &[Token]) -> bool {
    tokens.windows(3).any(|w| {
        w[0].is_word("u")
            && w[1].is_punct('&')
            && w[0].span.end == w[1].span.start
            && w[1].span.end == w[2].span.start
            && matches!(w[2].kind, lexer::TokenKind::QuotedName(_) | lexer::TokenKind::String)
    })
}

/// Whether a statement of the text starts `CREATE [OR REPLACE] [PERSISTENT|TEMPORARY] SECRET`.
fn creates_a_secret(tokens: &[Token]) -> bool {
    lexer::statement_starts(tokens).any(|i| {
        tokens.get(i).is_some_and(|t| t.is_word("create"))
            && tokens.iter().skip(i + 1).take(4).any(|t| t.is_word("secret"))
    })
}

/// Whether the text names `duckdb_secrets` other than as an unqualified call. The coordinator
/// answers `duckdb_secrets()` with a temporary macro that shows no secret's options; DuckDB's
/// own (reached qualified, `system.main.duckdb_secrets()`, or once the macro is dropped) shows
/// key ids and endpoints.
fn reaches_duckdbs_secrets(tokens: &[Token]) -> bool {
    // A view or macro over it is bound again wherever it is used, where Pond's macro may not
    // be: only a query may name it.
    let creates = tokens.iter().any(|t| t.is_word("create"));
    tokens.iter().enumerate().any(|(i, t)| {
        t.name().as_deref() == Some("duckdb_secrets")
            && (creates
                || i.checked_sub(1).is_some_and(|p| tokens[p].is_punct('.'))
                || !tokens.get(i + 1).is_some_and(|n| n.is_punct('(')))
    })
}

/// Every word of `sql` (ASCII letters, digits, `_`, `$`, lowercased) that the raw text follows
/// with `(`, past spaces of any kind, quotes and comments: a backstop that ignores strings, so it
/// over-reports (a string `'query('` counts) but cannot be split differently from DuckDB.
fn raw_calls(sql: &str) -> impl Iterator<Item = String> + '_ {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in sql.char_indices().chain(std::iter::once((sql.len(), ' '))) {
        match (is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    words.into_iter().filter_map(move |(s, e)| {
        let mut rest = &sql[e..];
        loop {
            let trimmed = rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == '"' || !c.is_ascii() && !c.is_alphanumeric());
            if let Some(comment) = trimmed.strip_prefix("/*") {
                rest = comment.find("*/").map_or("", |n| &comment[n + 2..]);
            } else if let Some(comment) = trimmed.strip_prefix("--") {
                rest = comment.find(['\n', '\r']).map_or("", |n| &comment[n..]);
            } else {
                return trimmed.starts_with('(').then(|| sql[s..e].to_ascii_lowercase());
            }
        }
    })
}

/// Why a statement of the text is refused by its first words, if one is: statements that
/// reach files or run others without their kind showing.
fn statement_refusal(tokens: &[Token]) -> Option<String> {
    let starts = lexer::statement_starts(tokens);
    for i in starts {
        let word = |k: usize| {
            tokens
                .get(i + k)
                .filter(|t| matches!(t.kind, lexer::TokenKind::Word(_)))
        };
        let refusal = match word(0).and_then(Token::name).as_deref() {
            Some("import") => "IMPORT DATABASE (reading server files)",
            // A user checkpoint would rewrite the database file outside the write gate; Pond
            // checkpoints each database itself.
            Some("checkpoint") => "CHECKPOINT (Pond checkpoints itself)",
            Some("force") if word(1).is_some_and(|t| t.is_word("checkpoint")) => "CHECKPOINT (Pond checkpoints itself)",
            _ => continue,
        };
        return Some(refusal.to_string());
    }
    None
}

/// For an `EXPLAIN` text: whether it analyzes (runs) the statement it explains, and that
/// statement's text.
pub fn explained(sql: &str) -> Result<Option<(bool, &str)>, DucklingError> {
    let tokens = tokens(sql)?;
    if !tokens.first().is_some_and(|t| t.is_word("explain")) {
        return Ok(None);
    }
    let is_analyze = |t: &Token| t.is_word("analyze") || t.is_word("analyse");
    let mut analyze = false;
    let mut at = 1;
    if tokens.get(at).is_some_and(|t| t.is_punct('(')) {
        let mut depth = 0;
        while let Some(t) = tokens.get(at) {
            analyze |= is_analyze(t);
            depth += i32::from(t.is_punct('(')) - i32::from(t.is_punct(')'));
            at += 1;
            if depth == 0 {
                break;
            }
        }
    }
    while tokens.get(at).is_some_and(is_analyze) {
        analyze = true;
        at += 1;
    }
    Ok(tokens.get(at).map(|t| (analyze, &sql[t.span.start..])))
}

fn tokens(sql: &str) -> Result<Vec<Token>, DucklingError> {
    lexer::tokenize(sql).map_err(|e| DucklingError::invalid(format!("could not read the statement: {e}")))
}

/// Checks a prepared user statement of `kind` with text `sql` (already through
/// [`check_text`]): what its kind may do. Names what is refused.
pub fn check(kind: StatementKind, sql: &str) -> Result<Allowed, DucklingError> {
    use StatementKind::*;
    let tokens = tokens(sql)?;
    let refused = match kind {
        Select | Insert | Update | Delete | Merge | Explain | Drop | Alter | Transaction | Call | Analyze | Vacuum
        | VariableSet | CreateFunction | CopyDatabase | Pragma => None,
        // A SQL-level prepared statement hides its inner statement's kind from this check.
        Prepare | Execute => Some("SQL PREPARE/EXECUTE (use the client's prepared statements)"),
        Create => {
            // CREATE [OR REPLACE] [PERSISTENT|TEMPORARY] SECRET, anywhere in a script.
            let secret = tokens
                .iter()
                .enumerate()
                .any(|(i, t)| t.is_word("create") && tokens.iter().skip(i + 1).take(4).any(|t| t.is_word("secret")));
            secret.then_some("CREATE SECRET (use CREATE SECRET ... IN POND)")
        }
        Copy if copies_remote_data(sql, &tokens) => None,
        Copy => Some("COPY of a local file (COPY … TO/FROM 's3://…' reads and writes remote data)"),
        Export => Some("EXPORT DATABASE (writing server files)"),
        Attach => Some("ATTACH (use CREATE DATABASE or ATTACH 'pond:...')"),
        Detach => Some("DETACH"),
        Load => Some("LOAD (extensions)"),
        Extension | UpdateExtensions => Some("INSTALL/UPDATE EXTENSIONS"),
        Set => return session_scoped_set(sql, &tokens),
        Relation | LogicalPlan | Multi | Invalid => Some("this statement type"),
    };
    match refused {
        Some(what) => Err(DucklingError::PermissionDenied(format!("{what} is not allowed"))),
        None => Ok(Allowed::AsWritten),
    }
}

/// URL schemes a `COPY` may name: remote data, which DuckDB's httpfs reaches only where the
/// lockdown's `allowed_directories` let it. Anything else (a bare path, `file://`) is local.
const REMOTE_COPY_SCHEMES: &[&str] = &[
    "s3://", "s3a://", "s3n://", "r2://", "gcs://", "gs://", "http://", "https://",
];

/// Whether a `COPY` names, as the plain string after its top-level `TO` or `FROM`, a remote
/// URL. A duckling's private directory is open to DuckDB (its databases live there), so a
/// `COPY` of a local path is never let through.
fn copies_remote_data(sql: &str, tokens: &[Token]) -> bool {
    let mut depth = 0usize;
    let mut target = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.kind {
            lexer::TokenKind::Punct('(') => depth += 1,
            lexer::TokenKind::Punct(')') => depth = depth.saturating_sub(1),
            lexer::TokenKind::Punct(';') => return false,
            _ if depth == 0 && (t.is_word("to") || t.is_word("from")) && target.is_none() => target = Some(i + 1),
            _ => {}
        }
    }
    let Some(path) = target.and_then(|i| tokens.get(i)) else {
        return false;
    };
    let text = &sql[path.span.clone()];
    // A plain 'literal' only: no escapes, no dollar quoting, no continuation to misread.
    let Some(value) = text.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) else {
        return false;
    };
    if !matches!(path.kind, lexer::TokenKind::String) || value.contains('\'') {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    REMOTE_COPY_SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
}

/// Why a `PRAGMA` text is refused, if it is, whatever kind of statement DuckDB made of it.
/// Statements DuckDB turns into PRAGMAs (`SHOW TABLES`, `DESCRIBE t`) only read the catalog.
fn pragma_refusal(tokens: &[Token]) -> Option<String> {
    lexer::statement_starts(tokens)
        .filter(|&i| tokens.get(i).is_some_and(|t| t.is_word("pragma")))
        // `PRAGMA name = value` is a SET, judged as one once prepared ([`check`]).
        .filter(|&i| !tokens.get(i + 2).is_some_and(|t| t.is_punct('=')))
        .map(|i| tokens.get(i + 1).and_then(Token::name).unwrap_or_default())
        .find(|name| !ALLOWED_PRAGMAS.contains(&name.as_str()))
        .map(|name| format!("PRAGMA {name}"))
}

/// What a statement that changes one setting or variable of the session's connection changes
/// (`timezone`, `variable x`), for a session to carry it to its other connections; `None` for
/// any other statement. Read from the text alone, so it says nothing of whether the sandbox
/// allows the statement.
pub fn session_setting_key(statement: &str) -> Option<String> {
    let tokens = lexer::tokenize(statement).ok()?;
    let first = tokens.first()?;
    let pragma_set = first.is_word("pragma") && tokens.get(2).is_some_and(|t| t.is_punct('='));
    if !(first.is_word("set") || first.is_word("reset") || pragma_set) {
        return None;
    }
    let mut at = 1;
    if tokens
        .get(at)
        .is_some_and(|t| t.is_word("session") || t.is_word("local"))
    {
        at += 1;
    }
    let name = tokens.get(at)?.name()?;
    if at == 1 && name == "variable" {
        return Some(format!("variable {}", tokens.get(2)?.name()?));
    }
    Some(name)
}

/// A user `SET`/`RESET` of one of [`SESSION_SETTINGS`], rewritten to change the session only;
/// anything else is refused. `SET VARIABLE` is a kind of its own and never comes here.
fn session_scoped_set(sql: &str, tokens: &[Token]) -> Result<Allowed, DucklingError> {
    let refuse = |what: &str| Err(DucklingError::PermissionDenied(format!("{what} is not allowed")));
    let verb = match tokens.first() {
        // `PRAGMA name = value` is DuckDB's other spelling of `SET`.
        Some(t) if t.is_word("set") || t.is_word("pragma") => "SET",
        Some(t) if t.is_word("reset") => "RESET",
        _ => return refuse("this SET statement"),
    };
    let mut at = 1;
    match tokens.get(at) {
        Some(t) if t.is_word("global") => return refuse("SET GLOBAL"),
        Some(t) if t.is_word("session") || t.is_word("local") => at += 1,
        _ => {}
    }
    let Some(name_token) = tokens.get(at) else {
        return refuse("this SET statement");
    };
    // `SET VARIABLE`/`RESET VARIABLE`: DuckDB keeps variables per connection.
    if at == 1 && name_token.is_word("variable") {
        return Ok(Allowed::AsWritten);
    }
    let name = name_token.name().unwrap_or_default();
    if !SESSION_SETTINGS.contains(&name.as_str()) {
        return refuse(&format!("SET/RESET of the server setting {name}"));
    }
    let rest = &sql[name_token.span.end..];
    Ok(Allowed::Instead(format!("{verb} SESSION {}{rest}", quote_ident(&name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions() -> HashSet<String> {
        ["query", "range", "arrow_scan", "enable_logging", "read_csv"]
            .map(String::from)
            .into()
    }

    /// Both checks, as a statement meets them.
    fn check(kind: StatementKind, sql: &str) -> Result<Allowed, DucklingError> {
        check_text(sql, &functions())?;
        super::check(kind, sql)
    }

    fn refused(kind: StatementKind, sql: &str) -> bool {
        matches!(check(kind, sql), Err(DucklingError::PermissionDenied(_)))
    }

    #[test]
    fn refuses_file_and_extension_statements() {
        for kind in [
            StatementKind::Copy,
            StatementKind::Attach,
            StatementKind::Load,
            StatementKind::Set,
        ] {
            assert!(refused(kind, "x"));
        }
        assert_eq!(check(StatementKind::Select, "SELECT 1").unwrap(), Allowed::AsWritten);
        assert!(refused(StatementKind::Create, "CREATE PERSISTENT SECRET s (TYPE s3)"));
        assert!(refused(
            StatementKind::Create,
            "CREATE OR REPLACE PERSISTENT SECRET s (TYPE s3)"
        ));
        assert!(refused(
            StatementKind::Create,
            "CREATE TABLE t (a INT); CREATE SECRET s (TYPE s3)"
        ));
        assert!(refused(StatementKind::Prepare, "PREPARE p AS DELETE FROM t"));
        assert!(refused(StatementKind::Execute, "EXECUTE p"));
        assert!(check(StatementKind::Pragma, "PRAGMA table_info('t')").is_ok());
        assert!(check(StatementKind::Pragma, "SHOW TABLES").is_ok());
        assert!(refused(StatementKind::Pragma, "PRAGMA enable_profiling"));
        assert!(refused(StatementKind::Select, "SELECT getenv('HOME')"));
        assert!(refused(StatementKind::CopyDatabase, "PRAGMA copy_database('a', 'b')"));
        assert!(refused(StatementKind::Select, "SELECT 1; pragma \"enable_profiling\""));
    }

    #[test]
    fn statements_that_hide_what_they_run_are_refused() {
        for sql in [
            "IMPORT DATABASE '/tmp/x'",
            "SELECT 1; CHECKPOINT",
            "FORCE CHECKPOINT",
            "SELECT * FROM\u{200b}query('SELECT 1')",
            "SELECT 1 AS x\u{2028}$a$, * FROM query('SELECT 42') --$a$",
        ] {
            assert!(check(StatementKind::Select, sql).is_err(), "{sql}");
        }
        assert_eq!(
            explained("EXPLAIN ANALYZE DELETE FROM t").unwrap(),
            Some((true, "DELETE FROM t"))
        );
        assert_eq!(
            explained("explain (format json, analyze) SELECT 1").unwrap(),
            Some((true, "SELECT 1"))
        );
        assert_eq!(explained("EXPLAIN SELECT 1").unwrap(), Some((false, "SELECT 1")));
        assert_eq!(explained("SELECT 1").unwrap(), None);
    }

    #[test]
    fn the_raw_backstop_sees_calls_past_any_spacing() {
        let calls: Vec<String> = raw_calls("x query\u{a0}/* c */ (1), \"Range\"(2), 'f (' g").collect();
        assert_eq!(calls, vec!["query", "range", "f"]);
    }

    #[test]
    fn table_functions_pass_only_from_the_allow_list() {
        assert!(check(StatementKind::Select, "SELECT * FROM range(3)").is_ok());
        assert!(check(StatementKind::Select, "SELECT * FROM read_csv('x.csv')").is_ok());
        assert!(check(StatementKind::Select, "SELECT * FROM my_macro(3)").is_ok());
        for sql in [
            "CALL enable_logging(storage_path = '/tmp/x')",
            "SELECT * FROM query('SELECT 1')",
            "SELECT * FROM main.\"Query\" /* c */ ('SELECT 1')",
            "SELECT $$'$$, * FROM query('x') -- '",
            "CREATE MACRO m() AS TABLE SELECT * FROM query('SELECT 1')",
        ] {
            let err = check(StatementKind::Call, sql).unwrap_err().to_string();
            assert!(err.contains("query") || err.contains("enable_logging"), "{sql}: {err}");
        }
        assert!(check(StatementKind::Select, "SELECT \"query\", query FROM t").is_ok());
        // The raw backstop over-reports: a refused name before `(` even inside a string.
        assert!(refused(StatementKind::Select, "SELECT 'query(1)'"));
    }

    #[test]
    fn copy_reaches_remote_data_only() {
        let allowed = |sql: &str| check(StatementKind::Copy, sql).is_ok();
        assert!(allowed("COPY (SELECT 1) TO 's3://b/out.parquet' (FORMAT parquet)"));
        assert!(allowed("copy t from 'HTTPS://host/x.csv'"));
        assert!(allowed("COPY (SELECT 'x' FROM t WHERE a = 'to') TO 'gs://b/o.csv'"));
        assert!(!allowed("COPY (SELECT 1) TO '/tmp/x.csv'"));
        assert!(!allowed("COPY (SELECT 1) TO 'file:///tmp/x.csv'"));
        assert!(!allowed("COPY (SELECT 's3://x') TO '/tmp/x.csv'"));
        assert!(!allowed("COPY t TO E's3://b/x' "));
        assert!(!allowed("COPY t TO 's3://b/x'; COPY t TO '/tmp/y'"));
        assert!(!allowed("COPY t TO stdout"));
    }

    #[test]
    fn duckdbs_own_secret_listing_is_out_of_reach() {
        let functions = functions();
        let refused = |sql: &str| check_text(sql, &functions).is_err();
        assert!(!refused("SELECT name FROM duckdb_secrets() WHERE type = 's3'"));
        assert!(refused("SELECT * FROM system.main.duckdb_secrets()"));
        assert!(refused("SELECT * FROM main . \"duckdb_secrets\" ()"));
        assert!(refused("DROP MACRO TABLE duckdb_secrets"));
        assert!(refused("DROP MACRO TABLE temp.duckdb_secrets; FROM duckdb_secrets()"));
        assert!(!refused("SELECT 'system.main.duckdb_secrets()' AS s"));
        assert!(refused("CREATE VIEW leak AS FROM duckdb_secrets()"));
        assert!(refused("CREATE TEMP MACRO leak() AS TABLE FROM duckdb_secrets()"));
        assert!(refused("FROM U&\"duckdb\\005fsecrets\"()"));
        assert!(refused("CALL u&\"quer\\0079\"('SELECT 1')"));
        assert!(refused("SELECT U&'d\\0061ta'"));
        assert!(!refused("SELECT u & 1 FROM (SELECT 3 AS u)"));
        assert!(refused("SELECT 1; CREATE SECRET s (TYPE s3, SECRET 'value')"));
        assert!(refused("select 1; create or replace persistent secret s (type s3)"));
        assert!(!refused("SELECT 'create secret'"));
    }

    #[test]
    fn a_setting_is_keyed_by_what_it_changes() {
        let key = |sql: &str| session_setting_key(sql);
        assert_eq!(
            key("SET default_null_order = 'nulls_first'").as_deref(),
            Some("default_null_order")
        );
        assert_eq!(key("set local TimeZone TO 'UTC'").as_deref(), Some("timezone"));
        assert_eq!(key("RESET SESSION \"TimeZone\"").as_deref(), Some("timezone"));
        assert_eq!(key("PRAGMA default_order = 'desc'").as_deref(), Some("default_order"));
        assert_eq!(key("SET VARIABLE x = 1").as_deref(), Some("variable x"));
        assert_eq!(key("PRAGMA table_info('t')"), None);
        assert_eq!(key("SELECT 1"), None);
        assert_eq!(key("/* SET x = 1 */ SELECT 1"), None);
    }

    #[test]
    fn session_settings_run_scoped_to_the_session() {
        assert_eq!(
            check(StatementKind::Set, "SET default_null_order = 'nulls_first'").unwrap(),
            Allowed::Instead("SET SESSION \"default_null_order\" = 'nulls_first'".into())
        );
        assert_eq!(
            check(StatementKind::Set, "/* hi */ set local TimeZone TO 'America/New_York';").unwrap(),
            Allowed::Instead("SET SESSION \"timezone\" TO 'America/New_York';".into())
        );
        assert_eq!(
            check(StatementKind::Set, "RESET integer_division").unwrap(),
            Allowed::Instead("RESET SESSION \"integer_division\"".into())
        );
        assert!(refused(
            StatementKind::Set,
            "SET GLOBAL default_null_order = 'nulls_first'"
        ));
        // The host changes threads after the lockdown; a user never may.
        for sql in [
            "SET threads = 64",
            "SET GLOBAL threads = 64",
            "SET SESSION threads TO 64",
            "RESET threads",
            "PRAGMA threads = 64",
            "SET worker_threads = 64",
        ] {
            assert!(refused(StatementKind::Set, sql), "{sql}");
        }
        assert_eq!(
            check(StatementKind::Set, "PRAGMA default_order = 'desc'").unwrap(),
            Allowed::Instead("SET SESSION \"default_order\" = 'desc'".into())
        );
        let err = check(StatementKind::Set, "PRAGMA show = 'x'").unwrap_err().to_string();
        assert!(err.contains("show"), "{err}");
        assert!(refused(StatementKind::Set, "SET enable_external_access = true"));
    }

    fn kind() -> impl proptest::strategy::Strategy<Value = StatementKind> {
        proptest::sample::select(StatementKind::ALL.to_vec())
    }

    proptest::proptest! {
        /// Fuzz: the classifier answers every input without panicking.
        #[test]
        fn check_never_panics(sql in ".{0,300}", k in kind()) {
            let _ = check(k, &sql);
        }

        /// A refused table function is refused whatever the casing, quoting, qualification and
        /// comments around it, in any statement the sandbox otherwise allows.
        #[test]
        fn refused_functions_are_always_refused(
            prefix in "[ a-z0-9,(]{0,20}",
            upper in proptest::bool::ANY,
            quoted in proptest::bool::ANY,
            qualified in proptest::bool::ANY,
            comment in proptest::bool::ANY,
        ) {
            let mut f = if upper { "ARROW_SCAN".to_string() } else { "arrow_scan".to_string() };
            if quoted {
                f = format!("\"{f}\"");
            }
            if qualified {
                f = format!("system.main.{f}");
            }
            let sql = format!("SELECT * FROM {prefix}{}{f}{}(1, 2, 3)",
                if comment { "/* x */ " } else { " " }, if comment { " -- y\n" } else { "" });
            proptest::prop_assert!(refused(StatementKind::Select, &sql), "{}", sql);
        }
    }
}
