//! Dual execution: a local DuckDB with the cloud attached, running each statement where its
//! data lives.
//!
//! A statement's relations are found with DuckDB's own parser ([`crate::analyze`]) and each is
//! given a side: a name qualified by an attached cloud alias is remote, anything else local
//! (unless `USE` made a cloud database current). Then:
//! - only local relations: the statement runs in the local DuckDB and nothing is sent;
//! - only cloud relations: it runs on the user's duckling, names rewritten to the cloud's;
//! - both: relations become placeholders, the coordinator's cost model returns a plan
//!   (`pond.dual.v1.Plan`), bridges move reduced relations into temporary tables (downloads
//!   are Flight streams appended through the Arrow interface; uploads are ingests into
//!   session-scoped temporary tables), and the query runs on the chosen side.
//!
//! The rooms: `session.rs` (client commands: `ATTACH 'pond:'`, `DETACH`, `USE`, `SET pond_run`,
//! `SHOW DATABASES`), `routing.rs` (each relation's side, and where DDL and DML run),
//! `plan.rs` (the coordinator's plan, checked, and its bridges), `explain.rs` (`EXPLAIN
//! [ANALYZE]`), `copy.rs` (`CREATE DATABASE … FROM 'file'`, `COPY FROM DATABASE`), and
//! `user_error.rs` (DuckDB's errors pointed back into the user's text). Statements are read
//! through the workspace's one lexer ([`crate::sql_words`]), never by substring.
//!
//! Invariants:
//! - The SQL that runs is the user's text with relation names spliced in at the offsets
//!   DuckDB reported, never a re-rendering, so DuckDB semantics are kept on both sides.
//! - Every temporary table a statement creates is dropped when it ends, on success or error.
//! - `SET pond_run` and per-scan `pond_run := …` (alias `md_run`) only move work; they never
//!   change a result.

mod copy;
mod explain;
mod join_groups;
mod link_estimate;
mod plan;
mod routing;
mod session;
mod stream;
mod user_error;
mod values;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use pond_duckdb::lexer::TokenKind;
use pond_proto::dual::Plan;
use tracing::Instrument;

pub use stream::DualStream;
use stream::{Deferred, Finish};

use crate::local::LocalDb;
use crate::sql_words::{self, Lexed};
use crate::{ClientError, ConnectOptions, Link, PondClient};

/// Where queries run: `SET pond_run = 'auto' | 'local' | 'remote'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    #[default]
    Auto,
    Local,
    Remote,
}

impl RunMode {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().trim_matches('\'').to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "local" => Some(Self::Local),
            "remote" => Some(Self::Remote),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }
}

/// Where a statement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    /// The client itself (session commands such as `ATTACH 'pond:'`).
    Client,
    Local,
    Remote,
    /// Split between the two by a plan.
    Dual,
}

/// The result of one statement.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub venue: Venue,
    /// Bytes that crossed the network (both directions), as counted by the link.
    pub bytes_moved: u64,
    /// Of `bytes_moved`, what planning a dual statement cost: probing the link, the plan's
    /// request (with the local statistics) and its reply. The rest is data and its queries.
    pub planning_bytes: u64,
    /// The plan, for dual statements.
    pub plan: Option<Plan>,
    /// Whether the statement is one whose rows a shell shows (a query, `EXPLAIN`, `SHOW`…),
    /// as opposed to DDL, DML and session commands, whose change counts DuckDB's CLI hides.
    pub is_query: bool,
}

impl Outcome {
    fn client(message: impl Into<String>) -> Self {
        let schema = Arc::new(Schema::new(vec![Field::new("Success", DataType::Utf8, false)]));
        let column = Arc::new(StringArray::from(vec![message.into()]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).expect("one text column");
        Self {
            schema,
            batches: vec![batch],
            venue: Venue::Client,
            bytes_moved: 0,
            planning_bytes: 0,
            plan: None,
            is_query: false,
        }
    }

    fn lines(venue: Venue, name: &str, text: &str, plan: Option<Plan>) -> Self {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
        let column = Arc::new(StringArray::from(text.lines().map(str::to_string).collect::<Vec<_>>()));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).expect("one text column");
        Self {
            schema,
            batches: vec![batch],
            venue,
            bytes_moved: 0,
            planning_bytes: 0,
            plan,
            is_query: true,
        }
    }

    /// Rows in the result.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Progress of a long transfer, for progress bars.
#[derive(Debug, Clone)]
pub struct Progress {
    pub what: String,
    pub rows: u64,
    pub done: bool,
}

type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A local DuckDB with cloud databases attached.
///
/// ```no_run
/// # async fn example() -> Result<(), pond_client::ClientError> {
/// use pond_client::{ConnectOptions, DualSession, Venue};
/// let server = ConnectOptions::parse("pond://127.0.0.1:31337?token=…")?;
/// let mut session = DualSession::open(None, Some(server)).await?;
/// session.run("ATTACH 'pond:'").await?;
/// session.run("CREATE TABLE regions AS SELECT * FROM (VALUES (1, 'north'), (2, 'south')) r(id, name)").await?;
/// // `regions` is local, `my_db.main.orders` is in the cloud: the coordinator's cost model
/// // decides what crosses the network.
/// let outcome = session
///     .run("SELECT r.name, sum(o.amount) FROM regions r JOIN my_db.main.orders o ON o.region = r.id GROUP BY r.name")
///     .await?;
/// assert_eq!(outcome.venue, Venue::Dual);
/// println!("{} bytes moved", outcome.bytes_moved);
/// # Ok(()) }
/// ```
pub struct DualSession {
    local: LocalDb,
    cloud: Option<PondClient>,
    /// Attached cloud databases: alias → database name on the server.
    attached: BTreeMap<String, String>,
    run: RunMode,
    /// The attached alias `USE` made current, if a cloud one.
    current_cloud: Option<String>,
    link: Arc<Link>,
    progress: Option<ProgressSink>,
    /// Plans with fragments that failed and ran again as a whole query.
    fragment_fallbacks: u64,
    /// Whether single-side subqueries may run where their data lives (see `pond-planner`).
    split_subqueries: bool,
    /// The link as probed and observed (`link_estimate.rs`).
    measured_link: Option<link_estimate::MeasuredLink>,
    /// Cloud relations' schemas, by their quoted names, as join groups needed them.
    cloud_schemas: std::collections::HashMap<String, SchemaRef>,
    /// Local tables' statistics, by the text that names them, measured once until a local
    /// statement that is not a query might change them (`plan.rs`).
    local_statistics: std::collections::HashMap<String, pond_planner::TableStatistics>,
    /// Cloud tables' statistics, by their quoted names, as the coordinator last measured them,
    /// and when they were learned (`plan.rs`).
    cloud_statistics: std::collections::HashMap<String, (pond_planner::TableStatistics, std::time::Instant)>,
    /// The local DuckDB's functions by kind, read once until such a statement (`join_groups.rs`).
    function_kinds: Option<Arc<BTreeMap<String, join_groups::FunctionKind>>>,
    /// Tests' forced splits: every plan takes as many fragments as it can, whatever they cost.
    prefer_fragments: bool,
    /// How the statement running now hands its final query's rows over (`stream.rs`).
    finish: Finish,
    /// Its final query, left for [`DualSession::query_stream`] to read.
    deferred: Option<Deferred>,
    /// The temporary tables its plan made so far (`plan.rs`).
    temps: plan::Temps,
    /// Remote temporary tables of streams dropped before their end, dropped at the next
    /// statement.
    abandoned_remote_temps: Vec<String>,
}

impl DualSession {
    /// Opens a local DuckDB (`path`, or in memory) and, with `server`, connects to Pond.
    pub async fn open(path: Option<&Path>, server: Option<ConnectOptions>) -> Result<Self, ClientError> {
        Self::open_over(path, server, Link::unlimited()).await
    }

    /// [`DualSession::open`] over a given link (to meter or throttle the network).
    pub async fn open_over(
        path: Option<&Path>,
        server: Option<ConnectOptions>,
        link: Arc<Link>,
    ) -> Result<Self, ClientError> {
        let local = LocalDb::open(path)?;
        let cloud = match server {
            Some(options) => Some(PondClient::connect_over(options, Arc::clone(&link)).await?),
            None => None,
        };
        Ok(Self {
            local,
            cloud,
            attached: BTreeMap::new(),
            run: RunMode::Auto,
            current_cloud: None,
            link,
            progress: None,
            fragment_fallbacks: 0,
            split_subqueries: true,
            measured_link: None,
            cloud_schemas: Default::default(),
            local_statistics: Default::default(),
            cloud_statistics: Default::default(),
            function_kinds: None,
            prefer_fragments: false,
            finish: Finish::Collect,
            deferred: None,
            temps: Default::default(),
            abandoned_remote_temps: Vec::new(),
        })
    }

    /// Lets single-side subqueries run where their data lives (the default), or plans every
    /// mixed query whole, as a comparison.
    pub fn set_split_subqueries(&mut self, on: bool) {
        self.split_subqueries = on;
    }

    /// Makes every mixed query take as many fragments as its plan can, whatever they cost (and
    /// aggregate join groups early wherever they can): tests use it to check each split's
    /// answer, not only the ones the cost model picks.
    pub fn set_prefer_fragments(&mut self, on: bool) {
        self.prefer_fragments = on;
    }

    /// How many plans with fragments failed and ran again as a whole query: each is a query
    /// the cost model split in a way DuckDB did not accept.
    pub fn fragment_fallbacks(&self) -> u64 {
        self.fragment_fallbacks
    }

    /// Reports transfers (uploads, copies) to `sink`.
    pub fn on_progress(&mut self, sink: impl Fn(&Progress) + Send + Sync + 'static) {
        self.progress = Some(Arc::new(sink));
    }

    /// The local database. A table changed through it directly keeps the statistics dual
    /// execution measured before, until this session runs a statement that is not a query.
    pub fn local(&self) -> &LocalDb {
        &self.local
    }

    /// The server connection, if any. A table changed through it directly keeps the statistics
    /// the session kept of it, as another session's change does (see `plan.rs`), until this
    /// session runs a statement that is not a query.
    pub fn cloud(&mut self) -> Option<&mut PondClient> {
        self.cloud.as_mut()
    }

    /// Attached cloud databases, alias → server name.
    pub fn attached(&self) -> &BTreeMap<String, String> {
        &self.attached
    }

    /// The current `pond_run` mode.
    pub fn run_mode(&self) -> RunMode {
        self.run
    }

    /// The link's counters.
    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    fn cloud_client(&mut self, what: &str) -> Result<&mut PondClient, ClientError> {
        self.cloud.as_mut().ok_or_else(|| {
            ClientError::NotConnected(format!("{what} needs a server (--server and --token, or POND_TOKEN)"))
        })
    }

    fn report(&self, what: &str, rows: u64, done: bool) {
        if let Some(sink) = &self.progress {
            sink(&Progress {
                what: what.to_string(),
                rows,
                done,
            });
        }
    }

    /// Runs a script: every statement in order, stopping at the first error.
    pub async fn run_script(&mut self, script: &str) -> Result<Vec<Outcome>, ClientError> {
        let mut out = Vec::new();
        for statement in sql_words::split_statements(script) {
            out.push(self.run(&statement).await?);
        }
        Ok(out)
    }

    /// Runs one statement, in a trace span of its own (exported with `--otlp-endpoint`; the
    /// server's spans for it join the same trace).
    pub async fn run(&mut self, sql: &str) -> Result<Outcome, ClientError> {
        self.run_finishing(sql, Finish::Collect).await
    }

    /// [`Self::run`], its final query's rows handed over as `finish` says. Set anew for each
    /// statement, and what a cancelled `query_stream` left behind is let go first.
    async fn run_finishing(&mut self, sql: &str, finish: Finish) -> Result<Outcome, ClientError> {
        self.finish = finish;
        self.abandon_leftovers();
        self.drop_abandoned_temps().await;
        let text = sql_words::statement_text(sql);
        let span = tracing::info_span!(
            target: "pond_trace",
            "client.statement",
            otel.name = "pond.client",
            db.system.name = "duckdb",
            db.query.text = %pond_duckdb::lexer::without_literals(text).unwrap_or_else(|| "?".into()),
            pond.venue = tracing::field::Empty,
            pond.bytes_moved = tracing::field::Empty,
        );
        let outcome = self.run_statement_kind(text).instrument(span.clone()).await;
        if let Ok(o) = &outcome {
            span.record("pond.venue", format!("{:?}", o.venue));
            span.record("pond.bytes_moved", o.bytes_moved as i64);
        }
        outcome
    }

    async fn run_statement_kind(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let lexed = Lexed::new(text);
        let w = lexed.words(8);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        let outcome = self.run_statement_words(text, &lexed, &w).await;
        // Forgotten after the statement ran (also when it failed part way): a write whose
        // query was planned first measured the tables as they were before it.
        if !only_reads(&lexed, &w) {
            self.tables_changed();
        }
        outcome
    }

    async fn run_statement_words(&mut self, text: &str, lexed: &Lexed<'_>, w: &[&str]) -> Result<Outcome, ClientError> {
        match w {
            ["attach", ..] if is_pond_path(lexed) => self.attach(lexed).await,
            ["detach", ..] => self.detach(lexed).await,
            ["set" | "reset", ..] if w.iter().any(|x| matches!(*x, "pond_run" | "md_run")) => self.set_run_mode(lexed),
            ["use", ..] => self.use_database(lexed).await,
            ["explain", "analyze", ..] if lexed.starts_with(&["explain", "analyze"]) => {
                self.explain(text, lexed.rest_from(2), true).await
            }
            ["explain", ..] if lexed.starts_with(&["explain"]) && !lexed.is_punct(1, '(') => {
                self.explain(text, lexed.rest_from(1), false).await
            }
            ["create", "database", ..] if uploads_local(lexed) => self.upload_database(lexed).await,
            ["copy", "from", "database", ..] => self.copy_database(lexed).await,
            ["show", "databases"] => self.show_databases(),
            // Pond's views of the user's cloud: only the server has them.
            _ if lexed.find_word("pond_information_schema", 0).is_some() => self.run_remote(text).await,
            _ if server_only(w) => {
                let outcome = self.run_remote(text).await?;
                if matches!(w, ["create" | "drop" | "undrop", "database", ..]) {
                    self.follow_cloud_databases(lexed).await?;
                }
                Ok(outcome)
            }
            _ => self.run_statement(text).await,
        }
    }

    fn run_local(&self, sql: &str) -> Result<Outcome, ClientError> {
        let (schema, batches) = self.local.query(sql)?;
        Ok(Outcome {
            schema,
            batches,
            venue: Venue::Local,
            bytes_moved: 0,
            planning_bytes: 0,
            plan: None,
            is_query: returns_rows(sql),
        })
    }

    async fn run_remote(&mut self, sql: &str) -> Result<Outcome, ClientError> {
        let before = self.link.moved();
        let cloud = self.cloud_client("this statement")?;
        let (schema, batches) = cloud.query_with_schema(sql).await?;
        Ok(Outcome {
            schema,
            batches,
            venue: Venue::Remote,
            bytes_moved: self.link.moved() - before,
            planning_bytes: 0,
            plan: None,
            is_query: returns_rows(sql),
        })
    }

    /// Runs a query and collects its batches.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>, ClientError> {
        Ok(self.run(sql).await?.batches)
    }
}

/// Whether DuckDB's CLI would show this statement's rows: not for DDL, DML and session
/// commands, which answer with a change count; yes for Pond's statements that answer with a
/// value (a share's URL, a snapshot's id).
fn returns_rows(sql: &str) -> bool {
    let lexed = Lexed::new(sql);
    let w = lexed.words(4);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    if matches!(
        w.as_slice(),
        ["create", "share", ..] | ["create", "or", "replace", "share"] | ["create", "snapshot", ..]
    ) {
        return true;
    }
    !matches!(
        lexed.first_word(),
        Some(
            "insert"
                | "update"
                | "delete"
                | "create"
                | "drop"
                | "alter"
                | "copy"
                | "attach"
                | "detach"
                | "use"
                | "set"
                | "reset"
                | "begin"
                | "commit"
                | "rollback"
                | "abort"
                | "checkpoint"
                | "vacuum"
                | "load"
                | "install"
                | "export"
                | "import"
                | "truncate"
                | "comment"
                | "merge"
                | "start"
                | "end"
                | "grant"
                | "revoke"
                | "refresh"
                | "update_share"
                | "shutdown"
        )
    )
}

/// Whether the statement's first string is a `pond:` (or `md:`) path.
fn is_pond_path(lexed: &Lexed<'_>) -> bool {
    lexed
        .first_string()
        .and_then(|at| lexed.string_value(at))
        .is_some_and(|p| p.starts_with("pond:") || p.starts_with("md:"))
}

/// `CREATE DATABASE d FROM 'file'` / `FROM CURRENT_DATABASE()`, as opposed to a cloud clone.
fn uploads_local(lexed: &Lexed<'_>) -> bool {
    lexed.find_word("from", 0).is_some_and(|at| {
        lexed
            .tokens
            .get(at + 1)
            .is_some_and(|t| t.kind == TokenKind::String || t.is_word("current_database"))
    })
}

/// Pond's own statements, which only the server understands.
fn server_only(w: &[&str]) -> bool {
    matches!(
        w,
        ["create" | "drop", "database", ..]
            | ["create", "snapshot", ..]
            | ["create", "share", ..]
            | ["create", "or", "replace", "share", ..]
            | ["alter", "database", ..]
            | ["refresh", "database", ..]
            | ["update", "share", ..]
            | ["grant" | "revoke", ..]
            | ["drop", "share", ..]
            | ["shutdown"]
    ) || (matches!(w, ["create", ..]) && w.contains(&"secret") && w.contains(&"pond"))
        || (matches!(w, ["create", "persistent", "secret", ..])
            || matches!(w, ["create", "or", "replace", "persistent", ..]))
        || w.iter()
            .any(|x| matches!(*x, "pond_interrupt" | "pond_active_connections"))
}

/// Whether a statement only reads, so that tables' statistics outlive it. Anything else (a
/// `SET` that may change what a name refers to) counts as a possible write. `EXPLAIN ANALYZE`
/// runs its statement: it reads when that statement does. `WITH` reads unless a write keyword
/// follows it anywhere; `SET pond_run` only moves work.
fn only_reads(lexed: &Lexed<'_>, words: &[&str]) -> bool {
    const WRITES: [&str; 10] = [
        "insert", "update", "delete", "merge", "copy", "create", "drop", "alter", "attach", "detach",
    ];
    match words {
        ["explain", "analyze", rest @ ..] => !rest.is_empty() && only_reads(lexed, rest),
        ["explain", rest @ ..] => rest.first().is_none_or(|w| only_reads(lexed, &[w])),
        ["with", ..] => WRITES.iter().all(|w| lexed.find_word(w, 0).is_none()),
        ["set" | "reset", ..] => words.iter().any(|x| matches!(*x, "pond_run" | "md_run")),
        [first, ..] => matches!(
            *first,
            "select" | "from" | "values" | "table" | "show" | "describe" | "summarize"
        ),
        [] => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_keep_the_statistics() {
        let reads = |sql: &str| {
            let lexed = Lexed::new(sql);
            let w = lexed.words(8);
            only_reads(&lexed, &w.iter().map(String::as_str).collect::<Vec<_>>())
        };
        for read in [
            "SELECT 1",
            "FROM t",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "",
            "WITH x AS (SELECT 1 AS updated) SELECT * FROM x",
            "SET pond_run = 'local'",
            "RESET md_run",
            "EXPLAIN ANALYZE SELECT 1",
            "EXPLAIN ANALYZE FROM t",
        ] {
            assert!(reads(read), "{read}");
        }
        for write in [
            "INSERT INTO t VALUES (1)",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "WITH x AS (SELECT 1) DELETE FROM t",
            "CREATE TABLE t (i INT)",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            "EXPLAIN ANALYZE WITH x AS (SELECT 1) DELETE FROM t",
            "EXPLAIN ANALYZE",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "SET search_path = 'other'",
        ] {
            assert!(!reads(write), "{write}");
        }
    }

    fn words(sql: &str) -> Vec<String> {
        Lexed::new(sql).words(8)
    }

    fn server_only_text(sql: &str) -> bool {
        server_only(&words(sql).iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn recognises_pond_statements() {
        assert!(server_only_text("CREATE DATABASE x"));
        assert!(server_only_text("create secret s in pond (type s3)"));
        assert!(server_only_text("SELECT * FROM pond_active_connections()"));
        assert!(!server_only_text("create secret s (type s3)"));
        assert!(!server_only_text("select 1"));
        let uploads = |sql: &str| uploads_local(&Lexed::new(sql));
        assert!(uploads("CREATE DATABASE d FROM 'x.duckdb'"));
        assert!(uploads("create database d from current_database()"));
        assert!(!uploads("CREATE DATABASE d FROM src"));
    }

    /// Where the hand-written scanner this replaced misread DuckDB's quoting.
    #[test]
    fn decisions_follow_duckdbs_quoting() {
        let text = |sql| sql_words::statement_text(sql);
        // Block comments nest: all of this comment is skipped, none of it is a statement.
        assert!(!server_only_text(text("/* /* */ create database x */ select 1")));
        assert!(returns_rows(text("/* /* */ insert */ select 1")));
        assert!(returns_rows(text("CREATE OR REPLACE SHARE s")) && returns_rows(text("create snapshot of d")));
        assert!(!returns_rows(text("create table share (i int)")));
        // Words inside strings are not keywords or names.
        assert!(!server_only_text("SELECT * FROM t WHERE x = 'pond_interrupt'"));
        assert!(!server_only_text("SELECT $$shutdown$$"));
        // Every kind of DuckDB string is a path.
        assert!(is_pond_path(&Lexed::new("ATTACH $$pond:my_db$$")));
        assert!(is_pond_path(&Lexed::new("ATTACH E'pond:my_db'")));
        assert!(!is_pond_path(&Lexed::new("ATTACH 'x.duckdb' /* 'pond:' */")));
        assert!(uploads_local(&Lexed::new("CREATE DATABASE d FROM E'x\\y.duckdb'")));
        assert!(uploads_local(&Lexed::new("CREATE DATABASE d FROM $$x.duckdb$$")));
        assert!(!uploads_local(&Lexed::new("CREATE DATABASE d /* from 'x' */ FROM src")));
    }

    #[test]
    fn keywords_are_matched_as_tokens() {
        let lexed = Lexed::new("EXPLAIN   ANALYZE SELECT 1");
        assert!(lexed.starts_with(&["explain", "analyze"]));
        assert_eq!(lexed.rest_from(2), "SELECT 1");
        let lexed = Lexed::new("explain /*é*/ select 1");
        assert!(!lexed.starts_with(&["explain", "analyze"]));
        assert_eq!(lexed.rest_from(1), "select 1");
        assert!(!Lexed::new("explainx").starts_with(&["explain"]));
        assert!(Lexed::new("EXPLAIN (FORMAT json) SELECT 1").is_punct(1, '('));
    }
}
