//! The `pond` binary: every command of DESIGN.md. Flags are parsed here and only here; the
//! libraries take plain config structs.

mod bench;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use pond_coordinator::{Coordinator, CoordinatorConfig, TokenAuthority};
use pond_flight_server::{ServerConfig, TlsConfig};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the all-in-one server: Flight SQL endpoint, coordinator and in-process ducklings.
    Serve(ServeArgs),
    /// Mint or revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
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
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("{s}: expected a number of bytes such as 10GiB"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" => 1 << 10,
            "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            "tb" => 1000 * 1000 * 1000 * 1000,
            "tib" => 1 << 40,
            other => return Err(format!("{s}: unknown unit {other}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s}: too large"))
    }
}

#[derive(Args)]
struct DataDir {
    /// Where Pond keeps its catalog, keys and databases.
    #[arg(long, env = "POND_DATA_DIR", default_value = "./pond-data")]
    data_dir: PathBuf,
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
    /// Local cache of snapshot objects, e.g. 10GiB (its size bound).
    #[arg(long, env = "POND_CACHE_SIZE", default_value = "10GiB")]
    cache_size: ByteSize,
    /// TLS certificate (PEM); serves grpc+tls:// together with --tls-key.
    #[arg(long, env = "POND_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "POND_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "POND_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// DuckDB threads per duckling (default: DuckDB's, one per core).
    #[arg(long, env = "POND_DUCKLING_THREADS")]
    duckling_threads: Option<usize>,
    /// DuckDB memory limit per duckling, e.g. 4GB (default: DuckDB's, 80% of RAM).
    #[arg(long, env = "POND_DUCKLING_MEMORY")]
    duckling_memory: Option<String>,
    /// Close sessions idle for this long.
    #[arg(long, env = "POND_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    session_idle_timeout: Duration,
    /// Close sessions whose client never came back (no session cookie) after this long.
    #[arg(long, env = "POND_UNRETURNED_SESSION_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    unreturned_session_timeout: Duration,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token for a user (created on first use) and print it alone on one line.
    Create {
        #[command(flatten)]
        data: DataDir,
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
        /// The token id (the `jti` claim).
        id: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Token(cmd) => token(cmd),
        Command::Bench(args) => bench::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(TlsConfig {
            cert_pem: std::fs::read(c).with_context(|| format!("reading {}", c.display()))?,
            key_pem: std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
            client_ca_pem: match &args.tls_client_ca {
                Some(ca) => Some(std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?),
                None => None,
            },
        }),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "serving plaintext on a non-loopback address; use --tls-cert/--tls-key");
    }
    let coordinator = Coordinator::open(CoordinatorConfig {
        data_dir: args.data.data_dir.clone(),
        duckling_threads: args.duckling_threads,
        duckling_memory: args.duckling_memory.clone(),
        session_idle_timeout: args.session_idle_timeout,
        unreturned_session_timeout: args.unreturned_session_timeout,
        storage_url: args.storage.clone(),
        cache_bytes: args.cache_size.as_u64(),
    })
    .context("opening the data directory")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    let gc = {
        let coordinator = Arc::clone(&coordinator);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(GC_INTERVAL).await;
                if let Err(e) = coordinator.collect_garbage(GC_GRACE).await {
                    tracing::warn!(error = %e, "garbage collection failed");
                }
            }
        })
    };
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    // The one line scripts and tests wait for: printed once the socket accepts connections.
    #[allow(clippy::print_stdout)]
    {
        println!("pond {} listening on {scheme}://{addr}", env!("CARGO_PKG_VERSION"));
    }
    tracing::info!(%addr, data_dir = %args.data.data_dir.display(), "serving Flight SQL");
    pond_flight_server::serve(listener, Arc::clone(&coordinator), ServerConfig { tls }, shutdown).await?;
    gc.abort();
    // Every commit is already durable; this stores DuckDB's shutdown checkpoints, so the next
    // start reuses the working copies instead of rebuilding them.
    tokio::task::spawn_blocking(move || coordinator.shutdown()).await?;
    tracing::info!("stopped");
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
            user,
            read_only,
            ttl,
            show_id,
        } => {
            std::fs::create_dir_all(&data.data_dir)?;
            let authority = TokenAuthority::open(&data.data_dir)?;
            let (token, id) = authority.mint(&user, read_only, ttl)?;
            if show_id {
                eprintln!("token id: {id}");
            }
            println!("{token}");
        }
        TokenCommand::Revoke { data, id } => {
            let authority = TokenAuthority::open(&data.data_dir)?;
            authority.revoke(&id)?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
