//! Choosing where the query runs and what crosses the network.
//!
//! The query runs whole on one side, chosen by estimated bytes moved (by estimated time when the
//! client measured its link: bytes over bandwidth plus a round trip per transfer). Every relation held by
//! the other side crosses over, cut down to the columns and rows the query needs; where an
//! equi-join allows it, it is first reduced to the keys the running side holds (a semi-join:
//! the keys cross one way, the matching rows the other). Running remotely also costs the
//! result's download. Aggregating before moving falls out of this: a query that aggregates
//! cloud data runs remotely when its inputs from the laptop are smaller than the cloud rows it
//! reads, and only the aggregate comes back.
//!
//! When the client also timed each side (`LinkEstimate`'s rows per second), a plan's time
//! includes running its query: the rows entering the query's operators, at the speed of the
//! side that runs it, and the rows a semi-join reduces where they live, at that side's speed.
//! Scanning each table where it lives costs the same in every plan, so it is left out; what
//! differs is which side joins and aggregates, and the moved rows it reads again.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use arrow::datatypes::SchemaRef;
use pond_duckdb::engine::quote_ident;
use pond_proto::dual::{Bridge, LinkEstimate, Plan, Side, TableStatistics};

use crate::model::{QueryModel, RelationUse, SemiJoin};
use crate::statistics::fixed_width;

/// A relation as the strategy sees it.
pub(crate) struct Relation<'a> {
    pub name: &'a str,
    pub side: Side,
    pub source: &'a str,
    pub schema: SchemaRef,
    pub statistics: &'a TableStatistics,
}

/// How one relation gets to the running side.
#[derive(Debug, Clone)]
enum Move {
    Plain,
    Reduced(SemiJoin),
    /// Read from an earlier relation's plain bridge that moves the same rows.
    Shared,
}

struct Candidate {
    run_on: Side,
    bytes: f64,
    /// Transfers that wait for a reply: one per bridge, one more for a semi-join's keys, one
    /// for running the query remotely.
    round_trips: f64,
    /// Rows entering the query's operators on `run_on`: its own relations' and the moved ones.
    rows_in: f64,
    /// Rows semi-joins reduce on the other side, before they move.
    rows_reduced: f64,
    moves: BTreeMap<String, (Move, f64, f64)>,
}

/// What moving data costs over the client's link, as the client measured it: bytes over its
/// bandwidth plus a round trip per transfer; and, when it timed both sides, what running costs
/// on each. Without a measurement plans compare bytes alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkCost {
    bytes_per_second: f64,
    round_trip_seconds: f64,
    /// Rows per second into a query's operators, (local, remote).
    speeds: Option<(f64, f64)>,
}

impl LinkCost {
    pub fn measured(link: Option<&LinkEstimate>) -> Option<Self> {
        let link = link?;
        (link.bytes_per_second.is_finite()
            && link.bytes_per_second > 0.0
            && link.round_trip_seconds.is_finite()
            && link.round_trip_seconds >= 0.0)
            .then_some(Self {
                bytes_per_second: link.bytes_per_second,
                round_trip_seconds: link.round_trip_seconds,
                speeds: [link.local_rows_per_second, link.remote_rows_per_second]
                    .iter()
                    .all(|s| s.is_finite() && *s > 0.0)
                    .then_some((link.local_rows_per_second, link.remote_rows_per_second)),
            })
    }

    pub fn seconds(&self, bytes: f64, round_trips: f64) -> f64 {
        bytes / self.bytes_per_second + round_trips * self.round_trip_seconds
    }

    /// What `rows` entering a query's operators cost on `side`; nothing when unmeasured.
    pub fn running_seconds(&self, side: Side, rows: f64) -> f64 {
        self.speed(side).map_or(0.0, |speed| rows / speed)
    }

    fn speed(&self, side: Side) -> Option<f64> {
        self.speeds
            .map(|(local, remote)| if side == Side::Remote { remote } else { local })
    }
}

/// A plan's cost for comparing it with another: its estimated time over a measured link,
/// otherwise its bytes.
pub(crate) fn score(plan: &Plan, link: Option<LinkCost>) -> f64 {
    if link.is_some() {
        plan.estimated_seconds
    } else {
        plan.estimated_bytes
    }
}

/// Bytes without a measured link; otherwise the time moving `bytes` in `round_trips` and
/// running `rows` on `side`.
fn cost(link: Option<LinkCost>, side: Side, bytes: f64, round_trips: f64, rows: f64) -> f64 {
    link.map_or(bytes, |l| l.seconds(bytes, round_trips) + l.running_seconds(side, rows))
}

impl Candidate {
    fn cost(&self, link: Option<LinkCost>) -> f64 {
        cost(link, self.run_on, self.bytes, self.round_trips, self.rows_in)
            + link.map_or(0.0, |l| l.running_seconds(other(self.run_on), self.rows_reduced))
    }
}

fn other(side: Side) -> Side {
    if side == Side::Remote {
        Side::Local
    } else {
        Side::Remote
    }
}

/// What the strategy knows about the query: DataFusion's model, or the fallback's guesses.
pub(crate) struct Knowledge {
    pub uses: BTreeMap<String, RelationUse>,
    pub result_bytes: f64,
    pub semi_joins: Vec<SemiJoin>,
    pub model: Option<QueryModel>,
    pub fallback_reason: Option<String>,
}

impl Knowledge {
    pub fn from_model(model: QueryModel) -> Self {
        Self {
            uses: model.uses.clone(),
            result_bytes: model.result_rows * model.result_row_bytes,
            semi_joins: model.semi_joins.clone(),
            model: Some(model),
            fallback_reason: None,
        }
    }

    /// Whole relations, cut to the columns the query names. Without a model the result size
    /// is unknown; it is taken as the smallest relation, so a blind plan ships the smaller
    /// side to the larger, the classic rule for a join of unknown selectivity.
    pub fn fallback(relations: &[Relation<'_>], column_names: &[String], star: bool, reason: String) -> Self {
        let names: BTreeSet<String> = column_names.iter().map(|c| c.to_lowercase()).collect();
        let mut uses = BTreeMap::new();
        for r in relations {
            let fields = r.schema.fields();
            let mut keep: Vec<usize> = (0..fields.len())
                .filter(|i| star || names.contains(&fields[*i].name().to_lowercase()))
                .collect();
            if keep.is_empty() && !fields.is_empty() {
                keep.push(0);
            }
            let width = |i: usize| {
                r.statistics
                    .columns
                    .get(i)
                    .map(|c| c.avg_bytes)
                    .filter(|w| *w > 0.0)
                    .unwrap_or_else(|| fixed_width(fields[i].data_type()).unwrap_or(16.0))
            };
            uses.insert(
                r.name.to_string(),
                RelationUse {
                    columns: keep.iter().map(|i| fields[*i].name().clone()).collect(),
                    filters: Vec::new(),
                    rows: r.statistics.rows,
                    row_bytes: keep.iter().map(|i| width(*i)).sum::<f64>().max(1.0),
                    scans: 1,
                    existence_only: false,
                    constants: Vec::new(),
                },
            );
        }
        let result_bytes = uses
            .values()
            .map(|u| u.rows * u.row_bytes)
            .fold(f64::INFINITY, f64::min)
            .min(f64::MAX);
        Self {
            uses,
            result_bytes,
            semi_joins: Vec::new(),
            model: None,
            fallback_reason: Some(reason),
        }
    }
}

/// Picks the cheapest side allowed by `run` and writes the plan.
pub(crate) fn choose(
    relations: &[Relation<'_>],
    knowledge: &Knowledge,
    run: &str,
    downloads_only: bool,
    link: Option<LinkCost>,
) -> Plan {
    let sides: &[Side] = match run {
        "local" => &[Side::Local],
        "remote" => &[Side::Remote],
        _ => &[Side::Local, Side::Remote],
    };
    let best = sides
        .iter()
        .map(|s| candidate(relations, knowledge, *s, downloads_only, link))
        .min_by(|a, b| a.cost(link).total_cmp(&b.cost(link)))
        .expect("at least one side");
    emit(relations, knowledge, best, link)
}

fn candidate(
    relations: &[Relation<'_>],
    knowledge: &Knowledge,
    run_on: Side,
    downloads_only: bool,
    link: Option<LinkCost>,
) -> Candidate {
    let side_of = |name: &str| relations.iter().find(|r| r.name == name).map(|r| r.side);
    let mut moves = BTreeMap::new();
    let (mut bytes, mut round_trips) = if run_on == Side::Remote {
        (knowledge.result_bytes, 1.0)
    } else {
        (0.0, 0.0)
    };
    let mut rows_in: f64 = relations
        .iter()
        .filter(|r| r.side == run_on)
        .filter_map(|r| knowledge.uses.get(r.name))
        .map(|u| u.rows)
        .sum();
    let mut rows_reduced = 0.0;
    // The plain cuts moved so far: a relation read again alike (TPC-DS reads `date_dim` up to
    // four times) reads the same bridge.
    let mut moved_alike: BTreeSet<(i32, String)> = BTreeSet::new();
    for r in relations.iter().filter(|r| r.side != run_on) {
        let Some(u) = knowledge.uses.get(r.name) else { continue };
        let plain = (r.side as i32, select(r.source, u, None));
        if moved_alike.contains(&plain) {
            rows_in += u.rows;
            moves.insert(r.name.to_string(), (Move::Shared, 0.0, u.rows));
            continue;
        }
        let mut best = (Move::Plain, u.rows * u.row_bytes, u.rows);
        let mut best_trips = 1.0;
        // What the best way so far costs, its reduction's running included: every semi-join
        // of this relation is charged alike, so none must beat another by that margin.
        let mut best_cost = cost(link, run_on, best.1, best_trips, best.2);
        // A semi-join sends keys the other way: not when nothing may be uploaded.
        for s in knowledge
            .semi_joins
            .iter()
            .filter(|s| s.reduce == r.name && !downloads_only)
        {
            if side_of(&s.by) != Some(run_on) {
                continue;
            }
            let Some(by) = knowledge.uses.get(&s.by) else { continue };
            let keys = keys_moved(s, by, relations.iter().find(|x| x.name == s.by));
            let rows = u.rows * (keys / key_domain(s, u, r)).min(1.0);
            let moved = keys * s.by_key_bytes + rows * u.row_bytes;
            // The reduction joins all of the relation's rows where it lives.
            let reducing = link.map_or(0.0, |l| l.running_seconds(r.side, u.rows));
            let reduced = cost(link, run_on, moved, 2.0, rows) + reducing;
            if reduced < best_cost {
                best = (Move::Reduced(s.clone()), moved, rows);
                best_trips = 2.0;
                best_cost = reduced;
            }
        }
        bytes += best.1;
        round_trips += best_trips;
        rows_in += best.2;
        match best.0 {
            Move::Reduced(_) => rows_reduced += u.rows,
            _ => {
                moved_alike.insert(plain);
            }
        }
        moves.insert(r.name.to_string(), best);
    }
    Candidate {
        run_on,
        bytes,
        round_trips,
        rows_in,
        rows_reduced,
        moves,
    }
}

/// The keys a semi-join's bridge moves: the distinct join keys among the rows it reads, `by`'s
/// rows after the filters it carries. The join's own estimate (`by_distinct`) counts the keys
/// left after everything below the join, which may be far fewer: filters DuckDB SQL cannot
/// say, a scalar subquery's comparison, another join; the bridge applies none of them.
fn keys_moved(s: &SemiJoin, by: &RelationUse, relation: Option<&Relation<'_>>) -> f64 {
    let read = match relation.and_then(|r| table_distinct(r, &s.by_column).map(|d| (r, d))) {
        Some((r, distinct)) => surviving_keys(distinct, r.statistics.rows, by.rows),
        None => by.rows,
    };
    read.max(s.by_distinct).min(by.rows).max(1.0)
}

/// How many distinct keys the rows of the reduced relation that would move hold: the share of
/// them a semi-join keeps is the share of these its keys are. The table's own count thinned by
/// the relation's own filters (`u`'s rows), not what the join estimate saw, which a join below
/// it may have cut to the rows left (TPC-DS chains a fact table's joins; a second semi-join then
/// looked as if it kept nearly everything).
fn key_domain(s: &SemiJoin, u: &RelationUse, relation: &Relation<'_>) -> f64 {
    match table_distinct(relation, &s.reduce_column) {
        Some(distinct) => surviving_keys(distinct, relation.statistics.rows, u.rows).max(1.0),
        None => s.reduce_distinct.max(1.0),
    }
}

/// The distinct values of `relation`'s column `column` in its table's statistics, when they
/// were measured (and the table has rows).
fn table_distinct(relation: &Relation<'_>, column: &str) -> Option<f64> {
    let i = relation.schema.index_of(column).ok()?;
    let distinct = relation.statistics.columns.get(i)?.distinct;
    (distinct > 0.0 && relation.statistics.rows > 0.0).then_some(distinct)
}

/// The distinct keys left among `kept` of a table's `rows`, which hold `distinct` keys: each
/// survives unless all of its rows' copies are dropped.
fn surviving_keys(distinct: f64, rows: f64, kept: f64) -> f64 {
    let kept = (kept / rows).clamp(0.0, 1.0);
    let copies = (rows / distinct).max(1.0);
    distinct * (1.0 - (1.0 - kept).powf(copies))
}

fn select(source: &str, u: &RelationUse, extra: Option<String>) -> String {
    let columns: Vec<String> = u.columns.iter().map(|c| quote_ident(c)).collect();
    // A relation whose schema the planner never saw (a remote reader) moves whole.
    let columns = if columns.is_empty() {
        "*".to_string()
    } else {
        columns.join(", ")
    };
    let mut filters = u.filters.clone();
    filters.extend(extra);
    let distinct = if u.existence_only { "DISTINCT " } else { "" };
    let mut sql = format!("SELECT {distinct}{columns} FROM {source}");
    if !filters.is_empty() {
        sql += " WHERE ";
        sql += &filters.join(" AND ");
    }
    sql
}

/// What of `u` a bridge from `side` to `run_on` moves, and the constant columns it leaves
/// behind: only uploads leave any, since the query that reads them then runs on the duckling,
/// whose SQL the client need not check (the local DuckDB runs only what it can check); and
/// only while a column still moves.
fn leaving_constants(u: &RelationUse, side: Side, run_on: Side) -> (Cow<'_, RelationUse>, &[(String, String)]) {
    let left = |c: &String| u.constants.iter().any(|(k, _)| k == c);
    if u.constants.is_empty() || side != Side::Local || run_on != Side::Remote || u.columns.iter().all(left) {
        return (Cow::Borrowed(u), &[]);
    }
    let mut moved = u.clone();
    moved.columns.retain(|c| !left(c));
    (Cow::Owned(moved), &u.constants)
}

/// What the query reads for a relation the temporary table `target` holds: the table, or,
/// when its bridge left `constants` behind, the table with them added back as values, in the
/// relation's column order (`u.columns`).
fn read_with(target: &str, u: &RelationUse, constants: &[(String, String)]) -> String {
    if constants.is_empty() {
        return temp_name(target);
    }
    let columns: Vec<String> = u
        .columns
        .iter()
        .map(|c| match constants.iter().find(|(k, _)| k == c) {
            Some((_, value)) => format!("{value} AS {}", quote_ident(c)),
            None => quote_ident(c),
        })
        .collect();
    format!("(SELECT {} FROM {})", columns.join(", "), temp_name(target))
}

/// The name a temporary table of the plan has on either side.
pub fn temp_name(name: &str) -> String {
    format!("temp.main.{}", quote_ident(name))
}

fn emit(relations: &[Relation<'_>], knowledge: &Knowledge, best: Candidate, link: Option<LinkCost>) -> Plan {
    let run_on = best.run_on;
    let mut bridges: Vec<Bridge> = Vec::new();
    let mut names = std::collections::HashMap::new();
    for r in relations {
        let Some((how, bytes, rows)) = best.moves.get(r.name) else {
            names.insert(r.name.to_string(), r.source.to_string());
            continue;
        };
        let Some(full) = knowledge.uses.get(r.name) else {
            names.insert(r.name.to_string(), r.source.to_string());
            continue;
        };
        let (moved, constants) = leaving_constants(full, r.side, run_on);
        let u: &RelationUse = &moved;
        let extra = match how {
            Move::Shared => {
                let sql = select(r.source, u, None);
                // Found unless the request repeats a relation's name: then it moves on its own.
                if let Some(shared) = bridges.iter().find(|b| b.sql == sql && b.from == r.side as i32) {
                    names.insert(r.name.to_string(), read_with(&shared.target, full, constants));
                    continue;
                }
                None
            }
            Move::Plain => None,
            Move::Reduced(s) => {
                let by = relations.iter().find(|x| x.name == s.by).expect("semi-join partner");
                let by_use = &knowledge.uses[&s.by];
                let keys_table = format!("__pond_keys_{}", r.name.trim_start_matches("__pond_"));
                let mut keys_sql = format!("SELECT DISTINCT {} FROM {}", quote_ident(&s.by_column), by.source);
                if !by_use.filters.is_empty() {
                    keys_sql += " WHERE ";
                    keys_sql += &by_use.filters.join(" AND ");
                }
                let keys = keys_moved(s, by_use, Some(by));
                bridges.push(Bridge {
                    from: run_on as i32,
                    sql: keys_sql,
                    target: keys_table.clone(),
                    estimated_rows: keys,
                    estimated_bytes: keys * s.by_key_bytes,
                });
                Some(format!(
                    "{} IN (SELECT {} FROM {})",
                    quote_ident(&s.reduce_column),
                    quote_ident(&s.by_column),
                    temp_name(&keys_table)
                ))
            }
        };
        let reduced = matches!(how, Move::Reduced(_));
        let key_bytes: f64 = bridges.last().filter(|_| reduced).map_or(0.0, |b| b.estimated_bytes);
        bridges.push(Bridge {
            from: r.side as i32,
            sql: select(r.source, u, extra),
            target: r.name.to_string(),
            estimated_rows: *rows,
            estimated_bytes: bytes - key_bytes,
        });
        names.insert(r.name.to_string(), read_with(r.name, full, constants));
    }
    let strategy = strategy_label(run_on, &best, knowledge);
    let estimated_seconds = link.map_or(0.0, |l| best.cost(Some(l)));
    let explain = explain(relations, knowledge, &best, &bridges, link);
    Plan {
        estimated_seconds,
        bridges,
        run_on: run_on as i32,
        names,
        estimated_bytes: best.bytes,
        explain,
        strategy,
        fragments: Vec::new(),
        cloud_statistics: Default::default(),
    }
}

fn side_letter(side: Side) -> &'static str {
    if side == Side::Remote { "R" } else { "L" }
}

fn strategy_label(run_on: Side, best: &Candidate, knowledge: &Knowledge) -> String {
    let reduced = best.moves.values().filter(|m| matches!(m.0, Move::Reduced(_))).count();
    let mut label = match run_on {
        Side::Remote => "upload local data, run remotely".to_string(),
        _ => "download cloud data, run locally".to_string(),
    };
    if reduced > 0 {
        let _ = write!(label, ", {reduced} semi-join reduction(s)");
    }
    if knowledge.model.is_none() {
        label += ", whole tables (DataFusion could not plan the query)";
    }
    label
}

/// Bytes with a binary unit.
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn explain(
    relations: &[Relation<'_>],
    knowledge: &Knowledge,
    best: &Candidate,
    bridges: &[Bridge],
    link: Option<LinkCost>,
) -> String {
    let run = side_letter(best.run_on);
    let readable = |text: &str| {
        let mut text = text.to_string();
        for r in relations {
            text = text.replace(r.name, r.source);
        }
        text
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Dual execution: the query runs {} ({run}); estimated bytes moved: {}",
        if best.run_on == Side::Remote {
            "remotely"
        } else {
            "locally"
        },
        human_bytes(best.bytes)
    );
    if let Some(l) = link {
        let _ = writeln!(
            out,
            "Estimated time moving data: {:.1} ms ({:.0} round trip(s) over a link measured at {}/s of Arrow data, {:.2} ms round trip)",
            l.seconds(best.bytes, best.round_trips) * 1e3,
            best.round_trips,
            human_bytes(l.bytes_per_second),
            l.round_trip_seconds * 1e3
        );
        if let Some(speed) = l.speed(best.run_on) {
            let _ = writeln!(
                out,
                "Estimated time running: {:.1} ms (~{:.0} rows into the query's operators on {run}, which ran {:.1}M rows/s when timed; ~{:.0} rows into semi-joins on the other side)",
                (best.cost(Some(l)) - l.seconds(best.bytes, best.round_trips)) * 1e3,
                best.rows_in,
                speed / 1e6,
                best.rows_reduced
            );
        }
    }
    if let Some(reason) = &knowledge.fallback_reason {
        let _ = writeln!(out, "Cost model: fallback to whole tables ({reason})");
    }
    if best.run_on == Side::Remote {
        let _ = writeln!(out, "Result download: ~{}", human_bytes(knowledge.result_bytes));
    }
    for (i, b) in bridges.iter().enumerate() {
        let from = Side::try_from(b.from).unwrap_or(Side::Local);
        let _ = writeln!(
            out,
            "Bridge {}: {} ~{:.0} rows, ~{} ({}→{}): {} → {}",
            i + 1,
            if from == Side::Remote { "download" } else { "upload" },
            b.estimated_rows,
            human_bytes(b.estimated_bytes),
            side_letter(from),
            if from == Side::Remote { "L" } else { "R" },
            readable(&b.sql),
            b.target
        );
    }
    if let Some(model) = &knowledge.model {
        let _ = writeln!(out, "Plan:");
        render_tree(&model.plan, 1, relations, best, &mut out, &readable);
    }
    out
}

fn render_tree(
    plan: &datafusion_expr::LogicalPlan,
    depth: usize,
    relations: &[Relation<'_>],
    best: &Candidate,
    out: &mut String,
    readable: &dyn Fn(&str) -> String,
) {
    let (side, note) = match plan {
        datafusion_expr::LogicalPlan::TableScan(scan) => {
            let name = scan.table_name.table();
            let side = relations
                .iter()
                .find(|r| r.name == name)
                .map_or(best.run_on, |r| r.side);
            let note = match best.moves.get(name) {
                Some((Move::Plain, bytes, rows)) => format!(" → moves ~{rows:.0} rows, ~{}", human_bytes(*bytes)),
                Some((Move::Reduced(s), bytes, rows)) => format!(
                    " → semi-join on {} ∈ keys of {}: moves ~{rows:.0} rows, ~{}",
                    s.reduce_column,
                    readable(&s.by),
                    human_bytes(*bytes)
                ),
                Some((Move::Shared, _, rows)) => {
                    format!(" → ~{rows:.0} rows, read from the bridge of an identical scan")
                }
                None => String::new(),
            };
            (side, note)
        }
        _ => (best.run_on, String::new()),
    };
    let line = readable(&plan.display().to_string());
    let _ = writeln!(out, "{}{line} ({}){note}", "  ".repeat(depth), side_letter(side));
    for input in plan.inputs() {
        render_tree(input, depth + 1, relations, best, out, readable);
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;
    use pond_proto::dual::PlanRequest;

    use super::*;
    use crate::testing::relation;

    /// The plan of `filter` over local customers joined with cloud orders, run as `run` says.
    fn planned(select: &str, filter: &str, run: &str) -> Plan {
        let sql = format!(
            "SELECT {select}, count(*) FROM __pond_ref_000 c JOIN __pond_ref_001 o ON o.customer_id = c.id \
             WHERE {filter} GROUP BY ALL"
        );
        let customers = [
            ("id", DataType::Int64, 100.0),
            ("region", DataType::Utf8, 100.0),
            ("segment", DataType::Utf8, 100.0),
            ("tier", DataType::Int64, 100.0),
            ("score", DataType::Float64, 100.0),
        ];
        let request = PlanRequest {
            relations: vec![
                relation("__pond_ref_000", Side::Local, "customers", 100_000.0, &customers),
                relation(
                    "__pond_ref_001",
                    Side::Remote,
                    "my_db.main.orders",
                    10_000_000.0,
                    &[
                        ("customer_id", DataType::Int64, 100.0),
                        ("amount", DataType::Int64, 100.0),
                    ],
                ),
            ],
            run: run.into(),
            // As the client names them from DuckDB's parse of the text.
            column_names: ["id", "region", "segment", "tier", "score", "customer_id"]
                .into_iter()
                .filter(|c| sql.contains(&format!(".{c}")))
                .map(String::from)
                .collect(),
            sql,
            ..Default::default()
        };
        crate::plan(&request)
    }

    /// A request for `sql` over a local relation `__pond_ref_000` and cloud orders
    /// `__pond_ref_001` of ten million rows, whose names the text uses are `columns`.
    fn two_sided(
        sql: &str,
        run: &str,
        local: pond_proto::dual::Relation,
        orders: &[(&str, DataType, f64)],
        columns: &[&str],
    ) -> PlanRequest {
        let remote = relation(
            "__pond_ref_001",
            Side::Remote,
            "my_db.main.orders",
            10_000_000.0,
            orders,
        );
        PlanRequest {
            relations: vec![local, remote],
            run: run.into(),
            column_names: columns.iter().map(|c| c.to_string()).collect(),
            sql: sql.into(),
            ..Default::default()
        }
    }

    fn upload(plan: &Plan) -> &Bridge {
        plan.bridges
            .iter()
            .find(|b| b.target == "__pond_ref_000")
            .expect("customers move")
    }

    #[test]
    fn an_upload_leaves_behind_columns_only_a_filter_holds_to_a_value() {
        let plan = planned("c.region", "c.segment = 'segment-7' AND c.tier IN (3, 4)", "remote");
        let bridge = upload(&plan);
        let (columns, filters) = bridge.sql.split_once(" WHERE ").unwrap();
        assert_eq!(columns, "SELECT \"id\", \"region\" FROM customers", "{}", bridge.sql);
        assert!(
            filters.contains("\"segment\" = 'segment-7'") && filters.contains("\"tier\" IN (3::BIGINT, 4::BIGINT)")
        );
        assert_eq!(
            plan.names["__pond_ref_000"],
            "(SELECT \"id\", \"region\", 'segment-7' AS \"segment\", 3::BIGINT AS \"tier\" FROM temp.main.\"__pond_ref_000\")"
        );
    }

    #[test]
    fn columns_the_query_reads_otherwise_cross_as_they_are() {
        let moved = |plan: &Plan| {
            let sql = &upload(plan).sql;
            sql.split_once(" WHERE ")
                .map_or(sql.clone(), |(columns, _)| columns.to_string())
        };
        // Returned by the query.
        let plan = planned("c.segment", "c.segment = 'segment-7'", "remote");
        assert!(moved(&plan).contains("\"segment\""), "{}", moved(&plan));
        assert_eq!(plan.names["__pond_ref_000"], temp_name("__pond_ref_000"));
        // Read by a second filter, whose answer on a stand-in value could differ.
        let plan = planned(
            "c.region",
            "c.segment = 'segment-7' AND c.segment LIKE 'seg%'",
            "remote",
        );
        assert!(moved(&plan).contains("\"segment\""), "{}", moved(&plan));
        // Floating point: -0.0 = 0.0, yet they print apart.
        let plan = planned("c.region", "c.score = 1.5", "remote");
        assert!(moved(&plan).contains("\"score\""), "{}", moved(&plan));
        // A subquery expression reads the relation around it, which the scans need not list.
        let plan = planned(
            "c.region, (SELECT max(o2.amount) FROM __pond_ref_001 o2 WHERE o2.amount > c.tier) AS m",
            "c.tier IN (3, 4)",
            "remote",
        );
        assert!(moved(&plan).contains("\"tier\""), "{}", moved(&plan));
        // Run locally, customers do not move; what the final query reads stays the table.
        let plan = planned("c.region", "c.segment = 'segment-7'", "local");
        assert_eq!(plan.names["__pond_ref_000"], "customers");
    }

    #[test]
    fn a_relation_read_twice_under_different_filters_moves_the_rows_either_keeps() {
        // TPC-DS's shape: a CTE over a local dimension, read for one year and for the next.
        let sql = "WITH t AS (SELECT d.year AS year, sum(o.amount) AS total FROM __pond_ref_000 d \
                   JOIN __pond_ref_001 o ON o.date_id = d.id GROUP BY d.year) \
                   SELECT a.total, b.total FROM t a, t b WHERE a.year = 2001 AND b.year = 2002";
        let dates = [("id", DataType::Int64, 73_049.0), ("year", DataType::Int64, 200.0)];
        let orders = [
            ("date_id", DataType::Int64, 73_049.0),
            ("amount", DataType::Int64, 1000.0),
        ];
        let request = two_sided(
            sql,
            "remote",
            relation("__pond_ref_000", Side::Local, "dates", 73_049.0, &dates),
            &orders,
            &["id", "year", "date_id", "amount", "total"],
        );
        let plan = crate::plan(&request);
        let bridge = upload(&plan);
        let (_, filters) = bridge.sql.split_once(" WHERE ").expect("the dates move filtered");
        assert!(
            filters.contains(" OR ") && filters.contains("2001") && filters.contains("2002"),
            "{}",
            bridge.sql
        );
        // Two years of 200, not every date.
        assert!(
            bridge.estimated_rows < 73_049.0 / 10.0,
            "{} rows",
            bridge.estimated_rows
        );
    }

    #[test]
    fn a_relation_a_subquery_expression_reads_moves_unfiltered() {
        // The correlated count reads every customer, whatever the outer reads keep.
        let customers = [
            ("id", DataType::Int64, 100_000.0),
            ("region", DataType::Utf8, 10.0),
            ("credit", DataType::Int64, 1000.0),
        ];
        let orders = [
            ("customer_id", DataType::Int64, 100_000.0),
            ("amount", DataType::Int64, 1000.0),
        ];
        let planned = |sql: &str, run: &str| {
            let request = two_sided(
                sql,
                run,
                relation("__pond_ref_000", Side::Local, "customers", 100_000.0, &customers),
                &orders,
                &["id", "region", "credit", "customer_id", "amount"],
            );
            let plan = crate::plan(&request);
            assert!(
                !plan.strategy.contains("whole tables"),
                "not modelled: {sql}: {}",
                plan.strategy
            );
            plan
        };
        // Moved with every row and duplicate.
        let whole = |b: &Bridge| !b.sql.contains(" WHERE ") && !b.sql.contains("DISTINCT");
        for sql in [
            // One filtered read.
            "WITH c AS (SELECT id, region, credit FROM __pond_ref_000) \
             SELECT a.id, o.amount, (SELECT count(*) FROM c x WHERE x.credit > a.credit) AS richer \
             FROM c a JOIN __pond_ref_001 o ON o.customer_id = a.id WHERE a.region = 'EU'",
            // Two reads filtered apart.
            "WITH c AS (SELECT id, region, credit FROM __pond_ref_000) \
             SELECT a.id, b.id AS other, o.amount, (SELECT count(*) FROM c x WHERE x.credit > a.credit) AS richer \
             FROM c a JOIN c b ON a.credit = b.credit JOIN __pond_ref_001 o ON o.customer_id = a.id \
             WHERE a.region = 'EU' AND b.region = 'US'",
        ] {
            let plan = planned(sql, "remote");
            assert!(whole(upload(&plan)), "{}", upload(&plan).sql);
        }
        // Read by a semi-join (whose side needs neither duplicates nor rows without a match)
        // and by a subquery expression (which counts them all).
        let sql = "WITH c AS (SELECT id, region, credit FROM __pond_ref_000) \
                   SELECT o.amount, (SELECT count(*) FROM c x WHERE x.credit > o.amount) AS n \
                   FROM __pond_ref_001 o WHERE o.customer_id IN (SELECT id FROM c WHERE region = 'EU')";
        for run in ["remote", "local"] {
            for b in &planned(sql, run).bridges {
                assert!(b.target != "__pond_ref_000" || whole(b), "{run}: {}", b.sql);
                // Orders may be cut to the customers' keys; the customers are never cut to
                // the orders'.
                assert!(!b.target.contains("keys_ref_000"), "{run}: {}", b.sql);
            }
        }
    }
}
