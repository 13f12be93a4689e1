//! What the split benchmarks (`tpch-split`, `tpcds-split`) share: a query's cloud tables
//! qualified by the cloud database, answers compared with DuckDB's, each query measured three
//! ways (split plans, whole-query placement, every cloud table downloaded once), and their
//! figures under one prefix.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use pond_client::{DualSession, Link};

use super::figure;

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
async fn dual(session: &mut DualSession, sql: &str, expected: &[Vec<Value>], what: &str) -> Result<Run> {
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

/// Query `q` split and placed whole, each once unmeasured first so neither pays for the
/// caches the other fills; the session is left splitting.
pub(super) async fn both_ways(
    session: &mut DualSession,
    sql: &str,
    expected: &[Vec<Value>],
    q: i32,
) -> Result<(Run, Run)> {
    let measured = async {
        session.set_split_subqueries(true);
        dual(session, sql, expected, &format!("Q{q} split")).await?;
        session.set_split_subqueries(false);
        dual(session, sql, expected, &format!("Q{q} whole-query placement")).await?;
        session.set_split_subqueries(true);
        let split = dual(session, sql, expected, &format!("Q{q} split")).await?;
        session.set_split_subqueries(false);
        let whole = dual(session, sql, expected, &format!("Q{q} whole-query placement")).await?;
        anyhow::Ok((split, whole))
    }
    .await;
    session.set_split_subqueries(true);
    measured
}

/// Every table of `cloud` downloaded into the local temporary table `copy(table)`; reports
/// the time and bytes under `prefix` and returns the time.
pub(super) async fn download_all(
    session: &mut DualSession,
    link: &Link,
    cloud: &[&str],
    copy: impl Fn(&str) -> String,
    prefix: &str,
) -> Result<Duration> {
    // Over the link as the split plans see it (compressed when slow).
    session.measure_link().await?;
    let before = link.moved();
    let t = Instant::now();
    for table in cloud {
        let client = session.cloud().context("connected")?;
        let (schema, batches) = client
            .query_with_schema(&format!("SELECT * FROM my_db.main.{table}"))
            .await?;
        session.local().load_temp(&copy(table), &schema, &batches)?;
    }
    let time = t.elapsed();
    figure(&format!("{prefix}_download_all_time"), time.as_secs_f64() * 1e3, "ms");
    figure(
        &format!("{prefix}_download_all_bytes"),
        (link.moved() - before) as f64,
        "bytes",
    );
    Ok(time)
}

/// `local_sql` (query `q` over the downloaded copies) run locally, checked and timed.
pub(super) fn on_copies(session: &DualSession, local_sql: &str, expected: &[Vec<Value>], q: i32) -> Result<Duration> {
    let t = Instant::now();
    let (_, batches) = session
        .local()
        .query(local_sql)
        .with_context(|| format!("Q{q} on the copies"))?;
    let time = t.elapsed();
    anyhow::ensure!(answer(&batches) == expected, "Q{q} on the copies differs from DuckDB's");
    Ok(time)
}

/// The running totals of a split benchmark, whose figures are named `{prefix}_…`.
pub(super) struct Totals {
    prefix: &'static str,
    split: Duration,
    whole: Duration,
    local: Duration,
    split_bytes: u64,
    whole_bytes: u64,
    with_fragments: usize,
}

impl Totals {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            split: Duration::ZERO,
            whole: Duration::ZERO,
            local: Duration::ZERO,
            split_bytes: 0,
            whole_bytes: 0,
            with_fragments: 0,
        }
    }

    /// Reports query `q`'s figures and adds them up.
    pub fn add(&mut self, q: i32, split: &Run, whole: &Run, local: Duration) {
        let p = self.prefix;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        figure(&format!("{p}_q{q:02}_split_time"), ms(split.time), "ms");
        figure(&format!("{p}_q{q:02}_split_bytes"), split.bytes as f64, "bytes");
        figure(&format!("{p}_q{q:02}_fragments"), split.fragments as f64, "fragments");
        figure(&format!("{p}_q{q:02}_whole_query_time"), ms(whole.time), "ms");
        figure(&format!("{p}_q{q:02}_whole_query_bytes"), whole.bytes as f64, "bytes");
        figure(&format!("{p}_q{q:02}_local_on_copies_time"), ms(local), "ms");
        self.with_fragments += usize::from(split.fragments > 0);
        self.split += split.time;
        self.whole += whole.time;
        self.local += local;
        self.split_bytes += split.bytes;
        self.whole_bytes += whole.bytes;
    }

    /// Reports the totals and the ratios: split plans against whole-query placement and
    /// against downloading every cloud table (`download_all`) then running locally.
    pub fn report(&self, download_all: Duration) {
        let p = self.prefix;
        let everything = download_all + self.local;
        figure(
            &format!("{p}_queries_with_fragments"),
            self.with_fragments as f64,
            "queries",
        );
        figure(&format!("{p}_total_split_time"), self.split.as_secs_f64(), "s");
        figure(&format!("{p}_total_whole_query_time"), self.whole.as_secs_f64(), "s");
        figure(&format!("{p}_total_download_all_time"), everything.as_secs_f64(), "s");
        figure(&format!("{p}_total_split_bytes"), self.split_bytes as f64, "bytes");
        figure(
            &format!("{p}_total_whole_query_bytes"),
            self.whole_bytes as f64,
            "bytes",
        );
        figure(
            &format!("{p}_split_vs_whole_query_time"),
            self.split.as_secs_f64() / self.whole.as_secs_f64(),
            "x",
        );
        figure(
            &format!("{p}_split_vs_download_all_time"),
            self.split.as_secs_f64() / everything.as_secs_f64(),
            "x",
        );
    }
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
