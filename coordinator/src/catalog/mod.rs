//! The catalog: users and their databases, secrets, shares and the query history: the state
//! every coordinator of a server shares. Two backends keep it behind one trait
//! ([`Catalog`]) and one conformance suite (`conformance.rs`, run against both):
//! [`FileCatalog`] (`file.rs`, the embedded default: a file in the data directory) and
//! [`PgCatalog`] (`pg.rs`, `--catalog postgres://…`, which several coordinators share).
//!
//! Invariants (both backends):
//! - A change is durable before it is answered, and all or nothing: a failed change leaves the
//!   catalog as it was.
//! - Changes that must not race (a database created or dropped, a share made or granted, an
//!   attachment) are decided inside one transaction of the backend, never on a copy read
//!   earlier: two coordinators creating the same database get one database and one error.
//! - A database's file name is derived from its id, never from its user-visible name.
//! - A dropped database keeps its file until it is purged, so `UNDROP DATABASE` can restore it.
//! - A secret's options are stored sealed ([`crate::secrets::SecretsKey`]); only its name,
//!   type, scope and creation time are in the clear.
//! - Who may read a share is decided here ([`share_as_read`]), when a reader attaches it and
//!   every time the reader's duckling asks what its attachments show
//!   ([`Catalog::attached_shares`]).

mod directory;
mod file;
mod leases;
mod pg;

#[cfg(test)]
mod conformance;

pub use directory::{DucklingDirectory, LocalDirectory};
pub use file::FileCatalog;
pub use leases::{Claim, Claimant, LocalLeases, WriterLease, WriterLeases};
pub use pg::PgCatalog;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{CoordinatorError, Result};
use crate::history::QueryRecord;
use crate::secrets::{SecretEntry, SecretSpec, SecretsKey};
use crate::shares::{AttachedShare, ShareEntry, ShareSettings, ShareUrl, Update, new_token};

/// The database every user has.
pub const DEFAULT_DATABASE: &str = "my_db";

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// Stable id: names the user's private directory.
    pub id: String,
    pub created_ms: u64,
}

/// A user's database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseEntry {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub created_ms: u64,
    /// Set while the database is dropped (restorable with UNDROP).
    pub dropped_ms: Option<u64>,
    /// How long unnamed snapshots are kept; `None` means [`DEFAULT_RETENTION_DAYS`].
    #[serde(default)]
    pub snapshot_retention_days: Option<u32>,
}

/// Days unnamed snapshots are kept unless `ALTER DATABASE … SET SNAPSHOT_RETENTION_DAYS` says.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

impl DatabaseEntry {
    /// Days unnamed snapshots are kept.
    pub fn retention_days(&self) -> u32 {
        self.snapshot_retention_days.unwrap_or(DEFAULT_RETENTION_DAYS)
    }

    /// The database's file inside its owner's private directory.
    pub fn file_name(&self) -> String {
        format!("{}.duckdb", self.id)
    }
}

/// Where a server's tokens are rooted: the key that signs them (and seals secrets) and the
/// ids of revoked ones. Apart from [`Catalog`], which duckling processes reach through their
/// coordinator: the key never leaves the coordinators.
pub trait TokenStore: Send + Sync {
    /// The signing key, made on first use; every coordinator of a catalog gets the same one.
    fn signing_key(&self) -> Result<Vec<u8>>;
    /// Revokes the token whose id (`jti`) is `id`, durably.
    fn revoke_token(&self, id: &str) -> Result<()>;
    /// The ids of every revoked token.
    fn revoked_tokens(&self) -> Result<HashSet<String>>;
}

/// A catalog opened with its four faces, its secrets sealed under its signing key.
pub struct OpenedCatalog {
    pub catalog: Arc<dyn Catalog>,
    pub tokens: Arc<dyn TokenStore>,
    pub leases: Arc<dyn WriterLeases>,
    pub directory: Arc<dyn DucklingDirectory>,
    pub signing_key: Vec<u8>,
}

/// Opens the catalog `url` names (PostgreSQL), or the data directory's file.
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<OpenedCatalog> {
    match url {
        None => {
            let file = FileCatalog::open(&data_dir.join("catalog.json"))?;
            let signing_key = file.signing_key()?;
            let file = Arc::new(file.with_secrets_key(SecretsKey::derive(&signing_key)));
            Ok(OpenedCatalog {
                catalog: Arc::clone(&file) as Arc<dyn Catalog>,
                tokens: file,
                // One process uses the file: its leases need not outlive it.
                leases: Arc::new(LocalLeases::default()),
                directory: Arc::new(LocalDirectory::default()),
                signing_key,
            })
        }
        Some(url) => {
            let pg = PgCatalog::connect(url)?;
            let signing_key = pg.signing_key()?;
            let pg = Arc::new(pg.with_secrets_key(SecretsKey::derive(&signing_key))?);
            Ok(OpenedCatalog {
                catalog: Arc::clone(&pg) as Arc<dyn Catalog>,
                tokens: Arc::clone(&pg) as Arc<dyn TokenStore>,
                leases: Arc::clone(&pg) as Arc<dyn WriterLeases>,
                directory: pg,
                signing_key,
            })
        }
    }
}

/// A share `CREATE SHARE` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    pub name: String,
    /// The owner's database it shares, by name and by the id its snapshot was read from (the
    /// catalog refuses the share if the name now names another database).
    pub database: String,
    pub database_id: String,
    pub settings: ShareSettings,
    /// The snapshot a MANUAL share publishes first (its database's newest).
    pub published_seq: Option<u64>,
}

/// How [`Catalog::put_secret`] and [`Catalog::create_share`] treat one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExisting {
    Fail,
    Replace,
    Keep,
}

/// The catalog's operations. [`FileCatalog`] or [`PgCatalog`] is the coordinator's own; a
/// duckling process reaches its coordinator's through the cluster protocol (`pond-cluster`).
pub trait Catalog: Send + Sync {
    /// The user `name`, created (with its default database) if missing.
    fn ensure_user(&self, name: &str) -> Result<User>;
    /// The user `name`, if it exists.
    fn user(&self, name: &str) -> Result<Option<User>>;
    /// The live databases of `owner`, sorted by name.
    fn databases(&self, owner: &str) -> Result<Vec<DatabaseEntry>>;
    /// The live database `name` of `owner`.
    fn database(&self, owner: &str, name: &str) -> Result<Option<DatabaseEntry>>;
    /// Creates database `name` for `owner`. `Ok(None)` when it exists and `if_not_exists`.
    fn create_database(&self, owner: &str, name: &str, if_not_exists: bool) -> Result<Option<DatabaseEntry>>;
    /// Marks database `name` dropped. `Ok(None)` when missing and `if_exists`.
    fn drop_database(&self, owner: &str, name: &str, if_exists: bool) -> Result<Option<DatabaseEntry>>;
    /// Restores the most recently dropped database `name`.
    fn undrop_database(&self, owner: &str, name: &str) -> Result<DatabaseEntry>;
    /// Sets database `name`'s snapshot retention.
    fn set_retention(&self, owner: &str, name: &str, days: u32) -> Result<DatabaseEntry>;
    /// Every database of every user, dropped ones included (GC keeps what UNDROP may need).
    fn all_databases(&self) -> Result<Vec<DatabaseEntry>>;
    /// The secrets of `owner`, opened, sorted by name.
    fn secrets(&self, owner: &str) -> Result<Vec<SecretEntry>>;
    /// Stores a secret of `owner`; `Ok(false)` when one of its name exists and is kept.
    fn put_secret(&self, owner: &str, spec: &SecretSpec, existing: OnExisting) -> Result<bool>;
    /// Removes secret `name` of `owner`; `Ok(false)` when missing and `if_exists`.
    fn drop_secret(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool>;
    /// Creates share `share.name` of `owner` over their database `share.database`, with a new
    /// token; `Ok(None)` when one of its name exists and is kept.
    fn create_share(&self, owner: &str, share: &NewShare, existing: OnExisting) -> Result<Option<ShareEntry>>;
    /// Publishes snapshot `seq` to the readers of share `name` (MANUAL; nothing changes for an
    /// AUTOMATIC one, whose readers follow the newest).
    fn publish_share(&self, owner: &str, name: &str, seq: u64) -> Result<ShareEntry>;
    /// Drops share `name` of `owner`; `Ok(false)` when missing and `if_exists`.
    fn drop_share(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool>;
    /// Grants (`grant`) or revokes `READ` on share `name` of `owner` to `grantees`, all or none.
    fn grant_share(&self, owner: &str, name: &str, grantees: &[String], grant: bool) -> Result<()>;
    /// The shares `owner` made, sorted by name.
    fn owned_shares(&self, owner: &str) -> Result<Vec<ShareEntry>>;
    /// The DISCOVERABLE shares of others that `user` may read, without their grants.
    fn discoverable_shares(&self, user: &str) -> Result<Vec<ShareEntry>>;
    /// Records `user`'s attachment, as `alias` (the source database's name when `None`), of
    /// the share `url` names, once `user` may read it. Returns the alias and the share.
    fn attach_share(&self, user: &str, url: &ShareUrl, alias: Option<&str>) -> Result<(String, ShareEntry)>;
    /// Forgets `user`'s share attachment `alias`; `Ok(false)` when there is none.
    fn detach_share(&self, user: &str, alias: &str) -> Result<bool>;
    /// `user`'s share attachments, each with what it shows now or why it cannot be read.
    fn attached_shares(&self, user: &str) -> Result<Vec<AttachedShare>>;
    /// The snapshots MANUAL shares publish, as (database id, snapshot): GC keeps them.
    fn published_snapshots(&self) -> Result<Vec<(String, u64)>>;
    /// Appends finished statements to the query history, durably.
    fn record_queries(&self, records: &[QueryRecord]) -> Result<()>;
    /// The query history: `user`'s statements, or everyone's for `None`; the newest
    /// [`crate::history::MAX_READ_RECORDS`], oldest first.
    fn query_history(&self, user: Option<&str>) -> Result<Vec<QueryRecord>>;
    /// Forgets the history of whole days that ended before `before_us` (Unix microseconds).
    fn prune_query_history(&self, before_us: u64) -> Result<usize>;
}

pub(crate) fn now_ms() -> u64 {
    // Never negative: `unix_ms` reads 0 for a clock set before the epoch.
    pond_clock::system().unix_ms().unsigned_abs()
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Checks a user-visible database or user name: a plain identifier, so it can never steer a
/// path or collide with DuckDB's own catalogs.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(CoordinatorError::InvalidArgument(format!(
            "invalid {kind} name {name:?}: use letters, digits, '_' and '-', starting with a letter, at most 63 characters"
        )));
    }
    if pond_duckling::SYSTEM_CATALOGS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(CoordinatorError::InvalidArgument(format!(
            "{kind} name {name:?} is reserved"
        )));
    }
    Ok(())
}

/// What `user` reads through `share` (the share holding the token they gave, if any), or why
/// they cannot: `url_database` is the URL's `<db>` when the reader names one, `source` the
/// share's database when it exists (dropped or not).
pub(crate) fn share_as_read(
    user: &str,
    share: Option<&ShareEntry>,
    url_database: Option<&str>,
    source: Option<&DatabaseEntry>,
) -> Result<ShareEntry> {
    let gone = || CoordinatorError::NotFound("no share at that URL: it was dropped, replaced, or never existed".into());
    let share = share.ok_or_else(gone)?;
    if url_database.is_some_and(|d| d != share.database_name) {
        return Err(gone());
    }
    if !share.may_read(user) {
        return Err(CoordinatorError::PermissionDenied(format!(
            "share {} is RESTRICTED and its owner has not granted you READ on it",
            share.name
        )));
    }
    match source {
        Some(d) if d.dropped_ms.is_none() => Ok(share.clone().for_reader()),
        _ => Err(CoordinatorError::NotFound(format!(
            "the database {} that share {} reads was dropped (UNDROP DATABASE {} by its owner brings it back)",
            share.database_name, share.name, share.database_name
        ))),
    }
}

/// A secret as a backend stores it: its options sealed under the server's key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSecret {
    pub owner: String,
    pub name: String,
    pub secret_type: String,
    pub scope: Option<String>,
    pub created_ms: u64,
    /// Nonce and ciphertext, base64.
    pub sealed: String,
}

impl StoredSecret {
    /// `spec` of `owner`, sealed under `key`.
    pub fn seal(key: &SecretsKey, owner: &str, spec: &SecretSpec) -> Result<Self> {
        let sealed = key.seal(owner, &spec.name, &spec.options)?;
        Ok(Self {
            owner: owner.to_string(),
            name: spec.name.clone(),
            secret_type: spec.secret_type.clone(),
            scope: spec.scope.clone(),
            created_ms: now_ms(),
            sealed: base64::engine::general_purpose::STANDARD.encode(&sealed),
        })
    }

    /// Whether `key` opens it.
    pub fn opens_with(&self, key: &SecretsKey) -> bool {
        base64::engine::general_purpose::STANDARD
            .decode(&self.sealed)
            .is_ok_and(|sealed| key.open(&self.owner, &self.name, &sealed).is_ok())
    }

    /// The secrets `stored` that `key` opens, sorted by name; one it cannot open is left out
    /// (the user sees it missing and creates it again) and named in the log.
    pub fn open_all(key: &SecretsKey, stored: Vec<StoredSecret>) -> Vec<SecretEntry> {
        let mut out = Vec::with_capacity(stored.len());
        for s in stored {
            let sealed = base64::engine::general_purpose::STANDARD.decode(&s.sealed);
            let options = match sealed
                .map_err(|e| CoordinatorError::Internal(format!("secret {} is corrupt: {e}", s.name)))
                .and_then(|sealed| key.open(&s.owner, &s.name, &sealed))
            {
                Ok(options) => options,
                Err(e) => {
                    tracing::warn!(owner = s.owner, secret = s.name, error = %e, "a secret cannot be opened");
                    continue;
                }
            };
            out.push(SecretEntry {
                spec: SecretSpec {
                    options,
                    name: s.name,
                    secret_type: s.secret_type,
                    scope: s.scope,
                },
                created_ms: s.created_ms,
            });
        }
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        out
    }
}

/// The key a backend seals secrets with, or why it keeps none.
pub(crate) fn sealing_key(key: Option<&SecretsKey>) -> Result<&SecretsKey> {
    key.ok_or_else(|| CoordinatorError::Unimplemented("this catalog keeps no secrets".into()))
}

/// Names the secrets `key` cannot open in the log, at startup, rather than only when their
/// owner's duckling starts (a rotated signing key).
pub(crate) fn warn_unreadable_secrets(key: &SecretsKey, stored: &[StoredSecret]) {
    let unreadable: Vec<String> = stored
        .iter()
        .filter(|s| !s.opens_with(key))
        .map(|s| format!("{}/{}", s.owner, s.name))
        .collect();
    if !unreadable.is_empty() {
        tracing::warn!(
            count = unreadable.len(),
            secrets = unreadable.join(", "),
            "secrets sealed under another key cannot be opened; their owners must create them again"
        );
    }
}

/// What a new user gets: themselves and their default database.
pub(crate) fn new_user(name: &str) -> (User, DatabaseEntry) {
    let user = User {
        name: name.to_string(),
        id: new_id("u_"),
        created_ms: now_ms(),
    };
    (user, new_database(name, DEFAULT_DATABASE))
}

/// A new database `name` of `owner`.
pub(crate) fn new_database(owner: &str, name: &str) -> DatabaseEntry {
    DatabaseEntry {
        id: new_id("db_"),
        owner: owner.to_string(),
        name: name.to_string(),
        created_ms: now_ms(),
        dropped_ms: None,
        snapshot_retention_days: None,
    }
}

/// Why the default database cannot be dropped, or `Ok`.
pub(crate) fn check_droppable(name: &str) -> Result<()> {
    if name == DEFAULT_DATABASE {
        return Err(CoordinatorError::PermissionDenied(format!(
            "the default database {DEFAULT_DATABASE} cannot be dropped"
        )));
    }
    Ok(())
}

/// The share `owner` makes of `database` (the live database `share.database` names), with a
/// new token, or why it cannot be made.
pub(crate) fn new_share(owner: &str, share: &NewShare, database: Option<&DatabaseEntry>) -> Result<ShareEntry> {
    let database = database
        .filter(|db| db.id == share.database_id)
        .ok_or_else(|| CoordinatorError::NotFound(format!("database {} does not exist", share.database)))?;
    if share.settings.update == Update::Manual && share.published_seq.is_none() {
        return Err(CoordinatorError::InvalidArgument(
            "a MANUAL share publishes a snapshot: none was given".into(),
        ));
    }
    Ok(ShareEntry {
        name: share.name.clone(),
        owner: owner.to_string(),
        database_id: database.id.clone(),
        database_name: database.name.clone(),
        token: new_token(),
        settings: share.settings,
        published_seq: match share.settings.update {
            Update::Manual => share.published_seq,
            Update::Automatic => None,
        },
        grants: Vec::new(),
        created_ms: now_ms(),
    })
}

/// `what` already exists; `hint` says what to do instead.
pub(crate) fn already_exists(what: &str, hint: &str) -> CoordinatorError {
    CoordinatorError::AlreadyExists(format!("{what} already exists{hint}"))
}

/// Whether to make a thing whose name is taken (`present`) as `existing` says: `Ok(true)` to
/// make it (replacing the one there), `Ok(false)` to keep that one, or `taken`'s error.
pub(crate) fn may_make(present: bool, existing: OnExisting, taken: impl FnOnce() -> CoordinatorError) -> Result<bool> {
    match (present, existing) {
        (true, OnExisting::Keep) => Ok(false),
        (true, OnExisting::Fail) => Err(taken()),
        _ => Ok(true),
    }
}

/// The answer to removing a named thing: `Ok(true)` when it was `found`; when it was not,
/// `Ok(false)` with `IF EXISTS`, else `missing`'s error.
pub(crate) fn removed(found: bool, if_exists: bool, missing: impl FnOnce() -> CoordinatorError) -> Result<bool> {
    match (found, if_exists) {
        (true, _) => Ok(true),
        (false, true) => Ok(false),
        (false, false) => Err(missing()),
    }
}

/// `CREATE SECRET` of a name taken.
pub(crate) fn secret_taken(name: &str) -> CoordinatorError {
    already_exists(&format!("secret {name}"), " (CREATE OR REPLACE SECRET replaces it)")
}

/// `CREATE SHARE` of a name taken.
pub(crate) fn share_taken(name: &str) -> CoordinatorError {
    already_exists(
        &format!("share {name}"),
        " (CREATE OR REPLACE SHARE replaces it, with a new URL)",
    )
}

/// A secret that is not there.
pub(crate) fn no_secret(name: &str) -> CoordinatorError {
    CoordinatorError::NotFound(format!("secret {name} does not exist"))
}

/// A share its owner does not have.
pub(crate) fn no_share(name: &str) -> CoordinatorError {
    CoordinatorError::NotFound(format!("you have no share named {name}"))
}

/// A database may not take the name a share is attached under.
pub(crate) fn name_is_a_share(name: &str) -> CoordinatorError {
    CoordinatorError::AlreadyExists(format!("a share is attached as {name}; DETACH {name} first"))
}

/// A share may not be attached under the name of one of the reader's databases.
pub(crate) fn alias_is_a_database(alias: &str) -> CoordinatorError {
    CoordinatorError::AlreadyExists(format!(
        "{alias} is the name of one of your databases; attach the share under another name (ATTACH '…' AS name)"
    ))
}

/// A share is attached under `alias` already.
pub(crate) fn alias_is_taken(alias: &str) -> CoordinatorError {
    CoordinatorError::AlreadyExists(format!("a share is already attached as {alias}; DETACH {alias} first"))
}
