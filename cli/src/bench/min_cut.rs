//! The true minimal cut of a dual-execution benchmark query: the fewest bytes any placement of
//! its plan's operators on the laptop and the cloud could move, found by trying them all.
//!
//! Each query's plan is written out here by hand, independently of Pond's planner: operators
//! with the SQL that computes their output on the all-local copy of the data (the laptop's
//! `customers` and the cloud's orders downloaded whole into `temp.main.all_orders`), and the
//! side each base table lives on. Every operator's output is measured as Arrow IPC bytes (what
//! a bridge moves). Every assignment of the other operators to a side is then costed: an input
//! crosses when it was computed on the other side, and the root's result must reach the laptop.
//! Filters and projections sit on the scans, as any plan would put them; a semi-join reduction
//! is not a placement, so Pond may beat this cut.

use std::collections::HashMap;

use anyhow::Result;
use pond_client::{DualSession, Side};

/// The local copy of the cloud's orders the benchmark downloads whole.
pub const ORDERS_COPY: &str = "temp.main.all_orders";

/// One operator of a plan.
struct Operator {
    /// Its output, computed on the all-local copy.
    sql: String,
    /// Where a base table lives; `None` for an operator placed by the search.
    leaf: Option<Side>,
    inputs: Vec<usize>,
}

fn op(sql: impl Into<String>, inputs: &[usize]) -> Operator {
    Operator {
        sql: sql.into(),
        leaf: None,
        inputs: inputs.to_vec(),
    }
}

fn customers() -> Operator {
    Operator {
        sql: "SELECT * FROM customers".into(),
        leaf: Some(Side::Local),
        inputs: vec![],
    }
}

fn orders() -> Operator {
    Operator {
        sql: format!("SELECT * FROM {ORDERS_COPY}"),
        leaf: Some(Side::Remote),
        inputs: vec![],
    }
}

/// A join of the two tables below an aggregate or a sort: root ← join ← (customers' cut ←
/// customers, orders' cut ← orders).
fn two_table_join(root: &str, join: &str, customers_cut: &str, orders_cut: &str) -> Vec<Operator> {
    vec![
        op(root, &[1]),
        op(join, &[2, 4]),
        op(customers_cut, &[3]),
        customers(),
        op(orders_cut, &[5]),
        orders(),
    ]
}

/// The plan of benchmark query `name`, whose SQL (on the all-local copy) is `root`.
fn plan_of(name: &str, root: &str) -> Option<Vec<Operator>> {
    let o = ORDERS_COPY;
    Some(match name {
        "sel_local_segment" => two_table_join(
            root,
            &format!(
                "SELECT c.region, o.amount FROM (SELECT id, region FROM customers WHERE segment = 'segment-7') c \
                 JOIN (SELECT customer_id, amount FROM {o}) o ON o.customer_id = c.id"
            ),
            "SELECT id, region FROM customers WHERE segment = 'segment-7'",
            &format!("SELECT customer_id, amount FROM {o}"),
        ),
        "sel_local_point" => two_table_join(
            root,
            &format!(
                "SELECT o.id, o.amount, o.status FROM (SELECT id FROM customers WHERE id = 4242) c \
                 JOIN (SELECT id, customer_id, amount, status FROM {o}) o ON o.customer_id = c.id"
            ),
            "SELECT id FROM customers WHERE id = 4242",
            &format!("SELECT id, customer_id, amount, status FROM {o}"),
        ),
        "sel_cloud_range" => two_table_join(
            root,
            &format!(
                "SELECT c.name, o.amount, o.id FROM (SELECT id, name FROM customers) c \
                 JOIN (SELECT id, customer_id, amount FROM {o} WHERE id < 5000) o ON o.customer_id = c.id"
            ),
            "SELECT id, name FROM customers",
            &format!("SELECT id, customer_id, amount FROM {o} WHERE id < 5000"),
        ),
        "sel_both_sides" => two_table_join(
            root,
            &format!(
                "SELECT c.region, o.status FROM (SELECT id, region FROM customers WHERE segment = 'segment-3') c \
                 JOIN (SELECT customer_id, status FROM {o} WHERE status = 'returned') o ON o.customer_id = c.id"
            ),
            "SELECT id, region FROM customers WHERE segment = 'segment-3'",
            &format!("SELECT customer_id, status FROM {o} WHERE status = 'returned'"),
        ),
        "nonsel_region_totals" => two_table_join(
            root,
            &format!(
                "SELECT c.region, o.amount FROM (SELECT id, region FROM customers) c \
                 JOIN (SELECT customer_id, amount FROM {o}) o ON o.customer_id = c.id"
            ),
            "SELECT id, region FROM customers",
            &format!("SELECT customer_id, amount FROM {o}"),
        ),
        "nonsel_status_by_region" => two_table_join(
            root,
            &format!(
                "SELECT o.status, c.region, o.amount FROM (SELECT id, region FROM customers) c \
                 JOIN (SELECT customer_id, status, amount FROM {o}) o ON o.customer_id = c.id"
            ),
            "SELECT id, region FROM customers",
            &format!("SELECT customer_id, status, amount FROM {o}"),
        ),
        "split_agg_both_sides" => vec![
            op(root, &[1, 4]),
            op(
                "SELECT id % 1000 AS bucket, count(*) AS customers FROM customers GROUP BY 1",
                &[2],
            ),
            op("SELECT id FROM customers", &[3]),
            customers(),
            op(
                format!(
                    "SELECT customer_id % 1000 AS bucket, count(*) AS orders, sum(amount) AS total FROM {o} GROUP BY 1"
                ),
                &[5],
            ),
            op(format!("SELECT customer_id, amount FROM {o}"), &[6]),
            orders(),
        ],
        "split_cloud_cte_top_customers" => vec![
            op(root, &[1, 3]),
            op("SELECT id, name, region FROM customers", &[2]),
            customers(),
            op(
                format!(
                    "SELECT customer_id, sum(amount) AS spent FROM {o} GROUP BY customer_id \
                     ORDER BY spent DESC, customer_id LIMIT 100"
                ),
                &[4],
            ),
            op(format!("SELECT customer_id, amount FROM {o}"), &[5]),
            orders(),
        ],
        _ => return None,
    })
}

/// An operator output's size as a bridge moves it: Arrow IPC bytes, and the same bytes as one
/// zstd frame at the level Pond's compressed calls use (a lower bound of what per-message
/// compression sends).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub ipc: u64,
    pub zstd: u64,
}

/// The zstd level of tonic's compressed messages.
const ZSTD_LEVEL: i32 = 3;

/// The sizes of `sql`'s result on the laptop's DuckDB.
fn ipc_bytes(session: &DualSession, sql: &str, cache: &mut HashMap<String, Sizes>) -> Result<Sizes> {
    if let Some(sizes) = cache.get(sql) {
        return Ok(*sizes);
    }
    let (schema, batches) = session.local().query(sql)?;
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
    for b in &batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let ipc = writer.into_inner()?;
    let sizes = Sizes {
        ipc: ipc.len() as u64,
        zstd: zstd::bulk::compress(&ipc, ZSTD_LEVEL)?.len() as u64,
    };
    cache.insert(sql.to_string(), sizes);
    Ok(sizes)
}

/// The fewest bytes any placement of query `name`'s operators moves, uncompressed and
/// compressed, or `None` for a query without a written-out plan. `root` is the query on the
/// all-local copy.
pub fn true_min_cut(
    session: &DualSession,
    name: &str,
    root: &str,
    cache: &mut HashMap<String, Sizes>,
) -> Result<Option<Sizes>> {
    let Some(plan) = plan_of(name, root) else {
        return Ok(None);
    };
    let sizes: Vec<Sizes> = plan
        .iter()
        .map(|o| ipc_bytes(session, &o.sql, cache))
        .collect::<Result<_>>()?;
    let cut = |size: fn(&Sizes) -> u64| cheapest_placement(&plan, &sizes.iter().map(size).collect::<Vec<_>>());
    Ok(Some(Sizes {
        ipc: cut(|s| s.ipc),
        zstd: cut(|s| s.zstd),
    }))
}

/// Tries every side for every operator that is not a base table.
fn cheapest_placement(plan: &[Operator], bytes: &[u64]) -> u64 {
    let free: Vec<usize> = (0..plan.len()).filter(|i| plan[*i].leaf.is_none()).collect();
    let mut best = u64::MAX;
    for mask in 0u64..(1 << free.len()) {
        let mut side: Vec<Side> = plan.iter().map(|o| o.leaf.unwrap_or(Side::Local)).collect();
        for (bit, i) in free.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                side[*i] = Side::Remote;
            }
        }
        let mut moved = if side[0] == Side::Remote { bytes[0] } else { 0 };
        for (i, o) in plan.iter().enumerate() {
            for j in &o.inputs {
                if side[*j] != side[i] {
                    moved += bytes[*j];
                }
            }
        }
        best = best.min(moved);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A join of a small local and a large remote input, aggregated to a few rows: the cut is
    /// the small input plus the few result rows (run remotely), not the large input.
    #[test]
    fn the_cheapest_placement_moves_the_smallest_cut() {
        let plan = two_table_join("root", "join", "cut c", "cut o");
        // root, join, customers' cut, customers, orders' cut, orders
        let bytes = [50, 10_000, 300, 5_000, 80_000, 900_000];
        assert_eq!(cheapest_placement(&plan, &bytes), 350);
        // With a large result, downloading the orders' cut beats uploading and coming back.
        let bytes = [200_000, 10_000, 300, 5_000, 80_000, 900_000];
        assert_eq!(cheapest_placement(&plan, &bytes), 10_300);
    }
}
