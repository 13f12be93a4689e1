//! The statements the coordinator owns (MotherDuck's syntax, see DESIGN.md): recognised here,
//! before DuckDB sees them. Everything else is DuckDB SQL for the user's duckling.
//!
//! The recogniser is deliberately narrow: a statement is the coordinator's only when its leading
//! keywords say so exactly; anything it does not recognise goes to DuckDB (whose parser, with
//! the sandbox, decides).

use crate::error::{CoordinatorError, Result};

/// A coordinator-owned statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        from: Option<CloneSource>,
    },
    /// `CREATE SNAPSHOT [name] OF d`.
    CreateSnapshot {
        name: Option<String>,
        database: String,
    },
    /// `ALTER DATABASE d SET SNAPSHOT_RETENTION_DAYS = n`.
    SetRetention {
        database: String,
        days: u32,
    },
    /// `REFRESH DATABASE d`.
    Refresh {
        database: String,
    },
    /// `ATTACH 'pond:src' AS alias [(SNAPSHOT_…)]`: read-only time travel.
    AttachSnapshot {
        source: String,
        alias: String,
        at: Option<SnapshotSpec>,
    },
    /// `DETACH [DATABASE] [IF EXISTS] alias`.
    Detach {
        alias: String,
        if_exists: bool,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    UndropDatabase {
        name: String,
    },
    ShowDatabases,
    /// `SHUTDOWN`: stop the caller's duckling now; it restarts on the next query.
    Shutdown,
    /// `SELECT pond_interrupt('connection id')` (or `CALL`): interrupt what one of the
    /// caller's connections runs.
    Interrupt {
        connection: String,
    },
    Use {
        database: String,
        schema: Option<String>,
    },
}

/// Which past snapshot: `SNAPSHOT_ID n`, `SNAPSHOT_TIME 'ts'` or `SNAPSHOT_NAME 'name'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSpec {
    Id(u64),
    /// A timestamp as the user wrote it; DuckDB parses it.
    Time(String),
    Name(String),
}

/// What `CREATE DATABASE … FROM` copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneSource {
    /// A cloud database, at its newest snapshot or the one given.
    Database { name: String, at: Option<SnapshotSpec> },
    /// A local file or `CURRENT_DATABASE()`: only the client can upload those.
    Local(String),
}

/// A token of the coordinator's tiny grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Str(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut it = sql.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {}
            '-' if it.peek() == Some(&'-') => {
                for n in it.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if it.peek() == Some(&'*') => {
                it.next();
                let mut prev = ' ';
                for n in it.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            '"' | '\'' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some(n) = it.next() {
                    if n == c {
                        if it.peek() == Some(&c) {
                            it.next();
                            s.push(c);
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        s.push(n);
                    }
                }
                if !closed {
                    return Err(CoordinatorError::InvalidArgument("unterminated quoted text".into()));
                }
                out.push(if c == '"' { Token::Quoted(s) } else { Token::Str(s) });
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '$' => {
                let mut w = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '-' || n == '$' {
                        w.push(n);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            c => out.push(Token::Punct(c)),
        }
    }
    while out.last() == Some(&Token::Punct(';')) {
        out.pop();
    }
    Ok(out)
}

fn is_kw(t: Option<&Token>, kw: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
}

fn name(t: Option<&Token>) -> Result<String> {
    match t {
        Some(Token::Word(w)) => Ok(w.clone()),
        Some(Token::Quoted(q)) => Ok(q.clone()),
        _ => Err(CoordinatorError::InvalidArgument("expected a database name".into())),
    }
}

fn end(t: &[Token], at: usize, what: &str) -> Result<()> {
    if t.len() > at {
        return Err(CoordinatorError::InvalidArgument(format!(
            "unexpected text after {what}"
        )));
    }
    Ok(())
}

/// Recognises a coordinator statement; `Ok(None)` means "DuckDB SQL".
pub fn parse(sql: &str) -> Result<Option<Command>> {
    let Ok(t) = tokenize(sql) else { return Ok(None) };
    let at = |i: usize| t.get(i);
    if (is_kw(at(0), "select") || is_kw(at(0), "call"))
        && is_kw(at(1), "pond_interrupt")
        && at(2) == Some(&Token::Punct('('))
    {
        let Some(Token::Str(connection)) = at(3) else {
            return Err(CoordinatorError::InvalidArgument(
                "pond_interrupt takes a connection id as a string: pond_interrupt('…')".into(),
            ));
        };
        if at(4) != Some(&Token::Punct(')')) {
            return Err(CoordinatorError::InvalidArgument(
                "pond_interrupt takes one argument".into(),
            ));
        }
        end(&t, 5, "pond_interrupt(…)")?;
        return Ok(Some(Command::Interrupt {
            connection: connection.clone(),
        }));
    }
    if is_kw(at(0), "shutdown") {
        end(&t, 1, "SHUTDOWN")?;
        return Ok(Some(Command::Shutdown));
    }
    if is_kw(at(0), "show") && is_kw(at(1), "databases") {
        end(&t, 2, "SHOW DATABASES")?;
        return Ok(Some(Command::ShowDatabases));
    }
    if is_kw(at(0), "use") {
        let database = name(at(1))?;
        let schema = if at(2) == Some(&Token::Punct('.')) {
            Some(name(at(3))?)
        } else {
            None
        };
        end(&t, if schema.is_some() { 4 } else { 2 }, "USE")?;
        return Ok(Some(Command::Use { database, schema }));
    }
    if is_kw(at(0), "undrop") && is_kw(at(1), "database") {
        let n = name(at(2))?;
        end(&t, 3, "UNDROP DATABASE")?;
        return Ok(Some(Command::UndropDatabase { name: n }));
    }
    if is_kw(at(0), "drop") && is_kw(at(1), "database") {
        let (if_exists, i) = if is_kw(at(2), "if") && is_kw(at(3), "exists") {
            (true, 4)
        } else {
            (false, 2)
        };
        let n = name(at(i))?;
        end(&t, i + 1, "DROP DATABASE")?;
        return Ok(Some(Command::DropDatabase { name: n, if_exists }));
    }
    if is_kw(at(0), "create") && is_kw(at(1), "database") {
        let (if_not_exists, i) = if is_kw(at(2), "if") && is_kw(at(3), "not") && is_kw(at(4), "exists") {
            (true, 5)
        } else {
            (false, 2)
        };
        let n = name(at(i))?;
        let from = if is_kw(at(i + 1), "from") {
            Some(match at(i + 2) {
                Some(Token::Word(_) | Token::Quoted(_))
                    if !is_kw(at(i + 2), "current_database")
                        && (at(i + 3).is_none() || at(i + 3) == Some(&Token::Punct('('))) =>
                {
                    let (spec, next) = snapshot_spec(&t, i + 3)?;
                    end(&t, next, "CREATE DATABASE … FROM")?;
                    CloneSource::Database {
                        name: name(at(i + 2))?,
                        at: spec,
                    }
                }
                _ => CloneSource::Local(t[i + 2..].iter().map(token_text).collect::<Vec<_>>().join(" ")),
            })
        } else {
            end(&t, i + 1, "CREATE DATABASE")?;
            None
        };
        return Ok(Some(Command::CreateDatabase {
            name: n,
            if_not_exists,
            from,
        }));
    }
    if is_kw(at(0), "create") && is_kw(at(1), "snapshot") {
        let (snapshot, i) = if is_kw(at(2), "of") {
            (None, 3)
        } else {
            (Some(name(at(2))?), 4)
        };
        if !is_kw(at(i - 1), "of") {
            return Err(CoordinatorError::InvalidArgument(
                "expected CREATE SNAPSHOT [name] OF database".into(),
            ));
        }
        let database = name(at(i))?;
        end(&t, i + 1, "CREATE SNAPSHOT")?;
        return Ok(Some(Command::CreateSnapshot {
            name: snapshot,
            database,
        }));
    }
    if is_kw(at(0), "alter") && is_kw(at(1), "database") {
        let database = name(at(2))?;
        let days = match (at(3), at(4), at(5), at(6)) {
            (Some(set), Some(key), Some(Token::Punct('=')), Some(Token::Word(n)))
                if is_kw(Some(set), "set") && is_kw(Some(key), "snapshot_retention_days") =>
            {
                n.parse::<u32>().map_err(|_| {
                    CoordinatorError::InvalidArgument(format!(
                        "SNAPSHOT_RETENTION_DAYS must be a whole number of days, not {n}"
                    ))
                })?
            }
            _ => {
                return Err(CoordinatorError::InvalidArgument(
                    "expected ALTER DATABASE d SET SNAPSHOT_RETENTION_DAYS = n".into(),
                ));
            }
        };
        end(&t, 7, "ALTER DATABASE")?;
        return Ok(Some(Command::SetRetention { database, days }));
    }
    if is_kw(at(0), "refresh") && is_kw(at(1), "database") {
        let database = name(at(2))?;
        end(&t, 3, "REFRESH DATABASE")?;
        return Ok(Some(Command::Refresh { database }));
    }
    if is_kw(at(0), "attach") {
        let i = if is_kw(at(1), "database") { 2 } else { 1 };
        if let Some(Token::Str(url)) = at(i)
            && let Some(source) = url.strip_prefix("pond:").or_else(|| url.strip_prefix("md:"))
        {
            if !is_kw(at(i + 1), "as") {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "expected ATTACH '{url}' AS name"
                )));
            }
            let alias = name(at(i + 2))?;
            let (spec, next) = snapshot_spec(&t, i + 3)?;
            end(&t, next, "ATTACH")?;
            return Ok(Some(Command::AttachSnapshot {
                source: source.to_string(),
                alias,
                at: spec,
            }));
        }
    }
    if is_kw(at(0), "detach") {
        let mut i = if is_kw(at(1), "database") { 2 } else { 1 };
        let if_exists = is_kw(at(i), "if") && is_kw(at(i + 1), "exists");
        if if_exists {
            i += 2;
        }
        let alias = name(at(i))?;
        end(&t, i + 1, "DETACH")?;
        return Ok(Some(Command::Detach { alias, if_exists }));
    }
    Ok(None)
}

/// Parses an optional `(SNAPSHOT_ID n | SNAPSHOT_TIME 'ts' | SNAPSHOT_NAME 'name')` at `i`;
/// returns it and the index after it.
fn snapshot_spec(t: &[Token], i: usize) -> Result<(Option<SnapshotSpec>, usize)> {
    if t.get(i) != Some(&Token::Punct('(')) {
        return Ok((None, i));
    }
    let bad = || {
        CoordinatorError::InvalidArgument(
            "expected (SNAPSHOT_ID n), (SNAPSHOT_TIME 'timestamp') or (SNAPSHOT_NAME 'name')".into(),
        )
    };
    let (Some(Token::Word(key)), Some(value), Some(Token::Punct(')'))) = (t.get(i + 1), t.get(i + 2), t.get(i + 3))
    else {
        return Err(bad());
    };
    let spec = match (key.to_ascii_lowercase().as_str(), value) {
        ("snapshot_id", Token::Word(n)) => SnapshotSpec::Id(n.parse().map_err(|_| bad())?),
        ("snapshot_time", Token::Str(ts)) => SnapshotSpec::Time(ts.clone()),
        ("snapshot_name", Token::Str(n) | Token::Quoted(n) | Token::Word(n)) => SnapshotSpec::Name(n.clone()),
        _ => return Err(bad()),
    };
    Ok((Some(spec), i + 4))
}

/// Whether a SQL text opens (`Some(true)`) or ends (`Some(false)`) a transaction, judged by
/// the first word of its last transaction-control statement (`BEGIN`, `START`, `COMMIT`,
/// `END`, `ROLLBACK`, `ABORT`); `None` when it has none.
pub fn transaction_control(sql: &str) -> Option<bool> {
    let tokens = tokenize(sql).ok()?;
    let mut effect = None;
    for statement in tokens.split(|t| *t == Token::Punct(';')) {
        if let Some(Token::Word(w)) = statement.first() {
            match w.to_ascii_lowercase().as_str() {
                "begin" | "start" => effect = Some(true),
                "commit" | "end" | "rollback" | "abort" => effect = Some(false),
                _ => {}
            }
        }
    }
    effect
}

fn token_text(t: &Token) -> String {
    match t {
        Token::Word(w) => w.clone(),
        Token::Quoted(q) => format!("\"{q}\""),
        Token::Str(s) => format!("'{s}'"),
        Token::Punct(c) => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_database_statements() {
        assert_eq!(parse("show databases;").unwrap(), Some(Command::ShowDatabases));
        assert_eq!(
            parse("CREATE DATABASE IF NOT EXISTS \"Sales\"").unwrap(),
            Some(Command::CreateDatabase {
                name: "Sales".into(),
                if_not_exists: true,
                from: None
            })
        );
        assert_eq!(
            parse("/* x */ drop database if exists s -- bye").unwrap(),
            Some(Command::DropDatabase {
                name: "s".into(),
                if_exists: true
            })
        );
        assert_eq!(
            parse("USE my_db.main").unwrap(),
            Some(Command::Use {
                database: "my_db".into(),
                schema: Some("main".into())
            })
        );
        assert_eq!(
            parse("CREATE DATABASE c FROM d (SNAPSHOT_ID 3)").unwrap(),
            Some(Command::CreateDatabase {
                name: "c".into(),
                if_not_exists: false,
                from: Some(CloneSource::Database {
                    name: "d".into(),
                    at: Some(SnapshotSpec::Id(3))
                })
            })
        );
        assert!(matches!(
            parse("CREATE DATABASE c FROM 'local.duckdb'").unwrap(),
            Some(Command::CreateDatabase {
                from: Some(CloneSource::Local(_)),
                ..
            })
        ));
        assert_eq!(
            parse("create snapshot nightly of sales").unwrap(),
            Some(Command::CreateSnapshot {
                name: Some("nightly".into()),
                database: "sales".into()
            })
        );
        assert_eq!(
            parse("CREATE SNAPSHOT OF sales").unwrap(),
            Some(Command::CreateSnapshot {
                name: None,
                database: "sales".into()
            })
        );
        assert_eq!(
            parse("ALTER DATABASE s SET SNAPSHOT_RETENTION_DAYS = 3").unwrap(),
            Some(Command::SetRetention {
                database: "s".into(),
                days: 3
            })
        );
        assert!(parse("ALTER DATABASE s SET SNAPSHOT_RETENTION_DAYS = -1").is_err());
        assert_eq!(
            parse("ATTACH 'pond:sales' AS old (SNAPSHOT_TIME '2026-01-01 00:00:00')").unwrap(),
            Some(Command::AttachSnapshot {
                source: "sales".into(),
                alias: "old".into(),
                at: Some(SnapshotSpec::Time("2026-01-01 00:00:00".into()))
            })
        );
        assert!(parse("ATTACH 'pond:sales' AS old (SNAPSHOT_ID 'x')").is_err());
        assert_eq!(parse("ATTACH '/etc/passwd' AS x").unwrap(), None);
        assert_eq!(
            parse("DETACH DATABASE IF EXISTS old").unwrap(),
            Some(Command::Detach {
                alias: "old".into(),
                if_exists: true
            })
        );
        assert_eq!(
            parse("REFRESH DATABASE old").unwrap(),
            Some(Command::Refresh { database: "old".into() })
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(parse("CREATE TABLE database(x int)").unwrap(), None);
        assert!(parse("DROP DATABASE a b").is_err());
    }

    #[test]
    fn finds_transaction_control() {
        assert_eq!(transaction_control("BEGIN TRANSACTION"), Some(true));
        assert_eq!(
            transaction_control("begin; insert into t values (1); commit;"),
            Some(false)
        );
        assert_eq!(transaction_control("/* x */ ROLLBACK"), Some(false));
        assert_eq!(transaction_control("SELECT 'begin'"), None);
    }

    proptest::proptest! {
        /// Fuzz: any text, however malformed, gets an answer (a command, "not ours", or an
        /// error) and never a panic. `PROPTEST_CASES` sets how many inputs run.
        #[test]
        fn parse_never_panics(sql in ".{0,200}") {
            let _ = parse(&sql);
        }

        /// Fuzz the recogniser with statements built from its own keywords, quotes and comments.
        #[test]
        fn parse_never_panics_on_near_misses(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "CREATE", "DROP", "UNDROP", "DATABASE", "IF", "NOT", "EXISTS", "SHOW", "DATABASES",
                    "USE", "FROM", "\"q\"\"x\"", "'s'", "--c\n", "/*c*/", ".", ";", "(", "x", "\"", "'",
                ]),
                0..12,
            )
        ) {
            let _ = parse(&parts.join(" "));
        }

        /// Any valid identifier, bare or quoted, is the name CREATE DATABASE creates.
        #[test]
        fn create_database_keeps_the_name(name in "[A-Za-z_][A-Za-z0-9_]{0,20}", quoted in proptest::bool::ANY) {
            let sql = if quoted { format!("create database \"{name}\";") } else { format!("CREATE DATABASE {name}") };
            let is_keyword = ["if"].contains(&name.to_ascii_lowercase().as_str());
            if !is_keyword || quoted {
                proptest::prop_assert_eq!(
                    parse(&sql).unwrap(),
                    Some(Command::CreateDatabase { name: name.clone(), if_not_exists: false, from: None })
                );
            }
        }
    }
}
