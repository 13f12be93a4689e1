//! The embedded catalog: one JSON file in the data directory, replaced atomically (written to
//! a temporary file, fsynced, renamed), so a crash leaves the old or the new catalog, never a
//! torn one; the query history beside it, one JSON-lines file per day
//! ([`crate::history::HistoryFiles`]), appended without rewriting the catalog. One process
//! writes it: changes are made on a copy under the catalog's lock and made current once the
//! file is durable.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{
    Catalog, DatabaseEntry, NewShare, OnExisting, StoredSecret, TokenStore, User, alias_is_a_database, alias_is_taken,
    already_exists, check_droppable, may_make, name_is_a_share, new_database, new_share, new_user, no_secret, no_share,
    now_ms, removed, secret_taken, share_as_read, share_taken, validate_name, warn_unreadable_secrets,
};
use crate::error::{CoordinatorError, Result};
use crate::history::{HistoryFiles, QueryRecord};
use crate::secrets::{SecretEntry, SecretSpec, SecretsKey};
use crate::shares::{AttachedShare, ShareAttachment, ShareEntry, ShareUrl, Update};

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
            .ok_or_else(|| no_share(name))
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

    /// What `user` reads through the share holding `token`, or why they cannot.
    fn readable_share(&self, user: &str, token: &str, url_database: Option<&str>) -> Result<ShareEntry> {
        let share = self.share_with_token(token);
        let source = share.and_then(|s| self.databases.iter().find(|d| d.id == s.database_id));
        share_as_read(user, share, url_database, source)
    }
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
        warn_unreadable_secrets(&key, &self.data.lock().secrets);
        Self {
            secrets_key: Some(key),
            ..self
        }
    }

    fn secrets_key(&self) -> Result<&SecretsKey> {
        super::sealing_key(self.secrets_key.as_ref())
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
            let (user, database) = new_user(name);
            d.users.insert(name.to_string(), user.clone());
            d.databases.push(database);
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
                return Err(name_is_a_share(name));
            }
            if d.databases
                .iter()
                .any(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
            {
                return if if_not_exists {
                    Ok(None)
                } else {
                    Err(already_exists(&format!("database {name}"), ""))
                };
            }
            let entry = new_database(owner, name);
            d.databases.push(entry.clone());
            Ok(Some(entry))
        })
    }

    /// Marks database `name` dropped. `Ok(None)` when missing and `if_exists`.
    fn drop_database(&self, owner: &str, name: &str, if_exists: bool) -> Result<Option<DatabaseEntry>> {
        check_droppable(name)?;
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
                return Err(name_is_a_share(name));
            }
            if d.databases
                .iter()
                .any(|x| x.owner == owner && x.name == name && x.dropped_ms.is_none())
            {
                return Err(already_exists(&format!("database {name}"), ""));
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
        Ok(StoredSecret::open_all(key, stored))
    }

    fn put_secret(&self, owner: &str, spec: &SecretSpec, existing: OnExisting) -> Result<bool> {
        let sealed = StoredSecret::seal(self.secrets_key()?, owner, spec)?;
        self.update(|d| {
            let at = d.secrets.iter().position(|s| s.owner == owner && s.name == spec.name);
            if !may_make(at.is_some(), existing, || secret_taken(&spec.name))? {
                return Ok(false);
            }
            if let Some(i) = at {
                d.secrets.remove(i);
            }
            d.secrets.push(sealed);
            Ok(true)
        })
    }

    fn drop_secret(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool> {
        self.update(|d| {
            let before = d.secrets.len();
            d.secrets.retain(|s| !(s.owner == owner && s.name == name));
            removed(d.secrets.len() < before, if_exists, || no_secret(name))
        })
    }

    fn create_share(&self, owner: &str, share: &NewShare, existing: OnExisting) -> Result<Option<ShareEntry>> {
        validate_name("share", &share.name)?;
        self.update(|d| {
            let entry = new_share(owner, share, d.live_database(owner, &share.database))?;
            let at = d.shares.iter().position(|s| s.owner == owner && s.name == share.name);
            if !may_make(at.is_some(), existing, || share_taken(&share.name))? {
                return Ok(None);
            }
            if let Some(at) = at {
                d.shares.remove(at);
            }
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
            removed(d.shares.len() < before, if_exists, || no_share(name))
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
            if d.databases
                .iter()
                .any(|db| db.owner == user && db.dropped_ms.is_none() && db.name.eq_ignore_ascii_case(&alias))
            {
                return Err(alias_is_a_database(&alias));
            }
            if d.share_alias_taken(user, &alias) {
                return Err(alias_is_taken(&alias));
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

/// The signing key is `signing.key` beside the catalog file (mode 0600); revocations are
/// `revoked_tokens`, a token id a line, which `pond token revoke` appends to while the server
/// runs (the server reads it again every [`crate::auth::REVOCATION_POLL`]).
impl TokenStore for FileCatalog {
    fn signing_key(&self) -> Result<Vec<u8>> {
        crate::auth::load_or_create_key(&self.path.with_file_name("signing.key"))
    }

    fn revoke_token(&self, id: &str) -> Result<()> {
        crate::auth::check_token_id(id)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.path.with_file_name("revoked_tokens"))?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        Ok(())
    }

    fn revoked_tokens(&self) -> Result<HashSet<String>> {
        match std::fs::read_to_string(self.path.with_file_name("revoked_tokens")) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
            Err(e) => Err(e.into()),
        }
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
}
