//! `pond bench tpch-split`: TPC-H with its tables split between the laptop and the cloud
//! (`customer`, `nation`, `region`, `supplier` local; `lineitem`, `orders`, `part`, `partsupp`
//! in the cloud), all 22 queries by dual execution over an emulated 100 Mbit/s link.
//!
//! Three ways to answer each query, measured in one run: Pond's split plans (fragments on),
//! Pond's whole-query placement (fragments off: the query runs on one side, the other side's
//! relations cross reduced), and downloading every cloud table once then running everything
//! locally. Every answer is checked against an in-process DuckDB holding all eight tables.
//! Q15's view becomes the WITH form the specification allows, since a session-local view over
//! cloud tables is not what this measures.

use std::sync::Arc;

use anyhow::{Context, Result};
use pond_client::{ConnectOptions, DualSession, Link};
use pond_duckling::Database;

use super::split_bench::{Totals, answer, both_ways, download_all, in_the_cloud, on_copies};
use super::{BenchServer, tpch};

/// The emulated link.
const LINK_BITS: u64 = 100_000_000;
/// The figures' names start with this.
const PREFIX: &str = "tpch_split";

/// Where each table lives.
const LOCAL: [&str; 4] = ["region", "nation", "supplier", "customer"];
const CLOUD: [&str; 4] = ["part", "partsupp", "orders", "lineitem"];

/// Query `q` with its cloud tables qualified by the cloud database.
fn split_query(q: i32) -> Result<String> {
    let mut sql = tpch::query(q)?;
    if q == 15 {
        sql = as_with(&sql).context("Q15's view")?;
    }
    in_the_cloud(&sql, &CLOUD).with_context(|| format!("Q{q}"))
}

/// Q15's `create view …; select …; drop view …;` as one `WITH` query.
fn as_with(sql: &str) -> Option<String> {
    let (view, rest) = sql.split_once(';')?;
    let select = rest.split_once(';')?.0;
    let (head, body) = view.split_once(" as\n")?;
    let head = head.trim().strip_prefix("create view ")?;
    Some(format!("with {head} as ({body})\n{}", select.trim()))
}

/// Runs the benchmark at TPC-H scale factor `scale`.
pub async fn run(scale: f64) -> Result<()> {
    let data = tempfile::tempdir()?;
    tpch::generate(data.path(), scale)?;
    let db = Database::open(None, &[])?;
    let reference = db.connect()?;
    tpch::load_reference(&reference, data.path())?;

    let mut server = BenchServer::start().await?;
    tpch::load_pond(&reference, &mut server.client, &CLOUD).await?;
    let options = ConnectOptions::parse(&server.url)?;
    let link = Link::throttled(LINK_BITS);
    let mut session = DualSession::open_over(None, Some(options), Arc::clone(&link)).await?;
    for t in LOCAL {
        let path = data.path().join(format!("{t}.csv"));
        session.local().execute(&format!(
            "CREATE TABLE {t} AS SELECT * FROM read_csv('{}', header = true)",
            path.display()
        ))?;
    }
    session.run("ATTACH 'pond:'").await?;

    // Strategy (c): every cloud table comes down once.
    let download_all = download_all(&mut session, &link, &CLOUD, |t| format!("all_{t}"), PREFIX).await?;

    // The session probes its link before its first mixed query: not inside a measured one.
    session
        .run("SELECT count(*) FROM nation JOIN my_db.part ON p_partkey = n_nationkey")
        .await?;
    let mut totals = Totals::new(PREFIX);
    for q in 1..=22 {
        let sql = split_query(q)?;
        let reference_sql = sql.replace("my_db.", "");
        let expected = answer(
            &reference
                .query_all(&reference_sql)
                .with_context(|| format!("Q{q} in DuckDB"))?,
        );
        let (split, whole) = both_ways(&mut session, &sql, &expected, q).await?;
        let local = on_copies(&session, &sql.replace("my_db.", "temp.main.all_"), &expected, q)?;
        totals.add(q, &split, &whole, local);
    }
    totals.report(download_all);
    server.stop().await
}
