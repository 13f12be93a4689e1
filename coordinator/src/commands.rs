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
        from: Option<String>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    UndropDatabase {
        name: String,
    },
    ShowDatabases,
    Use {
        database: String,
        schema: Option<String>,
    },
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
            Some(t[i + 2..].iter().map(token_text).collect::<Vec<_>>().join(" "))
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
    Ok(None)
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
