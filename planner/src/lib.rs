//! Dual execution's cost model: where each part of a query over local and cloud data runs.
//!
//! The client names every relation a query reads with a placeholder and says which side
//! holds it; [`plan`] answers with a [`Plan`]: bridge steps that move reduced relations
//! between the sides into temporary tables, the side that runs the query, and what each
//! placeholder reads there. The client executes it; the coordinator plans, or the client
//! itself from the cloud tables' statistics an earlier plan returned.
//!
//! - [`statistics`]: the statistics both sides collect with the same DuckDB SQL.
//! - `model`: DataFusion's logical plan of the query, with projections and filters pushed to
//!   the scans, cardinality and width estimates, and semi-join opportunities.
//! - `render`: the filters DataFusion pushed, as DuckDB SQL (a safe subset only).
//! - `strategy`: the choice of side and the plan's bridges, by estimated bytes moved, or by
//!   estimated time over the link the client measured.
//! - `fragments`: single-side subqueries, set operations' branches and join groups run where
//!   their data lives, when that moves less.
//!
//! Invariants:
//! - **Correctness never depends on the model.** The query that finally runs is the user's
//!   own SQL with placeholders replaced; bridges only ever drop rows and columns the query
//!   provably cannot use, and (uploads) columns only a pushed filter reads, which holds them to
//!   a value the query then reads instead (`strategy::read_with`). When DataFusion cannot plan
//!   the query (DuckDB's SQL is a superset),
//!   relations move whole, cut only to the column names the query mentions.
//! - **What the model cannot see moves whole.** A relation a subquery expression reads
//!   (DataFusion kept it unplanned in an expression) keeps every row, duplicate and column;
//!   filters are pushed only when DataFusion reads the query's literals as DuckDB does (no
//!   exponent, no `DECIMAL` without precision); no relation moves DISTINCT where an `OFFSET`
//!   may count its rows.
//! - **Planning never fails.** A malformed statistic or schema degrades the estimate, not the
//!   answer.
//!
//! ```
//! use pond_proto::dual::{PlanRequest, Relation, Side};
//! use pond_planner::statistics::encode_schema;
//! use arrow::datatypes::{DataType, Field, Schema};
//!
//! let stats = |rows: f64, fields: Vec<Field>| pond_proto::dual::TableStatistics {
//!     rows,
//!     arrow_schema: encode_schema(&Schema::new(fields)),
//!     columns: vec![],
//! };
//! let request = PlanRequest {
//!     sql: "SELECT c.name, sum(o.amount) FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer \
//!           WHERE c.id < 10 GROUP BY c.name".into(),
//!     relations: vec![
//!         Relation {
//!             name: "__pond_ref_000".into(),
//!             side: Side::Local as i32,
//!             source: "customers".into(),
//!             statistics: Some(stats(1_000.0, vec![
//!                 Field::new("id", DataType::Int64, false),
//!                 Field::new("name", DataType::Utf8, false),
//!             ])),
//!         },
//!         Relation {
//!             name: "__pond_ref_001".into(),
//!             side: Side::Remote as i32,
//!             source: "my_db.main.orders".into(),
//!             statistics: Some(stats(10_000_000.0, vec![
//!                 Field::new("customer", DataType::Int64, false),
//!                 Field::new("amount", DataType::Float64, false),
//!             ])),
//!         },
//!     ],
//!     run: "auto".into(),
//!     explain: true,
//!     ..Default::default()
//! };
//! let plan = pond_planner::plan(&request);
//! // Ten customers (or their keys) cross the network, never ten million orders.
//! assert!(plan.estimated_bytes < 1_000_000.0, "{}", plan.explain);
//! assert!(plan.explain.contains("(R)") && plan.explain.contains("(L)"));
//! ```

mod fragments;
mod model;
mod render;
pub mod statistics;
mod strategy;
#[cfg(test)]
mod testing;

use std::sync::Arc;

use arrow::datatypes::Schema;
pub use pond_proto::dual::{Bridge, Plan, PlanRequest, Side, TableStatistics};
pub use strategy::{human_bytes, temp_name};

/// Plans a query over local and remote relations. Relations without statistics are taken as
/// empty; the client and coordinator fill them before calling.
pub fn plan(request: &PlanRequest) -> Plan {
    let run = if request.downloads_only {
        "local".to_string()
    } else {
        request.run.to_ascii_lowercase()
    };
    let started = std::time::Instant::now();
    let (whole, _) = plan_relations(&request.sql, &request.relations, request, &run);
    let mut plan = fragments::improve(request, &run, whole, started.elapsed().as_secs_f64());
    if !request.explain {
        plan.explain.clear();
    }
    plan
}

/// Adds the `extra` columns to what `modelled` moves of `relation`, in its column order, each
/// at its measured width.
fn widen(modelled: &mut model::RelationUse, relation: &strategy::Relation<'_>, extra: &[String]) {
    let fields = relation.schema.fields();
    let mut added = 0.0;
    for (i, f) in fields.iter().enumerate() {
        if extra.contains(f.name()) && !modelled.columns.contains(f.name()) {
            added += relation
                .statistics
                .columns
                .get(i)
                .map(|c| c.avg_bytes)
                .filter(|w| *w > 0.0)
                .unwrap_or_else(|| statistics::fixed_width(f.data_type()).unwrap_or(16.0));
        }
    }
    if added == 0.0 {
        return;
    }
    modelled.columns = fields
        .iter()
        .map(|f| f.name())
        .filter(|c| modelled.columns.contains(c) || extra.contains(c))
        .cloned()
        .collect();
    modelled.row_bytes += added;
}

/// Plans `sql` over `relations`; also says whether DataFusion modelled it (otherwise relations
/// move whole, cut to the column names `request` lists).
fn plan_relations(
    sql: &str,
    relations: &[pond_proto::dual::Relation],
    request: &PlanRequest,
    run: &str,
) -> (Plan, bool) {
    let empty = pond_proto::dual::TableStatistics::default();
    let relations: Vec<strategy::Relation<'_>> = relations
        .iter()
        .map(|r| {
            let statistics = r.statistics.as_ref().unwrap_or(&empty);
            let schema = statistics::decode_schema(&statistics.arrow_schema).unwrap_or_else(Schema::empty);
            strategy::Relation {
                name: &r.name,
                side: Side::try_from(r.side).unwrap_or(Side::Local),
                source: &r.source,
                schema: Arc::new(schema),
                statistics,
            }
        })
        .collect();
    let inputs: Vec<model::RelationInput<'_>> = relations
        .iter()
        .map(|r| model::RelationInput {
            name: r.name,
            schema: Arc::clone(&r.schema),
            statistics: r.statistics,
        })
        .collect();
    let fallback =
        |reason: String| strategy::Knowledge::fallback(&relations, &request.column_names, request.star, reason);
    let (knowledge, modelled) = match model::model_guarded(sql, &inputs) {
        Ok(m) => {
            let outer_references = m.outer_references;
            let mut k = strategy::Knowledge::from_model(m);
            // Relations only a subquery DataFusion left in an expression reads move whole;
            // when such a subquery reads the query around it, every relation keeps every
            // column the query names too (its scans do not list what the subquery reads).
            // Otherwise each keeps the columns the query names as well: DataFusion drops a
            // subquery's output column nothing reads (TPC-DS Q59's `s_store_name
            // s_store_name2`), but DuckDB binds the text, which still names it.
            let blind = fallback(String::new());
            let named: std::collections::BTreeSet<String> =
                request.column_names.iter().map(|c| c.to_lowercase()).collect();
            for (name, u) in blind.uses {
                match k.uses.entry(name) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(u);
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let Some(relation) = relations.iter().find(|r| r.name == e.key().as_str()) else {
                            continue;
                        };
                        let extra: Vec<String> = if outer_references {
                            u.columns
                        } else {
                            relation
                                .schema
                                .fields()
                                .iter()
                                .map(|f| f.name().clone())
                                .filter(|c| named.contains(&c.to_lowercase()))
                                .collect()
                        };
                        widen(e.get_mut(), relation, &extra);
                    }
                }
            }
            (k, true)
        }
        Err(reason) => {
            tracing::debug!(%reason, "DataFusion could not plan the query; moving whole relations");
            (fallback(reason), false)
        }
    };
    let link = strategy::LinkCost::measured(request.link.as_ref());
    (
        strategy::choose(&relations, &knowledge, run, request.downloads_only, link),
        modelled,
    )
}
