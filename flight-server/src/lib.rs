//! Pond's front door: an Arrow Flight SQL server over the coordinator.
//!
//! Any Flight SQL client (ADBC, the JDBC driver, Pond's own client) connects here. This crate
//! only translates the protocol: [`front`] authenticates calls and manages session cookies,
//! [`service`] maps each Flight SQL command to a [`Coordinator`] call, [`metadata`] builds
//! SqlInfo and type info, and [`status`] is the one place errors become gRPC statuses: handlers
//! fail with a [`FlightSqlError`] and `?` does the rest.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use pond_coordinator::{Coordinator, CoordinatorConfig};
//! let coordinator = Coordinator::open(CoordinatorConfig::new("./pond-data"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! pond_flight_server::serve(listener, coordinator, pond_flight_server::ServerConfig::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

pub mod calls;
pub mod connection;
pub mod context;
pub mod encode;
pub mod encoding;
pub mod front;
pub mod health;
pub mod metadata;
pub mod metrics;
pub mod service;
pub mod status;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use pond_coordinator::Coordinator;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, ServerTlsConfig};

pub use calls::ObserveCalls;
pub use connection::CoalescedWrites;
pub use encoding::CompressedUploadsOnly;
pub use front::FrontDoor;
pub use health::{Health, health_service};
pub use metrics::{Metrics, Sample, spawn_http};
pub use service::PondFlightSql;
pub use status::FlightSqlError;

/// The layers every public front door's calls pass: observed (counted and traced), and
/// compressed only when they are uploads (`encoding.rs`).
pub type PublicLayers = tower::layer::util::Stack<
    tower::layer::util::Stack<
        CompressedUploadsOnly,
        tower::layer::util::Stack<ObserveCalls, tower::layer::util::Identity>,
    >,
    tower::layer::util::Identity,
>;

pub use pond_proto::MAX_MESSAGE_BYTES;

/// TLS material, PEM-encoded.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate signed by one of these CAs (mTLS).
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Front-door settings; the binary fills them from flags.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Serve `grpc+tls://` when set.
    pub tls: Option<TlsConfig>,
    /// On shutdown, running queries may finish for this long before they are interrupted.
    pub drain_timeout: Duration,
    /// Counts calls for `/metrics` (`--metrics-listen`) when set.
    pub metrics: Option<Arc<Metrics>>,
}

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not start the Flight SQL service: {0}")]
    Setup(status::FlightSqlError),
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Accepted connections, with Nagle's algorithm off (the builder's `tcp_nodelay` only applies
/// to listeners tonic binds itself, and small request/response exchanges otherwise wait on
/// delayed ACKs, tens of milliseconds per round trip) and each reply written at once
/// ([`CoalescedWrites`]).
pub fn incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<CoalescedWrites<tokio::net::TcpStream>>> {
    use futures::TryStreamExt;
    TcpListenerStream::new(listener).map_ok(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "could not disable Nagle's algorithm");
        }
        CoalescedWrites::new(stream)
    })
}

/// A Flight service with Pond's message-size limits, answering in zstd a client that asks.
pub fn flight_service<S: arrow_flight::flight_service_server::FlightService>(service: S) -> FlightServiceServer<S> {
    // Answers in zstd only for a client that asks (`grpc-accept-encoding`): Pond's own over a
    // slow link. Standard clients do not offer it, and pay nothing. Compressed requests only
    // where [`public_service`] lets uploads through.
    FlightServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .send_compressed(tonic::codec::CompressionEncoding::Zstd)
}

/// [`flight_service`] for a public front door, behind [`public_server`]'s layers: its uploads
/// may come compressed (`encoding.rs`).
pub fn public_service<S: arrow_flight::flight_service_server::FlightService>(service: S) -> FlightServiceServer<S> {
    flight_service(service).accept_compressed(tonic::codec::CompressionEncoding::Zstd)
}

/// A public front door's server (in-process, or the proxy in front of process ducklings):
/// [`server_builder`]'s settings, calls counted for `/metrics` when configured, and the health
/// service; with what to tell them once shutdown begins.
pub async fn public_server(
    config: &ServerConfig,
) -> Result<(tonic::transport::server::Router<PublicLayers>, Draining), ServeError> {
    let (health, health_service) = health_service().await;
    let layers = tower::ServiceBuilder::new()
        .layer(ObserveCalls::new(config.metrics.clone()))
        .layer(CompressedUploadsOnly)
        .into_inner();
    let router = server_builder(config)?.layer(layers).add_service(health_service);
    let draining = Draining {
        health,
        metrics: config.metrics.clone(),
    };
    Ok((router, draining))
}

/// What a public front door tells its watchers when shutdown begins (see [`public_server`]).
pub struct Draining {
    health: Health,
    metrics: Option<Arc<Metrics>>,
}

impl Draining {
    /// The health service says NOT_SERVING and `/readyz` answers 503 from now on.
    pub async fn begin(self) {
        self.health.draining().await;
        if let Some(m) = &self.metrics {
            m.draining();
        }
    }
}

/// The gRPC server settings every Pond port shares: keep-alives and, when configured, TLS.
pub fn server_builder(config: &ServerConfig) -> Result<tonic::transport::Server, ServeError> {
    let mut builder = tonic::transport::Server::builder().http2_keepalive_interval(Some(Duration::from_secs(30)));
    if let Some(tls) = &config.tls {
        let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            tls_config = tls_config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls_config)?;
    }
    Ok(builder)
}

/// Closes idle sessions, stops idle ducklings and keeps readers' share attachments in line
/// with their shares, for `coordinator`, until aborted.
pub fn spawn_reaper(coordinator: Arc<Coordinator>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reap = tokio::time::interval(coordinator.reap_interval());
        let mut follow = tokio::time::interval(pond_coordinator::coordinator::FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let c = Arc::clone(&coordinator);
            tokio::select! {
                // Stopping a duckling stores its final state.
                _ = reap.tick() => {
                    let _ = tokio::task::spawn_blocking(move || c.reap()).await;
                }
                // Readers' share attachments move to what their shares show now (on
                // blocking threads of their own).
                _ = follow.tick() => c.follow_shares(),
            }
        }
    })
}

/// Serves Flight SQL on `listener` until `shutdown` resolves, then stops accepting calls,
/// lets running queries finish for `config.drain_timeout`, interrupts those still running, and
/// waits for in-flight calls to end.
pub async fn serve(
    listener: TcpListener,
    coordinator: Arc<Coordinator>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let sql = Arc::new(PondFlightSql::new(Arc::clone(&coordinator)).map_err(ServeError::Setup)?);
    let service = public_service(FrontDoor::new(sql));
    let reaper = spawn_reaper(Arc::clone(&coordinator));
    let (router, draining) = public_server(&config).await?;
    let stopping = {
        let (coordinator, drain) = (Arc::clone(&coordinator), config.drain_timeout);
        async move {
            shutdown.await;
            draining.begin().await;
            tracing::info!(?drain, "shutting down: running queries may finish");
            coordinator.stop_unfetched();
            tokio::spawn(async move {
                tokio::time::sleep(drain).await;
                tracing::info!("interrupting the queries still running");
                coordinator.interrupt_all();
            });
        }
    };
    let result = router
        .add_service(service)
        .serve_with_incoming_shutdown(incoming(listener), stopping)
        .await;
    reaper.abort();
    // No call is left to fetch a query started at a GetFlightInfo that raced the shutdown,
    // nor to wait for the drain: stop everything before the runtime waits for its threads.
    coordinator.interrupt_all();
    result.map_err(Into::into)
}
