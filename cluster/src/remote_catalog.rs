//! The catalog and cluster view of a duckling process: its coordinator's, over the cluster
//! protocol. One process (the coordinator) ever writes the catalog file.

use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use futures::StreamExt;
use pond_coordinator::history::{QueryRecord, QueryStatus};
use pond_coordinator::shares::{Access, AttachedShare, ShareEntry, ShareSettings, ShareUrl, Update, Visibility};
use pond_coordinator::{
    Catalog, ClusterView, CoordinatorError, DatabaseEntry, DucklingInfo, NewShare, OnExisting, SecretEntry,
    SecretOptions, SecretSpec, User,
};
use pond_proto::cluster::{self as pb, CatalogRequest, CatalogResponse, catalog_request::Op};
use prost::Message;
use tonic::transport::Channel;

use crate::error::{ClusterError, Result};
use crate::protocol::{self, ClusterKey};

/// Calls cluster actions on a coordinator.
#[derive(Clone)]
pub struct CoordinatorClient {
    client: FlightServiceClient<Channel>,
    key: Arc<ClusterKey>,
    duckling_id: String,
}

impl CoordinatorClient {
    /// A client of the coordinator at `channel`, speaking for duckling `duckling_id`.
    pub fn new(channel: Channel, key: Arc<ClusterKey>, duckling_id: String) -> Self {
        Self {
            client: crate::flight_client(channel),
            key,
            duckling_id,
        }
    }

    /// Runs one cluster action and decodes its single answer.
    pub async fn call<M: Message + Default>(&self, kind: &str, body: &impl Message) -> Result<M> {
        let mut request = tonic::Request::new(protocol::action(kind, body));
        crate::set_bearer(request.metadata_mut(), &self.key.peer_token()?)?;
        if let Ok(v) = self.duckling_id.parse() {
            request.metadata_mut().insert(crate::DUCKLING_ID_HEADER, v);
        }
        let mut results = self.client.clone().do_action(request).await?.into_inner();
        let first = results
            .next()
            .await
            .ok_or_else(|| ClusterError::Protocol(format!("{kind} returned nothing")))??;
        protocol::decode(&first.body)
    }
}

/// [`Catalog`] and [`ClusterView`] over a [`CoordinatorClient`].
pub struct RemoteCatalog {
    client: CoordinatorClient,
}

impl RemoteCatalog {
    pub fn new(client: CoordinatorClient) -> Self {
        Self { client }
    }

    fn call(
        &self,
        op: Op,
        owner: &str,
        name: &str,
        lenient: bool,
        days: u32,
    ) -> pond_coordinator::Result<CatalogResponse> {
        self.send(CatalogRequest {
            op: op as i32,
            owner: owner.to_string(),
            name: name.to_string(),
            lenient,
            days,
            ..Default::default()
        })
    }

    fn send(&self, request: CatalogRequest) -> pond_coordinator::Result<CatalogResponse> {
        pond_storage::block_on(self.client.call(protocol::CATALOG, &request)).map_err(coordinator_error)
    }
}

/// A coordinator's refusal, as the error the duckling's own front door reports the same way.
pub(crate) fn coordinator_error(e: ClusterError) -> CoordinatorError {
    use tonic::Code;
    match e {
        ClusterError::Rpc(s) => match s.code() {
            Code::NotFound => CoordinatorError::NotFound(s.message().to_string()),
            Code::AlreadyExists => CoordinatorError::AlreadyExists(s.message().to_string()),
            Code::InvalidArgument => CoordinatorError::InvalidArgument(s.message().to_string()),
            Code::PermissionDenied => {
                CoordinatorError::PermissionDenied(s.message().trim_start_matches("permission denied: ").to_string())
            }
            Code::Unauthenticated => CoordinatorError::Unauthenticated,
            _ => CoordinatorError::Unavailable(format!("the coordinator's catalog is unavailable: {}", s.message())),
        },
        ClusterError::Coordinator(e) => e,
        other => CoordinatorError::Unavailable(format!("the coordinator's catalog is unavailable: {other}")),
    }
}

pub(crate) fn secret_from(s: pb::Secret) -> SecretEntry {
    SecretEntry {
        spec: SecretSpec {
            name: s.name,
            secret_type: s.secret_type,
            scope: s.scope,
            options: SecretOptions(s.options.into_iter().collect()),
        },
        created_ms: s.created_ms,
    }
}

pub(crate) fn secret_to(s: &SecretSpec, created_ms: u64) -> pb::Secret {
    pb::Secret {
        name: s.name.clone(),
        secret_type: s.secret_type.clone(),
        scope: s.scope.clone(),
        options: s.options.0.clone().into_iter().collect(),
        created_ms,
    }
}

pub(crate) fn on_existing_to(e: OnExisting) -> u32 {
    match e {
        OnExisting::Fail => 0,
        OnExisting::Replace => 1,
        OnExisting::Keep => 2,
    }
}

pub(crate) fn on_existing_from(n: u32) -> OnExisting {
    match n {
        1 => OnExisting::Replace,
        2 => OnExisting::Keep,
        _ => OnExisting::Fail,
    }
}

pub(crate) fn user_from(u: pb::User) -> User {
    User {
        name: u.name,
        id: u.id,
        created_ms: u.created_ms,
    }
}

pub(crate) fn user_to(u: User) -> pb::User {
    pb::User {
        name: u.name,
        id: u.id,
        created_ms: u.created_ms,
    }
}

pub(crate) fn database_from(d: pb::Database) -> DatabaseEntry {
    DatabaseEntry {
        id: d.id,
        owner: d.owner,
        name: d.name,
        created_ms: d.created_ms,
        dropped_ms: d.dropped_ms,
        snapshot_retention_days: d.snapshot_retention_days,
    }
}

pub(crate) fn database_to(d: DatabaseEntry) -> pb::Database {
    pb::Database {
        id: d.id,
        owner: d.owner,
        name: d.name,
        created_ms: d.created_ms,
        dropped_ms: d.dropped_ms,
        snapshot_retention_days: d.snapshot_retention_days,
    }
}

pub(crate) fn share_to(s: ShareEntry) -> pb::Share {
    pb::Share {
        name: s.name,
        owner: s.owner,
        database_id: s.database_id,
        database_name: s.database_name,
        token: s.token,
        access: s.settings.access.as_str().into(),
        visibility: s.settings.visibility.as_str().into(),
        update: s.settings.update.as_str().into(),
        published_seq: s.published_seq,
        grants: s.grants,
        created_ms: s.created_ms,
    }
}

pub(crate) fn settings_from(s: &pb::Share) -> pond_coordinator::Result<ShareSettings> {
    Ok(ShareSettings {
        access: Access::parse(&s.access)?,
        visibility: Visibility::parse(&s.visibility)?,
        update: Update::parse(&s.update)?,
    })
}

pub(crate) fn share_from(s: pb::Share) -> pond_coordinator::Result<ShareEntry> {
    Ok(ShareEntry {
        settings: settings_from(&s)?,
        name: s.name,
        owner: s.owner,
        database_id: s.database_id,
        database_name: s.database_name,
        token: s.token,
        published_seq: s.published_seq,
        grants: s.grants,
        created_ms: s.created_ms,
    })
}

pub(crate) fn attached_to(a: AttachedShare) -> pb::AttachedShare {
    let (share, error) = match a.share {
        Ok(s) => (Some(share_to(s)), String::new()),
        Err(why) => (None, why),
    };
    pb::AttachedShare {
        alias: a.alias,
        attached_ms: a.attached_ms,
        share,
        error,
    }
}

fn attached_from(a: pb::AttachedShare) -> pond_coordinator::Result<AttachedShare> {
    Ok(AttachedShare {
        alias: a.alias,
        attached_ms: a.attached_ms,
        share: match a.share {
            Some(s) => Ok(share_from(s)?),
            None => Err(a.error),
        },
    })
}

pub(crate) fn query_to(r: &QueryRecord) -> pb::QueryRecord {
    pb::QueryRecord {
        query_id: r.query_id.clone(),
        user_name: r.user_name.clone(),
        session_id: r.session_id.clone(),
        database_name: r.database_name.clone(),
        query_text: r.query_text.clone(),
        kind: r.kind.clone(),
        start_us: r.start_us,
        end_us: r.end_us,
        rows: r.rows,
        bytes: r.bytes,
        status: r.status.as_str().to_string(),
        error: r.error.clone(),
        duckling_id: r.duckling_id.clone(),
        transaction_id: r.transaction_id.clone(),
    }
}

pub(crate) fn query_from(r: pb::QueryRecord) -> pond_coordinator::Result<QueryRecord> {
    let status = match r.status.as_str() {
        "ok" => QueryStatus::Ok,
        "error" => QueryStatus::Error,
        "cancelled" => QueryStatus::Cancelled,
        other => {
            return Err(CoordinatorError::InvalidArgument(format!(
                "unknown query status {other:?}"
            )));
        }
    };
    Ok(QueryRecord {
        query_id: r.query_id,
        user_name: r.user_name,
        session_id: r.session_id,
        database_name: r.database_name,
        query_text: r.query_text,
        kind: r.kind,
        start_us: r.start_us,
        end_us: r.end_us,
        rows: r.rows,
        bytes: r.bytes,
        status,
        error: r.error,
        duckling_id: r.duckling_id,
        transaction_id: r.transaction_id,
    })
}

fn shares_from(r: CatalogResponse) -> pond_coordinator::Result<Vec<ShareEntry>> {
    r.shares.into_iter().map(share_from).collect()
}

fn one(r: CatalogResponse) -> pond_coordinator::Result<Option<DatabaseEntry>> {
    Ok(r.databases.into_iter().next().map(database_from))
}

fn exactly_one(r: CatalogResponse) -> pond_coordinator::Result<DatabaseEntry> {
    one(r)?.ok_or_else(|| CoordinatorError::Internal("the coordinator answered without a database".into()))
}

impl Catalog for RemoteCatalog {
    fn ensure_user(&self, name: &str) -> pond_coordinator::Result<User> {
        self.call(Op::EnsureUser, name, "", false, 0)?
            .user
            .map(user_from)
            .ok_or_else(|| CoordinatorError::Internal("the coordinator answered without a user".into()))
    }

    fn user(&self, name: &str) -> pond_coordinator::Result<Option<User>> {
        Ok(self.call(Op::User, name, "", false, 0)?.user.map(user_from))
    }

    fn databases(&self, owner: &str) -> pond_coordinator::Result<Vec<DatabaseEntry>> {
        Ok(self
            .call(Op::Databases, owner, "", false, 0)?
            .databases
            .into_iter()
            .map(database_from)
            .collect())
    }

    fn database(&self, owner: &str, name: &str) -> pond_coordinator::Result<Option<DatabaseEntry>> {
        one(self.call(Op::Database, owner, name, false, 0)?)
    }

    fn create_database(
        &self,
        owner: &str,
        name: &str,
        if_not_exists: bool,
    ) -> pond_coordinator::Result<Option<DatabaseEntry>> {
        one(self.call(Op::CreateDatabase, owner, name, if_not_exists, 0)?)
    }

    fn drop_database(
        &self,
        owner: &str,
        name: &str,
        if_exists: bool,
    ) -> pond_coordinator::Result<Option<DatabaseEntry>> {
        one(self.call(Op::DropDatabase, owner, name, if_exists, 0)?)
    }

    fn undrop_database(&self, owner: &str, name: &str) -> pond_coordinator::Result<DatabaseEntry> {
        exactly_one(self.call(Op::UndropDatabase, owner, name, false, 0)?)
    }

    fn set_retention(&self, owner: &str, name: &str, days: u32) -> pond_coordinator::Result<DatabaseEntry> {
        exactly_one(self.call(Op::SetRetention, owner, name, false, days)?)
    }

    fn all_databases(&self) -> pond_coordinator::Result<Vec<DatabaseEntry>> {
        Err(CoordinatorError::PermissionDenied(
            "a duckling sees only its own user's databases".into(),
        ))
    }

    fn secrets(&self, owner: &str) -> pond_coordinator::Result<Vec<SecretEntry>> {
        let response = self.call(Op::Secrets, owner, "", false, 0)?;
        Ok(response.secrets.into_iter().map(secret_from).collect())
    }

    fn put_secret(&self, owner: &str, spec: &SecretSpec, existing: OnExisting) -> pond_coordinator::Result<bool> {
        let response = self.send(CatalogRequest {
            op: Op::PutSecret as i32,
            owner: owner.to_string(),
            name: spec.name.clone(),
            secret: Some(secret_to(spec, 0)),
            on_existing: on_existing_to(existing),
            ..Default::default()
        })?;
        Ok(response.changed)
    }

    fn drop_secret(&self, owner: &str, name: &str, if_exists: bool) -> pond_coordinator::Result<bool> {
        Ok(self.call(Op::DropSecret, owner, name, if_exists, 0)?.changed)
    }

    fn create_share(
        &self,
        owner: &str,
        share: &NewShare,
        existing: OnExisting,
    ) -> pond_coordinator::Result<Option<ShareEntry>> {
        let response = self.send(CatalogRequest {
            op: Op::CreateShare as i32,
            owner: owner.to_string(),
            name: share.name.clone(),
            share: Some(pb::Share {
                name: share.name.clone(),
                database_name: share.database.clone(),
                database_id: share.database_id.clone(),
                access: share.settings.access.as_str().into(),
                visibility: share.settings.visibility.as_str().into(),
                update: share.settings.update.as_str().into(),
                published_seq: share.published_seq,
                ..Default::default()
            }),
            on_existing: on_existing_to(existing),
            ..Default::default()
        })?;
        Ok(shares_from(response)?.into_iter().next())
    }

    fn publish_share(&self, owner: &str, name: &str, seq: u64) -> pond_coordinator::Result<ShareEntry> {
        let response = self.send(CatalogRequest {
            op: Op::PublishShare as i32,
            owner: owner.to_string(),
            name: name.to_string(),
            seq,
            ..Default::default()
        })?;
        shares_from(response)?
            .into_iter()
            .next()
            .ok_or_else(|| CoordinatorError::Internal("the coordinator answered without a share".into()))
    }

    fn drop_share(&self, owner: &str, name: &str, if_exists: bool) -> pond_coordinator::Result<bool> {
        Ok(self.call(Op::DropShare, owner, name, if_exists, 0)?.changed)
    }

    fn grant_share(&self, owner: &str, name: &str, grantees: &[String], grant: bool) -> pond_coordinator::Result<()> {
        self.send(CatalogRequest {
            op: if grant { Op::GrantShare } else { Op::RevokeShare } as i32,
            owner: owner.to_string(),
            name: name.to_string(),
            grantees: grantees.to_vec(),
            ..Default::default()
        })?;
        Ok(())
    }

    fn owned_shares(&self, owner: &str) -> pond_coordinator::Result<Vec<ShareEntry>> {
        shares_from(self.call(Op::OwnedShares, owner, "", false, 0)?)
    }

    fn discoverable_shares(&self, user: &str) -> pond_coordinator::Result<Vec<ShareEntry>> {
        shares_from(self.call(Op::DiscoverableShares, user, "", false, 0)?)
    }

    fn attach_share(
        &self,
        user: &str,
        url: &ShareUrl,
        alias: Option<&str>,
    ) -> pond_coordinator::Result<(String, ShareEntry)> {
        let response = self.send(CatalogRequest {
            op: Op::AttachShare as i32,
            owner: user.to_string(),
            name: alias.unwrap_or_default().to_string(),
            has_alias: alias.is_some(),
            url_database: url.database_name.clone(),
            url_token: url.token.clone(),
            ..Default::default()
        })?;
        let alias = response.alias.clone();
        let share = shares_from(response)?
            .into_iter()
            .next()
            .ok_or_else(|| CoordinatorError::Internal("the coordinator answered without a share".into()))?;
        Ok((alias, share))
    }

    fn detach_share(&self, user: &str, alias: &str) -> pond_coordinator::Result<bool> {
        Ok(self.call(Op::DetachShare, user, alias, false, 0)?.changed)
    }

    fn attached_shares(&self, user: &str) -> pond_coordinator::Result<Vec<AttachedShare>> {
        self.call(Op::AttachedShares, user, "", false, 0)?
            .attached
            .into_iter()
            .map(attached_from)
            .collect()
    }

    fn published_snapshots(&self) -> pond_coordinator::Result<Vec<(String, u64)>> {
        Err(CoordinatorError::PermissionDenied(
            "a duckling sees only its own user's shares".into(),
        ))
    }

    fn record_queries(&self, records: &[QueryRecord]) -> pond_coordinator::Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        self.send(CatalogRequest {
            op: Op::RecordQueries as i32,
            owner: first.user_name.clone(),
            queries: records.iter().map(query_to).collect(),
            ..Default::default()
        })?;
        Ok(())
    }

    /// Everyone's history (`None`) is the admin's to read: the coordinator serves it only to
    /// the admin's duckling.
    fn query_history(&self, user: Option<&str>) -> pond_coordinator::Result<Vec<QueryRecord>> {
        let owner = user.unwrap_or(pond_coordinator::ADMIN_USER);
        self.call(Op::QueryHistory, owner, "", false, 0)?
            .queries
            .into_iter()
            .map(query_from)
            .collect()
    }

    /// The coordinator keeps the history and prunes it.
    fn prune_query_history(&self, _before_us: u64) -> pond_coordinator::Result<usize> {
        Ok(0)
    }
}

impl ClusterView for RemoteCatalog {
    fn ducklings(&self) -> pond_coordinator::Result<Vec<DucklingInfo>> {
        let list: pb::DucklingList =
            pond_storage::block_on(self.client.call(protocol::DUCKLINGS, &pb::DucklingList::default()))
                .map_err(coordinator_error)?;
        Ok(list.ducklings.into_iter().map(info_from).collect())
    }
}

pub(crate) fn info_from(d: pb::DucklingInfo) -> DucklingInfo {
    DucklingInfo {
        id: d.id,
        user: d.user,
        mode: d.mode,
        state: d.state,
        address: d.address,
        pid: d.pid,
        started_ms: d.started_ms,
        cold_start_ms: d.cold_start_ms,
        memory_bytes: d.memory_bytes,
        running_queries: d.running_queries,
        sessions: d.sessions,
        read_replica: d.read_replica,
        coordinator: d.coordinator,
    }
}

pub(crate) fn info_to(d: DucklingInfo) -> pb::DucklingInfo {
    pb::DucklingInfo {
        id: d.id,
        user: d.user,
        mode: d.mode,
        state: d.state,
        address: d.address,
        pid: d.pid,
        started_ms: d.started_ms,
        cold_start_ms: d.cold_start_ms,
        memory_bytes: d.memory_bytes,
        running_queries: d.running_queries,
        sessions: d.sessions,
        read_replica: d.read_replica,
        coordinator: d.coordinator,
    }
}
