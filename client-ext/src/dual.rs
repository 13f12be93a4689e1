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
//! Invariants:
//! - The SQL that runs is the user's text with relation names spliced in at the offsets
//!   DuckDB reported, never a re-rendering, so DuckDB semantics are kept on both sides.
//! - Every temporary table a statement creates is dropped when it ends, on success or error.
//! - `SET pond_run` and per-scan `pond_run := …` (alias `md_run`) only move work; they never
//!   change a result.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use pond_duckling::engine::{quote_ident, quote_literal};
use pond_proto::dual::{Plan, PlanRequest, Relation, Side};

use crate::analyze::{self, AnalyzeError, QueryShape, strip_comments};
use crate::local::LocalDb;
use crate::{ClientError, ConnectOptions, IngestTarget, Link, PondClient};

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
struct Rel {
    side: Side,
    /// SQL that reads it on its side.
    source: String,
    /// Byte range in the statement that the placeholder replaces.
    span: (usize, usize),
    /// Appended after the placeholder so the relation keeps the name the query uses.
    alias: Option<String>,
}

/// What running a dual plan measured, for `EXPLAIN ANALYZE`.
#[derive(Debug, Default)]
struct Measured {
    bridges: Vec<(String, u64, u64, Duration)>,
    local_time: Duration,
    remote_time: Duration,
    result_bytes: u64,
}

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
}

/// Placeholder names are fixed-width so no one is a prefix of another.
fn placeholder(i: usize) -> String {
    format!("__pond_ref_{i:03}")
}

/// The statement's first words, lower-cased, for dispatch.
fn words(sql: &str, n: usize) -> Vec<String> {
    strip_comments(sql)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// `text` after the keywords `kws` (case-insensitive, separated by whitespace), if it starts
/// with them.
fn after_keywords<'t>(text: &'t str, kws: &[&str]) -> Option<&'t str> {
    let mut rest = strip_comments(text);
    for kw in kws {
        let head = rest.get(..kw.len())?;
        if !head.eq_ignore_ascii_case(kw) {
            return None;
        }
        rest = &rest[kw.len()..];
        if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            return None;
        }
        rest = rest.trim_start();
    }
    Some(rest)
}

/// The first single-quoted string literal of `sql`, unescaped.
fn first_string_literal(sql: &str) -> Option<(String, usize)> {
    let start = sql.find('\'')?;
    let bytes = sql.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            return Some((out, i + 1));
        }
        let ch = sql[i..].chars().next()?;
        out.push(ch);
        i += ch.len_utf8();
    }
    None
}

/// A bare or quoted identifier at the start of `text`, unquoted, and the rest.
fn take_identifier(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    if let Some(body) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some((out, &body[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        return None;
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_string(), &text[end..]))
}

/// Replaces byte ranges of `sql`; an edit that overlaps an earlier one (by start) is dropped.
fn splice(sql: &str, edits: Vec<((usize, usize), String)>) -> String {
    splice_mapped(sql, edits).sql
}

/// [`splice`], remembering where each edit went so DuckDB's errors can point into the user's
/// text.
fn splice_mapped(sql: &str, mut edits: Vec<((usize, usize), String)>) -> Spliced {
    edits.sort_by_key(|e| e.0.0);
    let mut out = String::with_capacity(sql.len());
    let mut applied = Vec::with_capacity(edits.len());
    let mut at = 0;
    for ((start, end), text) in edits {
        if start < at || end > sql.len() || !sql.is_char_boundary(start) || !sql.is_char_boundary(end) {
            continue;
        }
        out.push_str(&sql[at..start]);
        let spliced_start = out.len();
        out.push_str(&text);
        applied.push(((start, end), (spliced_start, out.len())));
        at = end;
    }
    out.push_str(&sql[at..]);
    Spliced {
        sql: out,
        edits: applied,
    }
}

/// A statement as it runs once Pond spliced names into the user's text.
#[derive(Debug)]
struct Spliced {
    sql: String,
    /// Each applied edit in order: its byte range in the user's text, then in `sql`.
    edits: Vec<((usize, usize), (usize, usize))>,
}

impl Spliced {
    /// The byte of the user's text that byte `at` of `sql` came from; a byte of a spliced-in
    /// name maps to the start of the name the user wrote.
    fn user_offset(&self, at: usize) -> usize {
        let mut shift = 0isize;
        for &((user_start, user_end), (start, end)) in &self.edits {
            if at < start {
                break;
            }
            if at < end {
                return user_start;
            }
            shift = end as isize - user_end as isize;
        }
        at.saturating_add_signed(-shift)
    }

    /// `error` as the user's own text would have given it: DuckDB ends a message with the line
    /// of the statement it points at, and users should see what they typed there, not Pond's
    /// rewrite. The rest of the message is DuckDB's, untouched.
    fn user_error(&self, user: &str, error: ClientError) -> ClientError {
        if self.sql == user {
            return error;
        }
        match error {
            ClientError::Local(pond_duckling::DucklingError::Sql { kind, message }) => {
                ClientError::Local(pond_duckling::DucklingError::Sql {
                    kind,
                    message: self.user_message(user, &message),
                })
            }
            ClientError::Server(status) => ClientError::Server(tonic::Status::with_details_and_metadata(
                status.code(),
                self.user_message(user, status.message()),
                status.details().to_vec().into(),
                status.metadata().clone(),
            )),
            other => other,
        }
    }

    /// DuckDB's `message` about `sql`, its pointer (`LINE n: …` and a caret) moved to the same
    /// place in `user`. A pointer that cannot be placed is dropped rather than shown on the
    /// rewritten text.
    fn user_message(&self, user: &str, message: &str) -> String {
        let Some(cut) = message.rfind("\n\nLINE ") else {
            return message.to_string();
        };
        let (body, pointer) = message.split_at(cut);
        let Some(number) = pointer["\n\nLINE ".len()..]
            .split_once(':')
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            return message.to_string();
        };
        let Some(line) = ErrorLine::numbered(&self.sql, number) else {
            return body.to_string();
        };
        let Some(at) = line.locate(pointer) else {
            tracing::debug!(%message, "could not place DuckDB's pointer in the statement that ran");
            return body.to_string();
        };
        let user_at = self.user_offset(at);
        match ErrorLine::at(user, user_at) {
            Some(line) => format!("{body}{}", line.pointer(line.cluster_of(user_at))),
            None => body.to_string(),
        }
    }
}

/// One line of a statement as DuckDB shows it under an error (`QueryErrorContext::Format`):
/// its grapheme clusters with their render widths, so a pointer can be drawn, or found.
struct ErrorLine<'q> {
    number: usize,
    /// Byte offset of the line in the statement.
    start: usize,
    text: &'q str,
    /// Each cluster's byte offset in `text`, render width, and whether DuckDB may cut the line
    /// there (a space or an operator character).
    clusters: Vec<(usize, usize, bool)>,
}

/// DuckDB shows at most this many columns on either side of the error.
const HALF_LINE_WIDTH: usize = 60;

impl<'q> ErrorLine<'q> {
    /// The line holding byte `at`, numbered as DuckDB numbers it.
    fn at(query: &'q str, at: usize) -> Option<Self> {
        if at >= query.len() {
            return None;
        }
        let bytes = query.as_bytes();
        let mut number = 1;
        let mut start = 0;
        for i in 0..at {
            let newline = match bytes[i] {
                b'\r' => i + 1 >= at || bytes[i + 1] != b'\n',
                b'\n' => true,
                _ => false,
            };
            if newline {
                number += 1;
                start = i + 1;
            }
        }
        let end = query[at..].find(['\n', '\r']).map_or(query.len(), |e| at + e);
        let text = query.get(start..end)?;
        Some(Self {
            number,
            start,
            text,
            clusters: clusters(text),
        })
    }

    /// Line `number` of `query`.
    fn numbered(query: &'q str, number: usize) -> Option<Self> {
        let bytes = query.as_bytes();
        let mut start = 0;
        let mut seen = 1;
        let mut i = 0;
        while seen < number {
            match bytes.get(i)? {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
                b'\r' | b'\n' => {
                    seen += 1;
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        // An empty last line holds no byte DuckDB could point at.
        if start >= query.len() {
            return None;
        }
        Self::at(query, start)
    }

    /// The cluster DuckDB points at for byte `at` of the statement.
    fn cluster_of(&self, at: usize) -> usize {
        let relative = at.saturating_sub(self.start);
        self.clusters.iter().position(|c| c.0 >= relative).unwrap_or(0)
    }

    /// The byte of the statement whose pointer DuckDB drew as `pointer`, if any.
    fn locate(&self, pointer: &str) -> Option<usize> {
        (0..self.clusters.len().max(1))
            .find(|&c| self.pointer(c) == pointer)
            .map(|c| self.start + self.clusters.get(c).map_or(0, |c| c.0))
    }

    /// DuckDB's pointer at cluster `error`: a blank line, the line (cut to about 120 columns
    /// around the error, marked with `...`), and a caret under the error.
    fn pointer(&self, error: usize) -> String {
        let width_of = |i: usize| self.clusters[i].1;
        let (mut from, mut to) = (0, self.text.len());
        let (mut first, mut cut_start, mut cut_end) = (0, false, false);
        let mut width = 0;
        let mut i = error;
        while i > 0 {
            width += width_of(i);
            if width >= HALF_LINE_WIDTH {
                let scan = i.saturating_sub(4)..(i + 4).min(error);
                if let Some(k) = scan.into_iter().find(|&k| self.clusters[k].2) {
                    i = k;
                }
                cut_start = true;
                from = self.clusters[i].0;
                first = i;
                break;
            }
            i -= 1;
        }
        width = 0;
        for mut i in error..self.clusters.len() {
            width += width_of(i);
            if width >= HALF_LINE_WIDTH {
                let scan = if i > error + 4 { i - 4 } else { error }..(i + 4).min(self.clusters.len());
                if let Some(k) = scan.into_iter().find(|&k| self.clusters[k].2) {
                    i = k;
                }
                cut_end = true;
                to = self.clusters[i].0;
                break;
            }
        }
        let indicator = format!("LINE {}: ", self.number);
        let dots = |cut: bool| if cut { "..." } else { "" };
        let caret = indicator.len() + dots(cut_start).len() + (first..error).map(width_of).sum::<usize>();
        format!(
            "\n\n{indicator}{}{}{}\n{}^",
            dots(cut_start),
            self.text.get(from..to).unwrap_or_default(),
            dots(cut_end),
            " ".repeat(caret)
        )
    }
}

/// The grapheme clusters of `line` as DuckDB's utf8proc sees them, approximately outside ASCII:
/// combining marks, joiners and variation selectors join the cluster before them; East Asian
/// wide characters and emoji are two columns; control characters none.
fn clusters(line: &str) -> Vec<(usize, usize, bool)> {
    let mut out: Vec<(usize, usize, bool)> = Vec::new();
    let mut joined = false;
    for (i, c) in line.char_indices() {
        let code = c as u32;
        let extends = matches!(code, 0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF
            | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0x200C..=0x200D | 0x1F3FB..=0x1F3FF | 0xE0100..=0xE01EF);
        if (extends || joined) && !out.is_empty() {
            joined = code == 0x200D;
            continue;
        }
        joined = false;
        let width = match code {
            0..=0x1F | 0x7F..=0x9F => 0,
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        };
        let cut = c.is_ascii()
            && (matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r') || (c.is_ascii_punctuation() && c != '_'));
        out.push((i, width, cut));
    }
    out
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
        })
    }

    /// Reports transfers (uploads, copies) to `sink`.
    pub fn on_progress(&mut self, sink: impl Fn(&Progress) + Send + Sync + 'static) {
        self.progress = Some(Arc::new(sink));
    }

    /// The local database.
    pub fn local(&self) -> &LocalDb {
        &self.local
    }

    /// The server connection, if any.
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
        for statement in analyze::split_statements(script) {
            out.push(self.run(&statement).await?);
        }
        Ok(out)
    }

    /// Runs one statement.
    pub async fn run(&mut self, sql: &str) -> Result<Outcome, ClientError> {
        let text = strip_comments(sql).trim().trim_end_matches(';').trim_end();
        let w = words(text, 8);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["attach", ..] if is_pond_path(text) => self.attach(text).await,
            ["detach", rest @ ..] => {
                let name = rest.iter().find(|x| !matches!(**x, "database" | "if" | "exists"));
                match name.map(|n| n.to_string()) {
                    Some(n) if self.attached.contains_key(&n) => {
                        self.attached.remove(&n);
                        if self.current_cloud.as_deref() == Some(n.as_str()) {
                            self.current_cloud = None;
                        }
                        Ok(Outcome::client(format!("detached {n}")))
                    }
                    _ => self.run_local(text),
                }
            }
            ["set" | "reset", ..] if w.iter().any(|x| matches!(*x, "pond_run" | "md_run")) => {
                self.run = if w[0] == "reset" {
                    RunMode::Auto
                } else {
                    run_setting(text)
                        .ok_or_else(|| ClientError::Invalid("pond_run must be 'auto', 'local' or 'remote'".into()))?
                };
                Ok(Outcome::client(format!("pond_run = '{}'", self.run.as_str())))
            }
            ["use", ..] => self.use_database(text).await,
            ["explain", "analyze", ..] if after_keywords(text, &["explain", "analyze"]).is_some() => {
                let query = after_keywords(text, &["explain", "analyze"])
                    .unwrap_or_default()
                    .to_string();
                self.explain(text, &query, true).await
            }
            ["explain", ..] if after_keywords(text, &["explain"]).is_some_and(|q| !q.starts_with('(')) => {
                let query = after_keywords(text, &["explain"]).unwrap_or_default().to_string();
                self.explain(text, &query, false).await
            }
            ["create", "database", ..] if uploads_local(text) => self.upload_database(text).await,
            ["copy", "from", "database", ..] => self.copy_database(text).await,
            ["show", "databases"] => self.show_databases(),
            _ if server_only(&w) => self.run_remote(text).await,
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
            plan: None,
            is_query: returns_rows(sql),
        })
    }

    async fn attach(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let (path, after) =
            first_string_literal(text).ok_or_else(|| ClientError::Invalid("ATTACH needs a 'pond:…' path".into()))?;
        let target = path
            .strip_prefix("pond:")
            .or_else(|| path.strip_prefix("md:"))
            .unwrap_or_default()
            .to_string();
        let rest = text[after..].trim_start();
        let (alias, options) = match rest.get(..2) {
            Some(a) if a.eq_ignore_ascii_case("as") && rest.len() > 2 => {
                let (alias, options) = take_identifier(&rest[2..])
                    .ok_or_else(|| ClientError::Invalid("ATTACH … AS needs a name".into()))?;
                (Some(alias), options.trim())
            }
            _ => (None, rest),
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
            let alias = alias.ok_or_else(|| ClientError::Invalid("this ATTACH needs AS <name>".into()))?;
            let statement = text.to_string();
            self.cloud_client("ATTACH")?.execute(&statement).await?;
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

    async fn use_database(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let after = after_keywords(text, &["use"]).ok_or_else(|| ClientError::Invalid("USE needs a name".into()))?;
        let (first, rest) = take_identifier(after).ok_or_else(|| ClientError::Invalid("USE needs a name".into()))?;
        let schema = rest
            .trim_start()
            .strip_prefix('.')
            .and_then(take_identifier)
            .map(|(s, _)| s);
        if let Some(database) = self.cloud_database(&first) {
            let mut statement = format!("USE {}", quote_ident(&database));
            if let Some(s) = &schema {
                statement += &format!(".{}", quote_ident(s));
            }
            self.cloud_client("USE")?.execute(&statement).await?;
            self.current_cloud = Some(first.to_lowercase());
            return Ok(Outcome::client(format!("using cloud database {first}")));
        }
        self.local.execute(text)?;
        self.current_cloud = None;
        Ok(Outcome::client(format!("using {first}")))
    }

    fn cloud_database(&self, alias: &str) -> Option<String> {
        self.attached
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(alias))
            .map(|(_, d)| d.clone())
    }

    fn show_databases(&self) -> Result<Outcome, ClientError> {
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
            plan: None,
            is_query: true,
        })
    }

    /// Any statement that is not a client command.
    async fn run_statement(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let json = self.local.serialize(text)?;
        match analyze::analyze(text, &json) {
            Ok(shape) => self.run_query(text, &shape).await,
            Err(AnalyzeError::NotAQuery(_)) => self.run_other(text).await,
            Err(AnalyzeError::Shape(reason)) => {
                tracing::debug!(%reason, "could not analyze; running locally");
                self.run_local(text)
            }
        }
    }

    /// Sides of a query's relations; `None` for a CTE reference.
    fn resolve(&self, sql: &str, shape: &QueryShape) -> Vec<Rel> {
        let mut rels = Vec::new();
        for t in &shape.tables {
            let unqualified = t.catalog.is_empty() && t.schema.is_empty();
            if unqualified && shape.ctes.contains(&t.table.to_lowercase()) {
                continue;
            }
            let cloud = if !t.catalog.is_empty() {
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
            };
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

    fn current_cloud_db(&self) -> Option<String> {
        self.current_cloud.as_deref().and_then(|a| self.cloud_database(a))
    }

    async fn run_query(&mut self, text: &str, shape: &QueryShape) -> Result<Outcome, ClientError> {
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
                let result = if side == Side::Local {
                    self.run_local(&sql.sql)
                } else {
                    self.run_remote(&sql.sql).await
                };
                result.map_err(|e| sql.user_error(text, e))
            }
            None => {
                let (outcome, _) = self.run_dual(text, shape, &rels).await?;
                Ok(outcome)
            }
        }
    }

    fn plan_request(&self, text: &str, shape: &QueryShape, rels: &[Rel]) -> Result<PlanRequest, ClientError> {
        let mut edits = Vec::new();
        let mut relations = Vec::new();
        for (i, r) in rels.iter().enumerate() {
            let name = placeholder(i);
            edits.push((r.span, with_alias(&name, &r.alias)));
            let statistics = if r.side == Side::Local {
                let schema = self.local.describe(&format!("SELECT * FROM {}", r.source))?;
                Some(pond_planner::statistics::collect(&r.source, &schema, |q| {
                    self.local.query(q).map(|(_, b)| b)
                })?)
            } else if pond_planner::statistics::parse_quoted_name(&r.source).is_some() {
                None
            } else {
                // A remote reader: the coordinator measures only tables; plan it blind.
                Some(Default::default())
            };
            relations.push(Relation {
                name,
                side: r.side as i32,
                source: r.source.clone(),
                statistics,
            });
        }
        Ok(PlanRequest {
            sql: splice(text, edits),
            relations,
            run: self.run.as_str().to_string(),
            column_names: shape.columns.iter().cloned().collect(),
            star: shape.star,
            downloads_only: false,
        })
    }

    async fn run_dual(
        &mut self,
        text: &str,
        shape: &QueryShape,
        rels: &[Rel],
    ) -> Result<(Outcome, Measured), ClientError> {
        let mut request = self.plan_request(text, shape, rels)?;
        let before = self.link.moved();
        let mut plan = self.cloud_client("a query on cloud data")?.plan_dual(&request).await?;
        self.check_plan(&request, &plan)?;
        let mut measured = Measured::default();
        let mut local_temps = Vec::new();
        let mut remote_temps = Vec::new();
        let mut result = self
            .execute_plan(&plan, text, rels, &mut measured, &mut local_temps, &mut remote_temps)
            .await;
        // A read-only token may not upload: such a user's mixed queries run locally.
        let uploads = plan.bridges.iter().any(|b| b.from == Side::Local as i32);
        if uploads
            && request.run != "local"
            && result.as_ref().err().and_then(ClientError::code) == Some(tonic::Code::PermissionDenied)
        {
            request.run = "local".into();
            request.downloads_only = true;
            plan = self.cloud_client("a query on cloud data")?.plan_dual(&request).await?;
            self.check_plan(&request, &plan)?;
            if plan.bridges.iter().all(|b| b.from == Side::Remote as i32) {
                measured = Measured::default();
                result = self
                    .execute_plan(&plan, text, rels, &mut measured, &mut local_temps, &mut remote_temps)
                    .await;
            }
        }
        for t in &local_temps {
            self.local.drop_temp(t);
        }
        if !remote_temps.is_empty()
            && let Some(cloud) = self.cloud.as_mut()
        {
            let drops: Vec<String> = remote_temps
                .iter()
                .map(|t| format!("DROP TABLE IF EXISTS {}", pond_planner::temp_name(t)))
                .collect();
            if let Err(e) = cloud.execute(&drops.join("; ")).await {
                tracing::warn!(error = %e, "could not drop the plan's temporary tables");
            }
        }
        let (schema, batches) = result?;
        let outcome = Outcome {
            schema,
            batches,
            venue: Venue::Dual,
            bytes_moved: self.link.moved() - before,
            plan: Some(plan),
            is_query: true,
        };
        Ok((outcome, measured))
    }

    /// Refuses a plan that would make the local DuckDB do more than the query asked: the local
    /// DuckDB is not sandboxed, so SQL from the server runs here only if it reads nothing but
    /// the query's own local relations and the plan's key tables, through comparison, boolean,
    /// `LIKE` and cast operators, and final names are the relations' own or the plan's temps.
    fn check_plan(&self, request: &PlanRequest, plan: &Plan) -> Result<(), ClientError> {
        let refuse = |what: String| ClientError::Invalid(format!("refused a plan from the server: {what}"));
        let source_of = |name: &str| request.relations.iter().find(|r| r.name == name);
        for (name, replacement) in &plan.names {
            let relation = source_of(name).ok_or_else(|| refuse(format!("unknown relation {name}")))?;
            if *replacement != relation.source && *replacement != pond_planner::temp_name(name) {
                return Err(refuse(format!("{name} read as {replacement}")));
            }
        }
        let local_sources: Vec<&str> = request
            .relations
            .iter()
            .filter(|r| r.side == Side::Local as i32)
            .map(|r| r.source.as_str())
            .collect();
        for bridge in &plan.bridges {
            if !bridge.target.starts_with("__pond_") {
                return Err(refuse(format!("temporary table {}", bridge.target)));
            }
            if bridge.from != Side::Local as i32 {
                continue;
            }
            let sql = bridge.sql.as_str();
            let shape = analyze::analyze(sql, &self.local.serialize(sql)?).map_err(|e| refuse(e.to_string()))?;
            let mut allowed_spans = Vec::new();
            for t in &shape.tables {
                let written = &sql[t.span.0..t.span.1];
                let keys = t.catalog.eq_ignore_ascii_case("temp") && t.table.starts_with("__pond_keys_");
                if !keys && !local_sources.contains(&written) {
                    return Err(refuse(format!("a bridge reads {written}")));
                }
            }
            for f in &shape.functions {
                let call = f.span.map(|(a, b)| &sql[a..b]);
                match (f.span, call) {
                    (Some(span), Some(call)) if local_sources.contains(&call) => allowed_spans.push(span),
                    _ => return Err(refuse(format!("a bridge calls {}", f.name))),
                }
            }
            const OPERATORS: &[&str] = &[
                "~~",
                "!~~",
                "~~*",
                "!~~*",
                "like_escape",
                "not_like_escape",
                "ilike_escape",
                "not_ilike_escape",
            ];
            for (name, at) in &shape.calls {
                let inside_source = allowed_spans.iter().any(|(a, b)| at >= a && at < b);
                if !inside_source && !OPERATORS.contains(&name.as_str()) {
                    return Err(refuse(format!("a bridge calls {name}")));
                }
            }
        }
        Ok(())
    }

    async fn execute_plan(
        &mut self,
        plan: &Plan,
        text: &str,
        rels: &[Rel],
        measured: &mut Measured,
        local_temps: &mut Vec<String>,
        remote_temps: &mut Vec<String>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        for bridge in &plan.bridges {
            let started = Instant::now();
            let before = self.link.moved();
            let rows;
            if bridge.from == Side::Remote as i32 {
                let cloud = self.cloud_client("a download")?;
                let (schema, batches) = cloud.query_with_schema(&bridge.sql).await?;
                local_temps.push(bridge.target.clone());
                rows = self.local.load_temp(&bridge.target, &schema, &batches)?;
            } else {
                let (schema, batches) = self.local.query(&bridge.sql)?;
                rows = batches.iter().map(|b| b.num_rows() as u64).sum();
                remote_temps.push(bridge.target.clone());
                self.cloud_client("an upload")?
                    .upload_temp(&bridge.target, schema, batches)
                    .await?;
            }
            measured.bridges.push((
                bridge.target.clone(),
                rows,
                self.link.moved() - before,
                started.elapsed(),
            ));
        }
        // Each relation's placeholder becomes the plan's name for it, spliced at the offsets
        // the placeholder was, so errors can point into the user's text.
        let edits = rels
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = placeholder(i);
                let replacement = plan.names.get(&name).unwrap_or(&name);
                (r.span, with_alias(replacement, &r.alias))
            })
            .collect();
        let final_sql = splice_mapped(text, edits);
        let started = Instant::now();
        if plan.run_on == Side::Remote as i32 {
            let before = self.link.moved();
            let result = self
                .cloud_client("a remote query")?
                .query_with_schema(&final_sql.sql)
                .await
                .map_err(|e| final_sql.user_error(text, e))?;
            measured.remote_time += started.elapsed();
            measured.result_bytes = self.link.moved() - before;
            Ok(result)
        } else {
            let result = self
                .local
                .query(&final_sql.sql)
                .map_err(|e| final_sql.user_error(text, e))?;
            measured.local_time += started.elapsed();
            Ok(result)
        }
    }

    /// Statements other than queries: DDL and DML. They run on the side of the names they
    /// mention; `CREATE TABLE … AS` and `INSERT INTO … SELECT` whose query reads the other
    /// side run the query by dual execution first.
    async fn run_other(&mut self, text: &str) -> Result<Outcome, ClientError> {
        if let Some((prefix, target, query)) = split_write_query(text) {
            let target_side = if self.mentions_cloud(&target) || (self.current_cloud.is_some() && !target.contains('.'))
            {
                Side::Remote
            } else {
                Side::Local
            };
            let json = self.local.serialize(&query)?;
            if let Ok(shape) = analyze::analyze(&query, &json) {
                let rels = self.resolve(&query, &shape);
                let foreign = rels
                    .iter()
                    .any(|r| r.side != target_side && r.side != Side::Unspecified);
                if foreign {
                    let result = Box::pin(self.run_query(&query, &shape)).await?;
                    let temp = "__pond_result";
                    let statement = format!("{prefix} SELECT * FROM {}", pond_planner::temp_name(temp));
                    return if target_side == Side::Local {
                        let r = self
                            .local
                            .load_temp(temp, &result.schema, &result.batches)
                            .and_then(|_| self.local.execute(&self.rewrite_cloud_names(&statement)));
                        self.local.drop_temp(temp);
                        r?;
                        Ok(Outcome::client(format!("{} rows", result.num_rows())))
                    } else {
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
                    };
                }
            }
        }
        let remote = match statement_target(text) {
            // A write runs where its target is.
            Some(target) => match analyze::split_qualified(&target).as_slice() {
                [qualifier, _, ..] => self.cloud_database(qualifier).is_some(),
                _ => self.current_cloud.is_some(),
            },
            None => self.mentions_cloud(text) || self.current_cloud.is_some(),
        };
        if remote {
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
                plan: None,
                is_query: returns_rows(&sql.sql),
            });
        }
        self.run_local(text)
    }

    /// Whether `text` names an attached cloud alias as a qualifier (`alias.`).
    fn mentions_cloud(&self, text: &str) -> bool {
        qualifiers(text).iter().any(|(q, _)| self.cloud_database(q).is_some())
    }

    /// Rewrites `alias.` qualifiers to the cloud's database names.
    fn rewrite_cloud_names(&self, text: &str) -> String {
        self.rewrite_cloud_names_mapped(text).sql
    }

    fn rewrite_cloud_names_mapped(&self, text: &str) -> Spliced {
        let edits = qualifiers(text)
            .into_iter()
            .filter_map(|(q, span)| {
                let db = self.cloud_database(&q)?;
                (db != q).then(|| (span, quote_ident(&db)))
            })
            .collect();
        splice_mapped(text, edits)
    }

    /// `statement` is the whole `EXPLAIN [ANALYZE] query`.
    async fn explain(&mut self, statement: &str, query: &str, analyze_run: bool) -> Result<Outcome, ClientError> {
        let json = self.local.serialize(query)?;
        let shape = match analyze::analyze(query, &json) {
            Ok(shape) => shape,
            // DuckDB's own EXPLAIN of the statement as typed, so its errors quote the user.
            Err(_) => return self.run_local(statement),
        };
        let rels = assign_sides(self.resolve(query, &shape));
        let has_remote = rels.iter().any(|r| r.side == Side::Remote);
        let has_local = rels.iter().any(|r| r.side == Side::Local);
        if !has_remote && self.run != RunMode::Remote {
            // Local-only: planned here, nothing crosses the network.
            let mut request = self.plan_request(query, &shape, &rels)?;
            request.run = "local".into();
            let plan = pond_planner::plan(&request);
            let mut text = plan.explain.clone();
            if analyze_run {
                let started = Instant::now();
                let outcome = self.run_local(query)?;
                text += &format!(
                    "Actual: {} rows; 0 B moved; local {:.1} ms\n",
                    outcome.num_rows(),
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
            return Ok(Outcome::lines(Venue::Local, "explain", &text, Some(plan)));
        }
        if !analyze_run {
            let mut request = self.plan_request(query, &shape, &rels)?;
            if !has_local && self.run != RunMode::Local {
                request.run = "remote".into();
            }
            let plan = self
                .cloud_client("EXPLAIN of a cloud query")?
                .plan_dual(&request)
                .await?;
            let text = plan.explain.clone();
            return Ok(Outcome::lines(Venue::Dual, "explain", &text, Some(plan)));
        }
        let saved = self.run;
        if !has_local && self.run == RunMode::Auto {
            self.run = RunMode::Remote;
        }
        let started = Instant::now();
        let result = self.run_dual(query, &shape, &rels).await;
        self.run = saved;
        let (outcome, measured) = result?;
        let plan = outcome.plan.clone().unwrap_or_default();
        let mut text = plan.explain.clone();
        text += &format!(
            "Actual: {} rows; {} moved in total; {:.1} ms\n",
            outcome.num_rows(),
            pond_planner::human_bytes(outcome.bytes_moved as f64),
            started.elapsed().as_secs_f64() * 1e3
        );
        for (i, (target, rows, bytes, time)) in measured.bridges.iter().enumerate() {
            text += &format!(
                "Actual bridge {}: {target}: {rows} rows, {} in {:.1} ms\n",
                i + 1,
                pond_planner::human_bytes(*bytes as f64),
                time.as_secs_f64() * 1e3
            );
        }
        text += &format!(
            "Actual time: local {:.1} ms, remote {:.1} ms; result download {}\n",
            measured.local_time.as_secs_f64() * 1e3,
            measured.remote_time.as_secs_f64() * 1e3,
            pond_planner::human_bytes(measured.result_bytes as f64)
        );
        Ok(Outcome::lines(Venue::Dual, "explain", &text, Some(plan)))
    }

    /// `CREATE DATABASE d FROM 'file.duckdb'` or `FROM CURRENT_DATABASE()`: uploads every
    /// table of a local database into a new cloud database.
    async fn upload_database(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let after = after_keywords(text, &["create", "database"])
            .ok_or_else(|| ClientError::Invalid("expected CREATE DATABASE name FROM …".into()))?;
        let (name, rest) =
            take_identifier(after).ok_or_else(|| ClientError::Invalid("CREATE DATABASE needs a name".into()))?;
        let rest = rest.trim_start();
        let source_expr = after_keywords(rest, &["from"])
            .ok_or_else(|| ClientError::Invalid("expected FROM after the database name".into()))?
            .trim();
        let (source, attached_here) = if source_expr.to_ascii_lowercase().starts_with("current_database") {
            let current = self
                .local
                .scalar_string("SELECT current_database()")?
                .unwrap_or_else(|| self.local.catalog().to_string());
            (current, false)
        } else {
            let (path, _) = first_string_literal(source_expr)
                .ok_or_else(|| ClientError::Invalid("FROM needs 'file.duckdb' or CURRENT_DATABASE()".into()))?;
            self.local
                .execute(&format!("ATTACH {} AS __pond_upload (READ_ONLY)", quote_literal(&path)))?;
            ("__pond_upload".to_string(), true)
        };
        let result = self.upload_tables(&source, &name).await;
        if attached_here {
            let _ = self.local.execute("DETACH __pond_upload");
        }
        let (tables, rows) = result?;
        self.attached.insert(name.clone(), name.clone());
        Ok(Outcome::client(format!(
            "uploaded {tables} table(s), {rows} rows, into cloud database {name}"
        )))
    }

    fn local_tables(&self, database: &str) -> Result<Vec<(String, String)>, ClientError> {
        let (_, batches) = self.local.query(&format!(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = {} AND NOT temporary ORDER BY 1, 2",
            quote_literal(database)
        ))?;
        Ok(pairs(&batches))
    }

    async fn upload_tables(&mut self, source: &str, database: &str) -> Result<(usize, u64), ClientError> {
        let tables = self.local_tables(source)?;
        let cloud = self.cloud_client("CREATE DATABASE … FROM a local database")?;
        cloud
            .execute(&format!("CREATE DATABASE {}", quote_ident(database)))
            .await?;
        self.copy_up(source, database, &tables).await
    }

    async fn copy_up(
        &mut self,
        source: &str,
        database: &str,
        tables: &[(String, String)],
    ) -> Result<(usize, u64), ClientError> {
        let mut total = 0;
        for (schema, table) in tables {
            if schema != "main" {
                let statement = format!(
                    "CREATE SCHEMA IF NOT EXISTS {}.{}",
                    quote_ident(database),
                    quote_ident(schema)
                );
                self.cloud_client("an upload")?.execute(&statement).await?;
            }
            let what = format!("{schema}.{table}");
            let (batch_schema, mut batches) = self.local.query(&format!(
                "SELECT * FROM {}.{}.{}",
                quote_ident(source),
                quote_ident(schema),
                quote_ident(table)
            ))?;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(batch_schema));
            }
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let target = IngestTarget {
                catalog: Some(database.to_string()),
                schema: Some(schema.clone()),
                table: table.clone(),
                temporary: false,
                replace: false,
            };
            // Progress is reported as batches are handed to the upload stream.
            let progress = self.progress.clone();
            let label = what.clone();
            let mut sent = 0u64;
            let stream = futures::stream::iter(batches.into_iter().map(move |b| {
                sent += b.num_rows() as u64;
                if let Some(p) = &progress {
                    p(&Progress {
                        what: label.clone(),
                        rows: sent,
                        done: false,
                    });
                }
                Ok(b)
            }));
            let result = self.cloud_client("an upload")?.ingest_stream(target, stream).await;
            result?;
            self.report(&what, rows, true);
            total += rows;
        }
        Ok((tables.len(), total))
    }

    /// `COPY FROM DATABASE a TO b` where one side is cloud: copies every table across.
    async fn copy_database(&mut self, text: &str) -> Result<Outcome, ClientError> {
        let Some(after) = after_keywords(text, &["copy", "from", "database"]) else {
            return self.run_local(text);
        };
        let (from, rest) =
            take_identifier(after).ok_or_else(|| ClientError::Invalid("COPY FROM DATABASE needs a source".into()))?;
        let rest = after_keywords(rest, &["to"]).ok_or_else(|| ClientError::Invalid("expected TO".into()))?;
        let (to, _) =
            take_identifier(rest).ok_or_else(|| ClientError::Invalid("COPY FROM DATABASE needs a target".into()))?;
        match (self.cloud_database(&from), self.cloud_database(&to)) {
            (None, None) => self.run_local(text),
            (Some(_), Some(_)) => {
                let sql = self.rewrite_cloud_names_mapped(text);
                self.run_remote(&sql.sql).await.map_err(|e| sql.user_error(text, e))
            }
            (None, Some(db)) => {
                let tables = self.local_tables(&from)?;
                let (n, rows) = self.copy_up(&from, &db, &tables).await?;
                Ok(Outcome::client(format!(
                    "copied {n} table(s), {rows} rows, to cloud database {to}"
                )))
            }
            (Some(db), None) => {
                let listing = format!(
                    "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = {} AND table_type = 'BASE TABLE' ORDER BY 1, 2",
                    quote_literal(&db)
                );
                let (_, batches) = self
                    .cloud_client("COPY FROM a cloud database")?
                    .query_with_schema(&listing)
                    .await?;
                let tables = pairs(&batches);
                let mut total = 0;
                for (schema, table) in &tables {
                    if schema != "main" {
                        self.local.execute(&format!(
                            "CREATE SCHEMA IF NOT EXISTS {}.{}",
                            quote_ident(&to),
                            quote_ident(schema)
                        ))?;
                    }
                    let q = format!(
                        "SELECT * FROM {}.{}.{}",
                        quote_ident(&db),
                        quote_ident(schema),
                        quote_ident(table)
                    );
                    let cloud = self.cloud_client("COPY FROM a cloud database")?;
                    let (batch_schema, batches) = cloud.query_with_schema(&q).await?;
                    let temp = "__pond_copy";
                    let statement = format!(
                        "CREATE TABLE {}.{}.{} AS SELECT * FROM {}",
                        quote_ident(&to),
                        quote_ident(schema),
                        quote_ident(table),
                        pond_planner::temp_name(temp)
                    );
                    let copied = self
                        .local
                        .load_temp(temp, &batch_schema, &batches)
                        .and_then(|rows| self.local.execute(&statement).map(|()| rows));
                    self.local.drop_temp(temp);
                    let rows = copied?;
                    self.report(&format!("{schema}.{table}"), rows, true);
                    total += rows;
                }
                Ok(Outcome::client(format!(
                    "copied {} table(s), {total} rows, from cloud database {from}",
                    tables.len()
                )))
            }
        }
    }

    /// Collects a query's result as a stream would deliver it (for callers that want
    /// batches one by one); dual plans collect the final result first.
    pub async fn query_stream(
        &mut self,
        sql: &str,
    ) -> Result<impl futures::Stream<Item = Result<RecordBatch, ClientError>> + use<>, ClientError> {
        let outcome = self.run(sql).await?;
        Ok(futures::stream::iter(outcome.batches.into_iter().map(Ok)))
    }

    /// Runs a query and collects its batches.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>, ClientError> {
        self.query_stream(sql).await?.try_collect().await
    }
}

/// Readers without a `pond_run` override go with the query: remote in a query that reads
/// only cloud tables, local otherwise.
fn assign_sides(mut rels: Vec<Rel>) -> Vec<Rel> {
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

fn with_alias(name: &str, alias: &Option<String>) -> String {
    match alias {
        Some(a) => format!("{name} AS {a}"),
        None => name.to_string(),
    }
}

fn pairs(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in batches {
        let col = |i: usize| {
            arrow::compute::cast(b.column(i), &DataType::Utf8)
                .ok()
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        };
        if let (Some(s), Some(t)) = (col(0), col(1)) {
            for i in 0..b.num_rows() {
                out.push((s.value(i).to_string(), t.value(i).to_string()));
            }
        }
    }
    out
}

/// The value of `SET [SESSION] pond_run = 'x'` / `SET md_run TO x`.
fn run_setting(text: &str) -> Option<RunMode> {
    let lower = text.to_ascii_lowercase();
    let at = lower
        .find("pond_run")
        .map(|i| i + 8)
        .or_else(|| lower.find("md_run").map(|i| i + 6))?;
    let rest = lower[at..].trim_start();
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix("to"))?
        .trim()
        .trim_end_matches(';')
        .trim();
    RunMode::parse(rest)
}

/// The table, view or other object a DDL/DML statement writes, as written.
fn statement_target(text: &str) -> Option<String> {
    let body = strip_comments(text);
    let lower = body.to_ascii_lowercase();
    let w = words(body, 3);
    let keyword = match w.first().map(String::as_str)? {
        "insert" => " into ",
        "update" => "update ",
        "delete" => " from ",
        "create" | "drop" | "alter" | "truncate" => {
            [
                "table ",
                "view ",
                "schema ",
                "sequence ",
                "macro ",
                "function ",
                "index ",
                "type ",
            ]
            .into_iter()
            .filter_map(|k| lower.find(k).map(|i| (i, k)))
            .min()?
            .1
        }
        _ => return None,
    };
    let at = lower.find(keyword)? + keyword.len();
    let mut rest = body[at..].trim_start();
    for skip in ["if not exists ", "if exists ", "only "] {
        if rest.to_ascii_lowercase().starts_with(skip) {
            rest = rest[skip.len()..].trim_start();
        }
    }
    let mut end;
    let mut cursor = rest;
    loop {
        let (_, after) = take_identifier(cursor)?;
        end = rest.len() - after.len();
        match after.strip_prefix('.') {
            Some(next) => cursor = next,
            None => break,
        }
    }
    Some(rest[..end].to_string())
}

/// Whether DuckDB's CLI would show this statement's rows: not for DDL, DML and session
/// commands, which answer with a change count.
fn returns_rows(sql: &str) -> bool {
    let first = words(sql, 1);
    !matches!(
        first.first().map(String::as_str),
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

fn is_pond_path(text: &str) -> bool {
    first_string_literal(text).is_some_and(|(p, _)| p.starts_with("pond:") || p.starts_with("md:"))
}

/// `CREATE DATABASE d FROM 'file'` / `FROM CURRENT_DATABASE()`, as opposed to a cloud clone.
fn uploads_local(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(at) = lower.find(" from ") else { return false };
    let source = lower[at + 6..].trim_start();
    source.starts_with('\'') || source.starts_with("current_database")
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

/// Qualifiers in `text`: identifiers followed by `.` that are not themselves after a `.`,
/// outside string literals, with their byte spans.
fn qualifiers(text: &str) -> Vec<(String, (usize, usize))> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut previous_dot = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            i += 1;
            while i < bytes.len() && !(bytes[i] == b'\'' && bytes.get(i + 1) != Some(&b'\'')) {
                i += if bytes[i] == b'\'' { 2 } else { 1 };
            }
            i += 1;
            previous_dot = false;
            continue;
        }
        if c == b'"' || c.is_ascii_alphabetic() || c == b'_' {
            let Some((name, rest)) = take_identifier(&text[i..]) else {
                break;
            };
            let end = text.len() - rest.len();
            if !previous_dot && rest.starts_with('.') {
                out.push((name, (i, end)));
            }
            previous_dot = false;
            i = end;
            continue;
        }
        previous_dot = c == b'.';
        i += 1;
    }
    out
}

/// Splits `CREATE [OR REPLACE] [TEMP] TABLE name AS query` and `INSERT INTO name [(…)] query`
/// into (statement prefix, target name, query).
fn split_write_query(text: &str) -> Option<(String, String, String)> {
    let lower = text.to_ascii_lowercase();
    let w = words(text, 6);
    let is_ctas = w.first().map(String::as_str) == Some("create") && w.iter().take(5).any(|x| x == "table");
    let is_insert = w.first().map(String::as_str) == Some("insert");
    if !is_ctas && !is_insert {
        return None;
    }
    // The target name follows TABLE / INTO (and IF NOT EXISTS).
    let keyword = if is_ctas { "table" } else { "into" };
    let mut at = lower.find(&format!(" {keyword} "))? + keyword.len() + 2;
    let after = lower[at..].trim_start();
    at = lower.len() - after.len();
    if after.starts_with("if not exists") {
        at += "if not exists".len();
    }
    let mut name_end;
    let start = at + (text[at..].len() - text[at..].trim_start().len());
    let mut cursor = &text[start..];
    loop {
        let (_, rest) = take_identifier(cursor)?;
        name_end = text.len() - rest.len();
        match rest.strip_prefix('.') {
            Some(r) => cursor = r,
            None => break,
        }
    }
    let target = text[start..name_end].to_string();
    let rest = &text[name_end..];
    let query_at = if is_ctas {
        let trimmed = rest.trim_start();
        if !trimmed.to_ascii_lowercase().starts_with("as") {
            return None;
        }
        name_end + (rest.len() - trimmed.len()) + 2
    } else {
        let mut r = rest.trim_start();
        if r.starts_with('(') {
            let close = r.find(')')?;
            r = r[close + 1..].trim_start();
        }
        let lr = r.to_ascii_lowercase();
        if !(lr.starts_with("select") || lr.starts_with("with") || lr.starts_with("from") || lr.starts_with('(')) {
            return None;
        }
        text.len() - r.len()
    };
    let prefix = text[..query_at].to_string();
    let query = text[query_at..].trim().to_string();
    Some((prefix, target, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_qualifiers_outside_strings() {
        let q = qualifiers("select a.x, 'b.y', \"c d\".z from cloud.main.t");
        let names: Vec<&str> = q.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "c d", "cloud"]);
    }

    #[test]
    fn splits_writes_that_carry_a_query() {
        let (prefix, target, query) = split_write_query("CREATE OR REPLACE TABLE t2 AS SELECT * FROM c.t").unwrap();
        assert_eq!(
            (prefix.as_str(), target.as_str(), query.as_str()),
            ("CREATE OR REPLACE TABLE t2 AS", "t2", "SELECT * FROM c.t")
        );
        let (prefix, target, query) = split_write_query("insert into cloud.main.t (a, b) select 1, 2").unwrap();
        assert_eq!(target, "cloud.main.t");
        assert_eq!(prefix, "insert into cloud.main.t (a, b) ");
        assert_eq!(query, "select 1, 2");
        assert!(split_write_query("insert into t values (1)").is_none());
        assert!(split_write_query("create table t (a int)").is_none());
    }

    #[tokio::test]
    async fn refuses_plans_that_reach_beyond_the_query() {
        let session = DualSession::open(None, None).await.unwrap();
        session
            .local
            .execute("CREATE TABLE customers AS SELECT 1 AS id")
            .unwrap();
        let request = PlanRequest {
            sql: "SELECT * FROM __pond_ref_000".into(),
            relations: vec![Relation {
                name: "__pond_ref_000".into(),
                side: Side::Local as i32,
                source: "customers".into(),
                statistics: None,
            }],
            ..Default::default()
        };
        let bridge = |sql: &str| Plan {
            bridges: vec![pond_proto::dual::Bridge {
                from: Side::Local as i32,
                sql: sql.into(),
                target: "__pond_ref_000".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ok = bridge(
            "SELECT \"id\" FROM customers WHERE (\"id\" > 1) AND \"id\" IN (SELECT \"k\" FROM temp.main.\"__pond_keys_ref_000\")",
        );
        session.check_plan(&request, &ok).unwrap();
        for evil in [
            "SELECT * FROM read_text('/etc/passwd')",
            "SELECT \"id\" FROM customers WHERE getenv('HOME') IS NOT NULL",
            "SELECT * FROM other_table",
        ] {
            assert!(session.check_plan(&request, &bridge(evil)).is_err(), "{evil}");
        }
        let mut renamed = Plan::default();
        renamed
            .names
            .insert("__pond_ref_000".into(), "read_text('/etc/passwd')".into());
        assert!(session.check_plan(&request, &renamed).is_err());
    }

    #[test]
    fn finds_the_target_of_writes() {
        assert_eq!(
            statement_target("DELETE FROM orders USING sales WHERE orders.id = sales.oid").unwrap(),
            "orders"
        );
        assert_eq!(
            statement_target("insert into cloud.main.t select 1").unwrap(),
            "cloud.main.t"
        );
        assert_eq!(
            statement_target("CREATE OR REPLACE TABLE IF NOT EXISTS c.t AS SELECT 1").unwrap(),
            "c.t"
        );
        assert_eq!(statement_target("update \"my db\".t set a = 1").unwrap(), "\"my db\".t");
        assert_eq!(statement_target("SHOW TABLES"), None);
    }

    /// DuckDB's message for `sql` on `db`.
    fn local_error(db: &LocalDb, sql: &str) -> String {
        db.query(sql).expect_err(sql).to_string()
    }

    /// `user` with every whole word `t` read as `memory.main.t AS "t"`, as Pond splices names.
    fn spliced_t(user: &str) -> Spliced {
        let edits = user
            .match_indices('t')
            .filter(|(i, _)| {
                let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\'';
                !user[..*i].ends_with(word) && !user[i + 1..].starts_with(word)
            })
            .map(|(i, _)| ((i, i + 1), r#"memory.main.t AS "t""#.to_string()))
            .collect();
        splice_mapped(user, edits)
    }

    #[test]
    fn errors_point_into_the_users_text() {
        let db = LocalDb::open(None).unwrap();
        db.execute("CREATE TABLE t(x INTEGER)").unwrap();
        let long_select: String = (0..30).map(|i| format!("x + {i} AS c{i}, ")).collect();
        let long_where: String = (0..30).map(|i| format!("x <> {i} AND ")).collect();
        let users = [
            "SELECT nope FROM t",
            "SELECT x FROM t WHERE nope > 1",
            "SELECT x\nFROM t\nWHERE x > 1 AND\n  nope > 1",
            "SELECT x FROM t\r\nWHERE nope > 1",
            "SELECT x FROM t WHERE x >> FROMM",
            &format!("SELECT {long_select}nope FROM t"),
            &format!("SELECT x FROM t WHERE {long_where}nope > 1"),
            &format!("SELECT x FROM t WHERE {long_where}{long_where}nope > 1 AND {long_where}x > 0"),
            "SELECT '日本語 é', x FROM t WHERE '🦆' = 'x' AND nope > 1",
        ];
        for user in users {
            let spliced = spliced_t(user);
            assert_ne!(spliced.sql, user, "the test rewrites {user:?}");
            let ran = local_error(&db, &spliced.sql);
            assert!(ran.contains("LINE "), "DuckDB points at the error: {ran}");
            assert_eq!(
                spliced.user_message(user, &ran),
                local_error(&db, user),
                "{user:?} ran as {:?}",
                spliced.sql
            );
        }
    }

    #[test]
    fn an_error_in_a_spliced_name_points_at_the_name_typed() {
        let db = LocalDb::open(None).unwrap();
        let user = "SELECT *\nFROM my_db.t JOIN u USING (k)";
        let edit = (user.find("my_db.t").unwrap(), user.find(" JOIN").unwrap());
        let spliced = splice_mapped(user, vec![(edit, r#""memory"."main"."no_such_t" AS "t""#.to_string())]);
        let ran = local_error(&db, &spliced.sql);
        assert!(ran.contains(r#"LINE 2: FROM "memory"."main"."no_such_t""#), "{ran}");
        let shown = spliced.user_message(user, &ran);
        assert!(
            shown.ends_with("\n\nLINE 2: FROM my_db.t JOIN u USING (k)\n             ^"),
            "{shown}"
        );
        assert!(!shown.contains("AS \"t\""), "{shown}");
        let body = &ran[..ran.rfind("\n\nLINE").unwrap()];
        assert!(shown.starts_with(body), "DuckDB's message is kept: {shown}");
    }

    #[test]
    fn a_pointer_that_cannot_be_placed_is_dropped() {
        let spliced = splice_mapped("SELECT * FROM t", vec![((14, 15), "x AS \"t\"".into())]);
        let message = "Binder Error: odd\n\nLINE 1: SELECT * FROM elsewhere\n              ^";
        assert_eq!(spliced.user_message("SELECT * FROM t", message), "Binder Error: odd");
        assert_eq!(spliced.user_message("SELECT * FROM t", "no pointer"), "no pointer");
        let unchanged = splice_mapped("SELECT 1", Vec::new());
        let error = ClientError::Invalid("kept".into());
        assert_eq!(unchanged.user_error("SELECT 1", error).to_string(), "kept");
    }

    #[test]
    fn keywords_are_matched_without_fixed_offsets() {
        assert_eq!(
            after_keywords("EXPLAIN   ANALYZE SELECT 1", &["explain", "analyze"]),
            Some("SELECT 1")
        );
        assert_eq!(after_keywords("explain /*é*/ select 1", &["explain", "analyze"]), None);
        assert_eq!(after_keywords("explainx", &["explain"]), None);
        assert_eq!(
            splice("abcdef", vec![((1, 4), "X".into()), ((2, 3), "Y".into())]),
            "aXef"
        );
    }

    #[test]
    fn parses_run_settings() {
        assert_eq!(run_setting("SET pond_run = 'remote'"), Some(RunMode::Remote));
        assert_eq!(run_setting("set md_run to local"), Some(RunMode::Local));
        assert_eq!(run_setting("SET SESSION pond_run='AUTO'"), Some(RunMode::Auto));
        assert_eq!(run_setting("SET pond_run = 'sideways'"), None);
    }

    #[test]
    fn recognises_pond_statements() {
        let w = |s: &str| words(s, 8);
        let check = |s: &str| server_only(&w(s).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(check("CREATE DATABASE x"));
        assert!(check("create secret s in pond (type s3)"));
        assert!(check("SELECT * FROM pond_active_connections()"));
        assert!(!check("create secret s (type s3)"));
        assert!(!check("select 1"));
        assert!(uploads_local("CREATE DATABASE d FROM 'x.duckdb'"));
        assert!(uploads_local("create database d from current_database()"));
        assert!(!uploads_local("CREATE DATABASE d FROM src"));
    }
}
