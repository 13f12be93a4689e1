//! `pond bench lake`: TPC-H `lineitem` as Parquet on an S3-compatible server, read by a
//! duckling through DuckDB's httpfs, against in-process DuckDB reading the same files from
//! local disk in the same run.
//!
//! The files (several, sorted by `l_orderkey`, row groups of about 128 MB in memory) are
//! uploaded byte for byte to the S3 server (moto, started from `POND_PYTHON`/`python3` unless
//! `--s3-endpoint` names one). The duckling reaches it through a loopback proxy that counts the
//! bytes S3 sends, so "bytes fetched" is what crossed the wire, not what DuckDB says it read.
//!
//! Figures: bytes fetched ÷ file bytes for a one-column aggregate and for a filter on the sort
//! key; cold and warm (DuckDB's external file cache) time ÷ in-process local time; and the
//! seed's case over an emulated 100 Mbit/s link: the aggregate run in the cloud through dual
//! execution against downloading the files (at the link's full speed, the physical limit) and
//! running locally.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pond_client::{ConnectOptions, DualSession, Link};
use pond_duckling::{Connection, Database};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tpchgen::csv::LineItemCsv;
use tpchgen::generators::LineItemGenerator;

use super::{BenchServer, figure};

const BUCKET: &str = "pond-bench-lake";
const SLOW_LINK_BITS: u64 = 100_000_000;
/// Rows per row group: about 128 MB of `lineitem` in memory.
const ROW_GROUP_ROWS: u64 = 1_000_000;

/// Runs the lake benchmark at TPC-H scale `scale` (10 gives about 2 GB of Parquet).
pub async fn run(scale: f64, runs: usize, s3_endpoint: Option<String>) -> Result<()> {
    let data = tempfile::tempdir()?;
    let parts = ((scale * 2.0).ceil() as usize).clamp(4, 64);
    let t = Instant::now();
    let reference = Database::open(None, &[])?.connect()?;
    let files = tokio::task::block_in_place(|| generate(&reference, data.path(), scale, parts))?;
    figure("lake_generate", t.elapsed().as_secs_f64(), "s");
    let file_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    figure("lake_files", files.len() as f64, "files");
    figure("lake_file_bytes", file_bytes as f64, "bytes");

    let mut moto = None;
    let endpoint = match s3_endpoint {
        Some(e) => e.trim_start_matches("http://").trim_end_matches('/').to_string(),
        None => {
            let (child, address) = start_moto().await?;
            moto = Some(child);
            address
        }
    };
    http(&endpoint, "PUT", &format!("/{BUCKET}"), &[]).await?;
    let t = Instant::now();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).context("file name")?;
        http(
            &endpoint,
            "PUT",
            &format!("/{BUCKET}/lineitem/{name}"),
            &std::fs::read(f)?,
        )
        .await?;
    }
    figure("lake_upload", t.elapsed().as_secs_f64(), "s");

    let fetched = Arc::new(AtomicU64::new(0));
    let proxy = counting_proxy(endpoint.clone(), Arc::clone(&fetched)).await?;
    let mut pond = BenchServer::start_with(|config| config.private_endpoints = true).await?;
    pond.client
        .execute(&format!(
            "CREATE SECRET lake IN POND (TYPE s3, KEY_ID 'bench', SECRET 'bench', REGION 'us-east-1', \
             ENDPOINT '{proxy}', URL_STYLE 'path', USE_SSL false, SCOPE 's3://{BUCKET}/')"
        ))
        .await?;

    let remote = format!("s3://{BUCKET}/lineitem/*.parquet");
    let local = format!("{}/*.parquet", data.path().display());
    let aggregate = |from: &str| format!("SELECT sum(l_extendedprice) FROM read_parquet('{from}')");
    let max_key = reference
        .query_i64(&format!("SELECT max(l_orderkey)::BIGINT FROM read_parquet('{local}')"))?
        .context("max orderkey")?;
    // Half a percent of the keys, in the middle: one row group's worth or less.
    let (low, high) = (max_key / 2, max_key / 2 + max_key / 200);
    let filter = |from: &str| {
        format!(
            "SELECT count(*), sum(l_quantity) FROM read_parquet('{from}') WHERE l_orderkey BETWEEN {low} AND {high}"
        )
    };

    // Bytes a query fetched, and their share of the whole file.
    let fetched_figures = |name: &str, bytes: u64| {
        figure(&format!("lake_{name}_bytes_fetched"), bytes as f64, "bytes");
        figure(
            &format!("lake_{name}_bytes_fetched_ratio"),
            bytes as f64 / file_bytes as f64,
            "x",
        );
    };
    let (filter_bytes, _) = fetch(&mut pond, &fetched, &filter(&remote)).await?;
    fetched_figures("filter", filter_bytes);
    let (cold_bytes, cold) = fetch(&mut pond, &fetched, &aggregate(&remote)).await?;
    fetched_figures("aggregate", cold_bytes);
    // The physical limit: the column's own compressed bytes, which any reader must fetch.
    let column_bytes = reference
        .query_i64(&format!(
            "SELECT sum(total_compressed_size)::BIGINT FROM parquet_metadata('{local}') \
             WHERE path_in_schema = 'l_extendedprice'"
        ))?
        .context("column bytes")?;
    figure(
        "lake_aggregate_column_bytes_ratio",
        column_bytes as f64 / file_bytes as f64,
        "x",
    );
    figure(
        "lake_aggregate_bytes_fetched_vs_column_bytes",
        cold_bytes as f64 / column_bytes as f64,
        "x",
    );
    let mut warm = Vec::new();
    let mut warm_bytes = 0;
    for _ in 0..runs.max(1) {
        let (bytes, took) = fetch(&mut pond, &fetched, &aggregate(&remote)).await?;
        warm_bytes = bytes;
        warm.push(took);
    }
    let mut in_process = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        tokio::task::block_in_place(|| reference.query_all(&aggregate(&local)))?;
        in_process.push(t.elapsed());
    }
    let (warm, in_process) = (super::tpch::median(warm), super::tpch::median(in_process));
    figure("lake_aggregate_cold", cold.as_secs_f64(), "s");
    figure("lake_aggregate_warm", warm.as_secs_f64(), "s");
    figure("lake_aggregate_warm_bytes_fetched", warm_bytes as f64, "bytes");
    figure("lake_aggregate_inprocess_local", in_process.as_secs_f64(), "s");
    figure(
        "lake_aggregate_cold_vs_local",
        cold.as_secs_f64() / in_process.as_secs_f64(),
        "x",
    );
    figure(
        "lake_aggregate_warm_vs_local",
        warm.as_secs_f64() / in_process.as_secs_f64(),
        "x",
    );

    // The seed's case: the laptop is 100 Mbit/s away from the cloud and the data.
    let mut session = DualSession::open_over(
        None,
        Some(ConnectOptions::parse(&pond.url)?),
        Link::throttled(SLOW_LINK_BITS),
    )
    .await?;
    session.run("ATTACH 'pond:'").await?;
    let t = Instant::now();
    let outcome = session.run(&aggregate(&remote)).await?;
    let dual = t.elapsed();
    anyhow::ensure!(
        outcome.batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1,
        "one row"
    );
    let download = Duration::from_secs_f64(file_bytes as f64 * 8.0 / SLOW_LINK_BITS as f64);
    let download_then_local = download + in_process;
    figure("lake_100mbit_dual", dual.as_secs_f64(), "s");
    figure("lake_100mbit_dual_bytes_moved", outcome.bytes_moved as f64, "bytes");
    figure(
        "lake_100mbit_download_all_then_local",
        download_then_local.as_secs_f64(),
        "s",
    );
    figure(
        "lake_100mbit_dual_vs_download_all",
        dual.as_secs_f64() / download_then_local.as_secs_f64(),
        "x",
    );
    drop(session);
    pond.stop().await?;
    if let Some(mut child) = moto {
        let _ = child.kill().await;
    }
    Ok(())
}

/// Writes `lineitem` at `scale` as `parts` Parquet files, each sorted by `l_orderkey` (the
/// generator's order), through CSV and the reference DuckDB.
fn generate(reference: &Connection, dir: &Path, scale: f64, parts: usize) -> Result<Vec<PathBuf>> {
    use std::io::Write;
    let mut files = Vec::new();
    for part in 1..=parts {
        let csv = dir.join(format!("lineitem_{part:03}.csv"));
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&csv)?);
        writeln!(out, "{}", LineItemCsv::header())?;
        for row in LineItemGenerator::new(scale, part as i32, parts as i32).iter() {
            writeln!(out, "{}", LineItemCsv::new(row))?;
        }
        out.flush()?;
        drop(out);
        let parquet = dir.join(format!("lineitem_{part:03}.parquet"));
        reference.execute_batch(&format!(
            "COPY (SELECT * FROM read_csv('{}', header = true)) TO '{}' (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP_ROWS})",
            csv.display(),
            parquet.display()
        ))?;
        std::fs::remove_file(&csv)?;
        files.push(parquet);
    }
    Ok(files)
}

/// Runs `sql` through Pond; returns the bytes S3 sent meanwhile and the time it took.
async fn fetch(pond: &mut BenchServer, fetched: &AtomicU64, sql: &str) -> Result<(u64, Duration)> {
    let before = fetched.load(Ordering::SeqCst);
    let t = Instant::now();
    pond.client.query(sql).await.with_context(|| format!("running {sql}"))?;
    let took = t.elapsed();
    Ok((fetched.load(Ordering::SeqCst) - before, took))
}

/// Starts moto on a free loopback port; returns it and its `host:port`.
async fn start_moto() -> Result<(tokio::process::Child, String)> {
    let python = std::env::var("POND_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let child = tokio::process::Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting moto with {python} (set POND_PYTHON, or pass --s3-endpoint)"))?;
    let address = format!("127.0.0.1:{port}");
    for _ in 0..600 {
        if TcpStream::connect(&address).await.is_ok() {
            return Ok((child, address));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("moto did not start with {python} (pip install 'moto[server]', or pass --s3-endpoint)")
}

/// One unsigned HTTP/1.1 request (moto takes them); fails unless the status is 2xx.
async fn http(address: &str, method: &str, path: &str, body: &[u8]) -> Result<()> {
    let mut stream = TcpStream::connect(address).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status = String::from_utf8_lossy(&response[..response.len().min(64)]).to_string();
    if !status.starts_with("HTTP/1.1 2") && !status.starts_with("HTTP/1.0 2") {
        bail!("{method} {path}: {}", status.lines().next().unwrap_or_default());
    }
    Ok(())
}

/// A loopback TCP proxy to `upstream` that counts the bytes it sends back; returns its address.
async fn counting_proxy(upstream: String, fetched: Arc<AtomicU64>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, fetched) = (upstream.clone(), Arc::clone(&fetched));
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = tokio::io::copy(&mut client_read, &mut server_write);
                let down = async {
                    let mut buffer = vec![0u8; 1 << 16];
                    loop {
                        let n = server_read.read(&mut buffer).await?;
                        if n == 0 {
                            return Ok::<(), std::io::Error>(());
                        }
                        fetched.fetch_add(n as u64, Ordering::SeqCst);
                        client_write.write_all(&buffer[..n]).await?;
                    }
                };
                let _ = tokio::join!(up, down);
            });
        }
    });
    Ok(address)
}
