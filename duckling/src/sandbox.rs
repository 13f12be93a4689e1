//! The sandbox: what a user's SQL may do inside a duckling.
//!
//! Two layers, both always on:
//! 1. DuckDB's own locks, set by the host before any user SQL runs: external access off except
//!    for the duckling's private directory, no extension install or autoload, and the
//!    configuration locked (see [`lockdown_sql`]).
//! 2. A statement check before DuckDB sees the statement: DuckDB's parser classifies every
//!    statement ([`StatementKind`]); kinds that touch files, extensions or settings are refused,
//!    and so are the few built-in table functions that take raw pointers (see [`check`]).
//!
//! Invariant: user SQL reaches DuckDB only through [`check`]; host SQL (attach, lockdown) goes
//! through `Connection::execute_batch` and never carries user text except quoted names.

use std::path::Path;

use crate::engine::{StatementKind, quote_literal};
use crate::error::DucklingError;

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
    ];
    if let Some(t) = threads {
        opts.push(("threads", t.to_string()));
    }
    if let Some(m) = memory_limit {
        opts.push(("max_memory", m.to_string()));
    }
    opts
}

/// Host SQL that locks the instance down once its private directory exists. DuckDB requires
/// `allowed_directories` before `enable_external_access = false`.
pub fn lockdown_sql(private_dir: &Path) -> String {
    let dir = format!("{}/", private_dir.display());
    let tmp = private_dir.join("tmp");
    let allowed: Vec<String> = SESSION_SETTINGS.iter().map(|s| quote_literal(s)).collect();
    format!(
        "SET temp_directory = {tmp};\n\
         SET allowed_directories = [{dir}];\n\
         SET enable_external_access = false;\n\
         SET allowed_configs = [{allowed}];\n\
         SET lock_configuration = true;",
        tmp = quote_literal(&tmp.display().to_string()),
        dir = quote_literal(&dir),
        allowed = allowed.join(", "),
    )
}

/// Table functions that take raw memory addresses: a call with made-up numbers would crash
/// the server, so no user statement may name them.
const POINTER_FUNCTIONS: &[&str] = &["arrow_scan", "arrow_scan_dumb", "getenv"];

/// PRAGMAs that only read catalog metadata.
const READ_ONLY_PRAGMAS: &[&str] = &[
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

/// Session settings a user may change: each alters only how that session's queries behave or
/// read, never files, extensions, resources or what other sessions see.
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
];

/// Why a SET/RESET is refused, if it is: variables and the session settings above are the
/// user's own; everything else is the server's.
fn set_refusal(sql: &str) -> Option<&'static str> {
    let words = words(sql);
    let mut rest = words.iter().skip(1).map(String::as_str).peekable();
    match rest.next() {
        Some("variable") => return None,
        Some("global") => return Some("SET GLOBAL"),
        Some("session" | "local") => {}
        Some(name) if SESSION_SETTINGS.contains(&name) => return None,
        _ => return Some("SET/RESET of a server setting"),
    }
    match rest.next() {
        Some(name) if SESSION_SETTINGS.contains(&name) => None,
        _ => Some("SET/RESET of a server setting"),
    }
}

/// Refuses a user statement that the sandbox does not allow, naming what was refused.
pub fn check(kind: StatementKind, sql: &str) -> Result<(), DucklingError> {
    use StatementKind::*;
    let refused = match kind {
        Select | Insert | Update | Delete | Merge | Explain | Drop | Alter | Transaction | Call | Analyze | Vacuum
        | VariableSet | CreateFunction | CopyDatabase => None,
        // A SQL-level prepared statement hides its inner statement's kind from this check.
        Prepare | Execute => Some("SQL PREPARE/EXECUTE (use the client's prepared statements)"),
        Create => {
            let words = words(sql);
            // CREATE [OR REPLACE] [PERSISTENT|TEMPORARY] SECRET, anywhere in a script.
            let secret = words
                .iter()
                .enumerate()
                .any(|(i, w)| w == "create" && words.iter().skip(i + 1).take(4).any(|w| w == "secret"));
            secret.then_some("CREATE SECRET (use CREATE SECRET ... IN POND)")
        }
        Pragma => {
            let words = words(sql);
            let name = words.get(1).map(String::as_str).unwrap_or("");
            (!READ_ONLY_PRAGMAS.contains(&name)).then_some("this PRAGMA")
        }
        Copy => Some("COPY (reading or writing server files)"),
        Export => Some("EXPORT DATABASE (writing server files)"),
        Attach => Some("ATTACH (use CREATE DATABASE or ATTACH 'pond:...')"),
        Detach => Some("DETACH"),
        Load => Some("LOAD (extensions)"),
        Extension | UpdateExtensions => Some("INSTALL/UPDATE EXTENSIONS"),
        Set => set_refusal(sql),
        Relation | LogicalPlan | Multi | Invalid => Some("this statement type"),
    };
    if let Some(what) = refused {
        return Err(DucklingError::PermissionDenied(format!("{what} is not allowed")));
    }
    let words = words(sql);
    if let Some(f) = words.iter().find(|w| POINTER_FUNCTIONS.contains(&w.as_str())) {
        return Err(DucklingError::PermissionDenied(format!(
            "the function {f} is not allowed"
        )));
    }
    Ok(())
}

/// The identifier-like words of `sql`, lowercased, with comments and string literals removed
/// and quoted identifiers unquoted.
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(cur.to_lowercase());
            cur.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut cur, &mut out);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut cur, &mut out);
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            '\'' => {
                flush(&mut cur, &mut out);
                while let Some(n) = chars.next() {
                    if n == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '"' => {
                flush(&mut cur, &mut out);
                let mut ident = String::new();
                while let Some(n) = chars.next() {
                    if n == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            ident.push('"');
                        } else {
                            break;
                        }
                    } else {
                        ident.push(n);
                    }
                }
                out.push(ident.to_lowercase());
            }
            c if c.is_alphanumeric() || c == '_' => cur.push(c),
            _ => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_comments_and_literals() {
        assert_eq!(
            words("SELECT /* arrow_scan */ 'arrow_scan', \"Arrow_Scan\"(1) -- x\nFROM t"),
            vec!["select", "arrow_scan", "1", "from", "t"]
        );
    }

    #[test]
    fn refuses_file_and_extension_statements() {
        for kind in [
            StatementKind::Copy,
            StatementKind::Attach,
            StatementKind::Load,
            StatementKind::Set,
        ] {
            assert!(matches!(check(kind, "x"), Err(DucklingError::PermissionDenied(_))));
        }
        assert!(check(StatementKind::Select, "SELECT 1").is_ok());
        assert!(check(StatementKind::Select, "SELECT * FROM ARROW_SCAN(1,2,3)").is_err());
        assert!(check(StatementKind::Create, "CREATE PERSISTENT SECRET s (TYPE s3)").is_err());
        assert!(check(StatementKind::Create, "CREATE OR REPLACE PERSISTENT SECRET s (TYPE s3)").is_err());
        assert!(
            check(
                StatementKind::Create,
                "CREATE TABLE t (a INT); CREATE SECRET s (TYPE s3)"
            )
            .is_err()
        );
        assert!(check(StatementKind::Prepare, "PREPARE p AS DELETE FROM t").is_err());
        assert!(check(StatementKind::Execute, "EXECUTE p").is_err());
        assert!(check(StatementKind::Pragma, "PRAGMA table_info('t')").is_ok());
        assert!(check(StatementKind::Pragma, "PRAGMA enable_profiling").is_err());
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

        /// A pointer-taking function is refused whatever the casing, quoting and comments
        /// around it, in any statement the sandbox otherwise allows.
        #[test]
        fn pointer_functions_are_always_refused(
            prefix in "[ a-z0-9,(]{0,20}",
            upper in proptest::bool::ANY,
            quoted in proptest::bool::ANY,
            comment in proptest::bool::ANY,
        ) {
            let mut f = if upper { "ARROW_SCAN".to_string() } else { "arrow_scan".to_string() };
            if quoted {
                f = format!("\"{f}\"");
            }
            let sql = format!("SELECT * FROM {prefix}{}{f}(1, 2, 3)", if comment { "/* x */ " } else { " " });
            proptest::prop_assert!(check(StatementKind::Select, &sql).is_err(), "{}", sql);
        }
    }
}
