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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use pond_client::{ConnectOptions, DualSession, Link};
use pond_duckling::Database;

use super::{BenchServer, figure, tpch};

/// The emulated link.
const LINK_BITS: u64 = 100_000_000;

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

/// `sql` with every table in `cloud` qualified by the cloud database, `my_db`: a name where a
/// FROM list or a JOIN expects a table (after `FROM`, `JOIN`, or a comma of a FROM list), not
/// followed by a dot. The same word elsewhere is a column or an alias (TPC-DS names columns
/// `store_sales` too) and stays.
pub(super) fn in_the_cloud(sql: &str, cloud: &[&str]) -> Result<String> {
    let lexed = pond_duckling::lexer::tokenize(sql).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = String::with_capacity(sql.len() + 64);
    let mut at = 0;
    // Per parenthesis depth, whether its clause is a FROM list.
    let mut in_from = vec![false];
    let mut expects_table = false;
    // Not ON: a comma after a join's condition goes on with the FROM list.
    const ENDS_FROM: [&str; 11] = [
        "where",
        "group",
        "having",
        "order",
        "limit",
        "union",
        "except",
        "intersect",
        "window",
        "qualify",
        "select",
    ];
    for (i, t) in lexed.iter().enumerate() {
        let followed_by_dot = lexed.get(i + 1).is_some_and(|n| n.is_punct('.'));
        if expects_table && !followed_by_dot && cloud.iter().any(|c| t.is_word(c)) {
            out.push_str(&sql[at..t.span.start]);
            out.push_str("my_db.");
            out.push_str(&sql[t.span.clone()]);
            at = t.span.end;
        }
        expects_table = false;
        if t.is_punct('(') {
            in_from.push(false);
        } else if t.is_punct(')') {
            in_from.pop();
            if in_from.is_empty() {
                in_from.push(false);
            }
        } else if t.is_word("from") {
            *in_from.last_mut().expect("a depth") = true;
            expects_table = true;
        } else if t.is_word("join") {
            expects_table = true;
        } else if t.is_punct(',') {
            expects_table = *in_from.last().expect("a depth");
        } else if ENDS_FROM.iter().any(|w| t.is_word(w)) {
            *in_from.last_mut().expect("a depth") = false;
        }
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

/// Q15's `create view …; select …; drop view …;` as one `WITH` query.
fn as_with(sql: &str) -> Option<String> {
    let (view, rest) = sql.split_once(';')?;
    let select = rest.split_once(';')?.0;
    let (head, body) = view.split_once(" as\n")?;
    let head = head.trim().strip_prefix("create view ")?;
    Some(format!("with {head} as ({body})\n{}", select.trim()))
}

/// One value of an answer: numbers with a fraction compare within a relative 1e-9 (sums of
/// doubles differ in their last bits with the order DuckDB adds them in), the rest as text.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Number(f64),
    Text(String),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            (Value::Text(a), Value::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// Rows, sorted by their text with numbers to six significant digits.
pub(super) fn answer(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let options = arrow::util::display::FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .filter_map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).ok())
            .collect();
        for r in 0..b.num_rows() {
            let row: Vec<Value> = formatters
                .iter()
                .map(|f| {
                    let text = f.value(r).to_string();
                    match text.parse::<f64>() {
                        Ok(v) if text.contains('.') => Value::Number(v),
                        _ => Value::Text(text),
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    let key = |row: &Vec<Value>| {
        row.iter()
            .map(|v| match v {
                Value::Number(n) => format!("{n:.5e}"),
                Value::Text(t) => t.clone(),
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    rows.sort_by_cached_key(key);
    rows
}

/// One query's dual execution, measured.
pub(super) struct Run {
    pub time: Duration,
    pub bytes: u64,
    pub fragments: usize,
}

/// Runs `sql` in `session`, checks its answer against `expected`, and measures it.
pub(super) async fn dual(session: &mut DualSession, sql: &str, expected: &[Vec<Value>], what: &str) -> Result<Run> {
    let before = session.link().moved();
    let t = Instant::now();
    let outcome = session.run(sql).await.with_context(|| what.to_string())?;
    let time = t.elapsed();
    let got = answer(&outcome.batches);
    anyhow::ensure!(
        got == expected,
        "{what}: the answer differs from DuckDB's: {} rows, expected {}; first rows {:?}, expected {:?}",
        got.len(),
        expected.len(),
        &got[..got.len().min(3)],
        &expected[..expected.len().min(3)]
    );
    Ok(Run {
        time,
        bytes: session.link().moved() - before,
        fragments: outcome.plan.map_or(0, |p| p.fragments.len()),
    })
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
    let before = link.moved();
    let t = Instant::now();
    for table in CLOUD {
        let cloud = session.cloud().context("connected")?;
        let (schema, batches) = cloud
            .query_with_schema(&format!("SELECT * FROM my_db.main.{table}"))
            .await?;
        session.local().load_temp(&format!("all_{table}"), &schema, &batches)?;
    }
    let download_all = t.elapsed();
    figure("tpch_split_download_all_time", download_all.as_secs_f64() * 1e3, "ms");
    figure("tpch_split_download_all_bytes", (link.moved() - before) as f64, "bytes");

    // The session probes its link before its first mixed query: not inside a measured one.
    session
        .run("SELECT count(*) FROM nation JOIN my_db.part ON p_partkey = n_nationkey")
        .await?;
    let (mut split_total, mut whole_total, mut local_total) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut split_bytes, mut whole_bytes) = (0u64, 0u64);
    let mut split_queries = BTreeSet::new();
    for q in 1..=22 {
        let sql = split_query(q)?;
        let reference_sql = sql.replace("my_db.", "");
        let expected = answer(
            &reference
                .query_all(&reference_sql)
                .with_context(|| format!("Q{q} in DuckDB"))?,
        );

        // Each way once unmeasured first, so neither pays for the caches the other fills.
        session.set_split_subqueries(true);
        dual(&mut session, &sql, &expected, &format!("Q{q} split")).await?;
        session.set_split_subqueries(false);
        dual(&mut session, &sql, &expected, &format!("Q{q} whole-query placement")).await?;
        session.set_split_subqueries(true);
        let split = dual(&mut session, &sql, &expected, &format!("Q{q} split")).await?;
        session.set_split_subqueries(false);
        let whole = dual(&mut session, &sql, &expected, &format!("Q{q} whole-query placement")).await?;
        session.set_split_subqueries(true);

        let local_sql = sql.replace("my_db.", "temp.main.all_");
        let t = Instant::now();
        let (_, batches) = session
            .local()
            .query(&local_sql)
            .with_context(|| format!("Q{q} on the copies"))?;
        let local = t.elapsed();
        anyhow::ensure!(answer(&batches) == expected, "Q{q} on the copies differs from DuckDB's");

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        figure(&format!("tpch_split_q{q:02}_split_time"), ms(split.time), "ms");
        figure(&format!("tpch_split_q{q:02}_split_bytes"), split.bytes as f64, "bytes");
        figure(
            &format!("tpch_split_q{q:02}_fragments"),
            split.fragments as f64,
            "fragments",
        );
        figure(&format!("tpch_split_q{q:02}_whole_query_time"), ms(whole.time), "ms");
        figure(
            &format!("tpch_split_q{q:02}_whole_query_bytes"),
            whole.bytes as f64,
            "bytes",
        );
        figure(&format!("tpch_split_q{q:02}_local_on_copies_time"), ms(local), "ms");
        if split.fragments > 0 {
            split_queries.insert(q);
        }
        split_total += split.time;
        whole_total += whole.time;
        local_total += local;
        split_bytes += split.bytes;
        whole_bytes += whole.bytes;
    }
    figure(
        "tpch_split_queries_with_fragments",
        split_queries.len() as f64,
        "queries",
    );
    figure("tpch_split_total_split_time", split_total.as_secs_f64(), "s");
    figure("tpch_split_total_whole_query_time", whole_total.as_secs_f64(), "s");
    figure(
        "tpch_split_total_download_all_time",
        (download_all + local_total).as_secs_f64(),
        "s",
    );
    figure("tpch_split_total_split_bytes", split_bytes as f64, "bytes");
    figure("tpch_split_total_whole_query_bytes", whole_bytes as f64, "bytes");
    figure(
        "tpch_split_split_vs_whole_query_time",
        split_total.as_secs_f64() / whole_total.as_secs_f64(),
        "x",
    );
    figure(
        "tpch_split_split_vs_download_all_time",
        split_total.as_secs_f64() / (download_all + local_total).as_secs_f64(),
        "x",
    );
    server.stop().await
}

#[cfg(test)]
mod tests {
    use super::in_the_cloud;

    #[test]
    fn only_tables_are_qualified_not_columns_or_aliases_of_the_same_name() {
        let sql = "with v as (select sum(ss_price) store_sales from store_sales, date_dim \
                   where store_sales.ss_date = d_date) \
                   select v.store_sales, x.store_sales from v join store_sales x on true, (select 1 from web_sales) w \
                   where extract(year from d_date) = 1";
        let got = in_the_cloud(sql, &["store_sales", "web_sales"]).unwrap();
        assert_eq!(
            got,
            "with v as (select sum(ss_price) store_sales from my_db.store_sales, date_dim \
             where store_sales.ss_date = d_date) \
             select v.store_sales, x.store_sales from v join my_db.store_sales x on true, (select 1 from my_db.web_sales) w \
             where extract(year from d_date) = 1"
        );
    }
}
