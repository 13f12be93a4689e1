//! `pond bench dual`: dual execution on generated data, a local table of 1M rows (times
//! `--scale`) against a cloud table of 10M rows, with selective and non-selective joins.
//!
//! For each query it prints the bytes the chosen plan moved against the true minimal cut (the
//! fewest bytes any placement of the query's operators could move, found by exhaustive search
//! over a plan written out independently of Pond's planner: `min_cut.rs`), for reference the
//! same query planned whole (no fragments) and the smaller of the two forced plans
//! (`pond_run = 'local'` and `'remote'`), and the time against (a) downloading all cloud data
//! and running locally and (b) uploading all local data and running remotely. The whole-table transfers of (a) and (b) are made once
//! and their time added to each query's run on the copy. Then it does it all again over an
//! emulated 100 Mbit/s link (a throttle in the client's transport).
//!
//! Status comes from `hash(id)`, so it is independent of the customer key: an arithmetic
//! pattern there would correlate with the customer segments and empty some joins.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_client::{ConnectOptions, DualSession, Link, Venue};

use super::min_cut::{ORDERS_COPY, Sizes, true_min_cut};
use super::{BenchServer, figure};

/// The link speed of the emulated network run.
const SLOW_LINK_BITS: u64 = 100_000_000;

/// (name, selective, SQL). `customers` is local, `my_db.orders` is in the cloud.
const QUERIES: &[(&str, bool, &str)] = &[
    (
        "sel_local_segment",
        true,
        "SELECT c.region, count(*) AS orders, sum(o.amount) AS total FROM customers c \
         JOIN my_db.orders o ON o.customer_id = c.id WHERE c.segment = 'segment-7' GROUP BY c.region",
    ),
    (
        "sel_local_point",
        true,
        "SELECT o.id, o.amount, o.status FROM customers c JOIN my_db.orders o ON o.customer_id = c.id \
         WHERE c.id = 4242 ORDER BY o.id",
    ),
    (
        "sel_cloud_range",
        true,
        "SELECT c.name, o.amount FROM customers c JOIN my_db.orders o ON o.customer_id = c.id \
         WHERE o.id < 5000 ORDER BY o.id",
    ),
    (
        "sel_both_sides",
        true,
        "SELECT c.region, o.status, count(*) AS n FROM customers c JOIN my_db.orders o ON o.customer_id = c.id \
         WHERE c.segment = 'segment-3' AND o.status = 'returned' GROUP BY ALL ORDER BY ALL",
    ),
    (
        "nonsel_region_totals",
        false,
        "SELECT c.region, count(*) AS orders, sum(o.amount) AS total FROM customers c \
         JOIN my_db.orders o ON o.customer_id = c.id GROUP BY c.region ORDER BY c.region",
    ),
    (
        "nonsel_status_by_region",
        false,
        "SELECT o.status, c.region, count(*) AS n, avg(o.amount)::DECIMAL(12,2) AS mean FROM customers c \
         JOIN my_db.orders o ON o.customer_id = c.id GROUP BY ALL ORDER BY ALL",
    ),
    (
        "split_agg_both_sides",
        false,
        "SELECT l.bucket, l.customers, r.orders, r.total \
         FROM (SELECT c.id % 1000 AS bucket, count(*) AS customers FROM customers c GROUP BY 1) l \
         JOIN (SELECT customer_id % 1000 AS bucket, count(*) AS orders, sum(amount) AS total \
               FROM my_db.orders GROUP BY 1) r USING (bucket) ORDER BY l.bucket",
    ),
    (
        "split_cloud_cte_top_customers",
        false,
        "WITH top AS (SELECT customer_id, sum(amount) AS spent FROM my_db.orders GROUP BY customer_id \
         ORDER BY spent DESC, customer_id LIMIT 100) \
         SELECT c.name, c.region, t.spent FROM top t JOIN customers c ON c.id = t.customer_id \
         ORDER BY t.spent DESC, c.name",
    ),
];

struct Figures {
    bytes: u64,
    /// Of `bytes`, what planning cost (the plan's request and reply, a link probe).
    planning_bytes: u64,
    time: Duration,
    rows: usize,
}

async fn timed(session: &mut DualSession, sql: &str) -> Result<Figures> {
    let before = session.link().moved();
    let t = Instant::now();
    let outcome = session.run(sql).await.with_context(|| format!("running {sql}"))?;
    Ok(Figures {
        bytes: session.link().moved() - before,
        planning_bytes: outcome.planning_bytes,
        time: t.elapsed(),
        rows: outcome.num_rows(),
    })
}

/// Strategy (a), first half: every cloud row and column comes down once, into a local
/// temporary table; each query then runs locally on it (see [`suite`]).
async fn download_all(session: &mut DualSession) -> Result<Figures> {
    // Over the link as the plans see it (compressed when slow), as is the upload after it.
    session.measure_link().await?;
    let before = session.link().moved();
    let t = Instant::now();
    let cloud = session.cloud().context("connected")?;
    let (schema, batches) = cloud.query_with_schema("SELECT * FROM my_db.main.orders").await?;
    let rows = session
        .local()
        .load_temp(ORDERS_COPY.trim_start_matches("temp.main."), &schema, &batches)? as usize;
    Ok(Figures {
        bytes: session.link().moved() - before,
        planning_bytes: 0,
        time: t.elapsed(),
        rows,
    })
}

/// Strategy (b), first half: every local row and column goes up once, into a temporary
/// table on the duckling; each query then runs remotely on it.
async fn upload_all(session: &mut DualSession) -> Result<Figures> {
    let before = session.link().moved();
    let t = Instant::now();
    let (schema, batches) = session.local().query("SELECT * FROM customers")?;
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let cloud = session.cloud().context("connected")?;
    cloud.upload_temp("all_customers", schema, batches).await?;
    Ok(Figures {
        bytes: session.link().moved() - before,
        planning_bytes: 0,
        time: t.elapsed(),
        rows,
    })
}

/// Strategy (a), second half: the query on the downloaded copy.
fn run_on_download(session: &DualSession, sql: &str) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let (_, result) = session.local().query(&sql.replace("my_db.orders", ORDERS_COPY))?;
    Ok((t.elapsed(), result.iter().map(|b| b.num_rows()).sum()))
}

/// Strategy (b), second half: the query on the uploaded copy.
async fn run_on_upload(session: &mut DualSession, sql: &str) -> Result<(Duration, u64, usize)> {
    let before = session.link().moved();
    let t = Instant::now();
    let remote_sql = sql
        .replace("customers c", "temp.main.all_customers c")
        .replace("my_db.orders", "my_db.main.orders");
    let (_, result) = session
        .cloud()
        .context("connected")?
        .query_with_schema(&remote_sql)
        .await?;
    Ok((
        t.elapsed(),
        session.link().moved() - before,
        result.iter().map(|b| b.num_rows()).sum(),
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `operator_bytes` keeps the sizes the true minimal cuts are made of, measured once for both suites.
async fn suite(session: &mut DualSession, suffix: &str, operator_bytes: &mut HashMap<String, Sizes>) -> Result<()> {
    let down = download_all(session).await?;
    let up = upload_all(session).await?;
    figure(
        &format!("dual{suffix}_download_all_cloud_data_time"),
        ms(down.time),
        "ms",
    );
    figure(
        &format!("dual{suffix}_download_all_cloud_data_bytes"),
        down.bytes as f64,
        "bytes",
    );
    figure(&format!("dual{suffix}_upload_all_local_data_time"), ms(up.time), "ms");
    figure(
        &format!("dual{suffix}_upload_all_local_data_bytes"),
        up.bytes as f64,
        "bytes",
    );
    let mut worst_selective_time_ratio: f64 = 0.0;
    let mut worst_bytes_ratio: f64 = 0.0;
    let mut worst_data_ratio: f64 = 0.0;
    for (name, selective, sql) in QUERIES {
        session.run("SET pond_run = 'auto'").await?;
        // A warm-up run fills both DuckDBs' caches.
        let _ = timed(session, sql).await?;
        let chosen = timed(session, sql).await?;
        // The same query planned whole (no fragments), for what splitting gained.
        session.set_split_subqueries(false);
        let whole = timed(session, sql).await?;
        session.set_split_subqueries(true);
        session.run("SET pond_run = 'local'").await?;
        let forced_local = timed(session, sql).await?;
        session.run("SET pond_run = 'remote'").await?;
        let forced_remote = timed(session, sql).await?;
        session.run("SET pond_run = 'auto'").await?;
        let (local_time, local_rows) = run_on_download(session, sql)?;
        let (remote_time, result_bytes, remote_rows) = run_on_upload(session, sql).await?;
        anyhow::ensure!(
            [
                whole.rows,
                forced_local.rows,
                forced_remote.rows,
                local_rows,
                remote_rows
            ]
            .iter()
            .all(|r| *r == chosen.rows),
            "{name}: strategies disagree on the row count"
        );
        let all_down = down.time + local_time;
        let all_up = up.time + remote_time;
        let best_forced = forced_local.bytes.min(forced_remote.bytes).max(1);
        let cuts = true_min_cut(session, name, &sql.replace("my_db.orders", ORDERS_COPY), operator_bytes)?
            .with_context(|| format!("{name} has no written-out plan"))?;
        // A session that compresses its calls is held to the compressed cut.
        let compressed = session.cloud().is_some_and(|c| c.compressed());
        let min_cut = if compressed { cuts.zstd } else { cuts.ipc }.max(1);
        figure(
            &format!("dual_{name}{suffix}_true_min_cut_zstd_bytes"),
            cuts.zstd as f64,
            "bytes",
        );
        figure(
            &format!("dual_{name}{suffix}_compressed"),
            f64::from(u8::from(compressed)),
            "bool",
        );
        let bytes_ratio = chosen.bytes as f64 / min_cut as f64;
        let time_ratio = chosen.time.as_secs_f64() / all_down.as_secs_f64();
        figure(&format!("dual_{name}{suffix}_rows"), chosen.rows as f64, "rows");
        figure(
            &format!("dual_{name}{suffix}_bytes_moved"),
            chosen.bytes as f64,
            "bytes",
        );
        figure(
            &format!("dual_{name}{suffix}_true_min_cut_bytes"),
            min_cut as f64,
            "bytes",
        );
        figure(
            &format!("dual_{name}{suffix}_whole_query_plan_bytes"),
            whole.bytes as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_bytes_vs_true_min_cut"), bytes_ratio, "x");
        // The same without planning's own traffic: what the bridges and the result moved.
        let data_bytes = chosen.bytes - chosen.planning_bytes;
        figure(
            &format!("dual_{name}{suffix}_planning_bytes"),
            chosen.planning_bytes as f64,
            "bytes",
        );
        figure(
            &format!("dual_{name}{suffix}_data_bytes_vs_true_min_cut"),
            data_bytes as f64 / min_cut as f64,
            "x",
        );
        worst_data_ratio = worst_data_ratio.max(data_bytes as f64 / min_cut as f64);
        figure(
            &format!("dual_{name}{suffix}_best_forced_plan_bytes"),
            best_forced as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_time"), ms(chosen.time), "ms");
        figure(&format!("dual_{name}{suffix}_download_all_time"), ms(all_down), "ms");
        figure(&format!("dual_{name}{suffix}_upload_all_time"), ms(all_up), "ms");
        figure(
            &format!("dual_{name}{suffix}_upload_all_bytes"),
            (up.bytes + result_bytes) as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_time_vs_download_all"), time_ratio, "x");
        worst_bytes_ratio = worst_bytes_ratio.max(bytes_ratio);
        if *selective {
            worst_selective_time_ratio = worst_selective_time_ratio.max(time_ratio);
        }
    }
    session.local().drop_temp(ORDERS_COPY.trim_start_matches("temp.main."));
    session
        .cloud()
        .context("connected")?
        .execute("DROP TABLE temp.main.all_customers")
        .await?;
    figure(
        &format!("dual{suffix}_worst_bytes_vs_true_min_cut"),
        worst_bytes_ratio,
        "x",
    );
    figure(
        &format!("dual{suffix}_worst_data_bytes_vs_true_min_cut"),
        worst_data_ratio,
        "x",
    );
    figure(
        &format!("dual{suffix}_worst_selective_time_vs_download_all"),
        worst_selective_time_ratio,
        "x",
    );
    Ok(())
}

/// Runs the dual-execution benchmark: `scale` 1.0 is 1M local and 10M cloud rows.
pub async fn run(scale: f64) -> Result<()> {
    let mut server = BenchServer::start().await?;
    let local_rows = ((1_000_000.0 * scale) as u64).max(1000);
    let cloud_rows = ((10_000_000.0 * scale) as u64).max(10_000);
    server
        .client
        .execute(&format!(
            "CREATE TABLE my_db.orders AS SELECT range AS id, (range * 7919) % {local_rows} AS customer_id, \
             ((range % 100000) / 100)::DECIMAL(12,2) AS amount, \
             ['new', 'paid', 'shipped', 'returned'][(hash(range) % 4)::BIGINT + 1] AS status, \
             'note-' || (range % 50000)::VARCHAR AS note FROM range({cloud_rows})"
        ))
        .await?;
    let options = ConnectOptions::parse(&server.url)?;
    let local_setup = format!(
        "CREATE TABLE customers AS SELECT range AS id, 'customer-' || range::VARCHAR AS name, \
         ['north', 'south', 'east', 'west', 'central'][range % 5 + 1] AS region, \
         'segment-' || (range % 100)::VARCHAR AS segment FROM range({local_rows})"
    );
    let mut operator_bytes = HashMap::new();
    for (link, suffix) in [(Link::unlimited(), ""), (Link::throttled(SLOW_LINK_BITS), "_100mbit")] {
        let mut session = DualSession::open_over(None, Some(options.clone()), Arc::clone(&link)).await?;
        session.run(&local_setup).await?;
        let attached = session.run("ATTACH 'pond:'").await?;
        anyhow::ensure!(attached.venue == Venue::Client, "attach");
        suite(&mut session, suffix, &mut operator_bytes).await?;
    }
    server.stop().await
}
