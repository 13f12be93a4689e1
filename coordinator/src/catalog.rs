//! The catalog: users and their databases, persisted in the data directory.
//!
//! Invariants:
//! - The catalog file is replaced atomically (write to a temporary file, fsync, rename), so a
//!   crash leaves either the old or the new catalog, never a torn one.
//! - A database's file name is derived from its id, never from its user-visible name.
//! - A dropped database keeps its file until it is purged, so `UNDROP DATABASE` can restore it.
//! - A secret's options are stored sealed ([`crate::secrets::SecretsKey`]); only its name,
//!   type, scope and creation time are in the clear.
//! - The query history lives beside the catalog file, one JSON-lines file per day
//!   ([`crate::history::HistoryFiles`]), appended without rewriting the catalog.
//! - Who may read a share is decided here, when a reader attaches it and every time the
//!   reader's duckling asks what its attachments show ([`Catalog::attached_shares`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{CoordinatorError, Result};
use crate::history::{HistoryFiles, QueryRecord};
use crate::secrets::{SecretEntry, SecretSpec, SecretsKey};
use crate::shares::{AttachedShare, ShareAttachment, ShareEntry, ShareSettings, ShareUrl, Update, new_token};

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CatalogData {
    users: BTreeMap<String, User>,
    databases: Vec<DatabaseEntry>,
    #[serde(default)]
    secrets: Vec<StoredSecret>,
    #[serde(default)]
    shares: Vec<ShareEntry>,
    #[serde(default)]
    share_attachments: Vec<ShareAttachment>,
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

impl CatalogData {
    /// Whether `user` has a share attached as `alias` (DuckDB matches names in any case).
    fn share_alias_taken(&self, user: &str, alias: &str) -> bool {
        self.share_attachments
            .iter()
            .any(|a| a.user == user && a.alias.eq_ignore_ascii_case(alias))
    }

    fn live_database(&self, owner: &str, name: &str) -> Option<&DatabaseEntry> {
        self.databases
            .iter()
            .find(|d| d.owner == owner && d.name == name && d.dropped_ms.is_none())
    }

    fn owned_share(&mut self, owner: &str, name: &str) -> Result<&mut ShareEntry> {
        self.shares
            .iter_mut()
            .find(|s| s.owner == owner && s.name == name)
            .ok_or_else(|| CoordinatorError::NotFound(format!("you have no share named {name}")))
    }

    /// The share holding `token`: every share's token is compared, in constant time.
    fn share_with_token(&self, token: &str) -> Option<&ShareEntry> {
        let mut found = None;
        for s in &self.shares {
            if s.has_token(token) {
                found = Some(s);
            }
        }
        found
    }

    /// What `user` reads through the share holding `token`, or why they cannot. `url_database`
    /// must be the URL's `<db>` when the reader names one.
    fn readable_share(&self, user: &str, token: &str, url_database: Option<&str>) -> Result<ShareEntry> {
        let gone =
            || CoordinatorError::NotFound("no share at that URL: it was dropped, replaced, or never existed".into());
        let share = self.share_with_token(token).ok_or_else(gone)?;
        if url_database.is_some_and(|d| d != share.database_name) {
            return Err(gone());
        }
        if !share.may_read(user) {
            return Err(CoordinatorError::PermissionDenied(format!(
                "share {} is RESTRICTED and its owner has not granted you READ on it",
                share.name
            )));
        }
        match self.databases.iter().find(|d| d.id == share.database_id) {
            Some(d) if d.dropped_ms.is_none() => Ok(share.clone().for_reader()),
            _ => Err(CoordinatorError::NotFound(format!(
                "the database {} that share {} reads was dropped (UNDROP DATABASE {} by its owner brings it back)",
                share.database_name, share.name, share.database_name
            ))),
        }
    }
}

/// A secret as the catalog file holds it: its options sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSecret {
    owner: String,
    name: String,
    secret_type: String,
    scope: Option<String>,
    created_ms: u64,
    /// Nonce and ciphertext, base64.
    sealed: String,
}

/// How [`Catalog::put_secret`] treats a secret of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExisting {
    Fail,
    Replace,
    Keep,
}

/// The catalog's operations. [`FileCatalog`] is the coordinator's own; a duckling process
/// reaches its coordinator's through the cluster protocol (`pond-cluster`), so one process
/// ever writes the catalog file.
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

/// The catalog file of a coordinator, shared by all sessions.
pub struct FileCatalog {
    path: PathBuf,
    data: Mutex<CatalogData>,
    /// Seals secrets; `None`: this catalog stores none.
    secrets_key: Option<SecretsKey>,
    /// The query history, in `query_history/` beside the catalog file.
    history: HistoryFiles,
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

impl FileCatalog {
    /// Opens the catalog at `path`, creating an empty one if missing.
    pub fn open(path: &Path) -> Result<Self> {
        let data = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CoordinatorError::Internal(format!("catalog {} is corrupt: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogData::default(),
            Err(e) => return Err(e.into()),
        };
        let history = HistoryFiles::open(&path.with_file_name("query_history"))?;
        Ok(Self {
            path: path.to_path_buf(),
            data: Mutex::new(data),
            secrets_key: None,
            history,
        })
    }

    /// Seals and opens secrets with `key`. Secrets sealed under another key (a rotated signing
    /// key) are named in the log now, at startup, not only when their owner's duckling starts.
    pub fn with_secrets_key(self, key: SecretsKey) -> Self {
        let unreadable: Vec<String> = self
            .data
            .lock()
            .secrets
            .iter()
            .filter(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(&s.sealed)
                    .map_or(true, |sealed| key.open(&s.owner, &s.name, &sealed).is_err())
            })
            .map(|s| format!("{}/{}", s.owner, s.name))
            .collect();
        if !unreadable.is_empty() {
            tracing::warn!(
                count = unreadable.len(),
                secrets = unreadable.join(", "),
                "secrets sealed under another key cannot be opened; their owners must create them again"
            );
        }
        Self {
            secrets_key: Some(key),
            ..self
        }
    }

    fn secrets_key(&self) -> Result<&SecretsKey> {
        self.secrets_key
            .as_ref()
            .ok_or_else(|| CoordinatorError::Unimplemented("this catalog keeps no secrets".into()))
    }

    fn persist(&self, data: &CatalogData) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(data).map_err(|e| CoordinatorError::Internal(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Applies `f` to a copy of the catalog and makes the copy current only once it is durable:
    /// a failed change leaves both the file and the in-memory catalog as they were.
    fn update<T>(&self, f: impl FnOnce(&mut CatalogData) -> Result<T>) -> Result<T> {
        let mut data = self.data.lock();
        let mut draft = data.clone();
        let out = f(&mut draft)?;
        self.persist(&draft)?;
        *data = draft;
        Ok(out)
    }
}

impl Catalog for FileCatalog {
    /// The user `name`, created (with its default database) if missing.
    fn ensure_user(&self, name: &str) -> Result<User> {
        validate_name("user", name)?;
        if let Some(u) = self.data.lock().users.get(name) {
            return Ok(u.clone());
        }
        self.update(|d| {
            if let Some(u) = d.users.get(name) {
                return Ok(u.clone());
            }
            let user = User {
                name: name.to_string(),
                id: new_id("u_"),
                created_ms: now_ms(),
            };
            d.users.insert(name.to_string(), user.clone());
            d.databases.push(DatabaseEntry {
                id: new_id("db_"),
                owner: name.to_string(),
                name: DEFAULT_DATABASE.to_string(),
                created_ms: now_ms(),
                dropped_ms: None,
                snapshot_retention_days: None,
            });
            Ok(user)
        })
    }

    /// The user `name`, if it exists.
    fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self.data.lock().users.get(name).cloned())
    }

    /// The live databases of `owner`, sorted by name.
    fn databases(&self, owner: &str) -> Result<Vec<DatabaseEntry>> {
        let mut v: Vec<_> = self
            .data
            .lock()
            .databases
            .iter()
            .filter(|d| d.owner == owner && d.dropped_ms.is_none())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The live database `name` of `owner`.
    fn database(&self, owner: &str, name: &str) -> Result<Option<DatabaseEntry>> {
        Ok(self
            .data
            .lock()
            .databases
            .iter()
            .find(|d| d.owner == owner && d.name == name && d.dropped_ms.is_none())
            .cloned())
    }

    /// Creates database `name` for `owner`. `Ok(None)` when it exists and `if_not_exists`.
    fn create_database(&self, owner: &str, name: &str, if_not_exists: bool) -> Result<Option<DatabaseEntry>> {
        validate_name("database", name)?;
        self.update(|d| {
            if d.share_alias_taken(owner, name) {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "a share is attached as {name}; DETACH {name} first"
                )));
            }
            if d.databases
                .iter()
                .any(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
            {
                return if if_not_exists {
                    Ok(None)
                } else {
                    Err(CoordinatorError::AlreadyExists(format!(
                        "database {name} already exists"
                    )))
                };
            }
            let entry = DatabaseEntry {
                id: new_id("db_"),
                owner: owner.to_string(),
                name: name.to_string(),
                created_ms: now_ms(),
                dropped_ms: None,
                snapshot_retention_days: None,
            };
            d.databases.push(entry.clone());
            Ok(Some(entry))
        })
    }

    /// Marks database `name` dropped. `Ok(None)` when missing and `if_exists`.
    fn drop_database(&self, owner: &str, name: &str, if_exists: bool) -> Result<Option<DatabaseEntry>> {
        if name == DEFAULT_DATABASE {
            return Err(CoordinatorError::PermissionDenied(format!(
                "the default database {DEFAULT_DATABASE} cannot be dropped"
            )));
        }
        self.update(|d| {
            let Some(entry) = d
                .databases
                .iter_mut()
                .find(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
            else {
                return if if_exists {
                    Ok(None)
                } else {
                    Err(CoordinatorError::NotFound(format!("database {name} does not exist")))
                };
            };
            entry.dropped_ms = Some(now_ms());
            Ok(Some(entry.clone()))
        })
    }

    /// Restores the most recently dropped database `name`.
    fn undrop_database(&self, owner: &str, name: &str) -> Result<DatabaseEntry> {
        self.update(|d| {
            if d.share_alias_taken(owner, name) {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "a share is attached as {name}; DETACH {name} first"
                )));
            }
            if d.databases
                .iter()
                .any(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
            {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "database {name} already exists"
                )));
            }
            let entry = d
                .databases
                .iter_mut()
                .filter(|x| x.owner == owner && x.name == name && x.dropped_ms.is_some())
                .max_by_key(|x| x.dropped_ms)
                .ok_or_else(|| CoordinatorError::NotFound(format!("no dropped database named {name}")))?;
            entry.dropped_ms = None;
            Ok(entry.clone())
        })
    }

    /// Sets database `name`'s snapshot retention.
    fn set_retention(&self, owner: &str, name: &str, days: u32) -> Result<DatabaseEntry> {
        self.update(|data| {
            let entry = data
                .databases
                .iter_mut()
                .find(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
                .ok_or_else(|| CoordinatorError::NotFound(format!("database {name} does not exist")))?;
            entry.snapshot_retention_days = Some(days);
            Ok(entry.clone())
        })
    }

    /// Every database of every user, dropped ones included (GC keeps what UNDROP may need).
    fn all_databases(&self) -> Result<Vec<DatabaseEntry>> {
        Ok(self.data.lock().databases.clone())
    }

    fn secrets(&self, owner: &str) -> Result<Vec<SecretEntry>> {
        let key = self.secrets_key()?;
        let stored: Vec<StoredSecret> = self
            .data
            .lock()
            .secrets
            .iter()
            .filter(|s| s.owner == owner)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(stored.len());
        for s in stored {
            let sealed = base64::engine::general_purpose::STANDARD.decode(&s.sealed);
            let options = match sealed
                .map_err(|e| CoordinatorError::Internal(format!("secret {} is corrupt: {e}", s.name)))
                .and_then(|sealed| key.open(owner, &s.name, &sealed))
            {
                Ok(options) => options,
                Err(e) => {
                    // Listed nowhere, loaded nowhere: the user sees it missing and creates it again.
                    tracing::warn!(owner, secret = s.name, error = %e, "a secret cannot be opened");
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
        Ok(out)
    }

    fn put_secret(&self, owner: &str, spec: &SecretSpec, existing: OnExisting) -> Result<bool> {
        let sealed = self.secrets_key()?.seal(owner, &spec.name, &spec.options)?;
        self.update(|d| {
            let at = d.secrets.iter().position(|s| s.owner == owner && s.name == spec.name);
            match (at, existing) {
                (Some(_), OnExisting::Keep) => return Ok(false),
                (Some(_), OnExisting::Fail) => {
                    return Err(CoordinatorError::AlreadyExists(format!(
                        "secret {} already exists (CREATE OR REPLACE SECRET replaces it)",
                        spec.name
                    )));
                }
                (Some(i), OnExisting::Replace) => {
                    d.secrets.remove(i);
                }
                (None, _) => {}
            }
            d.secrets.push(StoredSecret {
                owner: owner.to_string(),
                name: spec.name.clone(),
                secret_type: spec.secret_type.clone(),
                scope: spec.scope.clone(),
                created_ms: now_ms(),
                sealed: base64::engine::general_purpose::STANDARD.encode(&sealed),
            });
            Ok(true)
        })
    }

    fn drop_secret(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool> {
        self.update(|d| {
            let before = d.secrets.len();
            d.secrets.retain(|s| !(s.owner == owner && s.name == name));
            match (d.secrets.len() < before, if_exists) {
                (true, _) => Ok(true),
                (false, true) => Ok(false),
                (false, false) => Err(CoordinatorError::NotFound(format!("secret {name} does not exist"))),
            }
        })
    }

    fn create_share(&self, owner: &str, share: &NewShare, existing: OnExisting) -> Result<Option<ShareEntry>> {
        validate_name("share", &share.name)?;
        self.update(|d| {
            let database = d
                .live_database(owner, &share.database)
                .filter(|db| db.id == share.database_id)
                .cloned()
                .ok_or_else(|| CoordinatorError::NotFound(format!("database {} does not exist", share.database)))?;
            if share.settings.update == Update::Manual && share.published_seq.is_none() {
                return Err(CoordinatorError::InvalidArgument(
                    "a MANUAL share publishes a snapshot: none was given".into(),
                ));
            }
            if let Some(at) = d.shares.iter().position(|s| s.owner == owner && s.name == share.name) {
                match existing {
                    OnExisting::Keep => return Ok(None),
                    OnExisting::Fail => {
                        return Err(CoordinatorError::AlreadyExists(format!(
                            "share {} already exists (CREATE OR REPLACE SHARE replaces it, with a new URL)",
                            share.name
                        )));
                    }
                    OnExisting::Replace => {
                        d.shares.remove(at);
                    }
                }
            }
            let entry = ShareEntry {
                name: share.name.clone(),
                owner: owner.to_string(),
                database_id: database.id,
                database_name: database.name,
                token: new_token(),
                settings: share.settings,
                published_seq: match share.settings.update {
                    Update::Manual => share.published_seq,
                    Update::Automatic => None,
                },
                grants: Vec::new(),
                created_ms: now_ms(),
            };
            d.shares.push(entry.clone());
            Ok(Some(entry))
        })
    }

    fn publish_share(&self, owner: &str, name: &str, seq: u64) -> Result<ShareEntry> {
        self.update(|d| {
            let share = d.owned_share(owner, name)?;
            if share.settings.update == Update::Manual {
                share.published_seq = Some(seq);
            }
            Ok(share.clone())
        })
    }

    fn drop_share(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool> {
        self.update(|d| {
            let before = d.shares.len();
            d.shares.retain(|s| !(s.owner == owner && s.name == name));
            match (d.shares.len() < before, if_exists) {
                (true, _) => Ok(true),
                (false, true) => Ok(false),
                (false, false) => Err(CoordinatorError::NotFound(format!("you have no share named {name}"))),
            }
        })
    }

    fn grant_share(&self, owner: &str, name: &str, grantees: &[String], grant: bool) -> Result<()> {
        for grantee in grantees {
            validate_name("user", grantee)?;
        }
        self.update(|d| {
            if grant && let Some(missing) = grantees.iter().find(|g| !d.users.contains_key(*g)) {
                return Err(CoordinatorError::NotFound(format!(
                    "there is no user named {missing} (a user exists once they have connected)"
                )));
            }
            let share = d.owned_share(owner, name)?;
            share.grants.retain(|g| !grantees.contains(g));
            if grant {
                share.grants.extend(grantees.iter().cloned());
                share.grants.sort();
            }
            Ok(())
        })
    }

    fn owned_shares(&self, owner: &str) -> Result<Vec<ShareEntry>> {
        let mut v: Vec<ShareEntry> = self
            .data
            .lock()
            .shares
            .iter()
            .filter(|s| s.owner == owner)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    fn discoverable_shares(&self, user: &str) -> Result<Vec<ShareEntry>> {
        let data = self.data.lock();
        let mut v: Vec<ShareEntry> = data
            .shares
            .iter()
            .filter(|s| s.discoverable_by(user))
            .filter(|s| {
                data.databases
                    .iter()
                    .any(|d| d.id == s.database_id && d.dropped_ms.is_none())
            })
            .map(|s| s.clone().for_reader())
            .collect();
        v.sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
        Ok(v)
    }

    fn attach_share(&self, user: &str, url: &ShareUrl, alias: Option<&str>) -> Result<(String, ShareEntry)> {
        self.update(|d| {
            let share = d.readable_share(user, &url.token, Some(&url.database_name))?;
            let alias = alias.unwrap_or(&share.database_name).to_string();
            validate_name("database", &alias)?;
            if d
                .databases
                .iter()
                .any(|db| db.owner == user && db.dropped_ms.is_none() && db.name.eq_ignore_ascii_case(&alias))
            {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "{alias} is the name of one of your databases; attach the share under another name (ATTACH '…' AS name)"
                )));
            }
            if d.share_alias_taken(user, &alias) {
                return Err(CoordinatorError::AlreadyExists(format!(
                    "a share is already attached as {alias}; DETACH {alias} first"
                )));
            }
            d.share_attachments.push(ShareAttachment {
                user: user.to_string(),
                alias: alias.clone(),
                token: url.token.clone(),
                attached_ms: now_ms(),
            });
            Ok((alias, share))
        })
    }

    fn detach_share(&self, user: &str, alias: &str) -> Result<bool> {
        if !self
            .data
            .lock()
            .share_attachments
            .iter()
            .any(|a| a.user == user && a.alias == alias)
        {
            return Ok(false);
        }
        self.update(|d| {
            d.share_attachments.retain(|a| !(a.user == user && a.alias == alias));
            Ok(true)
        })
    }

    fn attached_shares(&self, user: &str) -> Result<Vec<AttachedShare>> {
        let data = self.data.lock();
        let mut v: Vec<AttachedShare> = data
            .share_attachments
            .iter()
            .filter(|a| a.user == user)
            .map(|a| AttachedShare {
                alias: a.alias.clone(),
                attached_ms: a.attached_ms,
                share: data.readable_share(user, &a.token, None).map_err(|e| e.to_string()),
            })
            .collect();
        v.sort_by(|a, b| a.alias.cmp(&b.alias));
        Ok(v)
    }

    fn published_snapshots(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .data
            .lock()
            .shares
            .iter()
            .filter_map(|s| s.published_seq.map(|seq| (s.database_id.clone(), seq)))
            .collect())
    }

    fn record_queries(&self, records: &[QueryRecord]) -> Result<()> {
        self.history.append(records)
    }

    fn query_history(&self, user: Option<&str>) -> Result<Vec<QueryRecord>> {
        self.history.read(|r| user.is_none_or(|u| r.user_name == u))
    }

    fn prune_query_history(&self, before_us: u64) -> Result<usize> {
        self.history.prune(before_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_open_only_under_the_key_that_sealed_them_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        let key = || SecretsKey::derive(&[1u8; 32]);
        let spec = SecretSpec {
            name: "lake".into(),
            secret_type: "s3".into(),
            scope: None,
            options: crate::secrets::SecretOptions([("secret".to_string(), "hunter2-value".to_string())].into()),
        };
        let c = FileCatalog::open(&path).unwrap().with_secrets_key(key());
        assert!(c.put_secret("alice", &spec, OnExisting::Fail).unwrap());
        assert!(!c.put_secret("alice", &spec, OnExisting::Keep).unwrap());
        assert!(c.put_secret("alice", &spec, OnExisting::Fail).is_err());
        assert!(c.secrets("bob").unwrap().is_empty());
        drop(c);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("hunter2"));
        let reopened = FileCatalog::open(&path).unwrap().with_secrets_key(key());
        assert_eq!(reopened.secrets("alice").unwrap()[0].spec, spec);
        // A rotated key: the secret is left out, and can be dropped and made again.
        let rotated = FileCatalog::open(&path)
            .unwrap()
            .with_secrets_key(SecretsKey::derive(&[2u8; 32]));
        assert!(rotated.secrets("alice").unwrap().is_empty());
        assert!(rotated.put_secret("alice", &spec, OnExisting::Replace).unwrap());
        assert_eq!(rotated.secrets("alice").unwrap().len(), 1);
        assert!(rotated.drop_secret("alice", "lake", false).unwrap());
        assert!(!rotated.drop_secret("alice", "lake", true).unwrap());
    }

    #[test]
    fn users_get_a_default_database_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        let c = FileCatalog::open(&path).unwrap();
        c.ensure_user("alice").unwrap();
        c.create_database("alice", "sales", false).unwrap();
        assert!(c.create_database("alice", "sales", false).is_err());
        assert!(c.create_database("alice", "sales", true).unwrap().is_none());
        drop(c);
        let c = FileCatalog::open(&path).unwrap();
        let names: Vec<_> = c.databases("alice").unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, vec!["my_db", "sales"]);
        c.drop_database("alice", "sales", false).unwrap();
        assert!(c.database("alice", "sales").unwrap().is_none());
        c.undrop_database("alice", "sales").unwrap();
        assert!(c.database("alice", "sales").unwrap().is_some());
        assert!(c.databases("bob").unwrap().is_empty());
    }

    #[test]
    fn shares_open_to_who_may_read_and_end_with_their_share_or_source() {
        use crate::shares::{Access, ShareOptions};
        let dir = tempfile::tempdir().unwrap();
        let c = FileCatalog::open(&dir.path().join("catalog.json")).unwrap();
        for u in ["alice", "bob", "carol"] {
            c.ensure_user(u).unwrap();
        }
        let sales_id = c.create_database("alice", "sales", false).unwrap().unwrap().id;
        let new = |access| NewShare {
            name: "s".into(),
            database: "sales".into(),
            database_id: sales_id.clone(),
            settings: ShareOptions {
                access: Some(access),
                ..Default::default()
            }
            .resolved()
            .unwrap(),
            published_seq: Some(4),
        };
        let share = c
            .create_share("alice", &new(Access::Restricted), OnExisting::Fail)
            .unwrap()
            .unwrap();
        assert!(
            c.create_share("alice", &new(Access::Restricted), OnExisting::Fail)
                .is_err()
        );
        assert!(
            c.create_share("alice", &new(Access::Restricted), OnExisting::Keep)
                .unwrap()
                .is_none()
        );
        let url = ShareUrl::parse(share.url().strip_prefix("pond:").unwrap()).unwrap();
        // Not granted: refused; a forged token or another database's name: not found.
        assert!(matches!(
            c.attach_share("bob", &url, None),
            Err(CoordinatorError::PermissionDenied(_))
        ));
        let forged = ShareUrl {
            token: new_token(),
            ..url.clone()
        };
        assert!(matches!(
            c.attach_share("bob", &forged, None),
            Err(CoordinatorError::NotFound(_))
        ));
        let renamed = ShareUrl {
            database_name: "my_db".into(),
            ..url.clone()
        };
        assert!(matches!(
            c.attach_share("alice", &renamed, None),
            Err(CoordinatorError::NotFound(_))
        ));
        assert!(
            c.grant_share("alice", "s", &["bob".into(), "nobody".into()], true)
                .is_err()
        );
        assert!(c.owned_shares("alice").unwrap()[0].grants.is_empty(), "all or none");
        c.grant_share("alice", "s", &["bob".into()], true).unwrap();
        assert_eq!(c.discoverable_shares("bob").unwrap().len(), 1);
        assert!(c.discoverable_shares("carol").unwrap().is_empty());
        let (alias, seen) = c.attach_share("bob", &url, None).unwrap();
        assert_eq!((alias.as_str(), seen.published_seq), ("sales", Some(4)));
        assert!(seen.grants.is_empty(), "a reader is not told who else may read");
        assert!(c.attach_share("bob", &url, None).is_err(), "the alias is taken");
        assert!(
            c.create_database("bob", "SALES", false).is_err(),
            "a database may not take a share's alias"
        );
        assert!(
            c.attach_share("alice", &url, None).is_err(),
            "the owner's own database is named sales"
        );
        assert_eq!(c.publish_share("alice", "s", 9).unwrap().published_seq, Some(9));
        c.grant_share("alice", "s", &["bob".into()], false).unwrap();
        let attached = c.attached_shares("bob").unwrap();
        assert!(attached[0].share.as_ref().unwrap_err().contains("not granted"));
        c.grant_share("alice", "s", &["bob".into()], true).unwrap();
        c.drop_database("alice", "sales", false).unwrap();
        assert!(
            c.attached_shares("bob").unwrap()[0]
                .share
                .as_ref()
                .unwrap_err()
                .contains("UNDROP")
        );
        c.undrop_database("alice", "sales").unwrap();
        assert_eq!(
            c.attached_shares("bob").unwrap()[0]
                .share
                .as_ref()
                .unwrap()
                .published_seq,
            Some(9)
        );
        assert_eq!(c.published_snapshots().unwrap(), vec![(share.database_id.clone(), 9)]);
        // Replaced: a new URL, and the old one leads nowhere.
        let replaced = c
            .create_share("alice", &new(Access::Organization), OnExisting::Replace)
            .unwrap()
            .unwrap();
        assert_ne!(replaced.token, share.token);
        assert!(c.attached_shares("bob").unwrap()[0].share.is_err());
        assert!(c.drop_share("alice", "s", false).unwrap());
        assert!(!c.drop_share("alice", "s", true).unwrap());
        assert!(c.detach_share("bob", "sales").unwrap());
        assert!(c.attached_shares("bob").unwrap().is_empty());
    }

    #[test]
    fn names_cannot_steer_paths() {
        for bad in ["../x", "a/b", "", "memory", "x y", "1abc"] {
            assert!(validate_name("database", bad).is_err(), "{bad}");
        }
        validate_name("database", "sales_2026").unwrap();
    }
}
