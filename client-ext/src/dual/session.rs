//! The client's own commands: `ATTACH 'pond:…'`, `DETACH`, `USE`, `SET pond_run` and
//! `SHOW DATABASES`, which change what the session sees rather than run anywhere.
//!
//! Invariant: the session's map of attached cloud databases (alias → server name) changes only
//! here and in `copy.rs` (a database uploaded is attached under its name); names are matched
//! case-insensitively, as DuckDB matches them.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use pond_duckdb::engine::{quote_ident, quote_literal};
use pond_duckdb::lexer::Token;

use super::{DualSession, Outcome, RunMode, Venue};
use crate::ClientError;
use crate::sql_words::Lexed;

impl DualSession {
    pub(super) async fn attach(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        let path_at = lexed
            .first_string()
            .ok_or_else(|| ClientError::Invalid("ATTACH needs a 'pond:…' path".into()))?;
        let path = lexed.string_value(path_at).unwrap_or_default();
        let target = path
            .strip_prefix("pond:")
            .or_else(|| path.strip_prefix("md:"))
            .unwrap_or_default()
            .to_string();
        let (alias, options) = if lexed.is_word(path_at + 1, "as") {
            let alias = lexed
                .identifier(path_at + 2)
                .ok_or_else(|| ClientError::Invalid("ATTACH … AS needs a name".into()))?;
            (Some(alias), lexed.rest_from(path_at + 3))
        } else {
            (None, lexed.rest_from(path_at + 1))
        };
        let catalogs = self.cloud_client("ATTACH 'pond:'")?.catalogs().await?;
        if target.is_empty() {
            if alias.is_some() || !options.is_empty() {
                return Err(ClientError::Invalid(
                    "ATTACH 'pond:' attaches every database under its own name; give one database to alias it".into(),
                ));
            }
            for c in &catalogs {
                self.attached.insert(c.clone(), c.clone());
            }
            return Ok(Outcome::client(format!(
                "attached {} cloud database(s)",
                catalogs.len()
            )));
        }
        if target.starts_with("_share/") || !options.is_empty() {
            // Shares and time travel are attachments the server makes; the alias is its name.
            // A share's is the source database's name unless given, as on the server.
            let shared_database = target.strip_prefix("_share/").and_then(|rest| rest.split('/').next());
            let alias = alias
                .or_else(|| shared_database.map(str::to_string))
                .ok_or_else(|| ClientError::Invalid("this ATTACH needs AS <name>".into()))?;
            self.cloud_client("ATTACH")?.execute(lexed.text).await?;
            self.attached.insert(alias.clone(), alias.clone());
            return Ok(Outcome::client(format!("attached {alias}")));
        }
        let database = catalogs
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&target))
            .ok_or_else(|| ClientError::Invalid(format!("cloud database {target} does not exist")))?
            .clone();
        let alias = alias.unwrap_or_else(|| database.clone());
        self.attached.insert(alias.clone(), database);
        Ok(Outcome::client(format!("attached {alias}")))
    }

    /// After `statement` created, dropped or restored a database on the server: a new one is
    /// attached under its name, a dropped one detached, so the next statement of a script finds
    /// it. A session that attached nothing of the cloud wants none of it.
    pub(super) async fn follow_cloud_databases(&mut self, statement: &Lexed<'_>) -> Result<(), ClientError> {
        if self.attached.is_empty() {
            return Ok(());
        }
        let catalogs = self.cloud_client("CREATE DATABASE")?.catalogs().await?;
        // `DROP DATABASE [IF EXISTS] name`: the name the statement dropped.
        let dropped = (statement.first_word() == Some("drop"))
            .then(|| {
                let at = if statement.is_word(2, "if") { 4 } else { 2 };
                statement.identifier(at)
            })
            .flatten();
        if let Some(named) = dropped
            && !catalogs.iter().any(|c| c.eq_ignore_ascii_case(&named))
            && self
                .cloud_database(&named)
                .is_some_and(|d| d.eq_ignore_ascii_case(&named))
        {
            self.attached.retain(|alias, _| !alias.eq_ignore_ascii_case(&named));
        }
        for c in catalogs {
            if self.cloud_database(&c).is_none() {
                self.attached.insert(c.clone(), c);
            }
        }
        Ok(())
    }

    /// `DETACH x`: a cloud database leaves this session only; a share or a snapshot the server
    /// attached is detached there too, as MotherDuck does, so it does not come back with the
    /// next session.
    pub(super) async fn detach(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        let name = lexed
            .tokens
            .iter()
            .skip(1)
            .filter_map(Token::name)
            .find(|x| !matches!(x.as_str(), "database" | "if" | "exists"));
        match name {
            Some(n) if self.attached.contains_key(&n) => {
                let database = self.attached[&n].clone();
                // Only an attachment under its server name can be one the server made.
                if database.eq_ignore_ascii_case(&n) {
                    let cloud = self.cloud_client("DETACH")?;
                    let own = cloud
                        .query(&format!(
                            "SELECT 1 FROM pond_information_schema.databases WHERE database_name = {}",
                            quote_literal(&database)
                        ))
                        .await?
                        .iter()
                        .any(|b| b.num_rows() > 0);
                    if !own {
                        cloud.execute(&format!("DETACH {}", quote_ident(&database))).await?;
                    }
                }
                self.attached.remove(&n);
                if self.current_cloud.as_deref() == Some(n.as_str()) {
                    self.current_cloud = None;
                }
                Ok(Outcome::client(format!("detached {n}")))
            }
            _ => self.run_local(lexed.text),
        }
    }

    /// `SET pond_run = …` or `RESET pond_run` (alias `md_run`).
    pub(super) fn set_run_mode(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        self.run = if lexed.first_word() == Some("reset") {
            RunMode::Auto
        } else {
            run_setting(lexed)
                .ok_or_else(|| ClientError::Invalid("pond_run must be 'auto', 'local' or 'remote'".into()))?
        };
        Ok(Outcome::client(format!("pond_run = '{}'", self.run.as_str())))
    }

    pub(super) async fn use_database(&mut self, lexed: &Lexed<'_>) -> Result<Outcome, ClientError> {
        let first = lexed
            .identifier(1)
            .ok_or_else(|| ClientError::Invalid("USE needs a name".into()))?;
        let schema = if lexed.is_punct(2, '.') {
            lexed.identifier(3)
        } else {
            None
        };
        if let Some(database) = self.cloud_database(&first) {
            let mut statement = format!("USE {}", quote_ident(&database));
            if let Some(s) = &schema {
                statement += &format!(".{}", quote_ident(s));
            }
            self.cloud_client("USE")?.execute(&statement).await?;
            self.current_cloud = Some(first.to_lowercase());
            return Ok(Outcome::client(format!("using cloud database {first}")));
        }
        self.local.execute(lexed.text)?;
        self.current_cloud = None;
        Ok(Outcome::client(format!("using {first}")))
    }

    /// The server's name of the attached cloud database `alias`.
    pub(super) fn cloud_database(&self, alias: &str) -> Option<String> {
        self.attached
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(alias))
            .map(|(_, d)| d.clone())
    }

    /// The cloud database `USE` made current, if any.
    pub(super) fn current_cloud_db(&self) -> Option<String> {
        self.current_cloud.as_deref().and_then(|a| self.cloud_database(a))
    }

    pub(super) fn show_databases(&self) -> Result<Outcome, ClientError> {
        let (_, batches) = self
            .local
            .query("SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY 1")?;
        let mut names: Vec<String> = Vec::new();
        for b in &batches {
            if let Some(c) = b.column(0).as_any().downcast_ref::<StringArray>() {
                names.extend(c.iter().flatten().map(str::to_string));
            }
        }
        let mut kinds = vec!["local"; names.len()];
        for (alias, db) in &self.attached {
            names.push(if alias == db {
                alias.clone()
            } else {
                format!("{alias} ({db})")
            });
            kinds.push("cloud");
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("database_name", DataType::Utf8, false),
            Field::new("location", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(names)), Arc::new(StringArray::from(kinds))],
        )?;
        Ok(Outcome {
            schema,
            batches: vec![batch],
            venue: Venue::Client,
            bytes_moved: 0,
            planning_bytes: 0,
            plan: None,
            is_query: true,
        })
    }
}

/// The value of `SET [SESSION] pond_run = 'x'` / `SET md_run TO x`.
fn run_setting(lexed: &Lexed<'_>) -> Option<RunMode> {
    let at = lexed
        .tokens
        .iter()
        .position(|t| t.is_word("pond_run") || t.is_word("md_run"))?;
    let assigns = lexed.is_punct(at + 1, '=') || lexed.is_word(at + 1, "to");
    if !assigns || lexed.tokens.len() != at + 3 {
        return None;
    }
    let value = lexed.string_value(at + 2).or_else(|| lexed.identifier(at + 2))?;
    RunMode::parse(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_run_settings() {
        let setting = |sql| run_setting(&Lexed::new(sql));
        assert_eq!(setting("SET pond_run = 'remote'"), Some(RunMode::Remote));
        assert_eq!(setting("set md_run to local"), Some(RunMode::Local));
        assert_eq!(setting("SET SESSION pond_run='AUTO'"), Some(RunMode::Auto));
        assert_eq!(setting("SET pond_run = $$local$$"), Some(RunMode::Local));
        assert_eq!(setting("SET pond_run = 'sideways'"), None);
        assert_eq!(setting("SET pond_run = 'local' 'remote'"), None);
    }
}
