//! The coordinator's ducklings: which processes exist, which user each serves, and starting,
//! watching and replacing them.
//!
//! Invariants:
//! - A user has at most one primary duckling in the cluster; it is the only process that
//!   opens the user's databases for writing. Starting one is serialised per user, and across
//!   coordinators by the user's writer lease in the catalog (`WriterLeases`): a coordinator
//!   claims it before starting the duckling, names the duckling once it runs, renews it every
//!   [`LEASE_RENEW_EVERY`] while it serves, and releases it when the duckling stops. A
//!   coordinator that finds another's live lease sends the user's calls to that duckling
//!   (its key derived from the shared cluster key); one whose lease passed to another
//!   coordinator stops its duckling.
//! - A duckling that exits, misses heartbeats for [`protocol::HEARTBEAT_TIMEOUT`], or drops a
//!   call's connection is forgotten (and killed, if it is a child), so the next call starts or
//!   assigns another.
//! - A duckling's catalog requests are answered only for the user it was assigned.
//! - Silence is measured with the pool's injected clock ([`Pool::with_clock`]): the sweep's
//!   timer only decides when to look, [`heartbeat_overdue`] decides who is gone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::flight_service_client::FlightServiceClient;
use futures::StreamExt;
use parking_lot::Mutex;
use pond_clock::Clock;
use pond_coordinator::{Claim, Claimant, Coordinator, DUCKLINGS_DIR, DucklingInfo, Principal, WriterLease};
use pond_proto::cluster::{self as pb, catalog_request::Op};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tracing::{info, warn};

use crate::error::{ClusterError, Result};
use crate::protocol::{self, ClusterKey};
use crate::remote_catalog::{
    attached_to, database_to, info_to, on_existing_from, query_from, query_to, secret_from, secret_to, settings_from,
    share_to, user_to,
};

/// Where ducklings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DucklingMode {
    /// The coordinator spawns `pond duckling` children on loopback.
    Process,
    /// Ducklings started anywhere register; the coordinator assigns free ones.
    Remote,
}

/// How clients fetch results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// Through the coordinator, which relays the duckling's stream.
    Proxy,
    /// From the duckling: FlightInfo endpoints name its address, with a signed ticket.
    Direct,
}

/// Pool settings; the binary fills them from flags.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub mode: DucklingMode,
    pub endpoints: Endpoints,
    /// The object store ducklings open databases from.
    pub storage_url: String,
    /// Process mode: the `pond` executable, and flags every child gets (threads, memory,
    /// limits).
    pub exe: PathBuf,
    pub child_args: Vec<String>,
    /// Children keep their working copies under `<data_dir>/cluster/<user>`.
    pub data_dir: PathBuf,
    /// How long a new duckling may take to register.
    pub start_timeout: Duration,
    /// How long ducklings may take to finish running queries on shutdown.
    pub drain_timeout: Duration,
    /// Read-only sessions of a user are served by this many replicas (0: by the primary).
    pub read_replicas: usize,
    /// This coordinator's cluster TLS (when the front door serves TLS): ducklings are reached
    /// over mutual TLS, and each one spawned gets a leaf of its own.
    pub tls: Option<Arc<crate::tls::ClusterTls>>,
    /// With direct endpoints over TLS: the front door's certificate and key files, which
    /// spawned ducklings show the clients that fetch from them.
    pub public_tls: Option<(PathBuf, PathBuf)>,
}

/// How long a writer lease lasts unless renewed: after a coordinator dies, its users wait at
/// most this long before another coordinator starts their ducklings.
pub const WRITER_LEASE_TTL: Duration = Duration::from_millis(1500);

/// How often a coordinator renews its writer leases (several chances within one TTL).
pub const LEASE_RENEW_EVERY: Duration = Duration::from_millis(300);

/// How old another coordinator's report of its ducklings may be for `pond_ducklings()` to
/// list them (they report every second).
const DIRECTORY_FRESH: Duration = Duration::from_secs(3);

/// How often a coordinator looks again at a lease whose holder is still starting its duckling.
const LEASE_POLL: Duration = Duration::from_millis(50);

/// One registered duckling, or another coordinator's that serves a user this one is asked for.
pub struct Member {
    pub id: String,
    pub address: String,
    pub pid: u32,
    /// This duckling's own key (derived from the cluster secret and its id).
    key: ClusterKey,
    client: FlightServiceClient<Channel>,
    mode: DucklingMode,
    user: Mutex<Option<String>>,
    /// Which of its user's read replicas it is (`None`: the primary).
    replica_slot: Mutex<Option<usize>>,
    alive: AtomicBool,
    status: Mutex<pb::DucklingStatus>,
    last_seen: Mutex<Instant>,
    /// Kills the child process (process mode).
    kill: Mutex<Option<oneshot::Sender<()>>>,
    exited: tokio::sync::Notify,
    /// The coordinator whose duckling this is, when not this one's (its writer lease says).
    holder: Option<String>,
}

impl Member {
    /// The duckling's key: hop tokens and tickets for it are signed with it.
    pub fn key(&self) -> &ClusterKey {
        &self.key
    }

    /// A Flight client of the duckling.
    pub fn client(&self) -> FlightServiceClient<Channel> {
        self.client.clone()
    }

    /// Whether it is still usable.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Waits up to `wait` for the duckling to be known gone; returns whether it is.
    pub async fn gone_within(&self, wait: Duration) -> bool {
        if !self.is_alive() {
            return true;
        }
        let _ = tokio::time::timeout(wait, self.exited.notified()).await;
        !self.is_alive()
    }
}

/// How long a client connection keeps its read replica after its last call: connections idle
/// for longer have most likely closed.
const AFFINITY_IDLE: Duration = Duration::from_secs(3600);

/// Whether a duckling last heard from `silent_for` ago is gone: the sweep's decision.
pub fn heartbeat_overdue(silent_for: Duration) -> bool {
    silent_for > protocol::HEARTBEAT_TIMEOUT
}

/// The ducklings of one coordinator.
pub struct Pool {
    config: PoolConfig,
    /// Heartbeats, the sweep and replica affinity are timed by it.
    clock: Arc<dyn Clock>,
    key: Arc<ClusterKey>,
    coordinator: Arc<Coordinator>,
    /// Where children reach the coordinator; set once it listens.
    cluster_url: Mutex<String>,
    members: Mutex<HashMap<String, Arc<Member>>>,
    /// The metrics counters of ducklings that are gone, as they last reported them: the
    /// pool's totals stay monotonic when a duckling stops.
    retired_counters: Mutex<Vec<u64>>,
    primaries: Mutex<HashMap<String, Arc<Member>>>,
    starting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    registering: Mutex<HashMap<String, oneshot::Sender<Arc<Member>>>>,
    /// Each user's read replicas (`--read-replicas`).
    replicas: Mutex<HashMap<String, Vec<Arc<Member>>>>,
    /// Which replica serves a (user, client connection): a connection stays on one.
    affinity: Mutex<HashMap<(String, SocketAddr), (String, Instant)>>,
    next_replica: std::sync::atomic::AtomicUsize,
    /// Set when shutdown begins: no duckling is started or assigned after it.
    draining: AtomicBool,
    /// Process mode: a duckling process started and registered ahead of the next new user, its
    /// DuckDB already open (see [`Self::keep_a_spare`]).
    spare: Mutex<Spare>,
    /// Spares taken for a user, by duckling id: where their files go once their process exits
    /// (it may be forgotten before that).
    spare_homes: Mutex<HashMap<String, PathBuf>>,
    /// This coordinator as a writer-lease holder (one id per process), and its cluster key's
    /// fingerprint.
    coordinator_id: String,
    key_id: String,
    /// The users whose writer lease this coordinator holds.
    held: Mutex<HashMap<String, HeldLease>>,
}

/// A writer lease this coordinator holds.
struct HeldLease {
    generation: u64,
    /// Its duckling, once started.
    member: Option<std::sync::Weak<Member>>,
    /// When the last claim or renewal the catalog granted was sent: the lease surely lasts
    /// until then plus [`WRITER_LEASE_TTL`], whatever the catalog's clock says.
    confirmed: Instant,
}

impl HeldLease {
    /// Whether its duckling started and has stopped since (the lease then serves nobody).
    fn duckling_gone(&self) -> bool {
        self.member
            .as_ref()
            .is_some_and(|m| m.upgrade().is_none_or(|m| !m.is_alive()))
    }

    fn is(&self, member: &Member) -> bool {
        self.member.as_ref().is_some_and(|m| std::ptr::eq(m.as_ptr(), member))
    }
}

/// The spare duckling process.
enum Spare {
    None,
    Starting,
    Ready(Arc<Member>),
}

impl Pool {
    pub fn new(config: PoolConfig, key: Arc<ClusterKey>, coordinator: Arc<Coordinator>) -> Arc<Self> {
        Self::with_clock(config, key, coordinator, pond_clock::system())
    }

    /// [`Self::new`], timing heartbeats with `clock`.
    pub fn with_clock(
        config: PoolConfig,
        key: Arc<ClusterKey>,
        coordinator: Arc<Coordinator>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        // Spares of an earlier run: their processes are gone, and nothing reuses their files.
        let _ = std::fs::remove_dir_all(config.data_dir.join("cluster").join("spare"));
        let key_id = key.fingerprint();
        Arc::new(Self {
            config,
            clock,
            key,
            coordinator,
            cluster_url: Mutex::new(String::new()),
            members: Mutex::new(HashMap::new()),
            retired_counters: Mutex::new(Vec::new()),
            primaries: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashMap::new()),
            registering: Mutex::new(HashMap::new()),
            replicas: Mutex::new(HashMap::new()),
            affinity: Mutex::new(HashMap::new()),
            next_replica: std::sync::atomic::AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            spare: Mutex::new(Spare::None),
            spare_homes: Mutex::new(HashMap::new()),
            coordinator_id: format!("{}/{}", host_name(), &uuid::Uuid::new_v4().simple().to_string()[..12]),
            key_id,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Process mode: starts a duckling process for no user yet, so a user's first query waits
    /// for an assignment instead of a process start; called again each time one is taken. The
    /// user's working copies (`cluster/primary/<user>/ducklings`) move into its directory,
    /// `<data_dir>/cluster/spare/<id>`, before it is assigned, and back when its process exits,
    /// so every duckling of the user starts next to them.
    pub fn keep_a_spare(self: &Arc<Self>) {
        if self.config.mode != DucklingMode::Process || self.draining.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut spare = self.spare.lock();
            match &*spare {
                Spare::Starting => return,
                Spare::Ready(m) if m.is_alive() => return,
                _ => *spare = Spare::Starting,
            }
        }
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            let started = pool.spawn(None, None).await;
            let mut spare = pool.spare.lock();
            *spare = match started {
                Ok(member) => Spare::Ready(member),
                Err(e) => {
                    warn!(error = %e, "could not start a spare duckling process");
                    Spare::None
                }
            };
        });
    }

    /// The spare duckling process for `user`'s primary, if one is ready, with the user's working
    /// copies moved in; another is started in its place (also when the last one died). Called
    /// only while no process of the user's runs (under the user's start lock).
    fn take_spare(self: &Arc<Self>, user: &str) -> Option<Arc<Member>> {
        let taken = {
            let mut spare = self.spare.lock();
            match std::mem::replace(&mut *spare, Spare::None) {
                Spare::Ready(m) => Some(m).filter(|m| m.is_alive()),
                Spare::Starting => {
                    *spare = Spare::Starting;
                    return None;
                }
                Spare::None => None,
            }
        };
        self.keep_a_spare();
        let member = taken?;
        let home = self.primary_dir(user);
        let copies = home.join(DUCKLINGS_DIR);
        if copies.exists()
            && let Err(e) = std::fs::rename(&copies, self.spare_dir(&member.id).join(DUCKLINGS_DIR))
        {
            // The duckling then builds its copies from storage.
            warn!(user, error = %e, "could not move the user's working copies to a spare duckling");
        }
        self.spare_homes.lock().insert(member.id.clone(), home);
        Some(member)
    }

    /// Where a spare duckling process keeps its files.
    fn spare_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("cluster").join("spare").join(id)
    }

    /// Where `user`'s primary duckling process keeps its files.
    fn primary_dir(&self, user: &str) -> PathBuf {
        self.config.data_dir.join("cluster").join("primary").join(user)
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn key(&self) -> &Arc<ClusterKey> {
        &self.key
    }

    /// How this coordinator connects to ducklings: mutual TLS under the cluster CA, or none.
    fn cluster_client(&self) -> Option<tonic::transport::ClientTlsConfig> {
        self.config.tls.as_ref().map(|t| t.client())
    }

    /// Where spawned ducklings register (`grpc://127.0.0.1:PORT`).
    pub fn set_cluster_url(&self, url: String) {
        *self.cluster_url.lock() = url;
    }

    /// The duckling that serves `principal`, started or assigned on first use. With
    /// `--read-replicas N`, a read-only principal is served by one of the user's N replicas,
    /// picked round-robin per client connection (`client`), so that a connection's calls (a
    /// query's GetFlightInfo and DoGet, its session) stay on one replica.
    pub async fn route(self: &Arc<Self>, principal: &Principal, client: Option<SocketAddr>) -> Result<Arc<Member>> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ClusterError::Unavailable("the server is shutting down".into()));
        }
        if principal.read_only && self.config.read_replicas > 0 {
            return self.route_replica(&principal.user, client).await;
        }
        let user = &principal.user;
        let primary = self.primaries.lock().get(user).filter(|m| m.is_alive()).cloned();
        if let Some(m) = primary {
            if m.holder.is_none() {
                self.check_lease_fresh(user)?;
            }
            return Ok(m);
        }
        // Started in a task of its own: a caller that gives up (deadline, disconnect) does not
        // leave a half-started duckling that nobody owns.
        let (pool, user) = (Arc::clone(self), user.clone());
        tokio::spawn(async move {
            let lock = Arc::clone(pool.starting.lock().entry(user.clone()).or_default());
            let _starting = lock.lock().await;
            if let Some(m) = pool.primaries.lock().get(&user)
                && m.is_alive()
            {
                return Ok(Arc::clone(m));
            }
            let member = pool.start_primary(&user).await?;
            pool.primaries.lock().insert(user, Arc::clone(&member));
            Ok(member)
        })
        .await
        .map_err(|e| ClusterError::Protocol(format!("starting a duckling failed: {e}")))?
    }

    /// The user's primary: started here under the user's writer lease, or, when another
    /// coordinator holds the lease, that coordinator's duckling. Called under the user's start
    /// lock.
    async fn start_primary(self: &Arc<Self>, user: &str) -> Result<Arc<Member>> {
        let Some(leases) = self.coordinator.writer_leases().cloned() else {
            return self.start(user, None).await;
        };
        let deadline = tokio::time::Instant::now() + self.config.start_timeout;
        loop {
            let claimed = self.clock.instant();
            let claim = {
                let (leases, user, coordinator, key_id) = (
                    Arc::clone(&leases),
                    user.to_string(),
                    self.coordinator_id.clone(),
                    self.key_id.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let claimant = Claimant {
                        coordinator: &coordinator,
                        key_id: &key_id,
                    };
                    leases.claim_writer(&user, claimant, WRITER_LEASE_TTL)
                })
                .await
                .map_err(|e| ClusterError::Protocol(format!("claiming a writer lease failed: {e}")))??
            };
            let lease = match claim {
                Claim::Won(lease) => lease,
                Claim::Held(lease) if lease.is_published() => return self.foreign(lease),
                Claim::Held(lease) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ClusterError::Unavailable(format!(
                            "another coordinator ({}) is still starting {user}'s duckling; retry",
                            lease.coordinator
                        )));
                    }
                    tokio::time::sleep(LEASE_POLL).await;
                    continue;
                }
            };
            let generation = lease.generation;
            self.held.lock().insert(
                user.to_string(),
                HeldLease {
                    generation,
                    member: None,
                    confirmed: claimed,
                },
            );
            let member = match self.start(user, None).await {
                Ok(m) => m,
                Err(e) => {
                    self.release_lease(user, generation);
                    return Err(e);
                }
            };
            // From now on, whoever forgets the duckling releases its lease.
            if let Some(held) = self.held.lock().get_mut(user).filter(|h| h.generation == generation) {
                held.member = Some(Arc::downgrade(&member));
            }
            let published = {
                let (leases, user, coordinator, id, address) = (
                    Arc::clone(&leases),
                    user.to_string(),
                    self.coordinator_id.clone(),
                    member.id.clone(),
                    member.address.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    leases.publish_writer(&user, &coordinator, lease.generation, &id, &address)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(pond_coordinator::CoordinatorError::Internal(format!(
                        "naming a writer duckling failed: {e}"
                    )))
                })
            };
            return match published {
                Ok(true) if member.is_alive() => Ok(member),
                // Stopped as it was named: forgetting it released the lease.
                Ok(true) => Err(ClusterError::Unavailable(format!(
                    "{user}'s duckling stopped as it started; retry"
                ))),
                Ok(false) => {
                    self.release_lease(user, generation);
                    self.lost(
                        &member,
                        "its writer lease passed to another coordinator while it started",
                    );
                    Err(ClusterError::Unavailable(format!(
                        "{user}'s writer lease passed to another coordinator while this one started a duckling; retry"
                    )))
                }
                Err(e) => {
                    self.release_lease(user, generation);
                    self.lost(&member, &format!("its writer lease could not name it: {e}"));
                    Err(e.into())
                }
            };
        }
    }

    /// Another coordinator's duckling, as its lease names it: calls reach it with hop tokens
    /// signed by its key, which this coordinator derives from the cluster key they share.
    fn foreign(&self, lease: WriterLease) -> Result<Arc<Member>> {
        let loopback = lease.address.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
        if loopback && host_of(&lease.coordinator) != host_of(&self.coordinator_id) {
            return Err(ClusterError::Misconfigured(format!(
                "{}'s duckling runs under coordinator {} on another host, at a loopback address: \
                 coordinators on other hosts share ducklings only with --ducklings remote",
                lease.user, lease.coordinator
            )));
        }
        if lease.key_id != self.key_id {
            return Err(ClusterError::Misconfigured(format!(
                "{}'s duckling runs under coordinator {}, whose cluster key differs from this one's: \
                 coordinators on one catalog must share cluster.key",
                lease.user, lease.coordinator
            )));
        }
        info!(
            user = lease.user,
            duckling = lease.duckling_id,
            coordinator = lease.coordinator,
            "the user's duckling runs under another coordinator; calls go to it"
        );
        let member = self.member(lease.duckling_id, lease.address, 0, Some(lease.coordinator))?;
        *member.user.lock() = Some(lease.user);
        Ok(Arc::new(member))
    }

    /// A duckling at `address`, reached with its key and this coordinator's cluster TLS;
    /// `holder` names the coordinator running it when not this one.
    fn member(&self, id: String, address: String, pid: u32, holder: Option<String>) -> Result<Member> {
        Ok(Member {
            key: self.key.for_duckling(&id),
            client: crate::flight_client(crate::channel(&address, self.cluster_client())?),
            id,
            address,
            pid,
            mode: self.config.mode,
            user: Mutex::new(None),
            replica_slot: Mutex::new(None),
            alive: AtomicBool::new(true),
            status: Mutex::new(pb::DucklingStatus::default()),
            last_seen: Mutex::new(self.clock.instant()),
            kill: Mutex::new(None),
            exited: tokio::sync::Notify::new(),
            holder,
        })
    }

    /// Ends this coordinator's writer lease on `user` at `generation`, if it still holds that
    /// one, in the background; the handle says when the catalog has it.
    fn release_lease(&self, user: &str, generation: u64) -> Option<tokio::task::JoinHandle<()>> {
        {
            let mut held = self.held.lock();
            if held.get(user).is_none_or(|h| h.generation != generation) {
                return None;
            }
            held.remove(user);
        }
        // Without a catalog call, a lease is not renewed and expires.
        let leases = self.coordinator.writer_leases().cloned()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (user, coordinator) = (user.to_string(), self.coordinator_id.clone());
        Some(runtime.spawn_blocking(move || {
            if let Err(e) = leases.release_writer(&user, &coordinator, generation) {
                warn!(user, error = %e, "could not release a writer lease; it expires instead");
            }
        }))
    }

    /// Refuses to serve `user` from this coordinator's duckling when its lease may have passed
    /// to another coordinator: no renewal reached the catalog for a whole TTL (a coordinator
    /// cut off from the catalog could otherwise answer from a stale writer).
    fn check_lease_fresh(&self, user: &str) -> Result<()> {
        let confirmed = self.held.lock().get(user).map(|h| h.confirmed);
        match confirmed {
            Some(at) if self.clock.since(at) >= WRITER_LEASE_TTL => Err(ClusterError::Unavailable(format!(
                "this coordinator could not renew {user}'s writer lease with the catalog for {WRITER_LEASE_TTL:?}; \
                 retry (through another coordinator if it lasts)"
            ))),
            _ => Ok(()),
        }
    }

    /// Renews the writer leases this coordinator holds (releasing those whose duckling
    /// stopped), stops the ducklings whose lease passed to another coordinator, and forgets
    /// other coordinators' ducklings whose lease ended. Run every [`LEASE_RENEW_EVERY`].
    pub async fn keep_leases(self: &Arc<Self>) {
        let Some(leases) = self.coordinator.writer_leases().cloned() else {
            return;
        };
        let (mut mine, mut gone) = (Vec::new(), Vec::new());
        for (user, held) in self.held.lock().iter() {
            if held.duckling_gone() { &mut gone } else { &mut mine }.push((user.clone(), held.generation));
        }
        for (user, generation) in gone {
            self.release_lease(&user, generation);
        }
        let foreign: Vec<(String, Arc<Member>)> = self
            .primaries
            .lock()
            .iter()
            .filter(|(_, m)| m.holder.is_some())
            .map(|(u, m)| (u.clone(), Arc::clone(m)))
            .collect();
        if mine.is_empty() && foreign.is_empty() {
            return;
        }
        let watched: Vec<String> = foreign.iter().map(|(u, _)| u.clone()).collect();
        let coordinator = self.coordinator_id.clone();
        let asked = mine.clone();
        let sent = self.clock.instant();
        let answer = tokio::task::spawn_blocking(move || -> pond_coordinator::Result<_> {
            let renewed = if asked.is_empty() {
                Vec::new()
            } else {
                leases.renew_writers(&coordinator, &asked, WRITER_LEASE_TTL)?
            };
            let live = if watched.is_empty() {
                Vec::new()
            } else {
                leases.writers(&watched)?
            };
            Ok((renewed, live))
        })
        .await;
        let (renewed, live) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                warn!(error = %e, "could not renew writer leases; retrying");
                return;
            }
            Err(e) => {
                warn!(error = %e, "renewing writer leases failed");
                return;
            }
        };
        for (user, generation) in mine {
            if renewed.contains(&(user.clone(), generation)) {
                if let Some(held) = self.held.lock().get_mut(&user).filter(|h| h.generation == generation) {
                    held.confirmed = held.confirmed.max(sent);
                }
                continue;
            }
            // Not renewed: another coordinator claimed it since it lapsed.
            let lost = {
                let mut held = self.held.lock();
                match held.get(&user) {
                    Some(h) if h.generation == generation => held.remove(&user),
                    _ => None, // released or claimed again meanwhile
                }
            };
            if let Some(member) = lost.and_then(|h| h.member).and_then(|m| m.upgrade()) {
                self.lost(&member, "its writer lease passed to another coordinator");
            }
        }
        for (user, m) in foreign {
            if !live.iter().any(|l| l.user == user && l.duckling_id == m.id) {
                self.forget(&m, "its writer lease ended", false);
            }
        }
    }

    async fn route_replica(self: &Arc<Self>, user: &str, client: Option<SocketAddr>) -> Result<Arc<Member>> {
        let (pool, user) = (Arc::clone(self), user.to_string());
        tokio::spawn(async move { pool.route_replica_task(&user, client).await })
            .await
            .map_err(|e| ClusterError::Protocol(format!("starting a read replica failed: {e}")))?
    }

    async fn route_replica_task(self: &Arc<Self>, user: &str, client: Option<SocketAddr>) -> Result<Arc<Member>> {
        if let Some(addr) = client {
            let pinned = self
                .affinity
                .lock()
                .get(&(user.to_string(), addr))
                .map(|(id, _)| id.clone());
            if let Some(id) = pinned
                && let Some(m) = self
                    .members
                    .lock()
                    .get(&id)
                    .filter(|m| {
                        // Still this user's replica (a restarted duckling under the same id is not).
                        m.is_alive() && m.user.lock().as_deref() == Some(user) && m.replica_slot.lock().is_some()
                    })
                    .cloned()
            {
                self.affinity
                    .lock()
                    .insert((user.to_string(), addr), (id, self.clock.instant()));
                return Ok(m);
            }
        }
        let live = |pool: &Self| -> Vec<Arc<Member>> {
            let mut v = pool.replicas.lock().get(user).cloned().unwrap_or_default();
            v.retain(|m| m.is_alive());
            v
        };
        if live(self).len() < self.config.read_replicas {
            let lock = Arc::clone(self.starting.lock().entry(format!("{user}#replicas")).or_default());
            let _starting = lock.lock().await;
            let mut replicas = live(self);
            while replicas.len() < self.config.read_replicas {
                let slot = (0..self.config.read_replicas)
                    .find(|k| !replicas.iter().any(|m| *m.replica_slot.lock() == Some(*k)))
                    .unwrap_or(replicas.len());
                let m = match self.start(user, Some(slot)).await {
                    Ok(m) => m,
                    // Serve from the replicas that run rather than fail the query.
                    Err(e) if !replicas.is_empty() => {
                        warn!(user, error = %e, "a read replica could not start; serving from the others");
                        break;
                    }
                    Err(e) => return Err(e),
                };
                replicas.push(m);
                self.replicas.lock().insert(user.to_string(), replicas.clone());
            }
        }
        let replicas = live(self);
        let n = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let m = Arc::clone(
            replicas
                .get(n % replicas.len().max(1))
                .ok_or_else(|| ClusterError::Unavailable(format!("no read replica of {user} is running")))?,
        );
        if let Some(addr) = client {
            self.affinity
                .lock()
                .insert((user.to_string(), addr), (m.id.clone(), self.clock.instant()));
        }
        Ok(m)
    }

    /// Starts (process mode) or takes (remote mode) a duckling for `user` and assigns it:
    /// the primary, or read replica number `replica`.
    async fn start(self: &Arc<Self>, user: &str, replica: Option<usize>) -> Result<Arc<Member>> {
        let started = self.clock.instant();
        let member = match self.config.mode {
            DucklingMode::Process => match replica.is_none().then(|| self.take_spare(user)).flatten() {
                Some(spare) => spare,
                None => self.spawn(Some(user), replica).await?,
            },
            DucklingMode::Remote => self.take_free(user)?,
        };
        *member.user.lock() = Some(user.to_string());
        *member.replica_slot.lock() = replica;
        let assigned = tokio::time::timeout(self.config.start_timeout, self.assign(&member, user, replica.is_some()))
            .await
            .unwrap_or_else(|_| {
                Err(ClusterError::Unavailable(format!(
                    "the duckling did not open {user}'s databases within {:?}",
                    self.config.start_timeout
                )))
            });
        if let Err(e) = assigned {
            self.lost(&member, &format!("assignment failed: {e}"));
            return Err(e);
        }
        info!(
            user,
            duckling = member.id,
            read_replica = replica.is_some(),
            cold_start_ms = self.clock.since(started).as_secs_f64() * 1000.0,
            "duckling started"
        );
        Ok(member)
    }

    /// A free registered duckling, taken for `user` (under the members lock, so two users
    /// never take the same one).
    fn take_free(&self, user: &str) -> Result<Arc<Member>> {
        let members = self.members.lock();
        let free = members
            .values()
            .find(|m| m.is_alive() && m.user.lock().is_none())
            .cloned()
            .ok_or_else(|| {
                ClusterError::Unavailable(
                    "no duckling is free to take this user: start one with `pond duckling --coordinator grpc://HOST:PORT`"
                        .into(),
                )
            })?;
        *free.user.lock() = Some(user.to_string());
        Ok(free)
    }

    async fn assign(&self, member: &Member, user: &str, read_replica: bool) -> Result<()> {
        let mut request = tonic::Request::new(protocol::action(
            protocol::ASSIGN,
            &pb::Assign {
                user: user.to_string(),
                read_replica,
            },
        ));
        crate::set_bearer(request.metadata_mut(), &member.key.peer_token()?)?;
        let mut results = member.client().do_action(request).await?.into_inner();
        let first = results
            .next()
            .await
            .ok_or_else(|| ClusterError::Protocol("assign returned nothing".into()))??;
        *member.status.lock() = protocol::decode(&first.body)?;
        Ok(())
    }

    /// Spawns a `pond duckling` child for `user` (a spare: for none yet) and waits for it to
    /// register.
    async fn spawn(self: &Arc<Self>, user: Option<&str>, replica: Option<usize>) -> Result<Arc<Member>> {
        let id = format!("d_{}", uuid::Uuid::new_v4().simple());
        let (registered_tx, registered) = oneshot::channel();
        self.registering.lock().insert(id.clone(), registered_tx);
        let cluster = self.config.data_dir.join("cluster");
        let dir = match (user, replica) {
            (None, _) => self.spare_dir(&id),
            (Some(user), None) => self.primary_dir(user),
            (Some(user), Some(k)) => cluster.join("replicas").join(user).join(k.to_string()),
        };
        let spare_dir = user.is_none().then(|| dir.clone());
        let user = user.unwrap_or("a spare");
        let url = self.cluster_url.lock().clone();
        let mut command = tokio::process::Command::new(&self.config.exe);
        command
            .arg("duckling")
            .args(["--coordinator", &url, "--listen", "127.0.0.1:0", "--id", &id])
            .arg("--data-dir")
            .arg(&dir)
            .arg(format!("--drain-timeout={}ms", self.config.drain_timeout.as_millis()))
            .args(&self.config.child_args)
            // Only its own key: a child cannot act as another duckling.
            .env("POND_DUCKLING_KEY", self.key.for_duckling(&id).to_hex())
            // The catalog is the coordinator's: a duckling reaches it through the coordinator
            // and never holds its password.
            .env_remove(pond_coordinator::CATALOG_ENV)
            // The front door's TLS reaches a duckling only by the flags below (direct endpoints).
            .env_remove("POND_TLS_CERT")
            .env_remove("POND_TLS_KEY")
            .env_remove("POND_TLS_CLIENT_CA")
            // Nor the cluster secret, should the coordinator's environment hold it.
            .env_remove("POND_CLUSTER_SECRET")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if self.config.tls.is_some() {
            // A leaf of its own, never the CA's key.
            command.envs(crate::tls::ClusterTls::issue(&self.key, &id)?.env());
            if let Some((cert, key)) = &self.config.public_tls {
                command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
        }
        let mut child = command.spawn()?;
        let (kill_tx, kill) = oneshot::channel::<()>();
        let pool = Arc::clone(self);
        let child_id = id.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                // Only a sent kill: a dropped sender (the member forgotten) lets it exit itself.
                Ok(()) = kill => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let (reason, unexpected) = match status {
                Ok(s) => (format!("its process exited ({s})"), !s.success()),
                Err(e) => (format!("waiting for its process failed: {e}"), true),
            };
            // A spare's working copies go home to its user; a spare never assigned leaves
            // nothing.
            if let Some(dir) = spare_dir {
                let home = pool.spare_homes.lock().remove(&child_id);
                if let Some(home) = home {
                    let (from, to) = (dir.join(DUCKLINGS_DIR), home.join(DUCKLINGS_DIR));
                    // Copies at home belong to a newer duckling of the user: they stay.
                    if !to.exists() {
                        let _ = tokio::fs::create_dir_all(&home).await;
                        if let Err(e) = tokio::fs::rename(&from, &to).await {
                            warn!(error = %e, "could not keep a spare duckling's working copies");
                        }
                    }
                }
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
            pool.registering.lock().remove(&child_id);
            let member = pool.members.lock().get(&child_id).cloned();
            if let Some(m) = member {
                pool.forget(&m, &reason, unexpected);
            }
        });
        let member = match tokio::time::timeout(self.config.start_timeout, registered).await {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => {
                return Err(ClusterError::Unavailable(format!(
                    "the duckling process for {user} exited before it registered; see the server log"
                )));
            }
            Err(_) => {
                let _ = kill_tx.send(());
                return Err(ClusterError::Unavailable(format!(
                    "the duckling process for {user} did not register within {:?}",
                    self.config.start_timeout
                )));
            }
        };
        *member.kill.lock() = Some(kill_tx);
        Ok(member)
    }

    /// Forgets a duckling that stopped or failed, and kills it if it is a child.
    pub fn lost(&self, member: &Member, reason: &str) {
        self.forget(member, reason, true);
    }

    fn forget(&self, member: &Member, reason: &str, unexpected: bool) {
        if !member.alive.swap(false, Ordering::SeqCst) {
            return;
        }
        let user = member.user.lock().clone();
        if unexpected {
            warn!(
                duckling = member.id,
                ?user,
                reason,
                "duckling lost; the next query starts another"
            );
        } else {
            info!(duckling = member.id, ?user, reason, "duckling stopped");
        }
        if self.members.lock().remove(&member.id).is_some() {
            add_counters(&mut self.retired_counters.lock(), &member.status.lock().counters);
        }
        self.primaries.lock().retain(|_, m| m.id != member.id);
        for replicas in self.replicas.lock().values_mut() {
            replicas.retain(|m| m.id != member.id);
        }
        // Its user's next call claims the lease again, here or on another coordinator.
        if let Some(user) = &user {
            let generation = self
                .held
                .lock()
                .get(user)
                .filter(|h| h.is(member))
                .map(|h| h.generation);
            if let Some(generation) = generation {
                self.release_lease(user, generation);
            }
        }
        // A duckling that stops on its own (idle, SHUTDOWN) drains and exits by itself.
        if unexpected && let Some(kill) = member.kill.lock().take() {
            let _ = kill.send(());
        }
        member.exited.notify_waiters();
    }

    /// `pond.cluster.register`.
    pub fn register(&self, request: pb::RegisterRequest) -> Result<pb::RegisterResponse> {
        let address: std::net::SocketAddr = request
            .address
            .parse()
            .map_err(|_| ClusterError::Protocol(format!("{} is not HOST:PORT", request.address)))?;
        if address.ip().is_unspecified() {
            return Err(ClusterError::Protocol(format!(
                "{address} is not a routable address; start the duckling with --advertise"
            )));
        }
        let waiting = self.registering.lock().remove(&request.duckling_id);
        if waiting.is_none() && self.config.mode == DucklingMode::Process {
            return Err(ClusterError::PermissionDenied(
                "this coordinator runs its own duckling processes (--ducklings process)".into(),
            ));
        }
        let member = Arc::new(self.member(request.duckling_id.clone(), address.to_string(), request.pid, None)?);
        let previous = self.members.lock().insert(member.id.clone(), Arc::clone(&member));
        if let Some(old) = previous {
            // The same id again (a remote duckling restarted): the old process is gone.
            old.alive.store(false, Ordering::SeqCst);
            self.primaries.lock().retain(|_, m| !Arc::ptr_eq(m, &old));
            for replicas in self.replicas.lock().values_mut() {
                replicas.retain(|m| !Arc::ptr_eq(m, &old));
            }
            old.exited.notify_waiters();
        }
        info!(duckling = member.id, address = member.address, "duckling registered");
        if let Some(tx) = waiting {
            let _ = tx.send(member);
        }
        Ok(pb::RegisterResponse {
            storage_url: self.config.storage_url.clone(),
        })
    }

    /// `pond.cluster.heartbeat`.
    pub fn heartbeat(&self, beat: pb::Heartbeat) -> pb::HeartbeatResponse {
        let status = beat.status.unwrap_or_default();
        let member = self.members.lock().get(&status.duckling_id).cloned();
        match member {
            Some(m) if status.state == protocol::STOPPING => {
                // It stops on its own (idle): route nothing more to it.
                self.forget(&m, "it went idle", false);
                pb::HeartbeatResponse { stop: true }
            }
            Some(m) => {
                *m.last_seen.lock() = self.clock.instant();
                let mut status = status;
                if !status.counters.is_empty() && status.counters.len() != pond_coordinator::REPORTED_WORDS {
                    // Another version's layout: adding it word by word would corrupt the sums.
                    tracing::warn!(
                        duckling = status.duckling_id,
                        words = status.counters.len(),
                        "a duckling reports metrics in a layout this coordinator does not know; they are left out"
                    );
                    status.counters.clear();
                }
                *m.status.lock() = status;
                pb::HeartbeatResponse { stop: false }
            }
            None => pb::HeartbeatResponse { stop: true },
        }
    }

    /// The ducklings' reported metrics (`Coordinator::reported_metrics`' words), summed over
    /// those running (their last heartbeat) and those gone.
    pub fn counter_totals(&self) -> Vec<u64> {
        let mut totals = self.retired_counters.lock().clone();
        for m in self.members.lock().values() {
            add_counters(&mut totals, &m.status.lock().counters);
        }
        totals
    }

    /// Forgets ducklings whose heartbeats stopped. Run periodically.
    pub fn sweep(&self) {
        let silent: Vec<Arc<Member>> = self
            .members
            .lock()
            .values()
            .filter(|m| heartbeat_overdue(self.clock.since(*m.last_seen.lock())))
            .cloned()
            .collect();
        for m in silent {
            self.lost(&m, "its heartbeats stopped");
        }
        self.affinity
            .lock()
            .retain(|_, (_, used)| self.clock.since(*used) < AFFINITY_IDLE);
    }

    /// `pond.cluster.catalog`, for duckling `duckling_id`.
    pub async fn catalog(&self, duckling_id: &str, request: pb::CatalogRequest) -> Result<pb::CatalogResponse> {
        let member = self.members.lock().get(duckling_id).cloned();
        let user = member.and_then(|m| m.user.lock().clone());
        if user.as_deref() != Some(request.owner.as_str()) {
            return Err(ClusterError::PermissionDenied(format!(
                "duckling {duckling_id} does not serve user {}",
                request.owner
            )));
        }
        let catalog = Arc::clone(self.coordinator.catalog());
        let coordinator = Arc::clone(&self.coordinator);
        let private_endpoints = self.coordinator.config().private_endpoints;
        let response = tokio::task::spawn_blocking(move || -> pond_coordinator::Result<pb::CatalogResponse> {
            let (owner, name) = (request.owner.as_str(), request.name.as_str());
            let databases = |v: Vec<pond_coordinator::DatabaseEntry>| pb::CatalogResponse {
                databases: v.into_iter().map(database_to).collect(),
                ..Default::default()
            };
            let changed = |changed: bool| pb::CatalogResponse {
                changed,
                ..Default::default()
            };
            let shares = |v: Vec<pond_coordinator::shares::ShareEntry>| pb::CatalogResponse {
                shares: v.into_iter().map(share_to).collect(),
                ..Default::default()
            };
            let op = Op::try_from(request.op).unwrap_or(Op::Unspecified);
            Ok(match op {
                Op::EnsureUser => pb::CatalogResponse {
                    user: Some(user_to(catalog.ensure_user(owner)?)),
                    ..Default::default()
                },
                Op::User => pb::CatalogResponse {
                    user: catalog.user(owner)?.map(user_to),
                    ..Default::default()
                },
                Op::Databases => databases(catalog.databases(owner)?),
                Op::Database => databases(catalog.database(owner, name)?.into_iter().collect()),
                Op::CreateDatabase => databases(
                    catalog
                        .create_database(owner, name, request.lenient)?
                        .into_iter()
                        .collect(),
                ),
                Op::DropDatabase => databases(
                    catalog
                        .drop_database(owner, name, request.lenient)?
                        .into_iter()
                        .collect(),
                ),
                Op::UndropDatabase => databases(vec![catalog.undrop_database(owner, name)?]),
                Op::SetRetention => databases(vec![catalog.set_retention(owner, name, request.days)?]),
                Op::Secrets => pb::CatalogResponse {
                    secrets: catalog
                        .secrets(owner)?
                        .iter()
                        .map(|s| secret_to(&s.spec, s.created_ms))
                        .collect(),
                    ..Default::default()
                },
                Op::PutSecret => {
                    let secret = request.secret.clone().ok_or_else(|| {
                        pond_coordinator::CoordinatorError::InvalidArgument("PUT_SECRET without a secret".into())
                    })?;
                    // Checked again here: a duckling process is not trusted with the catalog.
                    let spec = secret_from(secret).spec.checked(private_endpoints)?;
                    changed(catalog.put_secret(owner, &spec, on_existing_from(request.on_existing))?)
                }
                Op::DropSecret => changed(catalog.drop_secret(owner, name, request.lenient)?),
                Op::CreateShare => {
                    let share = request.share.as_ref().ok_or_else(|| {
                        pond_coordinator::CoordinatorError::InvalidArgument("CREATE_SHARE without a share".into())
                    })?;
                    let new = pond_coordinator::NewShare {
                        name: share.name.clone(),
                        database: share.database_name.clone(),
                        database_id: share.database_id.clone(),
                        settings: settings_from(share)?,
                        published_seq: share.published_seq,
                    };
                    shares(
                        catalog
                            .create_share(owner, &new, on_existing_from(request.on_existing))?
                            .into_iter()
                            .collect(),
                    )
                }
                Op::PublishShare => shares(vec![catalog.publish_share(owner, name, request.seq)?]),
                Op::DropShare => changed(catalog.drop_share(owner, name, request.lenient)?),
                Op::GrantShare | Op::RevokeShare => {
                    catalog.grant_share(owner, name, &request.grantees, op == Op::GrantShare)?;
                    changed(true)
                }
                Op::OwnedShares => shares(catalog.owned_shares(owner)?),
                Op::DiscoverableShares => shares(catalog.discoverable_shares(owner)?),
                Op::AttachShare => {
                    let url = pond_coordinator::shares::ShareUrl {
                        database_name: request.url_database.clone(),
                        token: request.url_token.clone(),
                    };
                    let (alias, share) = catalog.attach_share(owner, &url, request.has_alias.then_some(name))?;
                    pb::CatalogResponse {
                        alias,
                        ..shares(vec![share])
                    }
                }
                Op::DetachShare => changed(catalog.detach_share(owner, name)?),
                Op::AttachedShares => pb::CatalogResponse {
                    attached: catalog.attached_shares(owner)?.into_iter().map(attached_to).collect(),
                    ..Default::default()
                },
                Op::RecordQueries => {
                    let records = request
                        .queries
                        .into_iter()
                        .map(query_from)
                        .collect::<pond_coordinator::Result<Vec<_>>>()?;
                    coordinator.record_from_duckling(owner, &records)?;
                    changed(true)
                }
                Op::QueryHistory => pb::CatalogResponse {
                    queries: coordinator.query_history_of(owner)?.iter().map(query_to).collect(),
                    ..Default::default()
                },
                Op::Unspecified => {
                    return Err(pond_coordinator::CoordinatorError::InvalidArgument(
                        "unknown catalog operation".into(),
                    ));
                }
            })
        })
        .await
        .map_err(|e| ClusterError::Protocol(format!("catalog task failed: {e}")))??;
        Ok(response)
    }

    /// Every duckling, for `pond_ducklings()`.
    pub fn ducklings(&self) -> Vec<DucklingInfo> {
        let mut out: Vec<DucklingInfo> = self
            .members
            .lock()
            .values()
            .map(|m| {
                let s = m.status.lock().clone();
                DucklingInfo {
                    read_replica: m.replica_slot.lock().is_some(),
                    id: m.id.clone(),
                    user: m.user.lock().clone().unwrap_or_default(),
                    mode: match m.mode {
                        DucklingMode::Process => "process",
                        DucklingMode::Remote => "remote",
                    }
                    .into(),
                    state: if s.state.is_empty() { "idle".into() } else { s.state },
                    address: m.address.clone(),
                    pid: Some(m.pid),
                    started_ms: s.started_ms,
                    cold_start_ms: s.cold_start_ms,
                    memory_bytes: s.memory_bytes,
                    running_queries: s.running_queries,
                    sessions: s.sessions,
                    coordinator: self.coordinator_id.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.user, &a.id).cmp(&(&b.user, &b.id)));
        out
    }

    /// Reports this coordinator's ducklings to the catalog's directory, where every
    /// coordinator's `pond_ducklings()` finds them. Run every second.
    pub async fn report_ducklings(&self) {
        let Some(directory) = self.coordinator.duckling_directory().cloned() else {
            return;
        };
        let (coordinator, mine) = (self.coordinator_id.clone(), self.ducklings());
        match tokio::task::spawn_blocking(move || directory.report_ducklings(&coordinator, &mine)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "could not report this coordinator's ducklings to the catalog"),
            Err(e) => warn!(error = %e, "reporting ducklings failed"),
        }
    }

    /// `pond.cluster.ducklings`: this coordinator's ducklings as they are now, and every other
    /// coordinator's as they last reported them (this one's alone if the catalog cannot say).
    pub async fn duckling_list(&self) -> pb::DucklingList {
        let mut all = self.ducklings();
        if let Some(directory) = self.coordinator.duckling_directory().cloned() {
            match tokio::task::spawn_blocking(move || directory.ducklings(DIRECTORY_FRESH)).await {
                Ok(Ok(listed)) => all.extend(listed.into_iter().filter(|d| d.coordinator != self.coordinator_id)),
                Ok(Err(e)) => warn!(error = %e, "listing other coordinators' ducklings failed; listing this one's"),
                Err(e) => warn!(error = %e, "listing other coordinators' ducklings failed"),
            }
        }
        all.sort_by(|a, b| (&a.user, &a.id).cmp(&(&b.user, &b.id)));
        pb::DucklingList {
            ducklings: all.into_iter().map(info_to).collect(),
        }
    }

    /// Snapshots the ducklings have open, for garbage collection.
    pub fn pinned(&self) -> Vec<(String, u64)> {
        self.members
            .lock()
            .values()
            .flat_map(|m| {
                m.status
                    .lock()
                    .pinned
                    .iter()
                    .map(|p| (p.database_id.clone(), p.seq))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Asks every duckling to drain, and waits for spawned ones to exit (killing those that
    /// outlast the drain timeout).
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let members: Vec<Arc<Member>> = self.members.lock().values().cloned().collect();
        let drains = members.iter().map(|m| async move {
            let mut request = tonic::Request::new(protocol::action(protocol::DRAIN, &pb::DucklingStatus::default()));
            if let Ok(token) = m.key.peer_token()
                && crate::set_bearer(request.metadata_mut(), &token).is_ok()
                && let Err(e) = m.client().do_action(request).await
            {
                warn!(duckling = m.id, error = %e, "drain request failed");
            }
            if m.mode == DucklingMode::Process
                && !m.gone_within(self.config.drain_timeout + Duration::from_secs(5)).await
            {
                self.lost(m, "it did not stop after draining");
            }
        });
        futures::future::join_all(drains).await;
        // Another coordinator may start these users' ducklings at once, not a TTL later; a
        // duckling still running (remote ones are not waited for) keeps its lease until it
        // lapses.
        let gone: Vec<(String, u64)> = self
            .held
            .lock()
            .iter()
            .filter(|(_, h)| h.member.is_none() || h.duckling_gone())
            .map(|(u, h)| (u.clone(), h.generation))
            .collect();
        let releases = gone
            .iter()
            .filter_map(|(user, generation)| self.release_lease(user, *generation));
        futures::future::join_all(releases).await;
        // Its ducklings are gone: so is its report.
        if let Some(directory) = self.coordinator.duckling_directory().cloned() {
            let coordinator = self.coordinator_id.clone();
            let _ = tokio::task::spawn_blocking(move || directory.report_ducklings(&coordinator, &[])).await;
        }
    }
}

/// This machine's name, as coordinator ids carry it: a duckling another coordinator publishes
/// at a loopback address is reachable only from the same machine.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The machine a coordinator id names.
fn host_of(coordinator: &str) -> &str {
    coordinator.split_once('/').map_or(coordinator, |(host, _)| host)
}

/// Adds `more` to `totals`, element by element (growing `totals` as needed).
fn add_counters(totals: &mut Vec<u64>, more: &[u64]) {
    if totals.len() < more.len() {
        totals.resize(more.len(), 0);
    }
    for (t, m) in totals.iter_mut().zip(more) {
        *t += m;
    }
}

#[cfg(test)]
mod tests {
    use pond_clock::ManualClock;
    use pond_coordinator::CoordinatorConfig;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_duckling_is_overdue_only_past_the_heartbeat_timeout() {
        assert!(!heartbeat_overdue(Duration::ZERO));
        assert!(!heartbeat_overdue(protocol::HEARTBEAT_TIMEOUT));
        assert!(heartbeat_overdue(protocol::HEARTBEAT_TIMEOUT + MS));
    }

    /// A remote-mode pool on a manual clock, with one registered duckling (whose channel
    /// connects lazily, so nothing listens).
    fn pool_with_a_duckling(dir: &std::path::Path) -> (Arc<ManualClock>, Arc<Pool>, Arc<Member>) {
        let clock = Arc::new(ManualClock::new());
        let coordinator = Coordinator::open(CoordinatorConfig::new(dir.join("coordinator"))).unwrap();
        let config = PoolConfig {
            mode: DucklingMode::Remote,
            endpoints: Endpoints::Proxy,
            storage_url: "memory://".into(),
            exe: PathBuf::new(),
            child_args: vec![],
            data_dir: dir.to_path_buf(),
            start_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(1),
            read_replicas: 0,
            tls: None,
            public_tls: None,
        };
        let key = Arc::new(ClusterKey::new(&[7u8; 32]));
        let pool = Pool::with_clock(config, key, coordinator, clock.clone());
        pool.register(pb::RegisterRequest {
            duckling_id: "d1".into(),
            address: "127.0.0.1:9".into(),
            ..Default::default()
        })
        .unwrap();
        let member = Arc::clone(pool.members.lock().get("d1").unwrap());
        (clock, pool, member)
    }

    fn beat(pool: &Pool) -> pb::HeartbeatResponse {
        pool.heartbeat(pb::Heartbeat {
            status: Some(pb::DucklingStatus {
                duckling_id: "d1".into(),
                ..Default::default()
            }),
        })
    }

    #[tokio::test]
    async fn the_sweep_forgets_a_duckling_only_once_its_heartbeat_deadline_passed() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, pool, member) = pool_with_a_duckling(dir.path());

        clock.advance(protocol::HEARTBEAT_TIMEOUT);
        pool.sweep();
        assert!(member.is_alive(), "silent for exactly the timeout is not yet gone");

        // A heartbeat restarts the deadline.
        assert!(!beat(&pool).stop);
        clock.advance(protocol::HEARTBEAT_TIMEOUT);
        pool.sweep();
        assert!(member.is_alive());
        assert_eq!(pool.ducklings().len(), 1);

        clock.advance(MS);
        pool.sweep();
        assert!(!member.is_alive());
        assert!(pool.ducklings().is_empty());
        assert!(beat(&pool).stop, "a forgotten duckling is told to stop");
    }

    fn principal(user: &str) -> Principal {
        Principal {
            user: user.into(),
            read_only: false,
            token_id: String::new(),
        }
    }

    /// Alice's lease, claimed by this coordinator for `ttl` and held for `member`.
    fn held_here(pool: &Pool, clock: &ManualClock, member: &Arc<Member>, ttl: Duration) -> WriterLease {
        let me = Claimant {
            coordinator: &pool.coordinator_id,
            key_id: &pool.key_id,
        };
        let leases = pool.coordinator.writer_leases().unwrap();
        let Claim::Won(mine) = leases.claim_writer("alice", me, ttl).unwrap() else {
            panic!("first claim")
        };
        pool.held.lock().insert(
            "alice".into(),
            HeldLease {
                generation: mine.generation,
                member: Some(Arc::downgrade(member)),
                confirmed: clock.instant(),
            },
        );
        mine
    }

    /// Alice's lease, claimed by coordinator `holder` (cluster key `key_id`), its duckling
    /// named at `address`.
    fn published_elsewhere(pool: &Pool, holder: &str, key_id: &str, address: &str) -> WriterLease {
        let leases = pool.coordinator.writer_leases().unwrap();
        let claimant = Claimant {
            coordinator: holder,
            key_id,
        };
        let Claim::Won(lease) = leases.claim_writer("alice", claimant, Duration::from_secs(60)).unwrap() else {
            panic!("the other coordinator claims first")
        };
        assert!(
            leases
                .publish_writer("alice", holder, lease.generation, "d_far", address)
                .unwrap()
        );
        lease
    }

    #[tokio::test]
    async fn a_user_whose_lease_another_coordinator_holds_is_sent_to_its_duckling_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (_clock, pool, _) = pool_with_a_duckling(dir.path());
        let leases = Arc::clone(pool.coordinator.writer_leases().unwrap());
        // Another coordinator on this machine (its duckling is at a loopback address).
        let other_id = format!("{}/other", host_name());
        let lease = published_elsewhere(&pool, &other_id, &pool.key_id, "127.0.0.1:9");

        let member = pool.route(&principal("alice"), None).await.unwrap();
        assert_eq!(
            (member.id.as_str(), member.holder.as_deref()),
            ("d_far", Some(other_id.as_str()))
        );
        assert_eq!(member.key().to_hex(), pool.key.for_duckling("d_far").to_hex());
        assert!(pool.held.lock().is_empty(), "this coordinator holds no lease for it");
        assert!(
            pool.ducklings().iter().all(|d| d.user != "alice"),
            "not this coordinator's duckling"
        );

        // The other coordinator's duckling stops: its lease ends, and so does the route to it.
        leases.release_writer("alice", &other_id, lease.generation).unwrap();
        pool.keep_leases().await;
        assert!(!member.is_alive());
        assert!(pool.primaries.lock().get("alice").is_none());
    }

    #[tokio::test]
    async fn a_coordinator_with_another_cluster_key_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let (_clock, pool, _) = pool_with_a_duckling(dir.path());
        published_elsewhere(
            &pool,
            &format!("{}/other", host_name()),
            "0123456789abcdef",
            "127.0.0.1:9",
        );
        let refused = pool.route(&principal("alice"), None).await.err().unwrap();
        assert!(matches!(&refused, ClusterError::Misconfigured(m) if m.contains("must share cluster.key")));
    }

    #[tokio::test]
    async fn a_coordinator_whose_lease_passed_stops_its_duckling() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, pool, member) = pool_with_a_duckling(dir.path());
        let leases = Arc::clone(pool.coordinator.writer_leases().unwrap());
        // This coordinator's lease on alice, as if its renewals had stalled past the TTL.
        let mine = held_here(&pool, &clock, &member, Duration::ZERO);
        *member.user.lock() = Some("alice".into());
        pool.primaries.lock().insert("alice".into(), Arc::clone(&member));

        // No renewal reached the catalog for a whole TTL: the duckling serves nobody.
        clock.advance(WRITER_LEASE_TTL);
        let refused = pool.route(&principal("alice"), None).await.err().unwrap();
        assert!(matches!(&refused, ClusterError::Unavailable(m) if m.contains("could not renew")));
        // Renewed while nobody claimed it in between: it serves again.
        pool.keep_leases().await;
        assert!(member.is_alive());
        assert_eq!(pool.route(&principal("alice"), None).await.unwrap().id, member.id);
        assert_eq!(
            leases.writers(&["alice".into()]).unwrap()[0].coordinator,
            pool.coordinator_id
        );

        let other = Claimant {
            coordinator: "c_other",
            key_id: &pool.key_id,
        };
        leases
            .renew_writers(
                &pool.coordinator_id,
                &[("alice".into(), mine.generation)],
                Duration::ZERO,
            )
            .unwrap();
        assert!(matches!(
            leases.claim_writer("alice", other, Duration::from_secs(60)).unwrap(),
            Claim::Won(_)
        ));
        pool.keep_leases().await;
        assert!(!member.is_alive(), "a duckling whose lease passed is stopped");
        assert!(pool.held.lock().is_empty());
        assert_eq!(
            leases.writers(&["alice".into()]).unwrap()[0].coordinator,
            "c_other",
            "stopping it does not release the new holder's lease"
        );
    }

    #[tokio::test]
    async fn a_lease_whose_duckling_stopped_is_released_not_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, pool, member) = pool_with_a_duckling(dir.path());
        let leases = Arc::clone(pool.coordinator.writer_leases().unwrap());
        held_here(&pool, &clock, &member, Duration::from_secs(60));
        // It died before it was among the primaries (while it was being named).
        member.alive.store(false, Ordering::SeqCst);
        pool.keep_leases().await;
        assert!(pool.held.lock().is_empty());
        for _ in 0..100 {
            if leases.writers(&["alice".into()]).unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the lease of a stopped duckling was not released");
    }

    #[tokio::test]
    async fn a_duckling_at_a_loopback_address_on_another_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_clock, pool, _) = pool_with_a_duckling(dir.path());
        let lease = published_elsewhere(&pool, "another-host/c1", &pool.key_id, "127.0.0.1:9");
        let refused = pool.route(&principal("alice"), None).await.err().unwrap();
        assert!(matches!(&refused, ClusterError::Misconfigured(m) if m.contains("--ducklings remote")));
        // At a routable address it is reached.
        let leases = pool.coordinator.writer_leases().unwrap();
        leases
            .release_writer("alice", "another-host/c1", lease.generation)
            .unwrap();
        published_elsewhere(&pool, "another-host/c1", &pool.key_id, "10.1.2.3:9");
        assert_eq!(pool.route(&principal("alice"), None).await.unwrap().id, "d_far");
    }
}
