//! Mixed queries: the plan (the coordinator's, or made here from the cloud tables' statistics
//! an earlier plan returned), checked here, then carried out.
//!
//! Relations become fixed-width placeholders (`__pond_ref_000`…), the cost model
//! (`pond-planner`) returns a `pond.dual.v1.Plan`, bridges move reduced relations into
//! temporary tables (downloads are Flight streams appended through the Arrow interface;
//! uploads are ingests into session-scoped temporary tables), and the query runs on the
//! chosen side with each placeholder replaced by the plan's name for it.
//!
//! Invariants:
//! - A plan is checked before anything of it runs: SQL from the server reaches the local
//!   (unsandboxed) DuckDB only if it reads the query's own local relations (`check_plan`).
//! - Every temporary table a plan creates is dropped when its statement ends, on success or error.
//! - A read-only token's mixed queries fall back to a plan that only downloads.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use pond_duckdb::engine::quote_ident;
use pond_proto::dual::{Bridge, Edit, Fragment, Plan, PlanRequest, Relation, Side};
use tracing::Instrument;

use super::routing::{Rel, with_alias};
use super::stream::{Finish, drop_remote_temps};
use super::user_error::{splice, splice_mapped};
use super::values;
use super::{DualSession, Outcome, Venue};
use crate::ClientError;
use crate::analyze::{self, Branch, Output, QueryShape, Subquery};

/// What running a dual plan measured, for `EXPLAIN ANALYZE`.
#[derive(Debug, Default)]
pub(super) struct Measured {
    /// Each bridge's target, rows, bytes moved and time, and whether it went inline into
    /// the remote SQL (its bytes then cross with that SQL).
    pub bridges: Vec<(String, u64, u64, Duration, bool)>,
    pub local_time: Duration,
    pub remote_time: Duration,
    pub result_bytes: u64,
}

/// The temporary tables a plan created on each side, dropped when its statement ends (or its
/// stream, `stream.rs`).
#[derive(Default)]
pub(super) struct Temps {
    pub local: Vec<String>,
    pub remote: Vec<String>,
}

/// Bridges that went inline: each one's temporary table name, and its rows as literals.
type Inlined = Vec<(String, String)>;

/// How much of a download is gathered before it is appended to its temporary table.
const APPEND_BYTES: usize = 8 << 20;

/// How long a cloud table's statistics serve plans made here. Other sessions' commits go
/// unseen meanwhile; this session's own statements forget them at once.
const CLOUD_STATISTICS_AGE: Duration = Duration::from_secs(60);

/// Runs CPU-bound `f` (planning) without holding up the other tasks of a multi-threaded
/// runtime's worker.
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A batch's Arrow data in bytes (its slice's buffers, not their capacity), the unit of the
/// planner's estimates.
fn arrow_data_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

/// Placeholder names are fixed-width so no one is a prefix of another.
fn placeholder(i: usize) -> String {
    format!("__pond_ref_{i:03}")
}

/// A plan request, and what reading each of its fragments' results changes in the user's text.
pub(super) struct Planned {
    pub request: PlanRequest,
    fragments: Vec<UserFragment>,
}

/// A fragment in the user's text's terms.
struct UserFragment {
    name: String,
    /// Byte ranges replaced by text, `{result}` standing for the fragment's result.
    edits: Vec<((usize, usize), String)>,
    /// The statement's relations it reads instead of the query.
    rels: Vec<usize>,
}

/// What a subquery fragment's text becomes: a read of its result.
const READ_RESULT: &str = "(SELECT * FROM {result})";
/// A set operation's branch whose names the operation ignores, run under plain names of Pond's
/// own (its cost model names expressions otherwise than DuckDB does), keeping the `read` ones
/// (a literal is written again where the result is read).
fn by_position(branch: &str, columns: usize, read: &[String]) -> String {
    let names: Vec<String> = (0..columns).map(positional).collect();
    format!(
        "SELECT {} FROM ({branch}) AS __pond_branch({})",
        read.join(", "),
        names.join(", ")
    )
}

fn positional(i: usize) -> String {
    format!("__pond_c{i}")
}

/// A part of the query that may run where its data lives: the subquery or branch, how a
/// branch's result is read in its place, its side, and the indexes of the relations inside it.
type Candidate<'q> = (&'q Subquery, Option<BranchRead>, Side, Vec<usize>);

/// How a set operation's branch is read in its place, once its result crossed.
struct BranchRead {
    /// What DuckDB runs instead of the branch, `{result}` standing for the result.
    duckdb: String,
    /// The same for the cost model, whose relations' column names are lower-cased.
    planner: String,
    /// The result's columns it reads.
    columns: Vec<String>,
}

/// How the set operation's branch `branch` of `text` is read: each output listed again, under
/// the name and alias DuckDB knew it by (an ORDER BY of the set operation may name any
/// branch's), and each literal written again rather than read, so DuckDB types it from the
/// other branches as before. The result's columns are Pond's positional names when the
/// operation ignores the branch's names, else the branch's own. `None` when an output cannot be
/// read so: an unnamed expression not renamed, a name or literal holding the placeholder, or no
/// column read at all (the result's rows would cross without one).
fn read_branch(text: &str, branch: &Branch) -> Option<BranchRead> {
    let renamed = branch.names_ignored;
    let mut duckdb = Vec::new();
    let mut planner = Vec::new();
    let mut columns = Vec::new();
    for (i, output) in branch.outputs.iter().enumerate() {
        // (the column read, if any, or the literal's text; the alias, if any)
        let (read, alias): (Result<String, &str>, Option<&str>) = match output {
            Output::Literal { span, alias } => (Err(&text[span.0..span.1]), alias.as_deref()),
            Output::Aliased(a) if renamed => (Ok(positional(i)), Some(a)),
            Output::Aliased(a) => (Ok(a.clone()), Some(a)),
            Output::Column(c) if renamed => (Ok(positional(i)), Some(c)),
            Output::Column(c) => (Ok(c.clone()), None),
            Output::Unnamed if renamed => (Ok(positional(i)), None),
            Output::Unnamed => return None,
        };
        let written = read.as_deref().unwrap_or_else(|literal| literal);
        if written.contains("{result}") || alias.is_some_and(|a| a.contains("{result}")) {
            return None;
        }
        let item = |case: fn(&str) -> String| {
            let expression = match &read {
                Ok(column) => quote_ident(&case(column)),
                Err(literal) => literal.to_string(),
            };
            match alias {
                Some(a) => format!("{expression} AS {}", quote_ident(&case(a))),
                None => expression,
            }
        };
        duckdb.push(item(str::to_string));
        planner.push(item(str::to_lowercase));
        columns.extend(read.ok());
    }
    let select = |items: Vec<String>| format!("SELECT {} FROM {{result}}", items.join(", "));
    (!columns.is_empty()).then(|| BranchRead {
        duckdb: select(duckdb),
        planner: select(planner),
        columns,
    })
}

/// Where offset `at` of the original text lands once `edits` (none of which contains it) are
/// spliced in.
fn shifted(edits: &[((usize, usize), String)], at: usize) -> usize {
    let grown: isize = edits
        .iter()
        .filter(|((_, end), _)| *end <= at)
        .map(|((start, end), text)| text.len() as isize - (end - start) as isize)
        .sum();
    (at as isize + grown) as usize
}

/// Whether byte range `inner` lies within `outer`.
pub(super) fn inside(inner: (usize, usize), outer: (usize, usize)) -> bool {
    inner.0 >= outer.0 && inner.1 <= outer.1
}

impl DualSession {
    /// A local relation's statistics. A table's (named without a call) are measured once and
    /// kept until a statement that is not a query has run ([`Self::tables_changed`]);
    /// a reader's (a function call, whose file may change under it) every time.
    fn local_statistics(&mut self, source: &str) -> Result<pond_planner::TableStatistics, ClientError> {
        let table = !source.contains('(');
        if table && let Some(stats) = self.local_statistics.get(source) {
            return Ok(stats.clone());
        }
        let schema = self.local.describe(&format!("SELECT * FROM {source}"))?;
        let stats = pond_planner::statistics::collect(source, &schema, |q| self.local.query(q).map(|(_, b)| b))?;
        if table {
            self.local_statistics.insert(source.to_string(), stats.clone());
        }
        Ok(stats)
    }

    /// A statement that may have changed a table (or what a name refers to) ran, here or in
    /// the cloud.
    pub(super) fn tables_changed(&mut self) {
        self.local_statistics.clear();
        self.function_kinds = None;
        self.cloud_statistics.clear();
        self.cloud_schemas.clear();
    }

    /// The plan of `request`, and whether it was made here from kept statistics. When every
    /// cloud relation's statistics are known (kept from an earlier plan for up to
    /// [`CLOUD_STATISTICS_AGE`]), it is made here, without a round trip; otherwise by the
    /// coordinator, which measures those tables and returns their statistics for the next
    /// plans.
    ///
    /// Kept statistics may be older than the table: another session may have changed its
    /// columns meanwhile. Estimates only get worse, but a plan also takes the tables' columns
    /// from them, so one made here is used only where an older column list cannot change the
    /// answer: never for a query that expands columns (`*`, `NATURAL`), and never when a
    /// bridge reading the cloud casts a column (the cast follows the column's type as it was).
    /// A plan made here that fails is made again by the coordinator (see `run_dual`).
    pub(super) async fn plan(&mut self, request: &PlanRequest) -> Result<(Plan, bool), ClientError> {
        self.cloud_statistics
            .retain(|_, (_, learned)| learned.elapsed() < CLOUD_STATISTICS_AGE);
        let mut kept = request.clone();
        for r in &mut kept.relations {
            if r.statistics.is_none()
                && let Some((stats, _)) = self.cloud_statistics.get(&r.source)
            {
                r.statistics = Some(stats.clone());
            }
        }
        if !kept.star && kept.relations.iter().all(|r| r.statistics.is_some()) {
            let plan = off_the_workers(|| pond_planner::plan(&kept));
            // A fragment's bridge runs the user's own text, whose casts do not come from the
            // statistics.
            let fragment_results: Vec<&String> = plan
                .fragments
                .iter()
                .flat_map(|f| std::iter::once(f).chain(plan.names.get(f)))
                .collect();
            let casts_cloud_columns = plan.bridges.iter().any(|b| {
                b.from == Side::Remote as i32
                    && !fragment_results.contains(&&b.target)
                    && b.sql.to_ascii_uppercase().contains("CAST(")
            });
            if !casts_cloud_columns {
                return Ok((plan, true));
            }
        }
        let mut plan = self.cloud_client("a query on cloud data")?.plan_dual(request).await?;
        let learned = Instant::now();
        for (source, stats) in std::mem::take(&mut plan.cloud_statistics) {
            self.cloud_statistics.insert(source, (stats, learned));
        }
        Ok((plan, false))
    }

    pub(super) fn plan_request(
        &mut self,
        text: &str,
        shape: &QueryShape,
        rels: &[Rel],
    ) -> Result<Planned, ClientError> {
        let mut edits = Vec::new();
        let mut relations = Vec::new();
        for (i, r) in rels.iter().enumerate() {
            let name = placeholder(i);
            edits.push((r.span, with_alias(&name, &r.alias)));
            let statistics = if r.side == Side::Local {
                Some(self.local_statistics(&r.source)?)
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
        let sql = splice(text, edits.clone());
        let mut fragments = Vec::new();
        let mut user_fragments = Vec::new();
        let to_request = |(span, text): &((usize, usize), String)| Edit {
            start: shifted(&edits, span.0) as u32,
            end: shifted(&edits, span.1) as u32,
            text: text.clone(),
        };
        // The result columns branches' reads name, which the query as the user wrote it does
        // not: DataFusion drops what a union's consumer does not read, DuckDB reads them all.
        let mut read_columns = Vec::new();
        for (subquery, read, side, inner) in self.fragments(text, shape, rels) {
            let span = subquery.span;
            let name = format!("__pond_frag_{:03}", fragments.len());
            let source_edits = inner
                .iter()
                .map(|i| &rels[*i])
                .filter(|r| r.source != text[r.span.0..r.span.1])
                .map(|r| ((r.span.0 - span.0, r.span.1 - span.0), with_alias(&r.source, &r.alias)))
                .collect();
            let source = splice(&text[span.0..span.1], source_edits);
            let (start, end) = (shifted(&edits, span.0), shifted(&edits, span.1));
            let (source, query, read, planner_read) = match (&subquery.branch, read) {
                (Some(branch), Some(read)) => {
                    let (source, query) = if branch.names_ignored {
                        let n = branch.outputs.len();
                        let kept: Vec<String> = read.columns.iter().map(|c| quote_ident(c)).collect();
                        (by_position(&source, n, &kept), by_position(&sql[start..end], n, &kept))
                    } else {
                        (source, sql[start..end].to_string())
                    };
                    read_columns.extend(read.columns);
                    (format!("({source})"), query, read.duckdb, read.planner)
                }
                _ => (
                    source,
                    sql[start + 1..end - 1].to_string(),
                    READ_RESULT.to_string(),
                    READ_RESULT.to_string(),
                ),
            };
            let user_edits = vec![(span, read)];
            fragments.push(Fragment {
                name: name.clone(),
                side: side as i32,
                relations: inner.iter().map(|i| placeholder(*i)).collect(),
                source,
                sql: query,
                edits: vec![to_request(&(span, planner_read))],
            });
            user_fragments.push(UserFragment {
                name,
                edits: user_edits,
                rels: inner,
            });
        }
        // The names a fragment's edits bring into the text, which the query as the user wrote
        // it does not name.
        let mut column_names: Vec<String> = shape.columns.iter().cloned().collect();
        column_names.extend(read_columns);
        for group in self.join_groups(text, shape, rels) {
            column_names.extend(group.introduced_columns().map(str::to_string));
            let name = format!("__pond_frag_{:03}", fragments.len());
            fragments.push(Fragment {
                name: name.clone(),
                side: group.side as i32,
                relations: group.rels.iter().map(|i| placeholder(*i)).collect(),
                source: format!("({})", group.query(|i| rels[i].source.clone())),
                sql: group.query(placeholder),
                edits: group.edits.iter().map(to_request).collect(),
            });
            user_fragments.push(UserFragment {
                name,
                edits: group.edits,
                rels: group.rels,
            });
        }
        let request = PlanRequest {
            sql,
            relations,
            run: self.run.as_str().to_string(),
            column_names,
            star: shape.star,
            downloads_only: false,
            fragments,
            link: self.link_estimate(),
            explain: false,
            prefer_fragments: self.prefer_fragments,
        };
        Ok(Planned {
            request,
            fragments: user_fragments,
        })
    }

    /// The subqueries (and set operations' branches) that may run where their data lives,
    /// outermost only: each reads one side (and at least one relation), no CTE of the query
    /// around it, and names its columns plainly (or is a branch whose names its operation
    /// ignores, and can be read again in its place); a local one must also bind on its own here.
    /// Returns each one, how a branch's result is read, its side and the indexes of the
    /// relations inside it.
    fn fragments<'q>(&self, text: &str, shape: &'q QueryShape, rels: &[Rel]) -> Vec<Candidate<'q>> {
        let mut out: Vec<Candidate<'q>> = Vec::new();
        if !self.split_subqueries {
            return out;
        }
        let mut candidates: Vec<_> = shape
            .subqueries
            .iter()
            .filter(|s| s.plain_names || s.branch.as_ref().is_some_and(|b| b.names_ignored))
            .collect();
        // Outermost first, so a subquery inside a chosen one is never chosen too.
        candidates.sort_by_key(|s| (s.span.0, std::cmp::Reverse(s.span.1)));
        for s in candidates {
            if out.iter().any(|(chosen, ..)| inside(s.span, chosen.span)) {
                continue;
            }
            let overlaps = |span: (usize, usize)| span.0 < s.span.1 && s.span.0 < span.1;
            let inner: Vec<usize> = (0..rels.len()).filter(|i| inside(rels[*i].span, s.span)).collect();
            let straddles = rels.iter().any(|r| overlaps(r.span) && !inside(r.span, s.span));
            let reads_a_cte = shape.tables.iter().any(|t| {
                inside(t.span, s.span)
                    && t.catalog.is_empty()
                    && t.schema.is_empty()
                    && shape.ctes.contains(&t.table.to_lowercase())
            });
            let Some(side) = inner.first().map(|i| rels[*i].side) else {
                continue;
            };
            if straddles || reads_a_cte || inner.iter().any(|i| rels[*i].side != side) || side == Side::Unspecified {
                continue;
            }
            let written = &text[s.span.0..s.span.1];
            let (read, alone) = match &s.branch {
                // A branch that cannot be read again leaves its subqueries to be tried.
                Some(branch) => match read_branch(text, branch) {
                    Some(read) => (Some(read), format!("SELECT * FROM ({written})")),
                    None => continue,
                },
                None => (None, format!("SELECT * FROM {written}")),
            };
            if side == Side::Local && self.local.describe(&alone).is_err() {
                continue;
            }
            out.push((s, read, side, inner));
        }
        out
    }

    pub(super) async fn run_dual(
        &mut self,
        text: &str,
        shape: &QueryShape,
        rels: &[Rel],
        finish: Finish,
        explain: bool,
    ) -> Result<(Outcome, Measured), ClientError> {
        let before = self.link.moved();
        self.probe_link().await?;
        self.learn_cloud_schemas(shape, rels).await?;
        let Planned { mut request, fragments } = self.plan_request(text, shape, rels)?;
        request.explain = explain;
        let (mut plan, from_kept) = self
            .plan(&request)
            .instrument(tracing::info_span!(target: "pond_trace", "dual.plan"))
            .await?;
        let mut planning_bytes = self.link.moved() - before;
        self.check_plan(&request, &plan)?;
        let mut measured = Measured::default();
        let mut result = self
            .execute_plan(&plan, text, rels, &fragments, finish, &mut measured)
            .await;
        // A plan made here from kept statistics that fails (a cloud table's columns changed
        // since they were measured) is made again by the coordinator, from the tables as they
        // are.
        if from_kept
            && let Err(e) = &result
            && e.code() != Some(tonic::Code::PermissionDenied)
        {
            tracing::debug!(error = %e, "a plan from kept statistics failed; asking the coordinator");
            self.cloud_statistics.clear();
            plan = self.replan(&request, &mut planning_bytes).await?;
            result = self
                .execute_plan(&plan, text, rels, &fragments, finish, &mut measured)
                .await;
        }
        // A read-only token may not upload: such a user's mixed queries run locally.
        let uploads = plan.bridges.iter().any(|b| b.from == Side::Local as i32);
        if uploads
            && request.run != "local"
            && result.as_ref().err().and_then(ClientError::code) == Some(tonic::Code::PermissionDenied)
        {
            request.run = "local".into();
            request.downloads_only = true;
            plan = self.replan(&request, &mut planning_bytes).await?;
            if plan.bridges.iter().all(|b| b.from == Side::Remote as i32) {
                result = self
                    .execute_plan(&plan, text, rels, &fragments, finish, &mut measured)
                    .await;
            }
        }
        // A split DuckDB refuses (a fragment's result that does not bind where it is read) runs
        // again as a whole query, which does not depend on the fragments' results. A refusal
        // to upload is not the split's doing.
        if let Err(e) = &result
            && !plan.fragments.is_empty()
            && e.code() != Some(tonic::Code::PermissionDenied)
        {
            tracing::warn!(error = %e, "a plan with fragments failed; planning the whole query");
            self.fragment_fallbacks += 1;
            request.fragments.clear();
            plan = self.replan(&request, &mut planning_bytes).await?;
            result = self
                .execute_plan(&plan, text, rels, &fragments, finish, &mut measured)
                .await;
        }
        // Taken only now: a call cancelled before leaves them to the next statement.
        let temps = std::mem::take(&mut self.temps);
        match self.deferred.as_mut() {
            // The final query reads them as its stream is read.
            Some(deferred) if result.is_ok() => deferred.temps = temps,
            _ => {
                for t in &temps.local {
                    self.local.drop_temp(t);
                }
                if let Some(cloud) = self.cloud.as_mut() {
                    drop_remote_temps(cloud, &temps.remote).await;
                }
            }
        }
        let (schema, batches) = result?;
        let outcome = Outcome {
            schema,
            batches,
            venue: Venue::Dual,
            bytes_moved: self.link.moved() - before,
            planning_bytes,
            plan: Some(plan),
            is_query: true,
        };
        Ok((outcome, measured))
    }

    /// `request` planned again after a run failed: its planning's traffic added to
    /// `planning_bytes`, and the plan checked.
    async fn replan(&mut self, request: &PlanRequest, planning_bytes: &mut u64) -> Result<Plan, ClientError> {
        let before = self.link.moved();
        let plan = self.plan(request).await?.0;
        *planning_bytes += self.link.moved() - before;
        self.check_plan(request, &plan)?;
        Ok(plan)
    }

    /// Refuses a plan that would make the local DuckDB do more than the query asked: the local
    /// DuckDB is not sandboxed, so SQL from the server runs here only if it reads nothing but
    /// the query's own local relations and the plan's key tables, through comparison, boolean,
    /// `LIKE` and cast operators, and final names are the relations' own or the plan's temps.
    fn check_plan(&self, request: &PlanRequest, plan: &Plan) -> Result<(), ClientError> {
        let refuse = |what: String| ClientError::Invalid(format!("refused a plan from the server: {what}"));
        let source_of = |name: &str| {
            let relation = request.relations.iter().find(|r| r.name == name).map(|r| &r.source);
            relation.or_else(|| request.fragments.iter().find(|f| f.name == name).map(|f| &f.source))
        };
        for (name, replacement) in &plan.names {
            let source = source_of(name).ok_or_else(|| refuse(format!("unknown relation {name}")))?;
            // A relation read again alike may read the bridge of another reading of its source.
            let shared = plan
                .bridges
                .iter()
                .any(|b| *replacement == pond_planner::temp_name(&b.target) && source_of(&b.target) == Some(source));
            // The final query of a plan run remotely runs only on the duckling (an upload's
            // constant columns are added back there, see `pond_planner`).
            let remote_run = plan.run_on == Side::Remote as i32;
            if !remote_run && replacement != source && *replacement != pond_planner::temp_name(name) && !shared {
                return Err(refuse(format!("{name} read as {replacement}")));
            }
        }
        for name in &plan.fragments {
            if !request.fragments.iter().any(|f| &f.name == name) || !plan.names.contains_key(name) {
                return Err(refuse(format!("unknown fragment {name}")));
            }
        }
        // A local fragment is the user's own text: a bridge may run it as written.
        let local_fragments: Vec<&str> = request
            .fragments
            .iter()
            .filter(|f| f.side == Side::Local as i32)
            .map(|f| f.source.as_str())
            .collect();
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
            // Where the bridge holds a local fragment's text as a subquery of its own (the text
            // alone could sit inside a string or a comment and read differently there).
            let mut allowed_spans: Vec<(usize, usize)> = local_fragments
                .iter()
                .flat_map(|f| sql.match_indices(f).map(|(at, f)| (at, at + f.len())))
                .filter(|span| shape.subqueries.iter().any(|s| s.span == *span))
                .collect();
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
            // Operators the planner renders in pushed filters: LIKE's forms, and arithmetic,
            // which reads nothing but its operands: of literals (`BETWEEN 1200 AND 1200 + 11`),
            // and `-` of a negative literal (`x > -5`), which DuckDB's parser keeps as a call.
            const OPERATORS: &[&str] = &[
                "+",
                "-",
                "*",
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

    /// Moves one bridge's rows into its temporary table, recording the table to drop (in the
    /// session, so a cancelled call leaves it to the next statement), or, for a few rows from
    /// the laptop, into `inlined` (its table's name → its rows as literals, `values.rs`);
    /// returns the rows moved and their Arrow data's bytes.
    async fn run_bridge(&mut self, bridge: &Bridge, inlined: &mut Inlined) -> Result<(u64, u64), ClientError> {
        if bridge.from == Side::Remote as i32 {
            // Appended as it arrives, a few megabytes at a time: a large download is never
            // held whole.
            let sql = inlined.iter().fold(bridge.sql.clone(), |sql, (name, rows)| {
                values::replace_name(&sql, name, rows)
            });
            let cloud = self.cloud_client("a download")?;
            let (schema, mut rows) = cloud.query_stream_with_schema(&sql).await?;
            self.temps.local.push(bridge.target.clone());
            self.local.create_temp(&bridge.target, &schema)?;
            let (mut group, mut bytes, mut appended, mut data_bytes) = (Vec::new(), 0, 0, 0);
            while let Some(batch) = rows.try_next().await? {
                bytes += batch.get_array_memory_size();
                data_bytes += arrow_data_bytes(&batch);
                group.push(batch);
                if bytes >= APPEND_BYTES {
                    appended += self.local.append_temp(&bridge.target, &std::mem::take(&mut group))?;
                    bytes = 0;
                }
            }
            Ok((appended + self.local.append_temp(&bridge.target, &group)?, data_bytes))
        } else {
            let (schema, batches) = self.local.query(&bridge.sql)?;
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            let data_bytes = batches.iter().map(arrow_data_bytes).sum();
            if let Some(literals) = values::inline_rows(&schema, &batches) {
                inlined.push((pond_planner::temp_name(&bridge.target), literals));
                return Ok((rows, data_bytes));
            }
            self.temps.remote.push(bridge.target.clone());
            self.cloud_client("an upload")?
                .upload_temp(&bridge.target, schema, batches)
                .await?;
            Ok((rows, data_bytes))
        }
    }

    /// Runs `plan`, recording into `measured` what this run alone moved (a retry's figures
    /// replace the failed run's).
    async fn execute_plan(
        &mut self,
        plan: &Plan,
        text: &str,
        rels: &[Rel],
        fragments: &[UserFragment],
        finish: Finish,
        measured: &mut Measured,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        *measured = Measured::default();
        let mut inlined = Inlined::new();
        for bridge in &plan.bridges {
            let started = Instant::now();
            let before = self.link.moved();
            let span = tracing::info_span!(
                target: "pond_trace",
                "dual.bridge",
                pond.bridge = %bridge.target,
                pond.from = if bridge.from == Side::Remote as i32 { "remote" } else { "local" },
                pond.rows = tracing::field::Empty,
            );
            let inlined_before = inlined.len();
            let (rows, data_bytes) = self.run_bridge(bridge, &mut inlined).instrument(span.clone()).await?;
            span.record("pond.rows", rows as i64);
            // In the planner's unit, Arrow data: over a compressed link, what it moves per
            // second (more than the wire's bytes), so estimates in that unit cost it right.
            self.observe_transfer(data_bytes, started.elapsed());
            measured.bridges.push((
                bridge.target.clone(),
                rows,
                self.link.moved() - before,
                started.elapsed(),
                inlined.len() > inlined_before,
            ));
        }
        // Each relation's placeholder becomes the plan's name for it, spliced at the offsets
        // the placeholder was, so errors can point into the user's text; a fragment that ran
        // where its data lives is read from its result instead of its relations.
        let chosen: Vec<&UserFragment> = fragments.iter().filter(|f| plan.fragments.contains(&f.name)).collect();
        let mut spans: Vec<(usize, usize)> = chosen
            .iter()
            .flat_map(|f| f.edits.iter().map(|(span, _)| *span))
            .collect();
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(ClientError::Invalid(
                "refused a plan from the server: its fragments overlap".into(),
            ));
        }
        // A bridge that went inline is read from its literals (only remote SQL reads it), also
        // where the query reads its table with constant columns added back.
        let named = |name: &str| -> String {
            inlined.iter().fold(name.to_string(), |text, (table, rows)| {
                values::replace_name(&text, table, rows)
            })
        };
        let mut edits: Vec<((usize, usize), String)> = rels
            .iter()
            .enumerate()
            .filter(|(i, _)| !chosen.iter().any(|f| f.rels.contains(i)))
            .map(|(i, r)| {
                let name = placeholder(i);
                let replacement = named(plan.names.get(&name).unwrap_or(&name));
                (r.span, with_alias(&replacement, &r.alias))
            })
            .collect();
        for f in chosen {
            let result = named(plan.names.get(&f.name).map_or(f.name.as_str(), String::as_str));
            edits.extend(f.edits.iter().map(|(span, t)| (*span, t.replace("{result}", &result))));
        }
        let final_sql = splice_mapped(text, edits);
        let started = Instant::now();
        let run_on = if plan.run_on == Side::Remote as i32 {
            Side::Remote
        } else {
            Side::Local
        };
        if finish == Finish::Defer {
            let outcome = self
                .defer(run_on, &final_sql.sql)
                .await
                .map_err(|e| final_sql.user_error(text, e))?;
            return Ok((outcome.schema, Vec::new()));
        }
        if run_on == Side::Remote {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice counts its own rows' bytes, not the buffers it shares with the rest.
    #[test]
    fn arrow_data_bytes_counts_a_slice_alone() {
        use std::sync::Arc;
        let ids = arrow::array::Int64Array::from_iter_values(0..1000);
        let names = arrow::array::StringArray::from_iter_values((0..1000).map(|i| format!("name {i:04}")));
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as arrow::array::ArrayRef),
            ("name", Arc::new(names) as arrow::array::ArrayRef),
        ])
        .unwrap();
        // 8 bytes an id; 9 characters and a 4-byte offset a name.
        assert_eq!(arrow_data_bytes(&batch), 1000 * (8 + 9 + 4));
        let tenth = batch.slice(100, 100);
        assert_eq!(arrow_data_bytes(&tenth), 100 * (8 + 9 + 4));
    }

    /// The statistics of `customers` as planning `SELECT * FROM customers` sees them.
    fn planned(session: &mut DualSession) -> pond_planner::TableStatistics {
        let text = "SELECT * FROM customers";
        let json = session.local.serialize(text).unwrap();
        let shape = crate::analyze::analyze(text, &json).unwrap();
        let rels = session.resolve(text, &shape);
        let planned = session.plan_request(text, &shape, &rels).unwrap();
        planned.request.relations[0].statistics.clone().unwrap()
    }

    fn planned_rows(session: &mut DualSession) -> f64 {
        planned(session).rows
    }

    #[tokio::test]
    async fn a_local_table_is_measured_again_only_after_a_statement_that_may_change_it() {
        let mut session = DualSession::open(None, None).await.unwrap();
        session
            .run("CREATE TABLE customers AS SELECT range AS id FROM range(100)")
            .await
            .unwrap();
        assert_eq!(planned_rows(&mut session), 100.0);
        // Changed behind the session's back: planning keeps what it measured.
        session
            .local
            .execute("INSERT INTO customers SELECT range FROM range(50)")
            .unwrap();
        assert_eq!(planned_rows(&mut session), 100.0);
        // A query changes nothing; an INSERT through the session may.
        session.run("SELECT count(*) FROM customers").await.unwrap();
        assert_eq!(planned_rows(&mut session), 100.0);
        session
            .run("INSERT INTO customers SELECT range FROM range(850)")
            .await
            .unwrap();
        assert_eq!(planned_rows(&mut session), 1000.0);
        // A table replaced by a query over itself (planned, and so measured, before the write):
        // what is kept is the new table.
        assert_eq!(planned(&mut session).columns.len(), 1);
        session
            .run("CREATE OR REPLACE TABLE customers AS SELECT id, id AS extra FROM customers WHERE id < 10")
            .await
            .unwrap();
        let replaced = planned(&mut session);
        assert_eq!((replaced.rows, replaced.columns.len()), (30.0, 2));
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
        // A local fragment's text may run where the bridge reads it as a subquery, not elsewhere.
        let source = "(SELECT upper(CAST(id AS VARCHAR)) AS n FROM customers)";
        let with_fragment = PlanRequest {
            fragments: vec![Fragment {
                name: "__pond_frag_000".into(),
                side: Side::Local as i32,
                relations: vec!["__pond_ref_000".into()],
                source: source.into(),
                ..Default::default()
            }],
            ..request.clone()
        };
        session
            .check_plan(&with_fragment, &bridge(&format!("SELECT \"n\" FROM {source}")))
            .unwrap();
        for evil in [
            format!("SELECT upper(CAST(id AS VARCHAR)) FROM customers WHERE '{source}' <> ''"),
            "SELECT upper(CAST(id AS VARCHAR)) AS n FROM customers".to_string(),
        ] {
            assert!(session.check_plan(&with_fragment, &bridge(&evil)).is_err(), "{evil}");
        }
        let mut renamed = Plan::default();
        renamed
            .names
            .insert("__pond_ref_000".into(), "read_text('/etc/passwd')".into());
        assert!(session.check_plan(&request, &renamed).is_err());
        // A second reading of a source may read the first one's bridge, not another source's.
        let read_twice = |second_source: &str| PlanRequest {
            relations: vec![
                request.relations[0].clone(),
                Relation {
                    name: "__pond_ref_001".into(),
                    side: Side::Local as i32,
                    source: second_source.into(),
                    statistics: None,
                },
            ],
            ..request.clone()
        };
        let mut shared = bridge("SELECT \"id\" FROM customers");
        for name in ["__pond_ref_000", "__pond_ref_001"] {
            shared
                .names
                .insert(name.into(), pond_planner::temp_name("__pond_ref_000"));
        }
        session.check_plan(&read_twice("customers"), &shared).unwrap();
        assert!(session.check_plan(&read_twice("secrets"), &shared).is_err());
    }
}
