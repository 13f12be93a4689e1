//! `pond bench`: benchmarks that compare Pond with in-process DuckDB on the same machine in the
//! same run. Every figure is printed as `name: value unit`; latencies are medians (p50) and
//! 99th percentiles of repeated runs.

mod cluster;
mod dual;
mod ducklings;
mod lake;
mod min_cut;
mod process;
mod reference;

/// `SELECT 1` as a standard Flight SQL client runs it (GetFlightInfo, then DoGet), `$n` times
/// after a warm-up; the sorted latencies. A macro: the client's transport types differ.
macro_rules! standard_select1 {
    ($client:expr, $n:expr) => {{
        let n: usize = $n;
        let warm_up = n.min(100);
        let mut times = Vec::with_capacity(n);
        for i in 0..n + warm_up {
            let t = Instant::now();
            let info = $client.execute("SELECT 1".to_string(), None).await?;
            let ticket = info
                .endpoint
                .first()
                .and_then(|e| e.ticket.clone())
                .context("a FlightInfo without a ticket")?;
            let mut stream = $client.do_get(ticket).await?;
            let mut rows = 0;
            while let Some(batch) = stream.try_next().await? {
                rows += batch.num_rows();
            }
            anyhow::ensure!(rows == 1, "SELECT 1 returned {rows} rows");
            if i >= warm_up {
                times.push(t.elapsed());
            }
        }
        times.sort();
        times
    }};
}
mod shares;
mod split_bench;
mod storage;
mod tpcds_split;
mod tpch;
mod tpch_split;
mod tracing_cost;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use pond_client::PondClient;
use pond_coordinator::{Coordinator, CoordinatorConfig};
use pond_duckling::Database;

#[derive(Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum, default_value_t = Suite::Flight)]
    suite: Suite,
    /// Round trips for the latency figures.
    #[arg(long, env = "POND_BENCH_ITERATIONS", default_value_t = 2000)]
    iterations: usize,
    /// Rows streamed for the throughput figures.
    #[arg(long, env = "POND_BENCH_ROWS", default_value_t = 50_000_000)]
    rows: u64,
    /// TPC-H scale factor.
    #[arg(long, env = "POND_BENCH_SCALE", default_value_t = 1.0)]
    scale: f64,
    /// Runs of each TPC-H query per side (the median is reported).
    #[arg(long, env = "POND_BENCH_RUNS", default_value_t = 3)]
    runs: usize,
    /// Seconds of load per mode for the ducklings benchmark.
    #[arg(long, env = "POND_BENCH_SECONDS", default_value_t = 10)]
    seconds: u64,
    /// A reference Flight SQL server to measure a standard client against in the flight
    /// benchmark (`host:port`, no authentication), such as arrow-go's SQLite example; default:
    /// `sqlite_flightsql_server` started from `PATH` or `~/go/bin` when it is installed.
    #[arg(long, env = "POND_BENCH_REFERENCE")]
    reference: Option<String>,
    /// An S3-compatible server for the lake benchmark (`host:port`, taking unsigned requests);
    /// default: moto, started with `POND_PYTHON` or `python3`.
    #[arg(long, env = "POND_BENCH_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The OpenTelemetry collector (OTLP/gRPC, e.g. http://127.0.0.1:4317) the tracing
    /// benchmark exports to.
    #[arg(long, env = "POND_BENCH_OTLP_COLLECTOR")]
    otlp_collector: Option<String>,
    /// The PostgreSQL catalog the cluster benchmark compares with the embedded one
    /// (postgres://user@host:port/database).
    #[arg(long, env = "POND_BENCH_CATALOG", hide_env_values = true)]
    catalog: Option<String>,
    /// DuckDB's tpcds extension for the tpcds-split benchmark; default: the official one for
    /// the DuckDB Pond links, fetched once from PyPI into ~/.cache/pond-bench.
    #[arg(long, env = "POND_BENCH_TPCDS_EXTENSION")]
    tpcds_extension: Option<std::path::PathBuf>,
    /// Only these queries of the tpcds-split benchmark (e.g. 59,65), to look into one.
    #[arg(long, env = "POND_BENCH_QUERIES", value_delimiter = ',')]
    queries: Vec<i32>,
    /// Database sizes for the storage benchmark, e.g. 1GiB,4GiB.
    #[arg(long, env = "POND_BENCH_SIZES", value_delimiter = ',', default_value = "1GiB,4GiB")]
    sizes: Vec<crate::ByteSize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Suite {
    /// Flight SQL round trip and streaming against in-process DuckDB.
    Flight,
    /// TPC-H's 22 queries through Flight SQL against in-process DuckDB.
    Tpch,
    /// Differential storage: bytes per commit, commit latency, clones, snapshot opens.
    Storage,
    /// Duckling cold start, and 16 users at once in-process, proxied and direct.
    Ducklings,
    /// Dual execution: bytes moved against the true minimal cut, and time against moving
    /// everything, also at 100 Mbit/s.
    Dual,
    /// TPC-H split between laptop and cloud, by dual execution at 100 Mbit/s: split plans
    /// against whole-query placement and against downloading every cloud table.
    TpchSplit,
    /// TPC-DS split between laptop and cloud (facts in the cloud, dimensions on the laptop), by
    /// dual execution at 100 Mbit/s, measured like tpch-split; `--scale` is its scale factor.
    TpcdsSplit,
    /// Parquet on S3 read by a duckling: bytes fetched, cold and warm time against local
    /// in-process DuckDB, and dual execution at 100 Mbit/s (`--scale 10`: about 2 GB).
    Lake,
    /// Shares: creating and attaching one of a database of each `--sizes` (bytes written, time),
    /// and the delay from a commit to an AUTOMATIC share's reader seeing it.
    Shares,
    /// Tracing's cost: `SELECT 1` round trips on a server without an exporter and on one
    /// exporting every span to `--otlp-collector`, both running, in interleaved rounds.
    Tracing,
    /// The shared catalog's cost: `SELECT 1` round trips and a new user's first query with the
    /// embedded catalog and with PostgreSQL (`--catalog`), alternately in one run.
    Cluster,
}

#[allow(clippy::print_stdout)]
fn figure(name: &str, value: f64, unit: &str) {
    println!("{name}: {value:.3} {unit}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints `{name}_p50` and `{name}_p99` of `sorted` latencies, in microseconds.
fn latency_figures(name: &str, sorted: &[Duration]) {
    figure(&format!("{name}_p50"), micros(percentile(sorted, 0.5)), "us");
    figure(&format!("{name}_p99"), micros(percentile(sorted, 0.99)), "us");
}

/// Runs the chosen benchmark suite.
pub async fn run(args: BenchArgs) -> Result<()> {
    match args.suite {
        Suite::Flight => flight(args).await,
        Suite::Tpch => tpch_suite(args).await,
        Suite::Ducklings => ducklings::run(args.seconds).await,
        Suite::Dual => dual::run(args.scale).await,
        Suite::TpchSplit => tpch_split::run(args.scale).await,
        Suite::TpcdsSplit => tpcds_split::run(args.scale, args.tpcds_extension, &args.queries).await,
        Suite::Lake => lake::run(args.scale, args.runs, args.s3_endpoint).await,
        Suite::Shares => {
            shares::run(
                &args.sizes.iter().map(|s| s.as_u64()).collect::<Vec<_>>(),
                args.iterations,
            )
            .await
        }
        Suite::Tracing => tracing_cost::run(args.otlp_collector, args.iterations).await,
        Suite::Cluster => cluster::run(args.catalog, args.iterations).await,
        Suite::Storage => {
            let sizes: Vec<u64> = args.sizes.iter().map(|s| s.as_u64()).collect();
            let iterations = args.iterations;
            tokio::task::spawn_blocking(move || storage::run(&sizes, iterations)).await?
        }
    }
}

/// An in-process Pond server on loopback, and a client connected to it as admin.
struct BenchServer {
    dir: tempfile::TempDir,
    coordinator: Arc<Coordinator>,
    client: PondClient,
    /// `pond://` URL with the admin token.
    url: String,
    /// Where it listens, and the admin token, for clients other than Pond's.
    address: std::net::SocketAddr,
    token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), pond_flight_server::ServeError>>,
}

impl BenchServer {
    async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// [`Self::start`] with the coordinator's settings changed by `configure`.
    async fn start_with(configure: impl FnOnce(&mut CoordinatorConfig)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = CoordinatorConfig::new(dir.path());
        configure(&mut config);
        let coordinator = Coordinator::open(config)?;
        let token = std::fs::read_to_string(dir.path().join("admin.token"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(pond_flight_server::serve(
            listener,
            Arc::clone(&coordinator),
            Default::default(),
            async {
                let _ = stop_rx.await;
            },
        ));
        let url = format!("pond://{addr}?token={}", token.trim());
        let token = token.trim().to_string();
        let client = PondClient::connect(&url)
            .await
            .context("connecting to the benchmark server")?;
        Ok(Self {
            dir,
            coordinator,
            client,
            url,
            address: addr,
            token,
            stop,
            server,
        })
    }

    /// A client of a new user `user` (their first call creates them).
    async fn user_client(&self, user: &str) -> Result<PondClient> {
        let (token, _) = self
            .coordinator
            .tokens()
            .mint(user, false, Duration::from_secs(24 * 3600))?;
        Ok(PondClient::connect(&format!("pond://{}?token={token}", self.address)).await?)
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await??;
        Ok(())
    }
}

async fn flight(args: BenchArgs) -> Result<()> {
    let mut pond = BenchServer::start().await?;
    let (address, token) = (pond.address, pond.token.clone());
    let client = &mut pond.client;

    // (a) SELECT 1 round trips.
    let db = Database::open(None, &[])?;
    let conn = db.connect()?;
    let mut local = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        let batches = conn.query_all("SELECT 1")?;
        assert_eq!(batches[0].num_rows(), 1);
        local.push(t.elapsed());
    }
    // In-process again with one statement prepared once, as a client that keeps its
    // prepared statement would run it (Pond's server keeps repeated SELECTs prepared).
    let mut local_prepared = Vec::with_capacity(args.iterations);
    let mut stmt = conn.prepare("SELECT 1")?;
    for _ in 0..args.iterations {
        let t = Instant::now();
        let batch = stmt.execute_streaming()?.next_batch()?;
        assert_eq!(batch.map(|b| b.num_rows()), Some(1));
        local_prepared.push(t.elapsed());
    }
    drop(stmt);
    let mut remote = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations.min(100) {
        client.query("SELECT 1").await?;
    }
    for _ in 0..args.iterations {
        let t = Instant::now();
        let batches = client.query("SELECT 1").await?;
        assert_eq!(batches[0].num_rows(), 1);
        remote.push(t.elapsed());
    }
    // The floor under (a): one authenticated unary Flight SQL call that touches no DuckDB
    // (GetFlightInfo for the table types). A query needs two such calls.
    let mut bare = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        client.flight_sql().get_table_types().await?;
        bare.push(t.elapsed());
    }
    bare.sort();
    figure("flight_bare_rpc_p50", micros(percentile(&bare, 0.5)), "us");

    // (a') A standard Flight SQL client's SELECT 1 (GetFlightInfo, then DoGet; no inline
    // result), against a reference server measured the same way in the same run.
    // It keeps its cookie and sends `authorization` with every call, as the JDBC driver does.
    client.flight_sql().set_token(token.clone());
    let standard = standard_select1!(client.flight_sql(), args.iterations);
    latency_figures("flight_standard_select1", &standard);
    // The same without cookies, as ADBC and pyarrow's clients run by default: every call
    // arrives without its session.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut cookieless = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
    cookieless.set_token(token);
    let without_cookies = standard_select1!(&mut cookieless, args.iterations);
    latency_figures("flight_standard_no_cookie_select1", &without_cookies);
    let reference = reference::start(args.reference.clone()).await?;
    if let Some(reference) = &reference {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", reference.address))?
            .connect()
            .await
            .context("connecting to the reference Flight SQL server")?;
        let mut reference_client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
        let measured = standard_select1!(&mut reference_client, args.iterations);
        latency_figures("reference_standard_select1", &measured);
        figure(
            "flight_standard_select1_p50_vs_reference",
            percentile(&standard, 0.5).as_secs_f64() / percentile(&measured, 0.5).as_secs_f64(),
            "x",
        );
        figure(
            "flight_standard_no_cookie_select1_p50_vs_reference",
            percentile(&without_cookies, 0.5).as_secs_f64() / percentile(&measured, 0.5).as_secs_f64(),
            "x",
        );
    }
    drop(reference);
    local.sort();
    remote.sort();
    latency_figures("flight_select1", &remote);
    latency_figures("inprocess_select1", &local);
    local_prepared.sort();
    figure(
        "inprocess_select1_prepared_once_p50",
        micros(percentile(&local_prepared, 0.5)),
        "us",
    );
    figure(
        "flight_select1_overhead_p50",
        micros(percentile(&remote, 0.5)) - micros(percentile(&local, 0.5)),
        "us",
    );
    figure(
        "flight_select1_overhead_over_prepared_once_p50",
        micros(percentile(&remote, 0.5)) - micros(percentile(&local_prepared, 0.5)),
        "us",
    );

    // (b) Streaming (BIGINT, DOUBLE, VARCHAR) rows.
    let sql = format!(
        "SELECT range AS id, range * 1.5 AS amount, 'item-' || range::VARCHAR AS label FROM range({})",
        args.rows
    );
    let t = Instant::now();
    let mut stmt = conn.prepare(&sql)?;
    let mut stream = stmt.execute_streaming()?;
    let (mut local_rows, mut local_bytes) = (0u64, 0u64);
    while let Some(b) = stream.next_batch()? {
        local_rows += b.num_rows() as u64;
        local_bytes += b.get_array_memory_size() as u64;
    }
    drop(stream);
    drop(stmt);
    let local_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut remote_stream = client.query_stream(&sql).await?;
    let mut remote_rows = 0u64;
    while let Some(b) = remote_stream.try_next().await? {
        remote_rows += b.num_rows() as u64;
    }
    let remote_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(remote_rows == args.rows && local_rows == args.rows, "row counts differ");
    let mb = local_bytes as f64 / 1e6;
    figure("inprocess_stream_rows_per_s", local_rows as f64 / local_secs, "rows/s");
    figure("inprocess_stream_mb_per_s", mb / local_secs, "MB/s");
    figure("flight_stream_rows_per_s", remote_rows as f64 / remote_secs, "rows/s");
    figure("flight_stream_mb_per_s", mb / remote_secs, "MB/s");
    figure("flight_stream_ratio_to_inprocess", local_secs / remote_secs, "x");

    pond.stop().await
}

async fn tpch_suite(args: BenchArgs) -> Result<()> {
    let data = tempfile::tempdir()?;
    let (_, generated) = tpch::elapsed(|| tpch::generate(data.path(), args.scale))?;
    figure("tpch_generate", generated.as_secs_f64(), "s");

    let db = Database::open(None, &[])?;
    let reference = db.connect()?;
    let (_, loaded) = tpch::elapsed(|| tpch::load_reference(&reference, data.path()))?;
    figure("tpch_load_inprocess", loaded.as_secs_f64(), "s");

    let mut pond = BenchServer::start().await?;
    let t = Instant::now();
    let rows = tpch::load_pond(&reference, &mut pond.client, &tpch::TABLES).await?;
    let upload = t.elapsed().as_secs_f64();
    figure("tpch_ingest_rows_per_s", rows as f64 / upload, "rows/s");

    let (mut local_total, mut remote_total) = (Duration::ZERO, Duration::ZERO);
    for q in 1..=22 {
        let sql = tpch::query(q)?;
        let mut local = Vec::new();
        let mut remote = Vec::new();
        let mut local_rows = 0;
        let mut remote_rows = 0;
        for _ in 0..args.runs.max(1) {
            let (n, d) = tpch::elapsed(|| tpch::run_reference(&reference, &sql))?;
            local_rows = n;
            local.push(d);
            let t = Instant::now();
            let batches = pond
                .client
                .query(&sql)
                .await
                .with_context(|| format!("TPC-H Q{q} through Pond"))?;
            remote.push(t.elapsed());
            remote_rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        anyhow::ensure!(
            local_rows == remote_rows,
            "Q{q}: {local_rows} rows in-process, {remote_rows} through Pond"
        );
        let (l, r) = (tpch::median(local), tpch::median(remote));
        figure(&format!("tpch_q{q:02}_inprocess"), l.as_secs_f64() * 1e3, "ms");
        figure(&format!("tpch_q{q:02}_flight"), r.as_secs_f64() * 1e3, "ms");
        local_total += l;
        remote_total += r;
    }
    figure("tpch_total_inprocess", local_total.as_secs_f64(), "s");
    figure("tpch_total_flight", remote_total.as_secs_f64(), "s");
    figure(
        "tpch_ratio_flight_to_inprocess",
        remote_total.as_secs_f64() / local_total.as_secs_f64(),
        "x",
    );
    pond.stop().await
}
