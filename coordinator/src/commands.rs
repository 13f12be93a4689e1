//! The statements the coordinator owns (MotherDuck's syntax, see DESIGN.md): recognised here,
//! before DuckDB sees them. Everything else is DuckDB SQL for the user's duckling.
//!
//! The recogniser is deliberately narrow: a statement is the coordinator's only when its leading
//! keywords say so exactly; anything it does not recognise goes to DuckDB (whose parser, with
//! the sandbox, decides).

use pond_duckling::lexer::{Token, TokenKind, tokenize};

use crate::catalog::OnExisting;
use crate::error::{CoordinatorError, Result};
use crate::secrets::{SecretOptions, SecretSpec};
use crate::shares::{Access, SHARE_PREFIX, ShareOptions, ShareUrl, Update, Visibility};

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
    /// `SELECT pond_kill_session('connection id')` (or `CALL`): interrupt one of the caller's
    /// connections and close its session; the admin may name anyone's.
    KillSession {
        connection: String,
    },
    Use {
        database: String,
        schema: Option<String>,
    },
    /// `CREATE [OR REPLACE] [PERSISTENT] SECRET [IF NOT EXISTS] [name] [IN POND] (TYPE …, …)`.
    CreateSecret {
        spec: SecretSpec,
        existing: OnExisting,
    },
    /// `DROP [PERSISTENT] SECRET [IF EXISTS] name [FROM POND]`.
    DropSecret {
        name: String,
        if_exists: bool,
    },
    /// `SHOW SECRETS`: the caller's secrets, without their values.
    ShowSecrets,
    /// `CREATE [OR REPLACE] SHARE [IF NOT EXISTS] [name] [FROM database] [(ACCESS …,
    /// VISIBILITY …, UPDATE …)]`: without a name, the database's; without `FROM`, the current
    /// database.
    CreateShare {
        name: Option<String>,
        database: Option<String>,
        options: ShareOptions,
        existing: OnExisting,
    },
    /// `UPDATE SHARE name`: publish the database's newest snapshot to a MANUAL share's readers.
    UpdateShare {
        name: String,
    },
    /// `GRANT READ ON SHARE name TO user[, …]` / `REVOKE READ ON SHARE name FROM user[, …]`.
    GrantShare {
        name: String,
        users: Vec<String>,
        grant: bool,
    },
    /// `DROP SHARE [IF EXISTS] name`.
    DropShare {
        name: String,
        if_exists: bool,
    },
    /// `ATTACH 'pond:_share/<db>/<token>' [AS alias]`.
    AttachShare {
        url: ShareUrl,
        alias: Option<String>,
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

/// A token of the coordinator's tiny grammar, read from DuckDB's tokens (see [`words_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    /// A bare word or number, as written (case kept).
    Bare(String),
    /// A `"quoted"` name, unquoted.
    Quoted(String),
    /// A string literal's value.
    Str(String),
    Punct(char),
}

/// The statement `tokens` of `sql` (DuckDB's lexer) as the coordinator's grammar reads them:
/// words, numbers, `-` and `$` that touch one another form one bare word, so a Pond name such
/// as `my-db` needs no quotes (as before DuckDB's lexer read Pond's statements); trailing
/// `;` are dropped.
fn words_of(sql: &str, tokens: &[Token]) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    // Where the bare word being built ends, while one is.
    let mut bare_end: Option<usize> = None;
    for token in tokens {
        let text = &sql[token.span.clone()];
        let word = match &token.kind {
            TokenKind::Word(_) | TokenKind::Number | TokenKind::Punct('-' | '$') => None,
            TokenKind::Parameter if text != "?" => None,
            TokenKind::Parameter => Some(Word::Punct('?')),
            TokenKind::QuotedName(name) => Some(Word::Quoted(name.clone())),
            TokenKind::String => Some(Word::Str(string_value(text))),
            TokenKind::Punct(c) => Some(Word::Punct(*c)),
        };
        if let Some(word) = word {
            bare_end = None;
            out.push(word);
            continue;
        }
        match (bare_end, out.last_mut()) {
            (Some(end), Some(Word::Bare(bare))) if end == token.span.start => bare.push_str(text),
            _ => out.push(Word::Bare(text.to_string())),
        }
        bare_end = Some(token.span.end);
    }
    while out.last() == Some(&Word::Punct(';')) {
        out.pop();
    }
    out
}

/// The value of a string literal as DuckDB's lexer delimits it: `'…'` (a doubled quote is
/// one), `E'…'` (backslash escapes too), either continued by another quoted part after a
/// newline, or `$tag$…$tag$` (taken as written).
fn string_value(literal: &str) -> String {
    if let Some(rest) = literal.strip_prefix('$') {
        let Some(tag_end) = rest.find('$') else {
            return String::new();
        };
        let tag = &literal[..tag_end + 2];
        let body = &literal[tag.len()..];
        return body.strip_suffix(tag).unwrap_or(body).to_string();
    }
    let escapes = literal.starts_with(['e', 'E']);
    let mut out = String::with_capacity(literal.len());
    let mut chars = literal.chars().skip(usize::from(escapes)).peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            '\'' => quoted = !quoted,
            '\\' if quoted && escapes => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => {}
            },
            c if quoted => out.push(c),
            // The whitespace between continued parts.
            _ => {}
        }
    }
    out
}

fn is_kw(t: Option<&Word>, kw: &str) -> bool {
    matches!(t, Some(Word::Bare(w)) if w.eq_ignore_ascii_case(kw))
}

fn name(t: Option<&Word>) -> Result<String> {
    match t {
        Some(Word::Bare(w)) => Ok(w.clone()),
        Some(Word::Quoted(q)) => Ok(q.clone()),
        _ => Err(CoordinatorError::InvalidArgument("expected a database name".into())),
    }
}

fn end(t: &[Word], at: usize, what: &str) -> Result<()> {
    if t.len() > at {
        return Err(CoordinatorError::InvalidArgument(format!(
            "unexpected text after {what}"
        )));
    }
    Ok(())
}

/// Recognises a coordinator statement; `Ok(None)` means "DuckDB SQL" (including a text
/// DuckDB's lexer cannot read, for DuckDB to refuse).
pub fn parse(sql: &str) -> Result<Option<Command>> {
    match tokenize(sql) {
        Ok(tokens) => parse_tokens(sql, &tokens),
        Err(_) => Ok(None),
    }
}

/// [`parse`] over the tokens DuckDB's lexer read from `sql`.
pub(crate) fn parse_tokens(sql: &str, tokens: &[Token]) -> Result<Option<Command>> {
    let t = words_of(sql, tokens);
    let keyword = |i: usize| match t.get(i) {
        Some(Word::Bare(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    let command = match (keyword(0).as_str(), keyword(1).as_str()) {
        ("select" | "call", "pond_interrupt") if t.get(2) == Some(&Word::Punct('(')) => Command::Interrupt {
            connection: connection_argument(&t, "pond_interrupt")?,
        },
        ("select" | "call", "pond_kill_session") if t.get(2) == Some(&Word::Punct('(')) => Command::KillSession {
            connection: connection_argument(&t, "pond_kill_session")?,
        },
        ("shutdown", _) => {
            end(&t, 1, "SHUTDOWN")?;
            Command::Shutdown
        }
        ("show", "databases") => {
            end(&t, 2, "SHOW DATABASES")?;
            Command::ShowDatabases
        }
        ("show", "secrets") => {
            end(&t, 2, "SHOW SECRETS")?;
            Command::ShowSecrets
        }
        ("create", _) if secret_keyword_at(&t, 1).is_some() => create_secret(&t)?,
        ("drop", _) if secret_keyword_at(&t, 1).is_some() => drop_secret(&t)?,
        ("use", _) => use_database(&t)?,
        ("undrop", "database") => {
            let n = name(t.get(2))?;
            end(&t, 3, "UNDROP DATABASE")?;
            Command::UndropDatabase { name: n }
        }
        ("drop", "database") => drop_database(&t)?,
        ("create", "database") => create_database(&t)?,
        ("create", "snapshot") => create_snapshot(&t)?,
        ("alter", "database") => set_retention(&t)?,
        ("refresh", "database") => {
            let database = name(t.get(2))?;
            end(&t, 3, "REFRESH DATABASE")?;
            Command::Refresh { database }
        }
        ("attach", _) => return attach(&t),
        ("detach", _) => detach(&t)?,
        ("create", _) if share_keyword_at(&t, 1).is_some() => create_share(&t)?,
        // `UPDATE share SET …` is DuckDB's UPDATE of a table named share.
        ("update", "share") if t.len() == 3 => Command::UpdateShare { name: name(t.get(2))? },
        ("grant" | "revoke", "read") if is_kw(t.get(2), "on") && is_kw(t.get(3), "share") => grant_share(&t)?,
        ("drop", "share") => {
            let if_exists = is_kw(t.get(2), "if") && is_kw(t.get(3), "exists");
            let at = if if_exists { 4 } else { 2 };
            let share = name(t.get(at))?;
            end(&t, at + 1, "DROP SHARE")?;
            Command::DropShare { name: share, if_exists }
        }
        ("alter", "share") => {
            return Err(CoordinatorError::Unimplemented(
                "ALTER SHARE (INCLUDE_PATTERN) is not supported: a share exposes its whole database; \
                 CREATE OR REPLACE SHARE changes its access, visibility or updates"
                    .into(),
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some(command))
}

/// Where `SECRET` stands after `CREATE`/`DROP` (from `from`) and the modifiers that may come
/// before it: `OR REPLACE`, `PERSISTENT`, `TEMPORARY`.
fn secret_keyword_at(t: &[Word], from: usize) -> Option<usize> {
    let mut i = from;
    if is_kw(t.get(i), "or") && is_kw(t.get(i + 1), "replace") {
        i += 2;
    }
    if is_kw(t.get(i), "persistent") || is_kw(t.get(i), "temporary") || is_kw(t.get(i), "temp") {
        i += 1;
    }
    is_kw(t.get(i), "secret").then_some(i)
}

/// Refuses a secret DuckDB would keep in this connection only: Pond keeps secrets for the user.
fn refuse_temporary(t: &[Word], from: usize, at: usize) -> Result<()> {
    if t[from..at]
        .iter()
        .any(|w| is_kw(Some(w), "temporary") || is_kw(Some(w), "temp"))
    {
        return Err(CoordinatorError::InvalidArgument(
            "Pond keeps secrets for the user, not per connection: use CREATE SECRET … IN POND".into(),
        ));
    }
    Ok(())
}

/// `IN POND` / `FROM POND` at `i`, if there; another storage is refused.
fn pond_storage(t: &[Word], i: usize, keyword: &str) -> Result<usize> {
    if !is_kw(t.get(i), keyword) {
        return Ok(i);
    }
    if is_kw(t.get(i + 1), "pond") {
        return Ok(i + 2);
    }
    Err(CoordinatorError::InvalidArgument(format!(
        "secrets are stored {} POND",
        keyword.to_uppercase()
    )))
}

/// `CREATE [OR REPLACE] [PERSISTENT] SECRET [IF NOT EXISTS] [name] [IN POND] (key value, …)`.
/// Errors name options, never their values.
fn create_secret(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let secret = secret_keyword_at(t, 1).expect("checked by the caller");
    refuse_temporary(t, 1, secret)?;
    let replace = is_kw(at(1), "or");
    let mut i = secret + 1;
    let if_not_exists = is_kw(at(i), "if") && is_kw(at(i + 1), "not") && is_kw(at(i + 2), "exists");
    if if_not_exists {
        i += 3;
    }
    let explicit_name = match at(i) {
        Some(Word::Bare(w)) if !w.eq_ignore_ascii_case("in") => {
            i += 1;
            Some(w.to_ascii_lowercase())
        }
        Some(Word::Quoted(q)) => {
            i += 1;
            Some(q.to_ascii_lowercase())
        }
        _ => None,
    };
    i = pond_storage(t, i, "in")?;
    let malformed = || {
        CoordinatorError::InvalidArgument(
            "expected CREATE SECRET name IN POND (TYPE s3, KEY_ID '…', SECRET '…', …)".into(),
        )
    };
    if at(i) != Some(&Word::Punct('(')) {
        return Err(malformed());
    }
    i += 1;
    let mut options = std::collections::BTreeMap::new();
    loop {
        let key = match at(i) {
            Some(Word::Bare(k)) => k.to_ascii_lowercase(),
            _ => return Err(malformed()),
        };
        let value = match at(i + 1) {
            Some(Word::Str(v) | Word::Bare(v) | Word::Quoted(v)) => v.clone(),
            _ => {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "the secret's option {key} needs one value (a list is not supported)"
                )));
            }
        };
        if options.insert(key.clone(), value).is_some() {
            return Err(CoordinatorError::InvalidArgument(format!(
                "the secret sets {key} twice"
            )));
        }
        i += 2;
        match at(i) {
            Some(Word::Punct(',')) => i += 1,
            Some(Word::Punct(')')) => break,
            _ => return Err(malformed()),
        }
    }
    end(t, i + 1, "CREATE SECRET (…)")?;
    let secret_type = options
        .remove("type")
        .ok_or_else(|| CoordinatorError::InvalidArgument("a secret needs a TYPE (s3, r2, gcs)".into()))?
        .to_ascii_lowercase();
    let scope = options.remove("scope");
    Ok(Command::CreateSecret {
        spec: SecretSpec {
            name: explicit_name.unwrap_or_else(|| format!("__default_{secret_type}")),
            secret_type,
            scope,
            options: SecretOptions(options),
        },
        existing: match (replace, if_not_exists) {
            (true, _) => OnExisting::Replace,
            (false, true) => OnExisting::Keep,
            (false, false) => OnExisting::Fail,
        },
    })
}

/// `DROP [PERSISTENT] SECRET [IF EXISTS] name [FROM POND]`.
fn drop_secret(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let secret = secret_keyword_at(t, 1).expect("checked by the caller");
    refuse_temporary(t, 1, secret)?;
    let mut i = secret + 1;
    let if_exists = is_kw(at(i), "if") && is_kw(at(i + 1), "exists");
    if if_exists {
        i += 2;
    }
    let name = match at(i) {
        Some(Word::Bare(w)) => w.to_ascii_lowercase(),
        Some(Word::Quoted(q)) => q.to_ascii_lowercase(),
        _ => return Err(CoordinatorError::InvalidArgument("expected DROP SECRET name".into())),
    };
    let next = pond_storage(t, i + 1, "from")?;
    end(t, next, "DROP SECRET")?;
    Ok(Command::DropSecret { name, if_exists })
}

/// The connection id of `SELECT function('connection')` or `CALL function('connection')`.
fn connection_argument(t: &[Word], function: &str) -> Result<String> {
    let at = |i: usize| t.get(i);
    let Some(Word::Str(connection)) = at(3) else {
        return Err(CoordinatorError::InvalidArgument(format!(
            "{function} takes a connection id as a string: {function}('…')"
        )));
    };
    if at(4) != Some(&Word::Punct(')')) {
        return Err(CoordinatorError::InvalidArgument(format!(
            "{function} takes one argument"
        )));
    }
    end(t, 5, &format!("{function}(…)"))?;
    Ok(connection.clone())
}

/// `USE database[.schema]`.
fn use_database(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let database = name(at(1))?;
    let schema = if at(2) == Some(&Word::Punct('.')) {
        Some(name(at(3))?)
    } else {
        None
    };
    end(t, if schema.is_some() { 4 } else { 2 }, "USE")?;
    Ok(Command::Use { database, schema })
}

/// `DROP DATABASE [IF EXISTS] name`.
fn drop_database(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let (if_exists, i) = if is_kw(at(2), "if") && is_kw(at(3), "exists") {
        (true, 4)
    } else {
        (false, 2)
    };
    let n = name(at(i))?;
    end(t, i + 1, "DROP DATABASE")?;
    Ok(Command::DropDatabase { name: n, if_exists })
}

/// `CREATE DATABASE [IF NOT EXISTS] name [FROM source [(snapshot)]]`.
fn create_database(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let (if_not_exists, i) = if is_kw(at(2), "if") && is_kw(at(3), "not") && is_kw(at(4), "exists") {
        (true, 5)
    } else {
        (false, 2)
    };
    let n = name(at(i))?;
    let from = if is_kw(at(i + 1), "from") {
        Some(match at(i + 2) {
            Some(Word::Bare(_) | Word::Quoted(_))
                if !is_kw(at(i + 2), "current_database")
                    && (at(i + 3).is_none() || at(i + 3) == Some(&Word::Punct('('))) =>
            {
                let (spec, next) = snapshot_spec(t, i + 3)?;
                end(t, next, "CREATE DATABASE … FROM")?;
                CloneSource::Database {
                    name: name(at(i + 2))?,
                    at: spec,
                }
            }
            _ => CloneSource::Local(t[i + 2..].iter().map(word_text).collect::<Vec<_>>().join(" ")),
        })
    } else {
        end(t, i + 1, "CREATE DATABASE")?;
        None
    };
    Ok(Command::CreateDatabase {
        name: n,
        if_not_exists,
        from,
    })
}

/// `CREATE SNAPSHOT [name] OF database`.
fn create_snapshot(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
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
    end(t, i + 1, "CREATE SNAPSHOT")?;
    Ok(Command::CreateSnapshot {
        name: snapshot,
        database,
    })
}

/// `ALTER DATABASE d SET SNAPSHOT_RETENTION_DAYS = n`.
fn set_retention(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let database = name(at(2))?;
    let days = match (at(3), at(4), at(5), at(6)) {
        (Some(set), Some(key), Some(Word::Punct('=')), Some(Word::Bare(n)))
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
    end(t, 7, "ALTER DATABASE")?;
    Ok(Command::SetRetention { database, days })
}

/// `ATTACH [DATABASE] 'pond:source' AS alias [(snapshot)]`; another `ATTACH` is DuckDB's.
fn attach(t: &[Word]) -> Result<Option<Command>> {
    let at = |i: usize| t.get(i);
    let i = if is_kw(at(1), "database") { 2 } else { 1 };
    if let Some(Word::Str(url)) = at(i)
        && let Some(source) = url.strip_prefix("pond:").or_else(|| url.strip_prefix("md:"))
    {
        if source.starts_with(SHARE_PREFIX) {
            let url = ShareUrl::parse(source)?;
            let (alias, next) = if is_kw(at(i + 1), "as") {
                (Some(name(at(i + 2))?), i + 3)
            } else {
                (None, i + 1)
            };
            if at(next) == Some(&Word::Punct('(')) {
                return Err(CoordinatorError::PermissionDenied(
                    "a share shows the snapshot its owner publishes: it takes no SNAPSHOT_ID, SNAPSHOT_TIME or SNAPSHOT_NAME".into(),
                ));
            }
            end(t, next, "ATTACH")?;
            return Ok(Some(Command::AttachShare { url, alias }));
        }
        if !is_kw(at(i + 1), "as") {
            return Err(CoordinatorError::InvalidArgument(format!(
                "expected ATTACH '{url}' AS name"
            )));
        }
        let alias = name(at(i + 2))?;
        let (spec, next) = snapshot_spec(t, i + 3)?;
        end(t, next, "ATTACH")?;
        return Ok(Some(Command::AttachSnapshot {
            source: source.to_string(),
            alias,
            at: spec,
        }));
    }
    Ok(None)
}

/// Where `SHARE` stands after `CREATE` (from `from`) and an optional `OR REPLACE`.
fn share_keyword_at(t: &[Word], from: usize) -> Option<usize> {
    let i = if is_kw(t.get(from), "or") && is_kw(t.get(from + 1), "replace") {
        from + 2
    } else {
        from
    };
    is_kw(t.get(i), "share").then_some(i)
}

/// `CREATE [OR REPLACE] SHARE [IF NOT EXISTS] [name] [FROM database] [(option value, …)]`.
fn create_share(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let share = share_keyword_at(t, 1).expect("checked by the caller");
    let replace = share > 1;
    let mut i = share + 1;
    let if_not_exists = is_kw(at(i), "if") && is_kw(at(i + 1), "not") && is_kw(at(i + 2), "exists");
    if if_not_exists {
        i += 3;
    }
    let share_name = match at(i) {
        Some(Word::Bare(w)) if !w.eq_ignore_ascii_case("from") => Some(w.clone()),
        Some(Word::Quoted(q)) => Some(q.clone()),
        _ => None,
    };
    if share_name.is_some() {
        i += 1;
    }
    let database = if is_kw(at(i), "from") {
        i += 2;
        Some(name(at(i - 1))?)
    } else {
        None
    };
    let mut options = ShareOptions::default();
    if at(i) == Some(&Word::Punct('(')) {
        i += 1;
        while at(i) != Some(&Word::Punct(')')) {
            let (Some(Word::Bare(key)), Some(Word::Bare(value))) = (at(i), at(i + 1)) else {
                return Err(CoordinatorError::InvalidArgument(
                    "expected CREATE SHARE … (ACCESS RESTRICTED|ORGANIZATION|UNRESTRICTED, VISIBILITY DISCOVERABLE|HIDDEN, UPDATE AUTOMATIC|MANUAL)".into(),
                ));
            };
            let twice = || CoordinatorError::InvalidArgument(format!("the share sets {} twice", key.to_uppercase()));
            match key.to_ascii_lowercase().as_str() {
                "access" => options
                    .access
                    .replace(Access::parse(value)?)
                    .map_or(Ok(()), |_| Err(twice()))?,
                "visibility" => options
                    .visibility
                    .replace(Visibility::parse(value)?)
                    .map_or(Ok(()), |_| Err(twice()))?,
                "update" => options
                    .update
                    .replace(Update::parse(value)?)
                    .map_or(Ok(()), |_| Err(twice()))?,
                other => {
                    return Err(CoordinatorError::InvalidArgument(format!(
                        "a share has no option {other}: it takes ACCESS, VISIBILITY and UPDATE"
                    )));
                }
            }
            i += 2;
            match at(i) {
                Some(Word::Punct(',')) => i += 1,
                Some(Word::Punct(')')) => {}
                _ => {
                    return Err(CoordinatorError::InvalidArgument(
                        "expected , or ) after a share's option".into(),
                    ));
                }
            }
        }
        i += 1;
    }
    end(t, i, "CREATE SHARE")?;
    Ok(Command::CreateShare {
        name: share_name,
        database,
        options,
        existing: match (replace, if_not_exists) {
            (true, _) => OnExisting::Replace,
            (false, true) => OnExisting::Keep,
            (false, false) => OnExisting::Fail,
        },
    })
}

/// `GRANT READ ON SHARE name TO user[, …]` / `REVOKE READ ON SHARE name FROM user[, …]`.
fn grant_share(t: &[Word]) -> Result<Command> {
    let grant = is_kw(t.first(), "grant");
    let share = name(t.get(4))?;
    let to = if grant { "to" } else { "from" };
    if !is_kw(t.get(5), to) {
        return Err(CoordinatorError::InvalidArgument(format!(
            "expected {} READ ON SHARE name {} user",
            if grant { "GRANT" } else { "REVOKE" },
            to.to_uppercase()
        )));
    }
    let mut users = vec![name(t.get(6))?];
    let mut i = 7;
    while t.get(i) == Some(&Word::Punct(',')) {
        users.push(name(t.get(i + 1))?);
        i += 2;
    }
    end(t, i, "the user list")?;
    Ok(Command::GrantShare {
        name: share,
        users,
        grant,
    })
}

/// `DETACH [DATABASE] [IF EXISTS] alias`.
fn detach(t: &[Word]) -> Result<Command> {
    let at = |i: usize| t.get(i);
    let mut i = if is_kw(at(1), "database") { 2 } else { 1 };
    let if_exists = is_kw(at(i), "if") && is_kw(at(i + 1), "exists");
    if if_exists {
        i += 2;
    }
    let alias = name(at(i))?;
    end(t, i + 1, "DETACH")?;
    Ok(Command::Detach { alias, if_exists })
}

/// Parses an optional `(SNAPSHOT_ID n | SNAPSHOT_TIME 'ts' | SNAPSHOT_NAME 'name')` at `i`;
/// returns it and the index after it.
fn snapshot_spec(t: &[Word], i: usize) -> Result<(Option<SnapshotSpec>, usize)> {
    if t.get(i) != Some(&Word::Punct('(')) {
        return Ok((None, i));
    }
    let bad = || {
        CoordinatorError::InvalidArgument(
            "expected (SNAPSHOT_ID n), (SNAPSHOT_TIME 'timestamp') or (SNAPSHOT_NAME 'name')".into(),
        )
    };
    let (Some(Word::Bare(key)), Some(value), Some(Word::Punct(')'))) = (t.get(i + 1), t.get(i + 2), t.get(i + 3))
    else {
        return Err(bad());
    };
    let spec = match (key.to_ascii_lowercase().as_str(), value) {
        ("snapshot_id", Word::Bare(n)) => SnapshotSpec::Id(n.parse().map_err(|_| bad())?),
        ("snapshot_time", Word::Str(ts)) => SnapshotSpec::Time(ts.clone()),
        ("snapshot_name", Word::Str(n) | Word::Quoted(n) | Word::Bare(n)) => SnapshotSpec::Name(n.clone()),
        _ => return Err(bad()),
    };
    Ok((Some(spec), i + 4))
}

/// Whether a SQL text opens (`Some(true)`) or ends (`Some(false)`) a transaction, judged by
/// the first word of its last transaction-control statement (`BEGIN`, `START`, `COMMIT`,
/// `END`, `ROLLBACK`, `ABORT`); `None` when it has none, or DuckDB's lexer cannot read it.
pub fn transaction_control(sql: &str) -> Option<bool> {
    transaction_control_of(&tokenize(sql).ok()?)
}

/// [`transaction_control`] over the tokens DuckDB's lexer read.
pub(crate) fn transaction_control_of(tokens: &[Token]) -> Option<bool> {
    let mut effect = None;
    for statement in tokens.split(|t| t.is_punct(';')) {
        match statement.first().map(|t| &t.kind) {
            Some(TokenKind::Word(w)) if matches!(w.as_str(), "begin" | "start") => effect = Some(true),
            Some(TokenKind::Word(w)) if matches!(w.as_str(), "commit" | "end" | "rollback" | "abort") => {
                effect = Some(false)
            }
            _ => {}
        }
    }
    effect
}

/// A word as the user wrote it (for messages).
fn word_text(w: &Word) -> String {
    match w {
        Word::Bare(w) => w.clone(),
        Word::Quoted(q) => format!("\"{q}\""),
        Word::Str(s) => format!("'{s}'"),
        Word::Punct(c) => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_share_statements() {
        assert_eq!(
            parse("CREATE OR REPLACE SHARE IF NOT EXISTS s FROM sales (ACCESS restricted, UPDATE AUTOMATIC);").unwrap(),
            Some(Command::CreateShare {
                name: Some("s".into()),
                database: Some("sales".into()),
                options: ShareOptions {
                    access: Some(Access::Restricted),
                    visibility: None,
                    update: Some(Update::Automatic),
                },
                existing: OnExisting::Replace,
            })
        );
        assert_eq!(
            parse("create share").unwrap(),
            Some(Command::CreateShare {
                name: None,
                database: None,
                options: ShareOptions::default(),
                existing: OnExisting::Fail,
            })
        );
        assert!(matches!(
            parse("CREATE SHARE FROM sales").unwrap(),
            Some(Command::CreateShare {
                name: None,
                database: Some(_),
                ..
            })
        ));
        assert!(parse("CREATE SHARE s (ACCESS everyone)").is_err());
        assert!(parse("CREATE SHARE s (ACCESS RESTRICTED, ACCESS HIDDEN)").is_err());
        assert!(parse("CREATE SHARE s (PATTERN x)").is_err());
        assert_eq!(
            parse("UPDATE SHARE s").unwrap(),
            Some(Command::UpdateShare { name: "s".into() })
        );
        assert_eq!(
            parse("UPDATE share SET x = 1").unwrap(),
            None,
            "an UPDATE of a table named share"
        );
        assert_eq!(
            parse("GRANT READ ON SHARE s TO bob, carol").unwrap(),
            Some(Command::GrantShare {
                name: "s".into(),
                users: vec!["bob".into(), "carol".into()],
                grant: true
            })
        );
        assert!(matches!(
            parse("revoke read on share s from bob").unwrap(),
            Some(Command::GrantShare { grant: false, .. })
        ));
        assert!(parse("REVOKE READ ON SHARE s TO bob").is_err());
        assert_eq!(
            parse("DROP SHARE IF EXISTS s").unwrap(),
            Some(Command::DropShare {
                name: "s".into(),
                if_exists: true
            })
        );
        assert!(matches!(
            parse("ALTER SHARE s SET INCLUDE_PATTERN 'x'"),
            Err(CoordinatorError::Unimplemented(_))
        ));
        assert_eq!(
            parse("ATTACH 'md:_share/sales/0123abcd' AS theirs").unwrap(),
            Some(Command::AttachShare {
                url: ShareUrl {
                    database_name: "sales".into(),
                    token: "0123abcd".into()
                },
                alias: Some("theirs".into())
            })
        );
        assert!(matches!(
            parse("ATTACH 'pond:_share/sales/0123abcd'").unwrap(),
            Some(Command::AttachShare { alias: None, .. })
        ));
        assert!(matches!(
            parse("ATTACH 'pond:_share/sales/0123abcd' AS x (SNAPSHOT_ID 1)"),
            Err(CoordinatorError::PermissionDenied(_))
        ));
        assert!(parse("ATTACH 'pond:_share/sales' AS x").is_err());
    }

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
    fn reads_secrets_without_echoing_their_values() {
        let c = parse("CREATE OR REPLACE PERSISTENT SECRET Lake IN POND (TYPE S3, KEY_ID 'AKIA', SECRET 'shh', USE_SSL false, SCOPE 's3://b/p/');")
            .unwrap()
            .unwrap();
        let Command::CreateSecret { spec, existing } = c else {
            panic!("not a secret: {c:?}");
        };
        assert_eq!(existing, OnExisting::Replace);
        assert_eq!((spec.name.as_str(), spec.secret_type.as_str()), ("lake", "s3"));
        assert_eq!(spec.scope.as_deref(), Some("s3://b/p/"));
        assert_eq!(spec.options.0.get("use_ssl").map(String::as_str), Some("false"));
        assert_eq!(spec.options.0.get("secret").map(String::as_str), Some("shh"));
        let Some(Command::CreateSecret { spec, existing }) =
            parse("create secret if not exists (type s3, key_id 'k')").unwrap()
        else {
            panic!("an unnamed secret");
        };
        assert_eq!((spec.name.as_str(), existing), ("__default_s3", OnExisting::Keep));
        for bad in [
            "CREATE SECRET s IN POND (TYPE s3, SECRET 'shh-value', SECRET 'shh-value')",
            "CREATE SECRET s IN POND (TYPE s3, SECRET 'shh-value' KEY_ID 'x')",
            "CREATE SECRET s IN local_file (TYPE s3, SECRET 'shh-value')",
            "CREATE TEMPORARY SECRET s (TYPE s3, SECRET 'shh-value')",
            "CREATE SECRET s IN POND (TYPE s3, SCOPE ('s3://a', 's3://b'), SECRET 'shh-value')",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(!e.contains("shh-value"), "{bad}: {e}");
        }
        assert_eq!(
            parse("DROP PERSISTENT SECRET IF EXISTS \"Lake\" FROM POND").unwrap(),
            Some(Command::DropSecret {
                name: "lake".into(),
                if_exists: true
            })
        );
        assert_eq!(parse("show secrets").unwrap(), Some(Command::ShowSecrets));
        assert_eq!(parse("CREATE TABLE secret (x INT)").unwrap(), None);
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
        assert_eq!(transaction_control("SELECT $$; begin$$"), None);
        assert_eq!(transaction_control("SELECT 1 /* /* */ ; begin */"), None);
        assert_eq!(transaction_control("SELECT E'\\'; begin'"), None);
    }

    #[test]
    fn reads_text_as_duckdb_does() {
        // A Pond name may hold `-` without quotes, as catalog names allow.
        assert_eq!(
            parse("USE my-db.main").unwrap(),
            Some(Command::Use {
                database: "my-db".into(),
                schema: Some("main".into())
            })
        );
        assert_eq!(
            parse("SELECT pond_interrupt($$a'b$$)").unwrap(),
            Some(Command::Interrupt {
                connection: "a'b".into()
            })
        );
        assert_eq!(
            parse("CALL pond_interrupt('a''b')").unwrap(),
            Some(Command::Interrupt {
                connection: "a'b".into()
            })
        );
        assert_eq!(
            parse("select POND_KILL_SESSION('s1');").unwrap(),
            Some(Command::KillSession {
                connection: "s1".into()
            })
        );
        assert!(parse("SELECT pond_kill_session(1)").is_err());
        assert!(parse("SELECT pond_kill_session('a', 'b')").is_err());
        assert_eq!(
            parse("ATTACH E'pond:s\\'' AS x").unwrap(),
            Some(Command::AttachSnapshot {
                source: "s'".into(),
                alias: "x".into(),
                at: None
            })
        );
        // Nested comments hide all they hold; an unreadable text is DuckDB's to refuse.
        assert_eq!(parse("/* /* */ SHUTDOWN */ SELECT 1").unwrap(), None);
        assert_eq!(parse("SHUTDOWN /* /* */").unwrap(), None);
        assert!(matches!(
            parse("CREATE DATABASE c FROM 'local.duckdb'").unwrap(),
            Some(Command::CreateDatabase {
                from: Some(CloneSource::Local(what)),
                ..
            }) if what == "'local.duckdb'"
        ));
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
