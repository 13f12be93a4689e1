//! Fragments: parts of a query that read one side only run there, so only their results cross.
//!
//! The client marks the parts of a query that read one side only and name their output columns
//! plainly: each parenthesized subquery (a derived table, a CTE's body, a subquery expression),
//! each branch of a set operation (one whose names the operation ignores is renamed by the
//! client to plain names of its own) and, in a comma-separated FROM list, the relations one side
//! holds joined by the WHERE terms that read only them (possibly aggregated there in part, when
//! the query aggregates them). Each fragment DataFusion can model on its own becomes a relation
//! of its own: its result is estimated from its relations' statistics, and the strategy moves it
//! like any relation (cut to the columns and rows the query needs, or semi-join reduced), or
//! reads it inline where the query runs. Every subset of fragments that can run together is
//! planned (fragments that edit the same text, such as a join group aggregated early or not,
//! cannot; past [`MAX_PLANNED`] such subsets, the largest ones and each fragment alone; past
//! [`MAX_ENUMERATED`] fragments one greedy subset), and the cheapest plan wins (fewest bytes,
//! or least time over a measured link); the whole-query plan is kept on a tie.
//!
//! Invariants:
//! - **A fragment stands alone.** It is used only when DataFusion plans it by itself, so a
//!   subquery that refers to the query around it (correlated, lateral) never moves.
//! - **A fragment's result is what the query would have read there.** The client's edits make
//!   the query read the result under the names it used (a subquery's text becomes
//!   `(SELECT * FROM <its result>)`, a branch's `SELECT * FROM <its result>`; a join's first
//!   relation becomes the result, the others a one-row relation, and its WHERE terms `TRUE`),
//!   and the names DataFusion gives the result's columns must be unique.
//! - **Only modelled plans compete.** A subset whose query DataFusion cannot plan, or whose
//!   fragments' edits overlap, is skipped: its estimate would be a guess.

use arrow::datatypes::{DataType, Field, Schema};
use pond_proto::dual::{ColumnStatistics, Edit, Fragment, Plan, PlanRequest, Relation, Side, TableStatistics};

use crate::model::{self, RelationInput};
use crate::statistics::{decode_schema, encode_schema};
use crate::strategy::{LinkCost, human_bytes, score};

/// Up to this many fragments compatible subsets are enumerated; beyond, one greedy subset.
const MAX_ENUMERATED: usize = 12;
/// The client names a join group's partial aggregates with this prefix.
const PARTIAL_PREFIX: &str = "__pond_partial_";
/// Beyond this many compatible subsets, only the largest ones (and each fragment alone) are
/// modelled.
const MAX_PLANNED: usize = 64;
/// The share of a query's estimated time worth spending on looking for a better split, over a
/// measured link; the subsets most likely to pay are modelled first. Modelling a subset costs
/// about what planning the whole query did (DataFusion plans it again): 2 ms for a small query,
/// 19 ms for TPC-DS Q4, whose 7 subsets once added 120 ms to a 580 ms query they did not
/// improve.
const PLANNING_SHARE: f64 = 0.25;

/// The best of `whole` and the plans that run some of the request's fragments on their sides;
/// planning `whole` took `whole_seconds`.
pub(crate) fn improve(request: &PlanRequest, run: &str, whole: Plan, whole_seconds: f64) -> Plan {
    let (mut fragments, mut work): (Vec<(Fragment, Relation)>, Vec<f64>) =
        modelled(request).into_iter().map(|(f, r, w)| ((f, r), w)).unzip();
    // Subsets are bit masks of a u64.
    fragments.truncate(63);
    work.truncate(63);
    if fragments.is_empty() {
        return whole;
    }
    let n = fragments.len();
    // Two fragments that edit the same text (a join group aggregated early or not) or read
    // the same relation never run together.
    let conflicts: Vec<u64> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && overlap(&fragments[i].0, &fragments[j].0))
                .fold(0u64, |m, j| m | (1 << j))
        })
        .collect();
    let compatible = |subset: u64| (0..n).all(|i| subset & (1 << i) == 0 || conflicts[i] & subset == 0);
    let subsets: Vec<u64> = if n <= MAX_ENUMERATED {
        let mut all: Vec<u64> = (1..(1u64 << n)).filter(|s| compatible(*s)).collect();
        if all.len() > MAX_PLANNED {
            // The largest subsets (the splits that cut most) and each fragment alone.
            all.sort_by_key(|s| std::cmp::Reverse(s.count_ones()));
            let mut kept: Vec<u64> = all[..MAX_PLANNED].to_vec();
            let alone: Vec<u64> = (0..n).map(|i| 1u64 << i).filter(|s| !kept.contains(s)).collect();
            kept.extend(alone);
            all = kept;
        }
        all
    } else {
        vec![greedy(n, &conflicts)]
    };
    let link = LinkCost::measured(request.link.as_ref());
    let subsets = within_budget(
        subsets,
        n,
        &conflicts,
        &whole,
        whole_seconds,
        request.prefer_fragments || link.is_none(),
    );
    let mut best = whole;
    for subset in subsets {
        let chosen: Vec<&(Fragment, Relation)> = (0..n)
            .filter(|i| subset & (1 << i) != 0)
            .map(|i| &fragments[i])
            .collect();
        let Some((sql, relations)) = outer(request, &chosen) else {
            continue;
        };
        let (mut plan, modelled) = crate::plan_relations(&sql, &relations, request, run);
        // A strictly better estimate only: on a tie the whole query's plan is the simpler one.
        // Forced splits rank by fragments first.
        let rank = |p: &Plan, fragments: usize| {
            let forced = if request.prefer_fragments { fragments } else { 0 };
            (std::cmp::Reverse(forced), score(p, link))
        };
        // The fragments' own operators run on their sides, over the rows entering them.
        if let Some(l) = link {
            plan.estimated_seconds += (0..n)
                .filter(|i| subset & (1 << i) != 0)
                .map(|i| l.running_seconds(Side::try_from(fragments[i].0.side).unwrap_or(Side::Local), work[i]))
                .sum::<f64>();
        }
        if !modelled || rank(&plan, chosen.len()) >= rank(&best, best.fragments.len()) {
            continue;
        }
        plan.fragments = chosen.iter().map(|(f, _)| f.name.clone()).collect();
        plan.strategy += &format!(", {} fragment(s) run where their data lives", chosen.len());
        let aggregated = chosen.iter().filter(|(f, _)| f.source.contains(PARTIAL_PREFIX)).count();
        if aggregated > 0 {
            plan.strategy += &format!(", {aggregated} aggregated before crossing");
        }
        plan.explain = explain_fragments(&chosen, &plan) + &plan.explain;
        best = plan;
    }
    best
}

/// Each fragment that conflicts with none taken before it.
fn greedy(n: usize, conflicts: &[u64]) -> u64 {
    (0..n).fold(0u64, |s, i| if conflicts[i] & s == 0 { s | (1 << i) } else { s })
}

/// The subsets worth modelling for a query whose whole plan is `whole`, made in
/// `whole_seconds`: all of them when `unbounded` (bytes alone, or tests' forced splits);
/// otherwise as many as [`PLANNING_SHARE`] of its estimated time pays for at that cost each (at
/// least one), the largest split first (every fragment that conflicts with none before it),
/// then each fragment alone, then the rest.
fn within_budget(
    mut subsets: Vec<u64>,
    n: usize,
    conflicts: &[u64],
    whole: &Plan,
    whole_seconds: f64,
    unbounded: bool,
) -> Vec<u64> {
    if unbounded {
        return subsets;
    }
    let budget = ((whole.estimated_seconds * PLANNING_SHARE / whole_seconds.max(1e-4)) as usize).max(1);
    if subsets.len() <= budget {
        return subsets;
    }
    let greedy = greedy(n, conflicts);
    subsets.sort_by_key(|s| (*s != greedy, s.count_ones() != 1, s.count_ones()));
    subsets.truncate(budget);
    subsets
}

/// The request's fragments DataFusion can model alone, each with its result as a relation and
/// the rows entering its operators; fragments with malformed edits are dropped.
fn modelled(request: &PlanRequest) -> Vec<(Fragment, Relation, f64)> {
    let mut out = Vec::new();
    for f in &request.fragments {
        let mut edits: Vec<&Edit> = f.edits.iter().collect();
        edits.sort_by_key(|e| e.start);
        let in_text = edits
            .iter()
            .all(|e| e.start <= e.end && request.sql.get(e.start as usize..e.end as usize).is_some());
        let apart = edits.windows(2).all(|w| w[0].end <= w[1].start);
        if edits.is_empty() || !in_text || !apart {
            continue;
        }
        let inner: Vec<&Relation> = request
            .relations
            .iter()
            .filter(|r| f.relations.contains(&r.name))
            .collect();
        if inner.len() != f.relations.len() || inner.iter().any(|r| r.side != f.side) {
            continue;
        }
        if let Some((relation, work)) = result_relation(f, &inner) {
            out.push((f.clone(), relation, work));
        }
    }
    out
}

/// The fragment's result as a relation on its side, with estimated statistics, and the rows
/// entering its operators.
fn result_relation(fragment: &Fragment, inner: &[&Relation]) -> Option<(Relation, f64)> {
    let empty = TableStatistics::default();
    let schemas: Vec<Schema> = inner
        .iter()
        .map(|r| {
            let statistics = r.statistics.as_ref().unwrap_or(&empty);
            decode_schema(&statistics.arrow_schema).unwrap_or_else(Schema::empty)
        })
        .collect();
    let inputs: Vec<RelationInput<'_>> = inner
        .iter()
        .zip(&schemas)
        .map(|(r, schema)| RelationInput {
            name: &r.name,
            schema: std::sync::Arc::new(schema.clone()),
            statistics: r.statistics.as_ref().unwrap_or(&empty),
        })
        .collect();
    let m = model::model_guarded(&fragment.sql, &inputs)
        .map_err(|reason| tracing::debug!(%reason, fragment = %fragment.name, "fragment not modelled"))
        .ok()?;
    let mut names = std::collections::BTreeSet::new();
    // An untyped NULL (DataFusion's Null type) is typed by DuckDB from where the fragment sits
    // (a set operation's other branches, the function that reads it); run apart, DuckDB would
    // make it an INTEGER, and the query around it would type its result otherwise.
    if m.result_columns.is_empty()
        || !m.result_columns.iter().all(|c| {
            !c.field.name().is_empty()
                && c.field.data_type() != &DataType::Null
                && names.insert(c.field.name().to_lowercase())
        })
    {
        return None;
    }
    let fields: Vec<Field> = m.result_columns.iter().map(|c| c.field.clone()).collect();
    let work = m.uses.values().map(|u| u.rows).sum();
    let relation = Relation {
        name: fragment.name.clone(),
        side: fragment.side,
        source: fragment.source.clone(),
        statistics: Some(TableStatistics {
            rows: m.result_rows,
            arrow_schema: encode_schema(&Schema::new(fields)),
            columns: m
                .result_columns
                .iter()
                .map(|c| ColumnStatistics {
                    name: c.field.name().clone(),
                    avg_bytes: c.width,
                    distinct: c.distinct,
                    ..Default::default()
                })
                .collect(),
        }),
    };
    Some((relation, work))
}

/// Whether two fragments edit overlapping text or read a relation in common.
fn overlap(a: &Fragment, b: &Fragment) -> bool {
    let edits = a
        .edits
        .iter()
        .any(|x| b.edits.iter().any(|y| x.start < y.end && y.start < x.end));
    edits || a.relations.iter().any(|r| b.relations.contains(r))
}

/// The query with `chosen` fragments read from their results, and its relations; `None` when
/// their edits overlap.
fn outer(request: &PlanRequest, chosen: &[&(Fragment, Relation)]) -> Option<(String, Vec<Relation>)> {
    let mut edits: Vec<(&Edit, &str)> = chosen
        .iter()
        .flat_map(|(f, _)| f.edits.iter().map(move |e| (e, f.name.as_str())))
        .collect();
    edits.sort_by_key(|(e, _)| e.start);
    let mut sql = String::with_capacity(request.sql.len());
    let mut at = 0;
    for (e, name) in edits {
        let start = e.start as usize;
        if start < at {
            return None;
        }
        sql.push_str(&request.sql[at..start]);
        sql.push_str(&e.text.replace("{result}", name));
        at = e.end as usize;
    }
    sql.push_str(&request.sql[at..]);
    let inside = |name: &String| chosen.iter().any(|(f, _)| f.relations.contains(name));
    let mut relations: Vec<Relation> = request.relations.iter().filter(|r| !inside(&r.name)).cloned().collect();
    relations.extend(chosen.iter().map(|(_, r)| r.clone()));
    Some((sql, relations))
}

fn explain_fragments(chosen: &[&(Fragment, Relation)], plan: &Plan) -> String {
    let mut out = String::new();
    for (i, (f, r)) in chosen.iter().enumerate() {
        let side = if f.side == Side::Remote as i32 { "R" } else { "L" };
        let statistics = r.statistics.as_ref().expect("a fragment's estimate");
        let row_bytes: f64 = statistics.columns.iter().map(|c| c.avg_bytes).sum();
        let fate = if plan.bridges.iter().any(|b| b.target == f.name) {
            "its result crosses"
        } else {
            "read inline where the query runs"
        };
        out += &format!(
            "Fragment {} ({side}): {} → ~{:.0} rows, ~{}; {fate}\n",
            i + 1,
            f.source,
            statistics.rows,
            human_bytes(statistics.rows * row_bytes)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use pond_proto::dual::Side;

    use super::*;

    /// The fragment a subquery at `span` of `sql` makes, as the client sends it.
    fn subquery(sql: &str, name: &str, side: Side, span: (u32, u32), relation: &str, source: &str) -> Fragment {
        Fragment {
            name: name.into(),
            side: side as i32,
            relations: vec![relation.into()],
            source: source.into(),
            sql: sql[span.0 as usize + 1..span.1 as usize - 1].into(),
            edits: vec![Edit {
                start: span.0,
                end: span.1,
                text: "(SELECT * FROM {result})".into(),
            }],
        }
    }

    /// A relation of BIGINT columns, each with its distinct count.
    fn relation(name: &str, side: Side, source: &str, rows: f64, columns: &[(&str, f64)]) -> Relation {
        let columns: Vec<(&str, DataType, f64)> = columns.iter().map(|(c, d)| (*c, DataType::Int64, *d)).collect();
        crate::testing::relation(name, side, source, rows, &columns)
    }

    /// The example: each side aggregates where it lives and 1,000 groups cross, where
    /// the whole-query plan moves a relation of millions of rows.
    #[test]
    fn aggregates_on_both_sides_move_only_their_groups() {
        let sql = "SELECT e.k, e.n, s.total FROM (SELECT k, count(*) AS n FROM __pond_ref_000 GROUP BY k) e \
                   JOIN (SELECT k, sum(x) AS total FROM __pond_ref_001 GROUP BY k) s ON e.k = s.k";
        let span = |needle: &str| {
            let start = sql.find(needle).unwrap() - 1;
            let end = start + sql[start..].find("GROUP BY k)").unwrap() + "GROUP BY k)".len();
            (start as u32, end as u32)
        };
        let (a, b) = (span("SELECT k, count"), span("SELECT k, sum"));
        let local_source = "(SELECT k, count(*) AS n FROM local_events GROUP BY k)";
        let remote_source = "(SELECT k, sum(x) AS total FROM \"db\".\"main\".\"sales\" GROUP BY k)";
        let request = PlanRequest {
            sql: sql.into(),
            relations: vec![
                relation(
                    "__pond_ref_000",
                    Side::Local,
                    "local_events",
                    2_000_000.0,
                    &[("k", 1000.0), ("v", 2_000_000.0)],
                ),
                relation(
                    "__pond_ref_001",
                    Side::Remote,
                    "\"db\".\"main\".\"sales\"",
                    5_000_000.0,
                    &[("k", 1000.0), ("x", 5_000_000.0)],
                ),
            ],
            run: "auto".into(),
            explain: true,
            fragments: vec![
                subquery(sql, "__pond_frag_000", Side::Local, a, "__pond_ref_000", local_source),
                subquery(sql, "__pond_frag_001", Side::Remote, b, "__pond_ref_001", remote_source),
            ],
            ..Default::default()
        };
        assert_eq!(modelled(&request).len(), 2);
        let plan = crate::plan(&request);
        assert!(!plan.fragments.is_empty(), "{}", plan.explain);
        assert!(plan.estimated_bytes < 100_000.0, "{}", plan.explain);
        // Whatever crosses is a fragment's result, never a base relation.
        for b in &plan.bridges {
            assert!(b.target.starts_with("__pond_frag_"), "{}", plan.explain);
            assert!(b.estimated_rows <= 1000.0, "{}", plan.explain);
        }
        // The query runs where the local fragment is, so only the cloud one crosses.
        assert!(plan.explain.contains("Fragment 1 (R)"), "{}", plan.explain);
        let without = PlanRequest {
            fragments: vec![],
            ..request.clone()
        };
        let whole = crate::plan(&without);
        assert!(
            whole.estimated_bytes > 1_000.0 * plan.estimated_bytes,
            "{}",
            whole.explain
        );

        // Over a fast link the sides' speeds decide where the cloud's aggregate runs: not in
        // the cloud when the duckling is far slower.
        let over = |local: f64, remote: f64| {
            crate::plan(&PlanRequest {
                link: Some(pond_proto::dual::LinkEstimate {
                    bytes_per_second: 1e10,
                    round_trip_seconds: 0.0,
                    local_rows_per_second: local,
                    remote_rows_per_second: remote,
                }),
                ..request.clone()
            })
        };
        let cloud_fragment = "__pond_frag_001".to_string();
        // Alike, every split runs the same rows: what moves decides, and no raw rows do.
        let alike = over(1e8, 1e8);
        assert!(alike.estimated_bytes < 100_000.0, "{}", alike.explain);
        let slow_cloud = over(1e8, 1e5);
        assert!(
            !slow_cloud.fragments.contains(&cloud_fragment),
            "{}",
            slow_cloud.explain
        );
        assert_eq!(slow_cloud.run_on, Side::Local as i32, "{}", slow_cloud.explain);
    }

    /// A quick query is not worth many plans: the largest split first, then fragments alone.
    #[test]
    fn a_quick_query_models_few_subsets() {
        let all: Vec<u64> = (1..8).collect();
        let whole = |seconds: f64| Plan {
            estimated_seconds: seconds,
            ..Default::default()
        };
        let conflicts = [0b010, 0b001, 0];
        // Fragments 0 and 1 conflict: the largest split is {0, 2}.
        let planned_in = 0.006;
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole(0.001), planned_in, false),
            vec![0b101]
        );
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole(0.1), planned_in, false),
            vec![0b101, 0b001, 0b010, 0b100]
        );
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole(10.0), planned_in, false),
            all
        );
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole(0.001), planned_in, true),
            all
        );
    }

    /// What a subset costs to model is what the whole query cost to plan: a query as slow to
    /// plan as TPC-DS Q4 (19 ms) and estimated at half a second gets a few subsets, not all.
    #[test]
    fn a_query_slow_to_plan_models_fewer_subsets() {
        let all: Vec<u64> = (1..8).collect();
        let whole = Plan {
            estimated_seconds: 0.5,
            ..Default::default()
        };
        let conflicts = [0, 0, 0];
        assert_eq!(within_budget(all.clone(), 3, &conflicts, &whole, 0.002, false), all);
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole, 0.019, false),
            vec![0b111, 0b001, 0b010, 0b100, 0b011, 0b101]
        );
        assert_eq!(
            within_budget(all.clone(), 3, &conflicts, &whole, 0.2, false),
            vec![0b111]
        );
    }

    /// A subquery that refers to the query around it does not plan alone: it never moves.
    #[test]
    fn a_correlated_subquery_is_not_a_fragment() {
        let sql =
            "SELECT c.id FROM __pond_ref_000 c WHERE c.v > (SELECT max(x) FROM __pond_ref_001 s WHERE s.k = c.id)";
        let start = sql.find("(SELECT").unwrap() as u32;
        let request = PlanRequest {
            sql: sql.into(),
            relations: vec![
                relation("__pond_ref_000", Side::Local, "c", 10.0, &[("id", 10.0), ("v", 10.0)]),
                relation(
                    "__pond_ref_001",
                    Side::Remote,
                    "\"db\".\"main\".\"s\"",
                    1_000_000.0,
                    &[("k", 1000.0), ("x", 1000.0)],
                ),
            ],
            run: "auto".into(),
            explain: true,
            fragments: vec![subquery(
                sql,
                "__pond_frag_000",
                Side::Remote,
                (start, sql.len() as u32),
                "__pond_ref_001",
                "(SELECT max(x) FROM \"db\".\"main\".\"s\" s WHERE s.k = c.id)",
            )],
            ..Default::default()
        };
        assert!(modelled(&request).is_empty());
        assert!(crate::plan(&request).fragments.is_empty());
    }
}
