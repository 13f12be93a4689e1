//! `pond bench shares`: what sharing a database costs, through a real server and Pond's client.
//!
//! (a) For a database of each size: the time of `CREATE SHARE`, and of a reader's `ATTACH`
//!     with its first query; the bytes both write to the object store (a share is a pointer:
//!     the target is O(1), ≤ 64 KiB, like a clone) and, separately, the bytes the reader's
//!     duckling writes on its own disk: its private read-only copy (what time travel writes
//!     too: DuckDB reads a file) and the object cache it was built from.
//! (b) The delay from a commit to an AUTOMATIC share's reader seeing it, p50 and p99 (target
//!     p99 ≤ 2 s): the reader polls every 5 ms.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use pond_client::PondClient;

use super::storage::{BYTES_PER_ROW, label};
use super::{BenchServer, figure, percentile};

/// Bytes allocated on disk under `dir` (sparse holes excluded).
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// The one value of a one-row, one-column answer, as text.
async fn value(client: &mut PondClient, sql: &str) -> Result<String> {
    let batches = client.query(sql).await.with_context(|| sql.to_string())?;
    let batch = batches.iter().find(|b| b.num_rows() > 0).context("no row")?;
    let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
    let strings = column.as_string::<i32>();
    anyhow::ensure!(!strings.is_null(0), "{sql} answered NULL");
    Ok(strings.value(0).to_string())
}

/// Runs the shares benchmarks.
pub async fn run(sizes: &[u64], iterations: usize) -> Result<()> {
    let server = BenchServer::start().await?;
    let mut owner = server.user_client("bench_owner").await?;
    let mut reader = server.user_client("bench_reader").await?;
    value(&mut reader, "SELECT 1").await?;
    let data = server.dir.path().to_path_buf();
    let store = data.join("storage");

    // (a) Creating and attaching a share of a database of each size.
    for &size in sizes {
        let name = label(size);
        let db = format!("big_{name}");
        owner.execute(&format!("CREATE DATABASE {db}")).await?;
        owner
            .execute(&format!(
                "CREATE TABLE {db}.t AS SELECT i, hash(i) AS h, md5(i::VARCHAR) AS s FROM range({}) r(i)",
                size / BYTES_PER_ROW
            ))
            .await?;
        figure(
            &format!("shares_{name}_source_store"),
            disk_bytes(&store) as f64 / (1 << 20) as f64,
            "MiB",
        );
        let (store_before, local_before) = (disk_bytes(&store), disk_bytes(&data) - disk_bytes(&store));
        let t = Instant::now();
        let url = value(&mut owner, &format!("CREATE SHARE s_{name} FROM {db}")).await?;
        figure(&format!("shares_create_{name}"), t.elapsed().as_secs_f64() * 1e3, "ms");
        let t = Instant::now();
        reader.execute(&format!("ATTACH '{url}' AS r_{name}")).await?;
        let rows: u64 = value(&mut reader, &format!("SELECT count(*) FROM r_{name}.t"))
            .await?
            .parse()?;
        figure(
            &format!("shares_attach_and_first_query_{name}"),
            t.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        anyhow::ensure!(rows == size / BYTES_PER_ROW, "the reader counted {rows} rows");
        let store_written = disk_bytes(&store).saturating_sub(store_before);
        let local_written = (disk_bytes(&data) - disk_bytes(&store)).saturating_sub(local_before);
        figure(
            &format!("shares_create_and_attach_store_bytes_{name}"),
            store_written as f64,
            "bytes",
        );
        figure(
            &format!("shares_attach_reader_local_disk_{name}"),
            local_written as f64 / (1 << 20) as f64,
            "MiB",
        );
        reader.execute(&format!("DETACH r_{name}")).await?;
        owner.execute(&format!("DROP DATABASE {db}")).await?;
    }

    // (b) From a commit to an AUTOMATIC share's reader seeing it.
    owner.execute("CREATE DATABASE live").await?;
    owner.execute("CREATE TABLE live.t AS SELECT 0 AS i").await?;
    let url = value(&mut owner, "CREATE SHARE live FROM live (UPDATE AUTOMATIC)").await?;
    reader.execute(&format!("ATTACH '{url}' AS live_share")).await?;
    let mut delays = Vec::new();
    for k in 1..=iterations.clamp(5, 40) as i64 {
        owner.execute(&format!("INSERT INTO live.t VALUES ({k})")).await?;
        let committed = Instant::now();
        loop {
            let seen: i64 = value(&mut reader, "SELECT max(i) FROM live_share.t").await?.parse()?;
            if seen >= k {
                break;
            }
            anyhow::ensure!(
                committed.elapsed() < Duration::from_secs(30),
                "the reader never saw commit {k}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(committed.elapsed());
    }
    delays.sort();
    figure(
        "shares_automatic_commit_to_reader_p50",
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        "ms",
    );
    figure(
        "shares_automatic_commit_to_reader_p99",
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        "ms",
    );
    server.stop().await
}
