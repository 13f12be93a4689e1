//! A duckling process (`pond duckling`): a Flight SQL server for one user, whose catalog is
//! its coordinator's.
//!
//! Lifecycle: bind → register with the coordinator (which answers with the object store) →
//! serve → heartbeat every second → on a drain, SIGTERM, or a coordinator that stopped
//! answering, stop accepting calls, let running queries finish (up to the drain timeout,
//! then interrupt them), and store every database's final state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use parking_lot::Mutex;
use pond_coordinator::{ClusterView, Coordinator, CoordinatorConfig, Principal};
use pond_flight_server::{FlightSqlError, FrontDoor, PondFlightSql};
use pond_proto::cluster::{self as pb};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::error::{ClusterError, Result};
use crate::protocol::{self, ClusterKey};
use crate::remote_catalog::{CoordinatorClient, RemoteCatalog};
use crate::tls::ClusterTls;

/// A duckling process's settings; the binary fills them from flags.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The coordinator, `grpc://HOST:PORT`.
    pub coordinator_url: String,
    /// The address clients and the coordinator reach this duckling at; by default the bound
    /// address, which must then be a specific one.
    pub advertise: Option<SocketAddr>,
    /// The id it registers under (a coordinator that spawns a duckling chooses it).
    pub id: Option<String>,
    /// Everything about the DuckDB it runs; `storage_url` comes from the coordinator.
    pub coordinator: CoordinatorConfig,
    /// How long running queries may take to finish once a drain starts.
    pub drain_timeout: Duration,
    pub tls: WorkerTls,
}

/// How a duckling process uses TLS. It serves TLS when its coordinator's URL is
/// `grpc+tls://`: with the leaf its coordinator handed it (spawned), or one it issues itself
/// from the cluster secret (remote).
#[derive(Clone, Default)]
pub struct WorkerTls {
    /// The cluster leaf a spawning coordinator handed over ([`ClusterTls::from_env`]).
    pub handed: Option<ClusterTls>,
    /// The certificate and key (PEM) clients fetching results from it directly see.
    pub public: Option<(Vec<u8>, Vec<u8>)>,
    /// CA certificates (PEM) trusted for a remote coordinator's TLS port, besides the
    /// system's roots.
    pub coordinator_ca: Option<Vec<u8>>,
}

/// What the duckling's front door and heartbeat share.
struct Worker {
    id: String,
    key: Arc<ClusterKey>,
    coordinator: Arc<Coordinator>,
    assigned: Mutex<Option<(String, bool)>>,
    /// Set once the assigned user's DuckDB runs: when the idle reaper stops it, the process
    /// exits (and the coordinator starts a new one on the user's next query).
    started: AtomicBool,
    draining: AtomicBool,
    stop: Notify,
}

impl Worker {
    fn status(&self) -> pb::DucklingStatus {
        let (user, read_replica) = self.assigned.lock().clone().unwrap_or_default();
        let info = self.coordinator.local_ducklings().into_iter().next();
        let state = if self.draining.load(Ordering::SeqCst) {
            "draining".to_string()
        } else {
            info.as_ref().map_or("idle".to_string(), |i| i.state.clone())
        };
        pb::DucklingStatus {
            duckling_id: self.id.clone(),
            user,
            state,
            memory_bytes: info.as_ref().map_or(0, |i| i.memory_bytes),
            running_queries: info.as_ref().map_or(0, |i| i.running_queries),
            sessions: info.as_ref().map_or(0, |i| i.sessions),
            cold_start_ms: info.as_ref().map_or(0.0, |i| i.cold_start_ms),
            started_ms: info.as_ref().map_or(0, |i| i.started_ms),
            pinned: self
                .coordinator
                .pinned_snapshots()
                .into_iter()
                .map(|(database_id, seq)| pb::PinnedSnapshot { database_id, seq })
                .collect(),
            read_replica,
            counters: self.coordinator.reported_metrics().to_vec(),
        }
    }

    /// The caller of a user call, refused unless it is this duckling's user.
    fn check_user(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal> {
        let token = crate::bearer(metadata).ok_or(ClusterError::Unauthenticated)?;
        let principal = self
            .key
            .tokens()
            .verify(&token)
            .map_err(|_| ClusterError::Unauthenticated)?;
        if principal.user == protocol::DUCKLING_SUBJECT {
            return Err(ClusterError::Unauthenticated);
        }
        match &*self.assigned.lock() {
            Some((user, _)) if *user == principal.user => Ok(principal),
            Some(_) => Err(ClusterError::PermissionDenied(
                "this duckling serves another user".into(),
            )),
            None => Err(ClusterError::Unassigned),
        }
    }

    async fn control(&self, action: Action) -> Result<pb::DucklingStatus> {
        match action.r#type.as_str() {
            protocol::ASSIGN => {
                let assign: pb::Assign = protocol::decode(&action.body)?;
                {
                    let mut assigned = self.assigned.lock();
                    match &*assigned {
                        Some((u, _)) if *u != assign.user => {
                            return Err(ClusterError::PermissionDenied(format!(
                                "duckling {} already serves another user",
                                self.id
                            )));
                        }
                        _ => *assigned = Some((assign.user.clone(), assign.read_replica)),
                    }
                }
                if assign.read_replica {
                    self.coordinator.serve_as_read_replica();
                }
                let (coordinator, user) = (Arc::clone(&self.coordinator), assign.user.clone());
                tokio::task::spawn_blocking(move || coordinator.start_duckling(&user))
                    .await
                    .map_err(|e| ClusterError::Protocol(format!("starting the duckling failed: {e}")))??;
                self.started.store(true, Ordering::SeqCst);
                info!(duckling = self.id, user = assign.user, "assigned");
                Ok(self.status())
            }
            protocol::STATUS => Ok(self.status()),
            protocol::DRAIN => {
                self.draining.store(true, Ordering::SeqCst);
                self.stop.notify_waiters();
                self.stop.notify_one();
                Ok(self.status())
            }
            other => Err(ClusterError::Protocol(format!("unknown duckling action {other}"))),
        }
    }
}

/// The duckling's gRPC service: cluster control actions, signed tickets, and the user's
/// Flight SQL calls, checked against the assigned user and handed to Pond's front door.
#[derive(Clone)]
struct DucklingDoor {
    worker: Arc<Worker>,
    front: FrontDoor,
}

#[tonic::async_trait]
impl FlightService for DucklingDoor {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(FlightSqlError::Unsupported("authenticate with the coordinator, not a duckling".into()).into())
    }

    async fn list_flights(&self, request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.list_flights(request).await
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.get_flight_info(request).await
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.poll_flight_info(request).await
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.get_schema(request).await
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        // A direct endpoint's ticket is its own credential.
        let (mut metadata, extensions, ticket) = request.into_parts();
        if let Some(opened) = self.worker.key.open_ticket(&ticket.ticket, &self.worker.id) {
            let (principal, inner) = opened?;
            let token = self.worker.key.mint_for(&principal)?;
            crate::set_bearer(&mut metadata, &token)?;
            let request = Request::from_parts(metadata, extensions, Ticket { ticket: inner.into() });
            self.worker.check_user(request.metadata())?;
            return self.front.do_get(request).await;
        }
        let request = Request::from_parts(metadata, extensions, ticket);
        self.worker.check_user(request.metadata())?;
        self.front.do_get(request).await
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.do_put(request).await
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        if request.get_ref().r#type.starts_with("pond.duckling.") {
            let token = crate::bearer(request.metadata()).ok_or(ClusterError::Unauthenticated)?;
            self.worker.key.verify_peer(&token)?;
            let status = self.worker.control(request.into_inner()).await?;
            let result = arrow_flight::Result {
                body: prost::Message::encode_to_vec(&status).into(),
            };
            return Ok(Response::new(Box::pin(futures::stream::once(async { Ok(result) }))));
        }
        self.worker.check_user(request.metadata())?;
        self.front.do_action(request).await
    }

    async fn list_actions(&self, request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.list_actions(request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.worker.check_user(request.metadata())?;
        self.front.do_exchange(request).await
    }
}

/// What a duckling authenticates with.
pub enum DucklingKey {
    /// The cluster secret (a remote duckling): its own key is derived from it and its id.
    ClusterSecret(ClusterKey),
    /// Its own key, as a coordinator hands it to a duckling it spawns (with its id).
    Own(ClusterKey),
}

/// Runs a duckling on `listener` until `shutdown` resolves, it is drained, or its coordinator
/// stops answering; then drains running queries and stores its databases' final state.
pub async fn run_duckling(
    listener: TcpListener,
    key: DucklingKey,
    config: WorkerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let bound = listener.local_addr()?;
    let advertise = config.advertise.unwrap_or(bound);
    if advertise.ip().is_unspecified() {
        return Err(ClusterError::Config(format!(
            "{advertise} is not an address others can reach: pass --advertise HOST:PORT"
        )));
    }
    let id = config
        .id
        .clone()
        .unwrap_or_else(|| format!("d_{}", uuid::Uuid::new_v4().simple()));
    let (cluster_tls, coordinator_link) = cluster_tls(&key, &config, &id)?;
    if config.tls.public.is_some() && cluster_tls.is_none() {
        return Err(ClusterError::Config(
            "a duckling serves TLS to clients only when its coordinator is grpc+tls://".into(),
        ));
    }
    let key = Arc::new(match key {
        DucklingKey::ClusterSecret(secret) => secret.for_duckling(&id),
        DucklingKey::Own(own) => own,
    });
    // DuckDB is opened before the duckling says it is ready, so its first assignment (a user's
    // first query) waits only for the user's lockdown and attaches.
    let coordinator_config = config.coordinator.clone();
    let instance = tokio::task::spawn_blocking(move || pond_coordinator::open_instance(&coordinator_config))
        .await
        .map_err(|e| ClusterError::Protocol(format!("opening DuckDB stopped: {e}")))??;
    let client = CoordinatorClient::new(
        crate::channel(&config.coordinator_url, coordinator_link)?,
        Arc::clone(&key),
        id.clone(),
    );
    let registered: pb::RegisterResponse = register(&client, &id, advertise).await?;
    let remote = Arc::new(RemoteCatalog::new(client.clone()));
    let coordinator = Coordinator::with_parts(
        CoordinatorConfig {
            storage_url: Some(registered.storage_url),
            ..config.coordinator.clone()
        },
        Arc::clone(&remote) as Arc<dyn pond_coordinator::Catalog>,
        key.authority(),
        Some(remote as Arc<dyn ClusterView>),
    )?;
    coordinator.set_duckling_id(&id);
    coordinator.give_spare_instance(instance);
    let worker = Arc::new(Worker {
        id: id.clone(),
        key,
        coordinator: Arc::clone(&coordinator),
        assigned: Mutex::new(None),
        started: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        stop: Notify::new(),
    });
    info!(duckling = id, %advertise, "duckling registered");

    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&worker), client));
    let sql = Arc::new(PondFlightSql::new(Arc::clone(&coordinator))?);
    let door = DucklingDoor {
        worker: Arc::clone(&worker),
        front: FrontDoor::new(sql),
    };
    let reaper = pond_flight_server::spawn_reaper(Arc::clone(&coordinator));
    let stopping = {
        let (worker, coordinator, drain) = (Arc::clone(&worker), Arc::clone(&coordinator), config.drain_timeout);
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = worker.stop.notified() => {},
            }
            worker.draining.store(true, Ordering::SeqCst);
            info!(duckling = worker.id, "draining: running queries may finish");
            // Queries still running after the drain timeout are interrupted.
            tokio::spawn(async move {
                tokio::time::sleep(drain).await;
                coordinator.interrupt_all();
            });
        }
    };
    let router = tonic::transport::Server::builder()
        // Calls the proxy forwards continue its trace.
        .layer(pond_flight_server::ObserveCalls::default())
        .add_service(pond_flight_server::flight_service(door));
    let result = match &cluster_tls {
        Some(tls) => {
            let public = config.tls.public.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()));
            let server = tls.duckling_server(public)?;
            router
                .serve_with_incoming_shutdown(crate::tls::incoming(listener, server), stopping)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(pond_flight_server::incoming(listener), stopping)
                .await
        }
    };
    heartbeat.abort();
    reaper.abort();
    tokio::task::spawn_blocking(move || coordinator.shutdown())
        .await
        .map_err(|e| ClusterError::Protocol(format!("shutdown failed: {e}")))?;
    info!(duckling = id, "duckling stopped");
    result.map_err(Into::into)
}

/// The duckling's cluster TLS and how it reaches its coordinator, when the coordinator's URL
/// is `grpc+tls://`: a spawned duckling uses the leaf it was handed for both (its coordinator's
/// cluster port asks for one); a remote one issues its own from the cluster secret and reaches
/// the coordinator's public port, trusting the system's roots and `coordinator_ca`.
fn cluster_tls(
    key: &DucklingKey,
    config: &WorkerConfig,
    id: &str,
) -> Result<(Option<ClusterTls>, Option<tonic::transport::ClientTlsConfig>)> {
    if !config.coordinator_url.starts_with("grpc+tls://") {
        return Ok((None, None));
    }
    match (key, &config.tls.handed) {
        (_, Some(handed)) => Ok((Some(handed.clone()), Some(handed.client()))),
        (DucklingKey::ClusterSecret(secret), None) => {
            let mut link = tonic::transport::ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &config.tls.coordinator_ca {
                link = link.ca_certificate(tonic::transport::Certificate::from_pem(ca));
            }
            Ok((Some(ClusterTls::issue(secret, id)?), Some(link)))
        }
        (DucklingKey::Own(_), None) => Err(ClusterError::Config(format!(
            "a duckling with a key of its own reaches a grpc+tls:// coordinator only with the certificate it was \
             handed ({}, {}, {})",
            crate::tls::CA_ENV,
            crate::tls::CERT_ENV,
            crate::tls::KEY_ENV
        ))),
    }
}

/// Says what is set, never a key.
impl std::fmt::Debug for WorkerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTls")
            .field("handed", &self.handed.is_some())
            .field("public", &self.public.is_some())
            .field("coordinator_ca", &self.coordinator_ca.is_some())
            .finish()
    }
}

/// Registers, retrying while the coordinator starts.
async fn register(client: &CoordinatorClient, id: &str, address: SocketAddr) -> Result<pb::RegisterResponse> {
    let request = pb::RegisterRequest {
        duckling_id: id.to_string(),
        address: address.to_string(),
        pid: std::process::id(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.call(protocol::REGISTER, &request).await {
            Ok(r) => return Ok(r),
            Err(e) if Instant::now() < deadline => {
                warn!(error = %e, "registering with the coordinator; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reports status every [`protocol::HEARTBEAT_EVERY`]; stops the duckling when it went idle
/// (`--duckling-idle-timeout`), when the coordinator no longer knows it, or when the
/// coordinator has not answered for [`protocol::HEARTBEAT_TIMEOUT`] × 2.
///
/// The status is gathered on a blocking thread with a deadline: it takes locks a long commit
/// upload holds, and a heartbeat must not wait for one (the coordinator would think the
/// duckling dead). Past the deadline the last status goes out again.
async fn heartbeat(worker: Arc<Worker>, client: CoordinatorClient) {
    let mut last_answer = Instant::now();
    let mut last_status = pb::DucklingStatus {
        duckling_id: worker.id.clone(),
        ..Default::default()
    };
    let mut gathering: Option<tokio::task::JoinHandle<(pb::DucklingStatus, bool)>> = None;
    let mut tick = tokio::time::interval(protocol::HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        let mut task = gathering.take().unwrap_or_else(|| {
            let w = Arc::clone(&worker);
            tokio::task::spawn_blocking(move || {
                let idle = w.started.load(Ordering::SeqCst) && !w.coordinator.has_ducklings();
                (w.status(), idle)
            })
        });
        let mut idle = false;
        match tokio::time::timeout(protocol::HEARTBEAT_EVERY / 2, &mut task).await {
            Ok(Ok((status, stopped))) => {
                last_status = status;
                idle = stopped;
            }
            Ok(Err(_)) => {}
            // Still gathering: report the last status, and keep waiting for this one.
            Err(_) => gathering = Some(task),
        }
        let mut status = last_status.clone();
        if idle {
            status.state = protocol::STOPPING.to_string();
        }
        match client
            .call::<pb::HeartbeatResponse>(protocol::HEARTBEAT, &pb::Heartbeat { status: Some(status) })
            .await
        {
            _ if idle => {
                info!(
                    duckling = worker.id,
                    "idle: the user's DuckDB stopped, so does this process"
                );
                break;
            }
            Ok(r) if r.stop => {
                warn!(duckling = worker.id, "the coordinator replaced this duckling: stopping");
                break;
            }
            Ok(_) => last_answer = Instant::now(),
            Err(e) if last_answer.elapsed() > protocol::HEARTBEAT_TIMEOUT * 2 => {
                warn!(duckling = worker.id, error = %e, "the coordinator stopped answering: stopping");
                break;
            }
            Err(_) => {}
        }
    }
    worker.stop.notify_one();
}
