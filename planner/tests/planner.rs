//! The cost model's choices on synthetic statistics.

use arrow::datatypes::{DataType, Field, Schema};
use pond_planner::statistics::encode_schema;
use pond_proto::dual::{ColumnStatistics, LinkEstimate, PlanRequest, Relation, Side, TableStatistics};

fn table(rows: f64, columns: &[(&str, DataType, f64)]) -> TableStatistics {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, t, _)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    );
    TableStatistics {
        rows,
        arrow_schema: encode_schema(&schema),
        columns: columns
            .iter()
            .map(|(n, t, distinct)| ColumnStatistics {
                name: n.to_string(),
                avg_bytes: pond_planner::statistics::fixed_width(t).unwrap_or(12.0),
                distinct: *distinct,
                has_range: matches!(t, DataType::Int64 | DataType::Int32),
                min: 0.0,
                max: *distinct,
            })
            .collect(),
    }
}

fn relation(name: &str, side: Side, source: &str, statistics: TableStatistics) -> Relation {
    Relation {
        name: name.into(),
        side: side as i32,
        source: source.into(),
        statistics: Some(statistics),
    }
}

fn shop(sql: &str, run: &str) -> pond_planner::Plan {
    shop_over(sql, run, None)
}

/// customers: 1M local rows; orders: 10M cloud rows; `link` as the client measured it.
fn shop_over(sql: &str, run: &str, link: Option<LinkEstimate>) -> pond_planner::Plan {
    pond_planner::plan(&shop_request(sql, run, link))
}

/// The request [`shop_over`] plans.
fn shop_request(sql: &str, run: &str, link: Option<LinkEstimate>) -> PlanRequest {
    let customers = table(
        1_000_000.0,
        &[
            ("id", DataType::Int64, 1_000_000.0),
            ("name", DataType::Utf8, 900_000.0),
            ("region", DataType::Utf8, 10.0),
        ],
    );
    let orders = table(
        10_000_000.0,
        &[
            ("id", DataType::Int64, 10_000_000.0),
            ("customer_id", DataType::Int64, 1_000_000.0),
            ("amount", DataType::Float64, 100_000.0),
            ("note", DataType::Utf8, 10_000_000.0),
        ],
    );
    PlanRequest {
        sql: sql.into(),
        relations: vec![
            relation("__pond_ref_000", Side::Local, "customers", customers),
            relation("__pond_ref_001", Side::Remote, "\"shop\".\"main\".\"orders\"", orders),
            relation(
                "__pond_ref_002",
                Side::Local,
                "customers",
                table(
                    1000.0,
                    &[("id", DataType::Int64, 1000.0), ("region", DataType::Utf8, 10.0)],
                ),
            ),
        ],
        run: run.into(),
        column_names: vec![],
        star: true,
        downloads_only: false,
        fragments: vec![],
        link,
        explain: true,
        prefer_fragments: false,
    }
}

#[test]
fn a_selective_local_filter_ships_the_keys_or_the_rows_to_the_cloud() {
    let plan = shop(
        "SELECT c.name, sum(o.amount) FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer_id \
         WHERE c.id < 1000 GROUP BY c.name",
        "auto",
    );
    // Either the ~1,000 customers go up, or their keys go up and their ~10,000 orders come
    // down; never the whole of either table.
    assert!(plan.estimated_bytes < 400_000.0, "{}", plan.explain);
    let upload = plan.bridges.iter().find(|b| b.from == Side::Local as i32).unwrap();
    assert!(upload.sql.contains("\"id\" < 1000"), "{}", upload.sql);
    assert!(!upload.sql.contains("region"), "projection pushed: {}", upload.sql);
}

#[test]
fn a_non_selective_join_with_a_small_result_runs_remotely_and_aggregates_there() {
    let plan = shop(
        "SELECT c.region, count(*) FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer_id GROUP BY c.region",
        "auto",
    );
    assert_eq!(plan.run_on, Side::Remote as i32, "{}", plan.explain);
    // Only customers' id and region go up; the ten-row aggregate comes down.
    assert!(plan.estimated_bytes < 40_000_000.0, "{}", plan.explain);
}

#[test]
fn a_selective_cloud_filter_downloads_the_few_rows() {
    let plan = shop(
        "SELECT c.name, o.amount FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer_id WHERE o.id = 42",
        "auto",
    );
    assert_eq!(plan.run_on, Side::Local as i32, "{}", plan.explain);
    assert!(plan.estimated_bytes < 1_000.0, "{}", plan.explain);
    let download = &plan.bridges[0];
    assert!(download.sql.contains("(\"id\" = 42"), "{}", download.sql);
}

#[test]
fn the_run_override_wins_over_the_estimate() {
    let sql =
        "SELECT c.name, o.amount FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer_id WHERE o.id = 42";
    let plan = shop(sql, "remote");
    assert_eq!(plan.run_on, Side::Remote as i32);
    assert!(
        plan.bridges
            .iter()
            .any(|b| b.target == "__pond_ref_000" && b.from == Side::Local as i32)
    );
    assert!(
        plan.bridges.iter().all(|b| b.target != "__pond_ref_001"),
        "orders stay in the cloud"
    );
}

#[test]
fn duckdb_only_sql_falls_back_to_whole_projected_relations() {
    let plan = shop(
        "SELECT o.customer_id, c.id FROM __pond_ref_001 o ASOF JOIN __pond_ref_000 c ON o.customer_id >= c.id",
        "auto",
    );
    assert!(plan.explain.contains("fallback"), "{}", plan.explain);
    assert!(plan.strategy.contains("whole tables"));
    // Without a model the smaller side (a million customers) goes to the larger.
    assert_eq!(plan.run_on, Side::Remote as i32);
    let plan = shop(
        "SELECT c.region, o.note, count(*) AS n FROM __pond_ref_000 c JOIN __pond_ref_001 o ON o.customer_id = c.id \
         WHERE c.region = 'x' GROUP BY ALL ORDER BY ALL",
        "auto",
    );
    assert!(
        !plan.strategy.contains("whole tables"),
        "ORDER BY ALL is modelled: {}",
        plan.explain
    );
}

#[test]
fn nothing_is_pushed_below_not_in_and_no_inferred_not_null() {
    for run in ["local", "remote"] {
        let plan = shop(
            "SELECT count(*) AS n FROM __pond_ref_000 c WHERE c.id NOT IN (SELECT o.customer_id FROM __pond_ref_001 o)",
            run,
        );
        for b in &plan.bridges {
            assert!(!b.sql.contains("WHERE"), "{run}: {}", b.sql);
        }
        let plan = shop(
            "SELECT c.region, count(*) FROM __pond_ref_000 c JOIN (SELECT DISTINCT region FROM __pond_ref_002) r \
             ON r.region IS NOT DISTINCT FROM c.region JOIN __pond_ref_001 o ON o.customer_id = c.id GROUP BY 1",
            run,
        );
        for b in &plan.bridges {
            assert!(!b.sql.contains("IS NOT NULL"), "{run}: {}", b.sql);
            assert!(!b.sql.contains("\"region\" IN"), "{run}: {}", b.sql);
        }
    }
}

/// Over a measured link a plan is chosen by time: where round trips are dear, one transfer of
/// a few more bytes beats a semi-join's two; where bandwidth is dear, the fewest bytes win.
#[test]
fn a_measured_link_trades_bytes_against_round_trips() {
    let sql = "SELECT c.name, sum(o.amount) FROM __pond_ref_000 c JOIN __pond_ref_001 o ON c.id = o.customer_id \
               WHERE c.id < 1000 GROUP BY c.name";
    let far = shop_over(
        sql,
        "auto",
        Some(LinkEstimate {
            bytes_per_second: 1e9,
            round_trip_seconds: 0.5,
            ..Default::default()
        }),
    );
    assert_eq!(far.bridges.len(), 1, "{}", far.explain);
    assert!(far.estimated_seconds > 0.5, "{}", far.explain);
    assert!(far.explain.contains("Estimated time moving data"), "{}", far.explain);
    let slow = shop_over(
        sql,
        "auto",
        Some(LinkEstimate {
            bytes_per_second: 1e3,
            round_trip_seconds: 0.0,
            ..Default::default()
        }),
    );
    let bytes_only = shop(sql, "auto");
    // By bytes alone the keys go up and the matching orders come down: two transfers.
    assert_eq!(bytes_only.bridges.len(), 2, "{}", bytes_only.explain);
    assert!(
        (slow.estimated_bytes - bytes_only.estimated_bytes).abs() < 1.0,
        "{}\n{}",
        slow.explain,
        bytes_only.explain
    );
    assert!(far.estimated_bytes >= slow.estimated_bytes);
}

/// Over a fast link the sides' speeds decide: the join runs on the faster side, even when that
/// moves more bytes.
#[test]
fn the_faster_side_runs_the_query_when_moving_data_is_cheap() {
    let sql = "SELECT c.region, sum(o.amount) AS total FROM __pond_ref_000 c JOIN __pond_ref_001 o \
               ON c.id = o.customer_id GROUP BY c.region";
    let over = |local: f64, remote: f64| {
        shop_over(
            sql,
            "auto",
            Some(LinkEstimate {
                bytes_per_second: 1e10,
                round_trip_seconds: 0.0,
                local_rows_per_second: local,
                remote_rows_per_second: remote,
            }),
        )
    };
    // Alike: the million customers go up rather than ten million orders down.
    let alike = over(1e8, 1e8);
    assert_eq!(alike.run_on, Side::Remote as i32, "{}", alike.explain);
    assert!(alike.explain.contains("Estimated time running"), "{}", alike.explain);
    // A duckling a thousand times slower than the laptop: the orders come down.
    let slow_cloud = over(1e8, 1e5);
    assert_eq!(slow_cloud.run_on, Side::Local as i32, "{}", slow_cloud.explain);
    assert!(slow_cloud.estimated_bytes > alike.estimated_bytes);
    // Unmeasured speeds leave the choice to what moves.
    let unmeasured = over(0.0, 1e5);
    assert_eq!(unmeasured.run_on, Side::Remote as i32, "{}", unmeasured.explain);
    assert!(
        !unmeasured.explain.contains("Estimated time running"),
        "{}",
        unmeasured.explain
    );
}

/// DuckDB binds the query's text: a column a subquery names but nothing reads still moves,
/// though DataFusion's plan drops it (TPC-DS Q59 named a store's name no one read).
#[test]
fn a_column_the_text_names_moves_even_when_nothing_reads_it() {
    let sql = "SELECT x.id, count(*) FROM (SELECT c.id, c.name AS unread FROM __pond_ref_000 c) x \
               JOIN __pond_ref_001 o ON o.customer_id = x.id GROUP BY x.id";
    let mut request = shop_request(sql, "remote", None);
    request.star = false;
    request.column_names = ["id", "name", "unread", "customer_id"].map(String::from).to_vec();
    let plan = pond_planner::plan(&request);
    let upload = plan
        .bridges
        .iter()
        .find(|b| b.target == "__pond_ref_000")
        .unwrap_or_else(|| panic!("customers do not cross: {}", plan.explain));
    assert!(upload.sql.contains("\"name\""), "{}", upload.sql);
    assert!(!upload.sql.contains("\"region\""), "{}", upload.sql);
}

/// A semi-join's keys cross with the filters DuckDB SQL can say: when a filter stays behind
/// (arithmetic over a column, a comparison with a scalar subquery), the keys are estimated from
/// the rows the bridge reads, not from what is left after the filter.
#[test]
fn keys_behind_an_unpushed_filter_are_estimated_unfiltered() {
    for filter in [
        "c.id / 2 < 500",
        "c.region = (SELECT max(r.region) FROM __pond_ref_002 r)",
    ] {
        for run in ["auto", "local", "remote"] {
            let plan = shop(
                &format!(
                    "SELECT c.name, sum(o.amount) FROM __pond_ref_000 c JOIN __pond_ref_001 o \
                     ON c.id = o.customer_id WHERE {filter} GROUP BY c.name"
                ),
                run,
            );
            for b in plan.bridges.iter().filter(|b| b.target.starts_with("__pond_keys_")) {
                assert!(!b.sql.contains("WHERE"), "{filter}, {run}: {}", b.sql);
                assert!(b.estimated_rows >= 999_000.0, "{filter}, {run}: {}", plan.explain);
            }
        }
    }
}

/// A local table read twice with the same cut crosses once; both readings read that bridge.
#[test]
fn a_relation_read_twice_alike_crosses_once() {
    let plan = shop(
        "SELECT a.region, count(*) FROM __pond_ref_000 a JOIN __pond_ref_001 o ON o.customer_id = a.id \
         JOIN __pond_ref_002 b ON b.id = a.id AND b.region = a.region GROUP BY a.region",
        "remote",
    );
    let uploads: Vec<_> = plan.bridges.iter().filter(|b| b.from == Side::Local as i32).collect();
    assert_eq!(uploads.len(), 1, "{}", plan.explain);
    assert_eq!(
        plan.names["__pond_ref_000"], plan.names["__pond_ref_002"],
        "{}",
        plan.explain
    );
    assert!(
        plan.explain.contains("read from the bridge of an identical scan"),
        "{}",
        plan.explain
    );
}

/// Rows read only for whether they exist (EXISTS, IN, NOT IN) cross as their distinct values;
/// a join's rows, or `INTERSECT ALL`'s (DuckDB counts its duplicates), cross as they are.
#[test]
fn rows_read_only_for_their_existence_cross_distinct() {
    let moved = |sql: &str| {
        let plan = shop(sql, "local");
        plan.bridges
            .iter()
            .find(|b| b.target == "__pond_ref_001")
            .map(|b| (b.sql.clone(), b.estimated_rows))
            .unwrap_or_else(|| panic!("orders do not cross: {}", plan.explain))
    };
    for sql in [
        "SELECT c.name FROM __pond_ref_000 c WHERE EXISTS (SELECT 1 FROM __pond_ref_001 o WHERE o.customer_id = c.id)",
        "SELECT c.name FROM __pond_ref_000 c WHERE NOT EXISTS (SELECT * FROM __pond_ref_001 o WHERE o.customer_id = c.id)",
        "SELECT count(*) FROM __pond_ref_000 c WHERE c.id IN (SELECT customer_id FROM __pond_ref_001)",
    ] {
        let (bridge, rows) = moved(sql);
        assert!(
            bridge.starts_with("SELECT DISTINCT \"customer_id\" FROM"),
            "{sql}: {bridge}"
        );
        // A million customers' keys, not ten million orders.
        assert!(rows <= 1_000_000.0, "{sql}: {rows}");
    }
    for sql in [
        "SELECT c.name, o.amount FROM __pond_ref_000 c JOIN __pond_ref_001 o ON o.customer_id = c.id",
        "SELECT c.id FROM __pond_ref_000 c WHERE (SELECT count(*) FROM __pond_ref_001 o WHERE o.customer_id = c.id) > 2",
        "SELECT customer_id FROM __pond_ref_001 INTERSECT ALL SELECT id FROM __pond_ref_000",
        "SELECT id FROM __pond_ref_000 EXCEPT ALL SELECT customer_id FROM __pond_ref_001",
    ] {
        let (bridge, _) = moved(sql);
        assert!(!bridge.contains("DISTINCT"), "{sql}: {bridge}");
    }
}

/// Of two semi-joins that could reduce the same relation, the one that moves less wins, in
/// whichever order the query joins them: each is charged the same reduction where the relation
/// lives (a later one once had to beat the first by that time as well).
#[test]
fn the_semi_join_that_moves_less_wins_in_any_order() {
    // A slow duckling: reducing the ten million orders takes a second, more than the two
    // semi-joins' transfers differ by (about 0.2 s).
    let link = LinkEstimate {
        bytes_per_second: 1e6,
        round_trip_seconds: 0.0,
        local_rows_per_second: 1e8,
        remote_rows_per_second: 1e7,
    };
    // About 1,200 named customers' orders (12,000), or the thousand orders of the other
    // reading's ids.
    let names: Vec<String> = (0..1100).map(|i| format!("'n{i}'")).collect();
    let filter = format!("c.name IN ({})", names.join(", "));
    for joins in [
        "JOIN __pond_ref_002 b ON o.id = b.id JOIN __pond_ref_000 c ON o.customer_id = c.id",
        "JOIN __pond_ref_000 c ON o.customer_id = c.id JOIN __pond_ref_002 b ON o.id = b.id",
    ] {
        let sql = format!("SELECT sum(o.amount) FROM __pond_ref_001 o {joins} WHERE {filter}");
        let plan = shop_over(&sql, "local", Some(link));
        let bridges: Vec<String> = plan.bridges.iter().map(|b| b.sql.chars().take(120).collect()).collect();
        let keys: Vec<_> = plan
            .bridges
            .iter()
            .filter(|b| b.target.starts_with("__pond_keys_"))
            .collect();
        assert_eq!(keys.len(), 1, "{joins}: {bridges:?}");
        assert!(!keys[0].sql.contains("WHERE"), "{joins}: {bridges:?}");
    }
}
