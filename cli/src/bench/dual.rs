//! `pond bench dual`: dual execution on generated data, a local table of 1M rows (times
//! `--scale`) against a cloud table of 10M rows, with selective and non-selective joins.
//!
//! For each query it prints the bytes the chosen plan moved, the smallest cut of the two
//! forced plans (`pond_run = 'local'` and `'remote'`, each with Pond's reductions), and the
//! time against (a) downloading all cloud data and running locally and (b) uploading all
//! local data and running remotely. Then it does it all again over an emulated 100 Mbit/s
//! link (a throttle in the client's transport).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_client::{ConnectOptions, DualSession, IngestTarget, Link, Venue};

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
];

struct Figures {
    bytes: u64,
    time: Duration,
    rows: usize,
}

async fn timed(session: &mut DualSession, sql: &str) -> Result<Figures> {
    let before = session.link().moved();
    let t = Instant::now();
    let outcome = session.run(sql).await.with_context(|| format!("running {sql}"))?;
    Ok(Figures {
        bytes: session.link().moved() - before,
        time: t.elapsed(),
        rows: outcome.num_rows(),
    })
}

/// Strategy (a): every cloud row and column comes down, then the query runs locally.
async fn download_all(session: &mut DualSession, sql: &str) -> Result<Figures> {
    let before = session.link().moved();
    let t = Instant::now();
    let cloud = session.cloud().context("connected")?;
    let (schema, batches) = cloud.query_with_schema("SELECT * FROM my_db.main.orders").await?;
    session.local().load_temp("all_orders", &schema, &batches)?;
    drop(batches);
    let (_, result) = session
        .local()
        .query(&sql.replace("my_db.orders", "temp.main.all_orders"))?;
    session.local().drop_temp("all_orders");
    Ok(Figures {
        bytes: session.link().moved() - before,
        time: t.elapsed(),
        rows: result.iter().map(|b| b.num_rows()).sum(),
    })
}

/// Strategy (b): every local row and column goes up, then the query runs remotely.
async fn upload_all(session: &mut DualSession, sql: &str) -> Result<Figures> {
    let before = session.link().moved();
    let t = Instant::now();
    let (_, batches) = session.local().query("SELECT * FROM customers")?;
    let cloud = session.cloud().context("connected")?;
    let target = IngestTarget {
        table: "all_customers".into(),
        temporary: true,
        replace: true,
        ..Default::default()
    };
    cloud
        .ingest_stream(target, futures::stream::iter(batches.into_iter().map(Ok)))
        .await?;
    let remote_sql = sql
        .replace("customers c", "temp.main.all_customers c")
        .replace("my_db.orders", "my_db.main.orders");
    let (_, result) = cloud.query_with_schema(&remote_sql).await?;
    cloud.execute("DROP TABLE temp.main.all_customers").await?;
    Ok(Figures {
        bytes: session.link().moved() - before,
        time: t.elapsed(),
        rows: result.iter().map(|b| b.num_rows()).sum(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn suite(session: &mut DualSession, suffix: &str) -> Result<()> {
    let mut worst_selective_time_ratio: f64 = 0.0;
    let mut worst_bytes_ratio: f64 = 0.0;
    for (name, selective, sql) in QUERIES {
        session.run("SET pond_run = 'auto'").await?;
        // One warm-up run plans and caches nothing but warms both DuckDBs' caches.
        let _ = timed(session, sql).await?;
        let chosen = timed(session, sql).await?;
        session.run("SET pond_run = 'local'").await?;
        let forced_local = timed(session, sql).await?;
        session.run("SET pond_run = 'remote'").await?;
        let forced_remote = timed(session, sql).await?;
        session.run("SET pond_run = 'auto'").await?;
        let all_down = download_all(session, sql).await?;
        let all_up = upload_all(session, sql).await?;
        anyhow::ensure!(
            [forced_local.rows, forced_remote.rows, all_down.rows, all_up.rows]
                .iter()
                .all(|r| *r == chosen.rows),
            "{name}: strategies disagree on the row count"
        );
        let min_cut = forced_local.bytes.min(forced_remote.bytes).max(1);
        let bytes_ratio = chosen.bytes as f64 / min_cut as f64;
        let time_ratio = chosen.time.as_secs_f64() / all_down.time.as_secs_f64();
        figure(
            &format!("dual_{name}{suffix}_bytes_moved"),
            chosen.bytes as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_min_cut_bytes"), min_cut as f64, "bytes");
        figure(&format!("dual_{name}{suffix}_bytes_vs_min_cut"), bytes_ratio, "x");
        figure(&format!("dual_{name}{suffix}_time"), ms(chosen.time), "ms");
        figure(
            &format!("dual_{name}{suffix}_download_all_time"),
            ms(all_down.time),
            "ms",
        );
        figure(
            &format!("dual_{name}{suffix}_download_all_bytes"),
            all_down.bytes as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_upload_all_time"), ms(all_up.time), "ms");
        figure(
            &format!("dual_{name}{suffix}_upload_all_bytes"),
            all_up.bytes as f64,
            "bytes",
        );
        figure(&format!("dual_{name}{suffix}_time_vs_download_all"), time_ratio, "x");
        worst_bytes_ratio = worst_bytes_ratio.max(bytes_ratio);
        if *selective {
            worst_selective_time_ratio = worst_selective_time_ratio.max(time_ratio);
        }
    }
    figure(&format!("dual{suffix}_worst_bytes_vs_min_cut"), worst_bytes_ratio, "x");
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
             ['new', 'paid', 'shipped', 'returned'][range % 4 + 1] AS status, \
             'note-' || (range % 50000)::VARCHAR AS note FROM range({cloud_rows})"
        ))
        .await?;
    let options = ConnectOptions::parse(&server.url)?;
    let local_setup = format!(
        "CREATE TABLE customers AS SELECT range AS id, 'customer-' || range::VARCHAR AS name, \
         ['north', 'south', 'east', 'west', 'central'][range % 5 + 1] AS region, \
         'segment-' || (range % 100)::VARCHAR AS segment FROM range({local_rows})"
    );
    for (link, suffix) in [(Link::unlimited(), ""), (Link::throttled(SLOW_LINK_BITS), "_100mbit")] {
        let mut session = DualSession::open_over(None, Some(options.clone()), Arc::clone(&link)).await?;
        session.run(&local_setup).await?;
        let attached = session.run("ATTACH 'pond:'").await?;
        anyhow::ensure!(attached.venue == Venue::Client, "attach");
        suite(&mut session, suffix).await?;
    }
    server.stop().await
}
