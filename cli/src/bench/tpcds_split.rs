//! `pond bench tpcds-split`: TPC-DS with its fact tables in the cloud and its dimensions on the
//! laptop (the split where MotherDuck's planner gained most over a greedy one), all 99 queries
//! by dual execution over an emulated 100 Mbit/s link, measured like `tpch-split`: Pond's split
//! plans, its whole-query placement, and downloading every cloud table once, each answer checked
//! against an in-process DuckDB holding every table.
//!
//! Data and queries come from DuckDB's official tpcds extension (`dsdgen`, `tpcds_queries()`)
//! for the DuckDB Pond links, from its PyPI wheel `duckdb-extension-tpcds`: fetched once into
//! `~/.cache/pond-bench` with `curl`, checked against the SHA-256 PyPI publishes, and unpacked
//! with Python's `zipfile`; or given by `--tpcds-extension`. A query whose dual execution fails
//! or answers differently is named (`tpcds_split_qNN_failed`, its error in the log) and left out
//! of the totals, so one query cannot hide the other 98.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result};
use pond_client::{ConnectOptions, DualSession, Link};
use pond_duckling::Database;
use sha2::{Digest, Sha256};

use super::split_bench::{Totals, answer, both_ways, download_all, in_the_cloud, on_copies};
use super::{BenchServer, figure, tpch};

/// The emulated link.
const LINK_BITS: u64 = 100_000_000;
/// The figures' names start with this.
const PREFIX: &str = "tpcds_split";

/// The fact tables, in the cloud; every other table is a dimension, on the laptop.
const CLOUD: [&str; 7] = [
    "store_sales",
    "store_returns",
    "catalog_sales",
    "catalog_returns",
    "web_sales",
    "web_returns",
    "inventory",
];

/// The tpcds extension's wheel for DuckDB 1.5.5 on Linux x86-64, and its SHA-256 as PyPI
/// publishes it.
const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/9c/f0/4b468aff18d379293a767cd7a4f6b6e7d9560764cbccfb363f5b7575bbcf/duckdb_extension_tpcds-1.5.5-py3-none-manylinux2014_x86_64.whl";
const WHEEL_SHA256: &str = "fd1ad5b4b5443d0e32d1ebe9122845eb3d2b74466cee2cd56650024e9196f697";
const WHEEL_MEMBER: &str = "duckdb_extension_tpcds/extensions/v1.5.5/tpcds.duckdb_extension";

/// The tpcds extension: `given`, or the official one, fetched once.
fn extension(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(path.is_file(), "no tpcds extension at {}", path.display());
        return Ok(path);
    }
    anyhow::ensure!(
        cfg!(all(target_os = "linux", target_arch = "x86_64")),
        "the official tpcds extension is fetched for Linux x86-64 only: give --tpcds-extension"
    );
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let dir = Path::new(&home).join(".cache/pond-bench/tpcds-1.5.5");
    let path = dir.join("tpcds.duckdb_extension");
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let wheel = dir.join("extension.whl");
    let fetched = Command::new("curl")
        .args(["-sSfL", "--retry", "3", "-o"])
        .arg(&wheel)
        .arg(WHEEL_URL)
        .status()
        .context("running curl")?;
    anyhow::ensure!(fetched.success(), "curl could not fetch {WHEEL_URL}");
    let digest: String = Sha256::digest(std::fs::read(&wheel)?)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    anyhow::ensure!(
        digest == WHEEL_SHA256,
        "{WHEEL_URL} has SHA-256 {digest}, not the published {WHEEL_SHA256}"
    );
    let unpacking = dir.join("tpcds.duckdb_extension.part");
    let unpacked = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(WHEEL_MEMBER)
        .arg(&unpacking)
        .status()
        .context("running python3 to unpack the wheel")?;
    anyhow::ensure!(unpacked.success(), "python3 could not unpack {}", wheel.display());
    std::fs::rename(&unpacking, &path)?;
    std::fs::remove_file(&wheel)?;
    Ok(path)
}

/// Loads the extension and generates every table at scale factor `scale`.
fn generating(extension: &Path, scale: f64) -> String {
    let path = extension.display().to_string().replace('\'', "''");
    format!("LOAD '{path}'; CALL dsdgen(sf = {scale})")
}

/// Runs the benchmark at TPC-DS scale factor `scale`.
pub async fn run(scale: f64, given: Option<PathBuf>, only: &[i32]) -> Result<()> {
    let extension = extension(given)?;
    let db = Database::open(None, &[])?;
    let reference = db.connect()?;
    reference
        .execute_batch(&generating(&extension, scale))
        .context("loading the tpcds extension and generating the data")?;
    let queries: Vec<(i32, String)> = {
        let batches = reference.query_all("SELECT query_nr, query FROM tpcds_queries() ORDER BY query_nr")?;
        let mut out = Vec::new();
        for b in &batches {
            let numbers = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int32)?;
            let numbers = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int32Type>(&numbers);
            let texts = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8)?;
            let texts = arrow::array::AsArray::as_string::<i32>(&texts);
            for r in 0..b.num_rows() {
                out.push((numbers.value(r), texts.value(r).to_string()));
            }
        }
        out
    };
    anyhow::ensure!(queries.len() == 99, "tpcds_queries() gave {} queries", queries.len());
    let queries: Vec<(i32, String)> = queries
        .into_iter()
        .filter(|(q, _)| only.is_empty() || only.contains(q))
        .collect();

    let mut server = BenchServer::start().await?;
    tpch::load_pond(&reference, &mut server.client, &CLOUD).await?;
    let options = ConnectOptions::parse(&server.url)?;
    let link = Link::throttled(LINK_BITS);
    let mut session = DualSession::open_over(None, Some(options), Arc::clone(&link)).await?;
    // The laptop's dimensions: the same generator, without the facts.
    session.local().execute(&generating(&extension, scale))?;
    for table in CLOUD {
        session.local().execute(&format!("DROP TABLE {table}"))?;
    }
    session.run("ATTACH 'pond:'").await?;

    // Every cloud table comes down once, into a temporary table of the same name (queries
    // qualify columns by table name: `store_sales.ss_item_sk`).
    let download_all = download_all(&mut session, &link, &CLOUD, str::to_string, PREFIX).await?;

    // The session probes its link before its first mixed query: not inside a measured one.
    session
        .run("SELECT count(*) FROM item JOIN my_db.inventory ON inv_item_sk = i_item_sk WHERE i_item_sk < 10")
        .await?;
    let mut totals = Totals::new(PREFIX);
    let mut failed = 0usize;
    for (q, text) in &queries {
        let q = *q;
        let sql = in_the_cloud(text, &CLOUD).with_context(|| format!("Q{q}"))?;
        let expected = answer(&reference.query_all(text).with_context(|| format!("Q{q} in DuckDB"))?);
        let (split, whole) = match both_ways(&mut session, &sql, &expected, q).await {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(query = q, error = %format!("{e:#}"), "a TPC-DS query failed");
                figure(&format!("{PREFIX}_q{q:02}_failed"), 1.0, "query");
                failed += 1;
                continue;
            }
        };
        let local = on_copies(&session, &sql.replace("my_db.", "temp.main."), &expected, q)?;
        totals.add(q, &split, &whole, local);
    }
    figure(
        &format!("{PREFIX}_queries_measured"),
        (queries.len() - failed) as f64,
        "queries",
    );
    figure(&format!("{PREFIX}_queries_failed"), failed as f64, "queries");
    totals.report(download_all);
    server.stop().await
}
