//! The `pond` binary: every command of DESIGN.md. Flags are parsed here and only here. The
//! libraries take config structs; the coordinator's (`pond_coordinator::config`) defines its
//! own flags, which `serve` and `duckling` flatten, and which reach spawned ducklings through
//! `child_flags`.

mod bench;
mod shell;
mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pond_cluster::{
    ClusterKey, ClusterTls, DucklingKey, DucklingMode, Endpoints, Pool, PoolConfig, Proxy, WorkerConfig, WorkerTls,
    run_duckling,
};
use pond_coordinator::{Coordinator, CoordinatorConfig, TokenAuthority, child_flags};
use pond_flight_server::{ServerConfig, TlsConfig};
use telemetry::{LogFormat, TelemetryArgs};

/// mimalloc for every allocation in the process: Pond's own, and on Linux, through the
/// `override` feature (the binary exports `malloc` and `free`, which the dynamic linker then gives
/// libduckdb too), DuckDB's C++. Per-thread heaps, where glibc's arenas are contended by a
/// result built on one thread and freed on another; and DuckDB's many small allocations per
/// statement no longer pay for glibc's consolidation of its free lists (measured under 64 k6
/// clients sending point queries: 8% of the server's CPU in glibc's allocator, 5% less CPU per
/// query with it replaced).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pond",
    version,
    about = "Pond: DuckDB on your laptop and in the cloud, over Arrow Flight SQL"
)]
struct Cli {
    /// Log format.
    #[arg(long, env = "POND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the all-in-one server: Flight SQL endpoint, coordinator and in-process ducklings.
    Serve(ServeArgs),
    /// Run a duckling worker that registers with a coordinator and takes work from it.
    Duckling(DucklingCommandArgs),
    /// Mint or revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Interactive client: a local DuckDB (in memory, or the file given) with the cloud attached.
    Shell(shell::ShellArgs),
    /// The same client, one-shot, for scripts: exit code 0 on success, 1 on any SQL error.
    Sql(shell::SqlArgs),
    /// Run the benchmarks and print `name: value unit` lines.
    Bench(bench::BenchArgs),
}

/// How often garbage collection runs, and how old an unreachable object must be to go (a
/// commit in flight uploads its objects before its manifest names them).
const GC_INTERVAL: Duration = Duration::from_secs(10 * 60);
const GC_GRACE: Duration = Duration::from_secs(3600);

/// A byte count with an optional unit: `512MiB`, `10GiB`, `1GB`, `4096`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(u64);

impl ByteSize {
    pub(crate) fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pond_coordinator::parse_byte_size(s).map(ByteSize)
    }
}

#[derive(Args)]
struct DataDir {
    /// Where Pond keeps its catalog, keys and databases.
    #[arg(long, env = "POND_DATA_DIR", default_value = "./pond-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct CatalogArg {
    /// Keep the catalog (users, databases, secrets, shares, query history, the signing key and
    /// token revocations) in PostgreSQL, postgres://user:password@host:port/database, instead
    /// of the data directory; coordinators on one catalog serve the same users.
    #[arg(long, env = pond_coordinator::CATALOG_ENV, hide_env_values = true)]
    catalog: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Address to listen on (`:0` picks a free port).
    #[arg(long, env = "POND_LISTEN", default_value = "127.0.0.1:31337")]
    listen: SocketAddr,
    /// Object storage for databases (file:///…, s3://bucket/prefix, memory://).
    #[arg(long, env = "POND_STORAGE")]
    storage: Option<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    #[command(flatten)]
    tls: TlsArgs,
    /// Where ducklings run: in this process, as `pond duckling` children, or as remote
    /// `pond duckling` processes that register with this server.
    #[arg(long, env = "POND_DUCKLINGS", value_enum, default_value_t = DucklingsArg::InProcess)]
    ducklings: DucklingsArg,
    /// With process or remote ducklings: results relayed by this server (proxy), or fetched
    /// from the duckling's address named in the FlightInfo, with a signed ticket (direct).
    #[arg(long, env = "POND_ENDPOINTS", value_enum, default_value_t = EndpointsArg::Proxy)]
    endpoints: EndpointsArg,
    /// How long ducklings may take to finish running queries on shutdown.
    #[arg(long, env = "POND_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` over HTTP at this address (off
    /// when not given; it needs no token, so keep it on loopback or a private network).
    #[arg(long, env = "POND_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// With process or remote ducklings: serve each user's read-only sessions from this many
    /// read replicas (round-robin by client connection) instead of the user's own duckling.
    #[arg(long, env = "POND_READ_REPLICAS", default_value_t = 0)]
    read_replicas: usize,
    // What every duckling runs with: passed on to the ducklings this server spawns.
    #[command(flatten)]
    duckling: CoordinatorConfig,
}

#[derive(Clone, Copy, ValueEnum)]
enum DucklingsArg {
    InProcess,
    Process,
    Remote,
}

#[derive(Clone, Copy, ValueEnum)]
enum EndpointsArg {
    Proxy,
    Direct,
}

#[derive(Args)]
struct DucklingCommandArgs {
    /// The coordinator to register with, grpc://HOST:PORT.
    #[arg(long, env = "POND_COORDINATOR")]
    coordinator: String,
    /// Where this duckling keeps its working copies and cache.
    #[arg(long, env = "POND_DATA_DIR", default_value = "./pond-duckling")]
    data_dir: PathBuf,
    /// Address to serve Flight on (`:0` picks a free port).
    #[arg(long, env = "POND_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The address the coordinator and clients reach this duckling at (default: --listen,
    /// which must then be a specific address).
    #[arg(long, env = "POND_ADVERTISE")]
    advertise: Option<SocketAddr>,
    /// The id to register under (default: a new random one).
    #[arg(long, env = "POND_DUCKLING_ID")]
    id: Option<String>,
    /// The cluster secret, hex (the coordinator's `<data-dir>/cluster.key`, hex-encoded).
    #[arg(
        long,
        env = "POND_CLUSTER_SECRET",
        hide_env_values = true,
        required_unless_present = "duckling_key"
    )]
    cluster_secret: Option<String>,
    /// This duckling's own key, hex, instead of the cluster secret (how `pond serve
    /// --ducklings process` starts its children); needs --id.
    #[arg(
        long,
        env = "POND_DUCKLING_KEY",
        hide_env_values = true,
        requires = "id",
        conflicts_with = "cluster_secret"
    )]
    duckling_key: Option<String>,
    /// How long running queries may take to finish when the duckling stops.
    #[arg(long, env = "POND_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// With a grpc+tls:// coordinator and direct endpoints: what clients fetching from this
    /// duckling see (the coordinator and the duckling verify each other with the cluster's own
    /// certificates).
    #[command(flatten)]
    tls: TlsArgs,
    /// CA certificates (PEM) trusted for a grpc+tls:// coordinator, besides the system's roots.
    #[arg(long, env = "POND_COORDINATOR_CA")]
    coordinator_ca: Option<PathBuf>,
    // What every duckling runs with: passed on to the ducklings this server spawns.
    #[command(flatten)]
    duckling: CoordinatorConfig,
}

/// The certificate clients see: `pond serve`'s front door, or a duckling's port for clients
/// that fetch results from it directly.
#[derive(Args, Debug, Clone)]
struct TlsArgs {
    /// TLS certificate (PEM); serves grpc+tls:// together with --tls-key.
    #[arg(long, env = "POND_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "POND_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "POND_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token for a user (created on first use) and print it alone on one line.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        catalog: CatalogArg,
        /// The user the token is for.
        #[arg(long)]
        user: String,
        /// Allow queries only, nothing that writes.
        #[arg(long)]
        read_only: bool,
        /// How long the token is valid, e.g. 1h, 30d.
        #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Also print the token id (needed to revoke it) on stderr.
        #[arg(long)]
        show_id: bool,
    },
    /// Revoke a token by id; a running server refuses it within seconds.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        catalog: CatalogArg,
        /// The token id (the `jti` claim).
        id: String,
    },
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode> {
    // The matches outlive the parse: spawned ducklings get the serve flags' text from them.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    // The client commands print results on stdout; only warnings belong on their stderr.
    let client = matches!(cli.command, Command::Shell(_) | Command::Sql(_));
    let process = match &cli.command {
        Command::Serve(_) => "serve",
        Command::Duckling(_) => "duckling",
        Command::Shell(_) | Command::Sql(_) => "client",
        Command::Token(_) => "token",
        Command::Bench(_) => "bench",
    };
    let telemetry = telemetry::init(
        cli.log_format,
        if client { "warn" } else { "info" },
        &cli.telemetry,
        process,
    )?;
    let ok = |r: Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    let outcome = match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").expect("the serve command matched");
            // A spawned duckling runs with the server's duckling settings and exports its
            // traces where the server does.
            let mut child_args = child_flags::<CoordinatorConfig>(serve_matches);
            child_args.extend(child_flags::<TelemetryArgs>(&matches));
            ok(serve(args, child_args).await)
        }
        Command::Duckling(args) => ok(duckling(args).await),
        Command::Token(cmd) => ok(token(cmd)),
        Command::Shell(args) => shell::shell(args).await,
        Command::Sql(args) => shell::sql(args).await,
        Command::Bench(args) => ok(bench::run(args).await),
    };
    telemetry.shutdown();
    outcome
}

/// `child_args`: the duckling settings as flags, for the `pond duckling` processes it spawns.
async fn serve(args: ServeArgs, child_args: Vec<String>) -> Result<()> {
    if args.read_replicas > 0 && matches!(args.ducklings, DucklingsArg::InProcess) {
        anyhow::bail!("--read-replicas needs duckling processes: add --ducklings process (or remote)");
    }
    if matches!(args.ducklings, DucklingsArg::Process)
        && matches!(args.endpoints, EndpointsArg::Direct)
        && !args.listen.ip().is_loopback()
    {
        anyhow::bail!(
            "--endpoints direct with --ducklings process names the children's loopback addresses, \
             which clients on other hosts cannot reach: serve on a loopback --listen, or run \
             `pond duckling --advertise` processes with --ducklings remote"
        );
    }
    let tls = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(c), Some(k)) => Some(TlsConfig {
            cert_pem: read(c)?,
            key_pem: read(k)?,
            client_ca_pem: args.tls.tls_client_ca.as_deref().map(read).transpose()?,
        }),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "serving plaintext on a non-loopback address; use --tls-cert/--tls-key");
    }
    let coordinator = Coordinator::open(CoordinatorConfig {
        data_dir: args.data.data_dir.clone(),
        storage_url: args.storage.clone(),
        catalog_url: args.catalog.catalog.clone().map(pond_coordinator::CatalogUrl),
        ..args.duckling.clone()
    })
    .context("opening the data directory")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    let pool = match args.ducklings {
        DucklingsArg::InProcess => {
            coordinator.keep_a_spare_instance();
            None
        }
        mode => Some(cluster_pool(&args, mode, &coordinator, child_args)?),
    };
    let gc = {
        let (coordinator, pool) = (Arc::clone(&coordinator), pool.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(GC_INTERVAL).await;
                let elsewhere = pool.as_ref().map(|p| p.pinned()).unwrap_or_default();
                if let Err(e) = coordinator.collect_garbage(GC_GRACE, &elsewhere).await {
                    tracing::warn!(error = %e, "garbage collection failed");
                }
                // The query history this process keeps (every duckling's) ages out too.
                let keeper = Arc::clone(&coordinator);
                let _ = tokio::task::spawn_blocking(move || keeper.prune_history()).await;
            }
        })
    };
    let scheme = pond_cluster::tls::scheme(tls.is_some());
    let metrics = match args.metrics_listen {
        Some(address) => {
            let (sampled, pool) = (Arc::clone(&coordinator), pool.clone());
            let metrics = pond_flight_server::Metrics::new(move || {
                let ducklings = match &pool {
                    Some(pool) => pool.ducklings(),
                    None => sampled.local_ducklings(),
                };
                // Sessions and statements live in the duckling processes, which report them in
                // their heartbeats; in-process, in the sampled.
                let (mut sessions, mut running) = (0, 0);
                let mut by_state = std::collections::BTreeMap::<String, i64>::new();
                for d in ducklings {
                    sessions += d.sessions as i64;
                    running += d.running_queries as i64;
                    *by_state.entry(d.state).or_default() += 1;
                }
                if pool.is_none() {
                    sessions = sampled.session_count() as i64;
                    running = sampled.running_query_count() as i64;
                }
                // With process ducklings, theirs (from their heartbeats) add to the coordinator's.
                let mut reported = sampled.reported_metrics();
                if let Some(pool) = &pool {
                    for (mine, theirs) in reported.iter_mut().zip(pool.counter_totals()) {
                        *mine += theirs;
                    }
                }
                let queued = sampled.counters().queued.load(std::sync::atomic::Ordering::Relaxed);
                pond_flight_server::Sample {
                    sessions,
                    running_statements: running,
                    queued_statements: queued as i64,
                    ducklings: by_state.into_iter().collect(),
                    reported,
                }
            });
            let observer = Arc::clone(&metrics);
            coordinator.observe_queries(Box::new(move |r| observer.statement_finished(r)));
            Some((
                Arc::clone(&metrics),
                pond_flight_server::spawn_http(metrics, address)
                    .await
                    .with_context(|| format!("binding {address} for --metrics-listen"))?,
            ))
        }
        None => None,
    };
    let config = ServerConfig {
        tls,
        drain_timeout: args.drain_timeout,
        metrics: metrics.as_ref().map(|(m, _)| Arc::clone(m)),
    };
    match pool {
        None => {
            print_listening(scheme, addr);
            tracing::info!(%addr, data_dir = %args.data.data_dir.display(), "serving Flight SQL");
            pond_flight_server::serve(listener, Arc::clone(&coordinator), config, shutdown).await?;
        }
        Some(pool) => serve_cluster(listener, pool, &coordinator, config, scheme, shutdown).await?,
    }
    gc.abort();
    if let Some((_, http)) = metrics {
        http.abort();
    }
    // Every commit is already durable; this stores DuckDB's shutdown checkpoints, so the next
    // start reuses the working copies instead of rebuilding them.
    tokio::task::spawn_blocking(move || coordinator.shutdown()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The one line scripts and tests wait for: printed once the socket accepts connections.
#[allow(clippy::print_stdout)]
fn print_listening(scheme: &str, addr: SocketAddr) {
    println!("pond {} listening on {scheme}://{addr}", env!("CARGO_PKG_VERSION"));
}

fn cluster_pool(
    args: &ServeArgs,
    mode: DucklingsArg,
    coordinator: &Arc<Coordinator>,
    child_args: Vec<String>,
) -> Result<Arc<Pool>> {
    let data_dir = coordinator.config().data_dir.clone();
    let secret = pond_coordinator::load_or_create_key(&data_dir.join("cluster.key"))?;
    let key = ClusterKey::new(&secret);
    // Behind a TLS front door, ducklings and coordinator reach each other over mutual TLS.
    let tls = match &args.tls.tls_cert {
        Some(_) => Some(Arc::new(ClusterTls::issue(&key, "coordinator")?)),
        None => None,
    };
    let public_tls = match (&args.tls.tls_cert, &args.tls.tls_key, args.endpoints) {
        (Some(cert), Some(key), EndpointsArg::Direct) => Some((cert.canonicalize()?, key.canonicalize()?)),
        _ => None,
    };
    let config = PoolConfig {
        mode: match mode {
            DucklingsArg::Remote => DucklingMode::Remote,
            _ => DucklingMode::Process,
        },
        endpoints: match args.endpoints {
            EndpointsArg::Proxy => Endpoints::Proxy,
            EndpointsArg::Direct => Endpoints::Direct,
        },
        storage_url: coordinator.config().storage_url.clone().unwrap_or_default(),
        exe: std::env::current_exe().context("locating the pond executable")?,
        child_args,
        data_dir,
        start_timeout: Duration::from_secs(60),
        drain_timeout: args.drain_timeout,
        read_replicas: args.read_replicas,
        tls,
        public_tls,
    };
    Ok(Pool::new(config, Arc::new(key), Arc::clone(coordinator)))
}

/// Serves the proxy; with process ducklings also on a loopback port of its own, where the
/// children register (it needs no TLS, whatever the public port uses).
async fn serve_cluster(
    listener: tokio::net::TcpListener,
    pool: Arc<Pool>,
    coordinator: &Arc<Coordinator>,
    config: ServerConfig,
    scheme: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr()?;
    let proxy = Proxy::new(Arc::clone(&pool), Arc::clone(coordinator))?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let internal = if pool.config().mode == DucklingMode::Process {
        let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &pool.config().tls {
            builder = builder.tls_config(tls.server())?;
        }
        let scheme = pond_cluster::tls::scheme(pool.config().tls.is_some());
        pool.set_cluster_url(format!("{scheme}://{}", internal.local_addr()?));
        let service = pond_flight_server::flight_service(proxy.clone());
        let stop = stop.clone();
        Some(tokio::spawn(async move {
            builder
                .add_service(service)
                .serve_with_incoming_shutdown(pond_flight_server::incoming(internal), stopped(stop))
                .await
        }))
    } else {
        None
    };
    // Once children can register: the first user's duckling is then already running.
    pool.keep_a_spare();
    let sweeper = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                pool.sweep();
            }
        })
    };
    // Apart from the sweep, which a slow catalog must not delay.
    let reporter = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                pool.report_ducklings().await;
            }
        })
    };
    let lease_keeper = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(pond_cluster::pool::LEASE_RENEW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                pool.keep_leases().await;
            }
        })
    };
    print_listening(scheme, addr);
    tracing::info!(%addr, mode = ?pool.config().mode, "serving Flight SQL; queries run on duckling processes");
    let (router, draining) = pond_flight_server::public_server(&config).await?;
    let public = router
        .add_service(pond_flight_server::public_service(proxy))
        .serve_with_incoming_shutdown(pond_flight_server::incoming(listener), async move {
            shutdown.await;
            draining.begin().await;
            tracing::info!("shutting down: draining ducklings");
            pool.drain().await;
            let _ = stop_tx.send(true);
        });
    let result = public.await;
    sweeper.abort();
    reporter.abort();
    lease_keeper.abort();
    if let Some(internal) = internal {
        internal.await??;
    }
    result.map_err(Into::into)
}

/// A file's bytes, or an error naming it.
fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

async fn duckling(args: DucklingCommandArgs) -> Result<()> {
    let key = match (&args.duckling_key, &args.cluster_secret) {
        (Some(own), _) => DucklingKey::Own(ClusterKey::from_hex(own)?),
        (None, Some(secret)) => DucklingKey::ClusterSecret(ClusterKey::from_hex(secret)?),
        (None, None) => anyhow::bail!("pass --cluster-secret (or POND_CLUSTER_SECRET)"),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let config = WorkerConfig {
        coordinator_url: args.coordinator.clone(),
        advertise: args.advertise,
        id: args.id.clone(),
        // Its storage comes from the coordinator it registers with.
        coordinator: CoordinatorConfig {
            data_dir: args.data_dir.clone(),
            ..args.duckling.clone()
        },
        drain_timeout: args.drain_timeout,
        tls: WorkerTls {
            handed: ClusterTls::from_env(),
            public: match (&args.tls.tls_cert, &args.tls.tls_key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                _ => None,
            },
            coordinator_ca: args.coordinator_ca.as_deref().map(read).transpose()?,
        },
    };
    if args.tls.tls_client_ca.is_some() {
        anyhow::bail!("--tls-client-ca is for `pond serve`; a duckling's clients are checked by their tokens");
    }
    let shutdown = shutdown_signal()?;
    let scheme = pond_cluster::tls::scheme(args.coordinator.starts_with("grpc+tls://"));
    #[allow(clippy::print_stdout)]
    {
        println!("pond duckling listening on {scheme}://{addr}");
    }
    run_duckling(listener, key, config, shutdown).await?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives right after start-up is not lost.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[allow(clippy::print_stdout)]
fn token(cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            data,
            catalog,
            user,
            read_only,
            ttl,
            show_id,
        } => {
            std::fs::create_dir_all(&data.data_dir)?;
            let opened = pond_coordinator::catalog::open(&data.data_dir, catalog.catalog.as_deref())?;
            let authority = TokenAuthority::from_secret(&opened.signing_key);
            let (token, id) = authority.mint(&user, read_only, ttl)?;
            if show_id {
                eprintln!("token id: {id}");
            }
            println!("{token}");
        }
        TokenCommand::Revoke { data, catalog, id } => {
            let opened = pond_coordinator::catalog::open(&data.data_dir, catalog.catalog.as_deref())?;
            opened.tokens.revoke_token(&id)?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Cli, clap::ArgMatches) {
        // The settings under test come from these command lines alone.
        let matches = Cli::command()
            .mut_subcommands(|sub| sub.mut_args(|arg| arg.env(None)))
            .try_get_matches_from(args)
            .expect("flags parse");
        (Cli::from_arg_matches(&matches).expect("the command"), matches)
    }

    /// The flags `pond serve` hands its children give the child the server's settings.
    #[test]
    fn a_spawned_duckling_runs_with_the_servers_settings() {
        for flags in [
            &[][..],
            &[
                "--query-timeout=90s",
                "--max-result-bytes=1GiB",
                "--duckling-threads=2",
                "--cache-size=1MiB",
            ][..],
        ] {
            let serve_line = [&["pond", "serve"][..], flags].concat();
            let (cli, matches) = parse(&serve_line);
            let Command::Serve(serve) = cli.command else {
                panic!("not serve");
            };
            let child_args = child_flags::<CoordinatorConfig>(matches.subcommand_matches("serve").unwrap());
            let mut duckling_line = vec![
                "pond",
                "duckling",
                "--coordinator=grpc://127.0.0.1:1",
                "--cluster-secret=00",
            ];
            duckling_line.extend(child_args.iter().map(String::as_str));
            let Command::Duckling(duckling) = parse(&duckling_line).0.command else {
                panic!("not duckling");
            };
            assert_eq!(duckling.duckling, serve.duckling, "{flags:?}");
        }
    }
}
