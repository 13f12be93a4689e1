//! What the coordinator decides from a statement's text, read once.
//!
//! Invariants:
//! - The text is split by DuckDB's own lexer (`pond_duckling::lexer`), once per statement, in
//!   [`classify`]; every later decision (Pond's command or DuckDB's, transaction control,
//!   Pond's views and table functions, sequences) reads the [`Classification`], never the text.
//! - Names are matched as tokens, so a name inside a string or a comment decides nothing.
//! - A text the lexer cannot read is DuckDB SQL (DuckDB refuses it) and counted as one that
//!   may advance a sequence: when in doubt, a statement writes.

use pond_duckling::lexer::{Token, advances_a_sequence, statement_starts, tokenize};

use crate::commands::{self, Command};
use crate::error::Result;

/// Pond's table macros, filled for the caller before a query that calls them.
pub(crate) const ACTIVE_CONNECTIONS: &str = "pond_active_connections";
pub(crate) const DUCKLINGS: &str = "pond_ducklings";
pub(crate) const DUCKDB_SECRETS: &str = "duckdb_secrets";

/// What a statement's text tells the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// One of Pond's own statements, which the coordinator runs instead of DuckDB.
    pub command: Option<Command>,
    /// Whether the text opens (`Some(true)`) or ends (`Some(false)`) a SQL transaction (see
    /// [`commands::transaction_control`]).
    pub transaction_control: Option<bool>,
    /// Reads `pond_information_schema`, whose tables are filled on demand.
    pub reads_information_schema: bool,
    /// Names `query_history`, the one of those tables that is read from the history's files,
    /// filled only when named.
    pub reads_query_history: bool,
    /// Names `recent_queries`, filled only when named.
    pub reads_recent_queries: bool,
    /// Names `pond_active_connections()`, a macro over the caller's sessions.
    pub calls_active_connections: bool,
    /// Names `pond_ducklings()`, a macro over the server's ducklings (admin only).
    pub calls_ducklings: bool,
    /// Names `duckdb_secrets()`, answered by a macro over the caller's secrets that shows no
    /// option of theirs (DuckDB's own shows key ids and endpoints).
    pub calls_duckdb_secrets: bool,
    /// Calls `nextval` or `setval`: a query that writes, so it commits under the write gate.
    pub advances_a_sequence: bool,
    /// Names `setseed`, which changes the connection's random numbers: a read that leaves
    /// state on its connection.
    pub seeds_random: bool,
    /// Has a statement that changes a setting or variable of the connection it runs on
    /// (`SET`, `RESET`, `PRAGMA name = value`), which the session carries to its other
    /// connections once it ran (`Session::record_settings`).
    pub changes_settings: bool,
    /// Names the `temp` catalog (`temp.main.t`) or creates a temporary object (`CREATE
    /// [OR REPLACE] TEMP|TEMPORARY …`): temporary objects live on the session's own connection
    /// only, so the statement waits a while for it before it takes a fresh one
    /// (`Access::Temporary`). An alias named `temp` counts too: it only waits.
    pub names_temporary: bool,
    /// The first keyword, upper case (`SELECT`, `INSERT`, …): the statement's kind in the
    /// query history; `UNKNOWN` for a text the lexer cannot read.
    pub kind: String,
}

/// Reads `sql` once. Fails only when it is one of Pond's statements, malformed.
pub fn classify(sql: &str) -> Result<Classification> {
    let Ok(tokens) = tokenize(sql) else {
        return Ok(Classification {
            command: None,
            transaction_control: None,
            reads_information_schema: false,
            reads_query_history: false,
            reads_recent_queries: false,
            calls_active_connections: false,
            calls_ducklings: false,
            calls_duckdb_secrets: false,
            advances_a_sequence: true,
            changes_settings: false,
            seeds_random: true,
            names_temporary: true,
            kind: "UNKNOWN".into(),
        });
    };
    let names = |name: &str| tokens.iter().any(|t| t.name().as_deref() == Some(name));
    Ok(Classification {
        command: commands::parse_tokens(sql, &tokens)?,
        transaction_control: commands::transaction_control_of(&tokens),
        reads_information_schema: names(pond_duckling::duckling::INFORMATION_SCHEMA),
        reads_query_history: names("query_history"),
        reads_recent_queries: names("recent_queries"),
        calls_active_connections: names(ACTIVE_CONNECTIONS),
        calls_ducklings: names(DUCKLINGS),
        calls_duckdb_secrets: names(DUCKDB_SECRETS),
        advances_a_sequence: advances_a_sequence(&tokens),
        changes_settings: changes_settings(&tokens),
        seeds_random: names("setseed"),
        names_temporary: names_temporary(&tokens),
        kind: tokens
            .iter()
            .find_map(Token::name)
            .map_or_else(|| "UNKNOWN".into(), |w| w.to_ascii_uppercase()),
    })
}

/// Whether a statement of the text starts `SET`, `RESET` or `PRAGMA name =`.
fn changes_settings(tokens: &[Token]) -> bool {
    statement_starts(tokens).any(|i| {
        let word = |k: usize, w: &str| tokens.get(i + k).is_some_and(|t| t.is_word(w));
        word(0, "set") || word(0, "reset") || (word(0, "pragma") && tokens.get(i + 2).is_some_and(|t| t.is_punct('=')))
    })
}

/// See [`Classification::names_temporary`].
fn names_temporary(tokens: &[Token]) -> bool {
    let word = |i: usize, w: &str| tokens.get(i).is_some_and(|t| t.is_word(w));
    (0..tokens.len()).any(|i| {
        let temporary = tokens[i].name().is_some_and(|n| n == "temp" || n == "temporary");
        temporary
            && (tokens.get(i + 1).is_some_and(|t| t.is_punct('.'))
                || (i >= 1 && word(i - 1, "create"))
                || (i >= 3 && word(i - 1, "replace") && word(i - 2, "or") && word(i - 3, "create")))
    })
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    #[test]
    fn finds_what_the_text_calls_and_reads() {
        let c = classify("SELECT nextval('s'), * FROM pond_information_schema.databases").unwrap();
        assert!(c.advances_a_sequence && c.reads_information_schema);
        assert!(!c.calls_ducklings && !c.calls_active_connections && c.command.is_none());
        let c = classify("select * from MAIN.\"SETVAL\" (x), pond_ducklings() -- pond_active_connections").unwrap();
        assert!(c.advances_a_sequence && c.calls_ducklings && !c.calls_active_connections);
        assert_eq!(classify("BEGIN; SELECT 1").unwrap().transaction_control, Some(true));
        assert_eq!(
            classify("show databases").unwrap().command,
            Some(Command::ShowDatabases)
        );
        assert!(classify("DROP DATABASE a b").is_err());
        assert!(classify("SELECT 1; set TimeZone = 'UTC'").unwrap().changes_settings);
        assert!(classify("pragma default_order = 'desc'").unwrap().changes_settings);
        assert!(
            !classify("PRAGMA table_info('t'); SELECT 'set'")
                .unwrap()
                .changes_settings
        );
        assert!(classify("SELECT setseed(0.5)").unwrap().seeds_random);
        for temporary in [
            "DROP TABLE IF EXISTS temp.main.\"t\"",
            "SELECT * FROM \"TEMP\".t",
            "create temp table t (x INT)",
            "CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1",
        ] {
            assert!(classify(temporary).unwrap().names_temporary, "{temporary}");
        }
        for not in [
            "SELECT temp FROM readings",
            "CREATE TABLE temp (x INT)",
            "SELECT 'temp.t'",
        ] {
            assert!(!classify(not).unwrap().names_temporary, "{not}");
        }
        assert!(!classify("SELECT 'setseed(0.5)'").unwrap().seeds_random);
    }

    #[test]
    fn names_in_strings_and_comments_decide_nothing() {
        let c = classify(
            "SELECT 'nextval(1)', $$pond_ducklings()$$ /* pond_information_schema */, pond_active_connections",
        )
        .unwrap();
        assert!(!c.advances_a_sequence && !c.calls_ducklings && !c.reads_information_schema);
        assert!(c.calls_active_connections);
    }

    #[test]
    fn an_unreadable_text_may_write() {
        let c = classify("SELECT 'unterminated").unwrap();
        assert!(c.advances_a_sequence && c.command.is_none() && c.transaction_control.is_none());
    }

    /// A name as a query may write it: any case, maybe quoted, maybe schema-qualified.
    fn spelled(name: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        (
            proptest::bool::ANY,
            proptest::bool::ANY,
            proptest::collection::vec(proptest::bool::ANY, name.len()),
        )
            .prop_map(move |(quoted, qualified, upper)| {
                let cased: String = name
                    .chars()
                    .zip(upper)
                    .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect();
                let name = if quoted { format!("\"{cased}\"") } else { cased };
                if qualified { format!("main.{name}") } else { name }
            })
    }

    /// What may stand between tokens.
    fn gap() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![" ", "", "\n", " /* ( */ ", " -- )\n"])
    }

    proptest::proptest! {
        /// A call of `nextval` or `setval` is seen however it is written, so a query that writes
        /// is never streamed as a read.
        #[test]
        fn sees_every_sequence_call(
            name in proptest::sample::select(vec!["nextval", "setval"]).prop_flat_map(spelled),
            before in gap(),
            after in gap(),
        ) {
            let sql = format!("SELECT 1,{before}{name}{after}('s')");
            proptest::prop_assert!(classify(&sql).unwrap().advances_a_sequence, "{}", sql);
        }

        /// Pond's names inside a string or a comment decide nothing.
        #[test]
        fn hidden_names_decide_nothing(
            name in proptest::sample::select(vec![
                "nextval(1)", "pond_ducklings()", "pond_active_connections()", "pond_information_schema.x",
            ]),
            wrap in proptest::sample::select(vec!["'{}'", "$${}$$", "$t${}$t$", "/* {} */", "-- {}\n", "E'\\'{}'"]),
        ) {
            let sql = format!("SELECT {}", wrap.replace("{}", name));
            let c = classify(&sql).unwrap();
            proptest::prop_assert!(
                !c.advances_a_sequence && !c.calls_ducklings && !c.calls_active_connections && !c.reads_information_schema,
                "{}", sql
            );
        }

        /// Whatever the text, the classification matches the separate readers it replaces.
        #[test]
        fn agrees_with_the_commands_reader(sql in ".{0,120}") {
            let classified = classify(&sql);
            match commands::parse(&sql) {
                Ok(command) => proptest::prop_assert_eq!(classified.unwrap().command, command),
                Err(_) => proptest::prop_assert!(classified.is_err()),
            }
            if let Ok(c) = classify(&sql) {
                proptest::prop_assert_eq!(c.transaction_control, commands::transaction_control(&sql));
            }
        }
    }
}
