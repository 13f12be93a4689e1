//! Routing: which side each relation of a statement lives on, and so where the statement runs.
//!
//! A name qualified by an attached cloud alias is remote, anything else local (unless `USE`
//! made a cloud database current); a table function reads where its `pond_run` says, or goes
//! with the query. A query whose relations are all on one side runs there, names rewritten to
//! the cloud's; a mixed one is planned (`plan.rs`). DDL and DML run where their target is.
//!
//! Invariant: the SQL that runs is the user's text with names spliced in at the offsets DuckDB
//! reported (or, for DDL and DML, at the qualifiers the lexer found), never a re-rendering.

use pond_duckdb::engine::quote_ident;
use pond_duckdb::lexer::TokenKind;
use pond_proto::dual::Side;

use super::stream::Finish;
use super::user_error::{Spliced, splice_mapped};
use super::{DualSession, Outcome, RunMode, Venue, returns_rows};
use crate::ClientError;
use crate::analyze::{self, AnalyzeError, QueryShape, TableRef};
use crate::sql_words::Lexed;

/// A cloud relation's resolved place.
#[derive(Debug, Clone)]
struct CloudName {
    database: String,
    schema: String,
    table: String,
}

impl CloudName {
    fn quoted(&self) -> String {
        format!(
            "{}.{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.schema),
            quote_ident(&self.table)
        )
    }
}

/// One relation of a statement being planned.
#[derive(Debug, Clone)]
pub(super) struct Rel {
    pub side: Side,
    /// SQL that reads it on its side.
    pub source: String,
    /// Byte range in the statement that the placeholder replaces.
    pub span: (usize, usize),
    /// Appended after the placeholder so the relation keeps the name the query uses.
    pub alias: Option<String>,
}

/// A write that carries a query: `CREATE … TABLE name AS query` or `INSERT INTO name … query`.
#[derive(Debug, PartialEq, Eq)]
struct WriteQuery {
    /// The statement up to its query.
    prefix: String,
    /// The target's name as written.
    target: String,
    /// Whether the target's name is qualified.
    qualified: bool,
    query: String,
}

impl DualSession {
    /// Any statement that is not a client command.
    pub(super) async fn run_statement(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let json = self.local.serialize(text)?;
        match analyze::analyze(text, &json) {
            Ok(shape) => self.run_query(text, &shape, self.finish).await,
            Err(AnalyzeError::NotAQuery(_)) => self.run_other(text).await,
            Err(AnalyzeError::Shape(reason)) => {
                tracing::debug!(%reason, "could not analyze; running locally");
                self.run_local(text)
            }
        }
    }

    /// Sides of a query's relations; `None` for a CTE reference.
    pub(super) fn resolve(&self, sql: &str, shape: &QueryShape) -> Vec<Rel> {
        let mut rels = Vec::new();
        for t in &shape.tables {
            let unqualified = t.catalog.is_empty() && t.schema.is_empty();
            if unqualified && shape.ctes.contains(&t.table.to_lowercase()) {
                continue;
            }
            let cloud = self.cloud_name(t);
            let alias = t.alias.is_empty().then(|| quote_ident(&t.table));
            rels.push(match cloud {
                Some(name) => Rel {
                    side: Side::Remote,
                    source: name.quoted(),
                    span: t.span,
                    alias,
                },
                None => Rel {
                    side: Side::Local,
                    source: sql[t.span.0..t.span.1].to_string(),
                    span: t.span,
                    alias,
                },
            });
        }
        for f in &shape.functions {
            let Some(span) = f.span else { continue };
            // A call whose arguments read tables stays in the text; its tables are the relations.
            if shape.tables.iter().any(|t| t.span.0 >= span.0 && t.span.1 <= span.1) {
                continue;
            }
            let side = match f.run.as_deref() {
                Some("remote") => Side::Remote,
                Some("local") => Side::Local,
                // Remote data is read next to the duckling, not pulled over the client's link.
                _ if f.path.as_deref().is_some_and(is_remote_url) => Side::Remote,
                // A cloud-only query's readers run with it; others read where the client is.
                _ => Side::Unspecified,
            };
            let mut source = sql[span.0..span.1].to_string();
            if let Some(cut) = f.run_span {
                source = format!("{}{}", &sql[span.0..cut.0], &sql[cut.1..span.1]);
            }
            let alias = f.alias.is_empty().then(|| quote_ident(&f.name));
            rels.push(Rel {
                side,
                source,
                span,
                alias,
            });
        }
        rels
    }

    /// Where a table lives in the cloud, if it does: `alias.schema.table`, `alias.table`, or a
    /// name under the cloud database `USE` made current.
    fn cloud_name(&self, t: &TableRef) -> Option<CloudName> {
        if !t.catalog.is_empty() {
            self.cloud_database(&t.catalog).map(|db| CloudName {
                database: db,
                schema: t.schema.clone(),
                table: t.table.clone(),
            })
        } else if !t.schema.is_empty() {
            match self.cloud_database(&t.schema) {
                Some(db) => Some(CloudName {
                    database: db,
                    schema: "main".into(),
                    table: t.table.clone(),
                }),
                None => self.current_cloud_db().map(|db| CloudName {
                    database: db,
                    schema: t.schema.clone(),
                    table: t.table.clone(),
                }),
            }
        } else {
            self.current_cloud_db().map(|db| CloudName {
                database: db,
                schema: "main".into(),
                table: t.table.clone(),
            })
        }
    }

    async fn run_query(&mut self, text: &str, shape: &QueryShape, finish: Finish) -> Result<Outcome, ClientError> {
        let rels = assign_sides(self.resolve(text, shape));
        let has_remote = rels.iter().any(|r| r.side == Side::Remote);
        let has_local = rels.iter().any(|r| r.side == Side::Local);
        let single = match (has_local, has_remote, self.run) {
            (_, false, RunMode::Auto | RunMode::Local) => Some(Side::Local),
            (false, true, RunMode::Auto | RunMode::Remote) => Some(Side::Remote),
            (false, false, RunMode::Remote) => Some(Side::Local),
            _ => None,
        };
        match single {
            Some(side) => {
                let edits = rels
                    .iter()
                    // A relation read as written needs no alias: the user's text already names
                    // it, and leaving it alone keeps DuckDB's binding (`main.t` answers to
                    // `main.t.x`, which an alias would hide).
                    .filter(|r| r.source != text[r.span.0..r.span.1])
                    .map(|r| (r.span, with_alias(&r.source, &r.alias)))
                    .collect();
                let sql = splice_mapped(text, edits);
                let result = match (finish, side) {
                    (Finish::Collect, Side::Local) => self.run_local(&sql.sql),
                    (Finish::Collect, _) => self.run_remote(&sql.sql).await,
                    (Finish::Defer, side) => self.defer(side, &sql.sql).await,
                };
                result.map_err(|e| sql.user_error(text, e))
            }
            None => {
                let (outcome, _) = self.run_dual(text, shape, &rels, finish, false).await?;
                Ok(outcome)
            }
        }
    }

    /// Statements other than queries: DDL and DML. They run on the side of the names they
    /// mention; `CREATE TABLE … AS` and `INSERT INTO … SELECT` whose query reads the other
    /// side run the query by dual execution first.
    async fn run_other(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let lexed = Lexed::new(text);
        if let Some(write) = split_write_query(&lexed) {
            let target_side =
                if self.mentions_cloud(&write.target) || (self.current_cloud.is_some() && !write.qualified) {
                    Side::Remote
                } else {
                    Side::Local
                };
            let json = self.local.serialize(&write.query)?;
            if let Ok(shape) = analyze::analyze(&write.query, &json) {
                let rels = self.resolve(&write.query, &shape);
                let foreign = rels
                    .iter()
                    .any(|r| r.side != target_side && r.side != Side::Unspecified);
                if foreign {
                    return self.write_across(&write, &shape, target_side).await;
                }
            }
        }
        let remote = match statement_target(&lexed) {
            // A write runs where its target is.
            Some(target) => match analyze::split_qualified(&target).as_slice() {
                [qualifier, _, ..] => self.cloud_database(qualifier).is_some(),
                _ => self.current_cloud.is_some(),
            },
            None => self.mentions_cloud(text) || self.current_cloud.is_some(),
        };
        if remote {
            // A cloud statement that is not a query may change a table: schemas learned for
            // join groups are learned again.
            self.cloud_schemas.clear();
            let sql = self.rewrite_cloud_names_mapped(text);
            let before = self.link.moved();
            let cloud = self.cloud_client("this statement")?;
            let info_less = cloud.query_with_schema(&sql.sql).await;
            let (schema, batches) = info_less.map_err(|e| sql.user_error(text, e))?;
            return Ok(Outcome {
                schema,
                batches,
                venue: Venue::Remote,
                bytes_moved: self.link.moved() - before,
                planning_bytes: 0,
                plan: None,
                is_query: returns_rows(&sql.sql),
            });
        }
        self.run_local(text)
    }

    /// A write whose query reads the other side: the query runs by dual execution, its result
    /// goes to a temporary table on the target's side, and the write reads that.
    async fn write_across(
        &mut self,
        write: &WriteQuery,
        shape: &QueryShape,
        target_side: Side,
    ) -> Result<Outcome, ClientError> {
        let result = Box::pin(self.run_query(&write.query, shape, Finish::Collect)).await?;
        let temp = "__pond_result";
        let statement = format!("{} SELECT * FROM {}", write.prefix, pond_planner::temp_name(temp));
        if target_side == Side::Local {
            let r = self
                .local
                .load_temp(temp, &result.schema, &result.batches)
                .and_then(|_| self.local.execute(&self.rewrite_cloud_names(&statement)));
            self.local.drop_temp(temp);
            r?;
            return Ok(Outcome::client(format!("{} rows", result.num_rows())));
        }
        let rows = result.num_rows();
        let cloud = self.cloud_client("a write to the cloud")?;
        cloud.upload_temp(temp, result.schema, result.batches).await?;
        let statement = self.rewrite_cloud_names(&statement);
        let cloud = self.cloud_client("a write to the cloud")?;
        let r = cloud.execute(&statement).await;
        let _ = cloud
            .execute(&format!("DROP TABLE IF EXISTS {}", pond_planner::temp_name(temp)))
            .await;
        r?;
        Ok(Outcome::client(format!("{rows} rows")))
    }

    /// Whether `text` names an attached cloud alias as a qualifier (`alias.`).
    fn mentions_cloud(&self, text: &str) -> bool {
        Lexed::new(text)
            .qualifiers()
            .iter()
            .any(|(q, _)| self.cloud_database(q).is_some())
    }

    /// Rewrites `alias.` qualifiers to the cloud's database names.
    fn rewrite_cloud_names(&self, text: &str) -> String {
        self.rewrite_cloud_names_mapped(text).sql
    }

    pub(super) fn rewrite_cloud_names_mapped(&self, text: &str) -> Spliced {
        let edits = Lexed::new(text)
            .qualifiers()
            .into_iter()
            .filter_map(|(q, span)| {
                let db = self.cloud_database(&q)?;
                (db != q).then(|| (span, quote_ident(&db)))
            })
            .collect();
        splice_mapped(text, edits)
    }
}

/// Readers without a `pond_run` override go with the query: remote in a query that reads
/// only cloud tables, local otherwise.
pub(super) fn assign_sides(mut rels: Vec<Rel>) -> Vec<Rel> {
    let has_remote = rels.iter().any(|r| r.side == Side::Remote);
    let has_local = rels.iter().any(|r| r.side == Side::Local);
    let unassigned = if has_remote && !has_local {
        Side::Remote
    } else {
        Side::Local
    };
    for r in &mut rels {
        if r.side == Side::Unspecified {
            r.side = unassigned;
        }
    }
    rels
}

pub(super) fn with_alias(name: &str, alias: &Option<String>) -> String {
    match alias {
        Some(a) => format!("{name} AS {a}"),
        None => name.to_string(),
    }
}

/// What a DDL/DML statement may create, drop or alter, after `CREATE` / `DROP` / `ALTER`.
const OBJECT_KINDS: &[&str] = &[
    "table", "view", "schema", "sequence", "macro", "function", "index", "type",
];

/// The table, view or other object a DDL/DML statement writes, as written.
fn statement_target(lexed: &Lexed<'_>) -> Option<String> {
    let keyword = match lexed.first_word()? {
        "insert" => lexed.find_word("into", 0)?,
        "update" => lexed.find_word("update", 0)?,
        "delete" => lexed.find_word("from", 0)?,
        "create" | "drop" | "alter" | "truncate" => lexed
            .tokens
            .iter()
            .position(|t| matches!(&t.kind, TokenKind::Word(w) if OBJECT_KINDS.contains(&w.as_str())))?,
        _ => return None,
    };
    let mut at = keyword + 1;
    for skip in [&["if", "not", "exists"][..], &["if", "exists"], &["only"]] {
        if skip.iter().enumerate().all(|(i, w)| lexed.is_word(at + i, w)) {
            at += skip.len();
        }
    }
    let end = lexed.qualified_name_end(at)?;
    Some(lexed.text_of(at, end).to_string())
}

/// Splits `CREATE [OR REPLACE] [TEMP] TABLE name AS query` and `INSERT INTO name [(…)] query`.
fn split_write_query(lexed: &Lexed<'_>) -> Option<WriteQuery> {
    let w = lexed.words(6);
    let first = w.first().map(String::as_str);
    let is_ctas = first == Some("create") && w.iter().take(5).any(|x| x == "table");
    let is_insert = first == Some("insert");
    if !is_ctas && !is_insert {
        return None;
    }
    let keyword = lexed.find_word(if is_ctas { "table" } else { "into" }, 0)?;
    let mut at = keyword + 1;
    if ["if", "not", "exists"]
        .iter()
        .enumerate()
        .all(|(i, w)| lexed.is_word(at + i, w))
    {
        at += 3;
    }
    let name_end = lexed.qualified_name_end(at)?;
    let query_at = if is_ctas {
        if !lexed.is_word(name_end, "as") {
            return None;
        }
        lexed.tokens[name_end].span.end
    } else {
        let mut query = name_end;
        if lexed.is_punct(query, '(') {
            query = lexed.parenthesized_end(query)?;
        }
        let starts_query =
            ["select", "with", "from"].iter().any(|w| lexed.is_word(query, w)) || lexed.is_punct(query, '(');
        if !starts_query {
            return None;
        }
        lexed.tokens[query].span.start
    };
    Some(WriteQuery {
        prefix: lexed.text[..query_at].to_string(),
        target: lexed.text_of(at, name_end).to_string(),
        qualified: name_end > at + 1,
        query: lexed.text[query_at..].trim().to_string(),
    })
}

/// URL schemes DuckDB's httpfs reads: data there is as near the cloud as the laptop, usually
/// nearer, so a reader of such a path runs in the cloud unless told otherwise.
const REMOTE_SCHEMES: &[&str] = &[
    "s3://", "s3a://", "s3n://", "r2://", "gcs://", "gs://", "http://", "https://",
];

/// Whether `path` is a remote URL (see [`REMOTE_SCHEMES`]).
fn is_remote_url(path: &str) -> bool {
    let lower = path.trim_start().to_ascii_lowercase();
    REMOTE_SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Option<(String, String, String)> {
        split_write_query(&Lexed::new(sql)).map(|w| (w.prefix, w.target, w.query))
    }

    fn target(sql: &str) -> Option<String> {
        statement_target(&Lexed::new(sql))
    }

    #[test]
    fn splits_writes_that_carry_a_query() {
        let (prefix, target, query) = split("CREATE OR REPLACE TABLE t2 AS SELECT * FROM c.t").unwrap();
        assert_eq!(
            (prefix.as_str(), target.as_str(), query.as_str()),
            ("CREATE OR REPLACE TABLE t2 AS", "t2", "SELECT * FROM c.t")
        );
        let (prefix, target, query) = split("insert into cloud.main.t (a, b) select 1, 2").unwrap();
        assert_eq!(target, "cloud.main.t");
        assert_eq!(prefix, "insert into cloud.main.t (a, b) ");
        assert_eq!(query, "select 1, 2");
        assert!(split("insert into t values (1)").is_none());
        assert!(split("create table t (a int)").is_none());
        assert!(
            split_write_query(&Lexed::new("insert into c.t select 1"))
                .unwrap()
                .qualified
        );
        assert!(
            !split_write_query(&Lexed::new(r#"insert into "c.t" select 1"#))
                .unwrap()
                .qualified
        );
    }

    #[test]
    fn finds_the_target_of_writes() {
        assert_eq!(
            target("DELETE FROM orders USING sales WHERE orders.id = sales.oid").unwrap(),
            "orders"
        );
        assert_eq!(target("insert into cloud.main.t select 1").unwrap(), "cloud.main.t");
        assert_eq!(
            target("CREATE OR REPLACE TABLE IF NOT EXISTS c.t AS SELECT 1").unwrap(),
            "c.t"
        );
        assert_eq!(target("update \"my db\".t set a = 1").unwrap(), "\"my db\".t");
        assert_eq!(target("SHOW TABLES"), None);
        // Keywords in names, strings and comments are not keywords.
        assert_eq!(target("CREATE VIEW v AS SELECT 'table x' FROM my_table").unwrap(), "v");
        assert_eq!(
            target("CREATE /* table x */ VIEW \"table\" AS SELECT 1").unwrap(),
            "\"table\""
        );
    }
}
