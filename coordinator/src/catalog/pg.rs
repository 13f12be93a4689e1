//! The catalog in PostgreSQL (`--catalog postgres://…`): what several coordinators share.
//!
//! Invariants:
//! - Every change is one transaction. A change to a user's rows first takes that user's
//!   transaction-scoped advisory lock, so the checks it makes (a name free, a share readable)
//!   still hold when it writes, whichever coordinator runs it; the unique index on live
//!   databases' names is the last line of defence.
//! - The schema is versioned (`pond_schema_migrations`): each coordinator applies the
//!   migrations it lacks at start, under a session advisory lock, so two starting at once apply
//!   each migration once; a binary older than the schema refuses to start.
//! - Names compare and sort as bytes (`COLLATE "C"`), as in the file catalog.
//! - A share is found by the SHA-256 of its token, never by the token itself, so the lookup's
//!   timing says nothing about the token. (Its row still holds the token, as the file catalog
//!   does: whoever reads the catalog database can read every share.)
//! - The driver (`postgres`, tokio-postgres underneath) runs on threads of its own, one
//!   connection each: the catalog's synchronous calls may come from async tasks, which must not
//!   start a runtime. Statements, lock waits and idle transactions have timeouts, so one stuck
//!   call cannot hold a connection for good. Errors never carry the connection string (which
//!   may hold a password).
//! - Connections use TLS as the connection string's `sslmode` says (libpq's `prefer` by
//!   default; `require` refuses a server without it), and a server's certificate is always
//!   verified: against the system's roots and the CA file libpq's `PGSSLROOTCERT` names.

use std::collections::HashSet;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Transaction};
use sha2::{Digest, Sha256};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::directory::DucklingDirectory;
use super::leases::{Claim, Claimant, WriterLease, WriterLeases};
use super::{
    Catalog, DatabaseEntry, NewShare, OnExisting, StoredSecret, TokenStore, User, alias_is_a_database, alias_is_taken,
    already_exists, check_droppable, may_make, name_is_a_share, new_database, new_share, new_user, no_secret, no_share,
    now_ms, removed, secret_taken, share_as_read, share_taken, validate_name, warn_unreadable_secrets,
};
use crate::coordinator::DucklingInfo;
use crate::error::{CoordinatorError, Result};
use crate::history::{MICROS_PER_DAY, QueryRecord, ReadBudget};
use crate::secrets::{SecretEntry, SecretSpec, SecretsKey};
use crate::shares::{AttachedShare, ShareAttachment, ShareEntry, ShareUrl, Update};

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Append; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE pond_users (
    name text COLLATE "C" PRIMARY KEY,
    id text NOT NULL UNIQUE,
    created_ms bigint NOT NULL
);
CREATE TABLE pond_databases (
    id text PRIMARY KEY,
    owner text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    created_ms bigint NOT NULL,
    dropped_ms bigint,
    snapshot_retention_days integer
);
CREATE UNIQUE INDEX pond_databases_live_name ON pond_databases (owner, name) WHERE dropped_ms IS NULL;
CREATE TABLE pond_secrets (
    owner text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    stored text NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE pond_shares (
    owner text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    token_sha256 bytea NOT NULL UNIQUE,
    database_id text NOT NULL,
    share text NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE pond_share_attachments (
    user_name text COLLATE "C" NOT NULL,
    alias_folded text COLLATE "C" NOT NULL,
    attachment text NOT NULL,
    PRIMARY KEY (user_name, alias_folded)
);
CREATE TABLE pond_query_history (
    seq bigserial PRIMARY KEY,
    user_name text COLLATE "C" NOT NULL,
    day bigint NOT NULL,
    record text NOT NULL
);
CREATE INDEX pond_query_history_user ON pond_query_history (user_name, seq);
CREATE INDEX pond_query_history_day ON pond_query_history (day);
CREATE TABLE pond_signing_key (
    only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    key bytea NOT NULL
);
CREATE TABLE pond_revoked_tokens (
    id text PRIMARY KEY,
    revoked_ms bigint NOT NULL
);
"#,
    r#"
CREATE TABLE pond_writer_leases (
    user_name text COLLATE "C" PRIMARY KEY,
    coordinator text NOT NULL,
    key_id text NOT NULL,
    generation bigint NOT NULL,
    duckling_id text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL
);
"#,
    r#"
CREATE TABLE pond_ducklings (
    coordinator text NOT NULL,
    duckling_id text NOT NULL,
    info text NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (coordinator, duckling_id)
);
"#,
];

/// The advisory lock keys Pond takes: migrations (a session lock), and a user's rows (with the
/// user's name hashed as the second key).
const MIGRATION_LOCK: i64 = 0x706f_6e64_0001;
const USER_LOCK_CLASS: i32 = 0x706f_6e64;

/// Connections (each on a thread of its own) a catalog keeps for the catalog's calls, besides
/// the one for writer leases and the duckling directory.
const CONNECTIONS: usize = 4;

/// What every connection sets: a wait for another coordinator's lock, a statement, or a
/// transaction left open ends with an error instead of holding the connection.
const SESSION_OPTIONS: &str = "-c lock_timeout=10s -c statement_timeout=60s -c idle_in_transaction_session_timeout=60s";

/// A connection unused this long is checked before it is trusted: the server may have
/// restarted, which the driver only notices when it next talks to it.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// The catalog in a PostgreSQL database.
pub struct PgCatalog {
    /// Work for the connections' threads.
    jobs: mpsc::Sender<Job>,
    /// Work for the connection of writer leases and the duckling directory: a renewal never
    /// waits behind slow catalog calls, or its lease could lapse under a busy coordinator.
    lease_jobs: mpsc::Sender<Job>,
    secrets_key: Option<SecretsKey>,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog").finish_non_exhaustive()
    }
}

/// The catalog's error for `e`: what a retry may cure is UNAVAILABLE (the server unreachable,
/// a lock wait or deadlock, a statement timed out), a name taken is ALREADY_EXISTS.
fn pg_error(e: postgres::Error) -> CoordinatorError {
    // The driver's own text leaves out its causes (which TLS check failed, which socket error).
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e).filter(|_| e.as_db_error().is_none());
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    let retry = [
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::QUERY_CANCELED,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
    ];
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            CoordinatorError::AlreadyExists(format!("the catalog already holds that name: {text}"))
        }
        Some(code) if retry.contains(code) => {
            CoordinatorError::Unavailable(format!("the catalog database is busy; try again: {text}"))
        }
        Some(_) => CoordinatorError::Internal(format!("the catalog database refused a change: {text}")),
        None if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
            CoordinatorError::Unavailable(format!("the catalog database cannot be reached: {text}"))
        }
        None => CoordinatorError::Internal(format!("the catalog database answered what Pond cannot read: {text}")),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoordinatorError::Internal(e.to_string()))
}

fn parsed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| CoordinatorError::Internal(format!("a catalog row is corrupt: {e}")))
}

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn database_of(row: &postgres::Row) -> DatabaseEntry {
    DatabaseEntry {
        id: row.get("id"),
        owner: row.get("owner"),
        name: row.get("name"),
        created_ms: row.get::<_, i64>("created_ms").unsigned_abs(),
        dropped_ms: row.get::<_, Option<i64>>("dropped_ms").map(i64::unsigned_abs),
        snapshot_retention_days: row
            .get::<_, Option<i32>>("snapshot_retention_days")
            .map(i32::unsigned_abs),
    }
}

const DATABASE_COLUMNS: &str = "id, owner, name, created_ms, dropped_ms, snapshot_retention_days";

/// One connection's thread: takes jobs until the catalog is dropped. A job that panics loses
/// its answer (its caller sees an error), not the thread.
fn serve_jobs(
    config: postgres::Config,
    tls: MakeRustlsConnect,
    mut client: Client,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    let mut used = Instant::now();
    loop {
        let Ok(job) = queue.lock().recv() else {
            return;
        };
        if client.is_closed()
            || (used.elapsed() >= CHECK_IDLE_AFTER && client.is_valid(Duration::from_secs(5)).is_err())
        {
            match config.connect(tls.clone()) {
                Ok(c) => client = c,
                Err(e) => tracing::warn!(error = %e, "the catalog database cannot be reached"),
            }
        }
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut client))).is_err() {
            tracing::error!("a catalog call panicked; its connection is opened again");
            if let Ok(c) = config.connect(tls.clone()) {
                client = c;
            }
        }
        used = Instant::now();
    }
}

impl PgCatalog {
    /// Connects to the PostgreSQL database at `url` and brings its schema up to date.
    pub fn connect(url: &str) -> Result<Self> {
        // libpq's verify-ca and verify-full are what require means here (certificates are
        // always verified); the driver knows only disable, prefer and require.
        let url = url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config: postgres::Config = url.parse().map_err(|_| {
            CoordinatorError::InvalidArgument(
                "--catalog is not a PostgreSQL connection string (postgres://user:password@host:port/database)".into(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            // An address that drops packets must not hang the server's start.
            config.connect_timeout(Duration::from_secs(10));
        }
        let options = match config.get_options() {
            Some(given) => format!("{given} {SESSION_OPTIONS}"),
            None => SESSION_OPTIONS.to_string(),
        };
        config.options(&options);
        config.keepalives_idle(Duration::from_secs(30));
        let tls = tls_connector()?;
        // Connected off the caller's thread: the driver blocks on a runtime of its own, which
        // a caller inside tokio must not start.
        let clients = std::thread::spawn({
            let (config, tls) = (config.clone(), tls.clone());
            move || -> Result<Vec<Client>> {
                let mut first = config.connect(tls.clone()).map_err(pg_error)?;
                migrate(&mut first)?;
                let mut clients = vec![first];
                for _ in 0..CONNECTIONS {
                    clients.push(config.connect(tls.clone()).map_err(pg_error)?);
                }
                Ok(clients)
            }
        })
        .join()
        .map_err(|_| CoordinatorError::Internal("connecting to the catalog database panicked".into()))??;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (lease_jobs, lease_queue) = mpsc::channel::<Job>();
        let lease_queue = Arc::new(Mutex::new(lease_queue));
        for (i, client) in clients.into_iter().enumerate() {
            let queue = if i == 0 {
                Arc::clone(&lease_queue)
            } else {
                Arc::clone(&queue)
            };
            let (config, tls) = (config.clone(), tls.clone());
            std::thread::Builder::new()
                .name("pond-catalog-pg".into())
                .spawn(move || serve_jobs(config, tls, client, queue))?;
        }
        Ok(Self {
            jobs,
            lease_jobs,
            secrets_key: None,
        })
    }

    /// Seals and opens secrets with `key` (see [`super::FileCatalog::with_secrets_key`]).
    pub fn with_secrets_key(self, key: SecretsKey) -> Result<Self> {
        let stored = self.run(|c| {
            c.query("SELECT stored FROM pond_secrets", &[])
                .map_err(pg_error)?
                .iter()
                .map(|r| parsed::<StoredSecret>(r.get(0)))
                .collect::<Result<Vec<_>>>()
        })?;
        warn_unreadable_secrets(&key, &stored);
        Ok(Self {
            secrets_key: Some(key),
            ..self
        })
    }

    fn secrets_key(&self) -> Result<&SecretsKey> {
        super::sealing_key(self.secrets_key.as_ref())
    }

    /// Runs `f` on a connection's thread and waits for its answer.
    fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
        run_on(&self.jobs, f)
    }

    /// [`Self::run`] on the connection of leases and the directory.
    fn run_lease<T: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
        run_on(&self.lease_jobs, f)
    }

    /// Runs `f` in one transaction holding `user`'s lock, committed when `f` succeeds.
    fn change<T: Send + 'static>(
        &self,
        user: &str,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let user = user.to_string();
        self.run(move |c| {
            let mut tx = c.transaction().map_err(pg_error)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&USER_LOCK_CLASS, &user],
            )
            .map_err(pg_error)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(pg_error)?;
            Ok(out)
        })
    }
}

/// Runs `f` on a thread of `jobs` and waits for its answer.
fn run_on<T: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (answer, answered) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |client| {
        let _ = answer.send(f(client));
    });
    let lost = || CoordinatorError::Internal("a catalog call was lost (its connection's thread failed)".into());
    jobs.send(job).map_err(|_| lost())?;
    answered.recv().map_err(|_| lost())?
}

/// The TLS the catalog's connections use: ring's rustls, trusting the system's roots and the
/// certificates in the file `PGSSLROOTCERT` names (libpq's variable), if any.
fn tls_connector() -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = std::env::var_os("PGSSLROOTCERT") {
        use rustls::pki_types::pem::PemObject;
        let unreadable = |e: &dyn std::fmt::Display| {
            CoordinatorError::InvalidArgument(format!(
                "PGSSLROOTCERT={}: not a readable PEM file of CA certificates: {e}",
                std::path::Path::new(&path).display()
            ))
        };
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&path).map_err(|e| unreadable(&e))? {
            roots
                .add(cert.map_err(|e| unreadable(&e))?)
                .map_err(|e| unreadable(&e))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| CoordinatorError::Internal(format!("TLS for the catalog: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Applies the migrations the database lacks, one transaction each, under the migration lock.
fn migrate(c: &mut Client) -> Result<()> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    let applied = (|| {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS pond_schema_migrations (version integer PRIMARY KEY, applied_ms bigint NOT NULL)",
        )
        .map_err(pg_error)?;
        let done: i32 = c
            .query_one("SELECT coalesce(max(version), 0) FROM pond_schema_migrations", &[])
            .map_err(pg_error)?
            .get(0);
        let done = done.unsigned_abs() as usize;
        if done > MIGRATIONS.len() {
            return Err(CoordinatorError::Unavailable(format!(
                "the catalog's schema is version {done}, newer than this pond knows ({}): run a newer pond",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let version = i as i32 + 1;
            let mut tx = c.transaction().map_err(pg_error)?;
            tx.batch_execute(sql).map_err(pg_error)?;
            tx.execute(
                "INSERT INTO pond_schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&version, &as_i64(now_ms())],
            )
            .map_err(pg_error)?;
            tx.commit().map_err(pg_error)?;
            tracing::info!(version, "catalog schema migrated");
        }
        Ok(())
    })();
    c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    applied
}

fn live_database(c: &mut impl GenericClient, owner: &str, name: &str) -> Result<Option<DatabaseEntry>> {
    Ok(c.query_opt(
        &format!("SELECT {DATABASE_COLUMNS} FROM pond_databases WHERE owner = $1 AND name = $2 AND dropped_ms IS NULL"),
        &[&owner, &name],
    )
    .map_err(pg_error)?
    .as_ref()
    .map(database_of))
}

fn share_alias_taken(tx: &mut Transaction<'_>, user: &str, alias: &str) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM pond_share_attachments WHERE user_name = $1 AND alias_folded = $2",
            &[&user, &alias.to_ascii_lowercase()],
        )
        .map_err(pg_error)?
        .is_some())
}

fn owned_share(tx: &mut Transaction<'_>, owner: &str, name: &str) -> Result<ShareEntry> {
    let row = tx
        .query_opt(
            "SELECT share FROM pond_shares WHERE owner = $1 AND name = $2 FOR UPDATE",
            &[&owner, &name],
        )
        .map_err(pg_error)?
        .ok_or_else(|| no_share(name))?;
    parsed(row.get(0))
}

fn save_share(tx: &mut Transaction<'_>, share: &ShareEntry) -> Result<()> {
    tx.execute(
        "UPDATE pond_shares SET share = $3 WHERE owner = $1 AND name = $2",
        &[&share.owner, &share.name, &json(share)?],
    )
    .map_err(pg_error)?;
    Ok(())
}

/// What `user` reads through the share holding `token`, or why they cannot.
fn readable_share(
    c: &mut impl postgres::GenericClient,
    user: &str,
    token: &str,
    url_database: Option<&str>,
) -> Result<ShareEntry> {
    let share: Option<ShareEntry> = c
        .query_opt(
            "SELECT share FROM pond_shares WHERE token_sha256 = $1",
            &[&token_digest(token)],
        )
        .map_err(pg_error)?
        .map(|r| parsed(r.get(0)))
        .transpose()?;
    let source = match &share {
        Some(s) => c
            .query_opt(
                &format!("SELECT {DATABASE_COLUMNS} FROM pond_databases WHERE id = $1"),
                &[&s.database_id],
            )
            .map_err(pg_error)?
            .as_ref()
            .map(database_of),
        None => None,
    };
    share_as_read(user, share.as_ref(), url_database, source.as_ref())
}

impl Catalog for PgCatalog {
    fn ensure_user(&self, name: &str) -> Result<User> {
        validate_name("user", name)?;
        if let Some(user) = self.user(name)? {
            return Ok(user);
        }
        let (user, database) = new_user(name);
        self.change(name, move |tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO pond_users (name, id, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                    &[&user.name, &user.id, &as_i64(user.created_ms)],
                )
                .map_err(pg_error)?;
            if inserted == 1 {
                tx.execute(
                    "INSERT INTO pond_databases (id, owner, name, created_ms) VALUES ($1, $2, $3, $4)",
                    &[
                        &database.id,
                        &database.owner,
                        &database.name,
                        &as_i64(database.created_ms),
                    ],
                )
                .map_err(pg_error)?;
                return Ok(user);
            }
            let row = tx
                .query_one("SELECT id, created_ms FROM pond_users WHERE name = $1", &[&user.name])
                .map_err(pg_error)?;
            Ok(User {
                id: row.get(0),
                created_ms: row.get::<_, i64>(1).unsigned_abs(),
                ..user
            })
        })
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_string();
        self.run(move |c| {
            Ok(
                c.query_opt("SELECT id, created_ms FROM pond_users WHERE name = $1", &[&name])
                    .map_err(pg_error)?
                    .map(|row| User {
                        name,
                        id: row.get(0),
                        created_ms: row.get::<_, i64>(1).unsigned_abs(),
                    }),
            )
        })
    }

    fn databases(&self, owner: &str) -> Result<Vec<DatabaseEntry>> {
        let owner = owner.to_string();
        self.run(move |c| {
            Ok(c.query(
                &format!(
                    "SELECT {DATABASE_COLUMNS} FROM pond_databases WHERE owner = $1 AND dropped_ms IS NULL ORDER BY name"
                ),
                &[&owner],
            )
            .map_err(pg_error)?
            .iter()
            .map(database_of)
            .collect())
        })
    }

    fn database(&self, owner: &str, name: &str) -> Result<Option<DatabaseEntry>> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.run(move |c| live_database(c, &owner, &name))
    }

    fn create_database(&self, owner: &str, name: &str, if_not_exists: bool) -> Result<Option<DatabaseEntry>> {
        validate_name("database", name)?;
        let entry = new_database(owner, name);
        self.change(owner, move |tx| {
            if share_alias_taken(tx, &entry.owner, &entry.name)? {
                return Err(name_is_a_share(&entry.name));
            }
            if live_database(tx, &entry.owner, &entry.name)?.is_some() {
                return if if_not_exists {
                    Ok(None)
                } else {
                    Err(already_exists(&format!("database {}", entry.name), ""))
                };
            }
            tx.execute(
                "INSERT INTO pond_databases (id, owner, name, created_ms) VALUES ($1, $2, $3, $4)",
                &[&entry.id, &entry.owner, &entry.name, &as_i64(entry.created_ms)],
            )
            .map_err(pg_error)?;
            Ok(Some(entry))
        })
    }

    fn drop_database(&self, owner: &str, name: &str, if_exists: bool) -> Result<Option<DatabaseEntry>> {
        check_droppable(name)?;
        let (owner_, name) = (owner.to_string(), name.to_string());
        self.change(owner, move |tx| {
            let dropped = tx
                .query_opt(
                    &format!(
                        "UPDATE pond_databases SET dropped_ms = $3 WHERE owner = $1 AND name = $2 AND dropped_ms IS NULL \
                         RETURNING {DATABASE_COLUMNS}"
                    ),
                    &[&owner_, &name, &as_i64(now_ms())],
                )
                .map_err(pg_error)?;
            match (dropped, if_exists) {
                (Some(row), _) => Ok(Some(database_of(&row))),
                (None, true) => Ok(None),
                (None, false) => Err(CoordinatorError::NotFound(format!("database {name} does not exist"))),
            }
        })
    }

    fn undrop_database(&self, owner: &str, name: &str) -> Result<DatabaseEntry> {
        let (owner_, name) = (owner.to_string(), name.to_string());
        self.change(owner, move |tx| {
            if share_alias_taken(tx, &owner_, &name)? {
                return Err(name_is_a_share(&name));
            }
            if live_database(tx, &owner_, &name)?.is_some() {
                return Err(already_exists(&format!("database {name}"), ""));
            }
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE pond_databases SET dropped_ms = NULL WHERE id = (SELECT id FROM pond_databases \
                         WHERE owner = $1 AND name = $2 AND dropped_ms IS NOT NULL ORDER BY dropped_ms DESC LIMIT 1) \
                         RETURNING {DATABASE_COLUMNS}"
                    ),
                    &[&owner_, &name],
                )
                .map_err(pg_error)?
                .ok_or_else(|| CoordinatorError::NotFound(format!("no dropped database named {name}")))?;
            Ok(database_of(&row))
        })
    }

    fn set_retention(&self, owner: &str, name: &str, days: u32) -> Result<DatabaseEntry> {
        let (owner_, name) = (owner.to_string(), name.to_string());
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        self.change(owner, move |tx| {
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE pond_databases SET snapshot_retention_days = $3 WHERE owner = $1 AND name = $2 \
                         AND dropped_ms IS NULL RETURNING {DATABASE_COLUMNS}"
                    ),
                    &[&owner_, &name, &days],
                )
                .map_err(pg_error)?
                .ok_or_else(|| CoordinatorError::NotFound(format!("database {name} does not exist")))?;
            Ok(database_of(&row))
        })
    }

    fn all_databases(&self) -> Result<Vec<DatabaseEntry>> {
        self.run(|c| {
            Ok(c.query(
                &format!("SELECT {DATABASE_COLUMNS} FROM pond_databases ORDER BY id"),
                &[],
            )
            .map_err(pg_error)?
            .iter()
            .map(database_of)
            .collect())
        })
    }

    fn secrets(&self, owner: &str) -> Result<Vec<SecretEntry>> {
        let key = self.secrets_key()?;
        let owner = owner.to_string();
        let stored = self.run(move |c| {
            c.query("SELECT stored FROM pond_secrets WHERE owner = $1", &[&owner])
                .map_err(pg_error)?
                .iter()
                .map(|r| parsed::<StoredSecret>(r.get(0)))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(StoredSecret::open_all(key, stored))
    }

    fn put_secret(&self, owner: &str, spec: &SecretSpec, existing: OnExisting) -> Result<bool> {
        let sealed = StoredSecret::seal(self.secrets_key()?, owner, spec)?;
        let stored = json(&sealed)?;
        self.change(owner, move |tx| {
            let present = tx
                .query_opt(
                    "SELECT 1 FROM pond_secrets WHERE owner = $1 AND name = $2",
                    &[&sealed.owner, &sealed.name],
                )
                .map_err(pg_error)?
                .is_some();
            if !may_make(present, existing, || secret_taken(&sealed.name))? {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO pond_secrets (owner, name, stored) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner, name) DO UPDATE SET stored = excluded.stored",
                &[&sealed.owner, &sealed.name, &stored],
            )
            .map_err(pg_error)?;
            Ok(true)
        })
    }

    fn drop_secret(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool> {
        let (owner_, name) = (owner.to_string(), name.to_string());
        self.change(owner, move |tx| {
            let gone = tx
                .execute(
                    "DELETE FROM pond_secrets WHERE owner = $1 AND name = $2",
                    &[&owner_, &name],
                )
                .map_err(pg_error)?;
            removed(gone > 0, if_exists, || no_secret(&name))
        })
    }

    fn create_share(&self, owner: &str, share: &NewShare, existing: OnExisting) -> Result<Option<ShareEntry>> {
        validate_name("share", &share.name)?;
        let (owner_, share) = (owner.to_string(), share.clone());
        self.change(owner, move |tx| {
            let database = live_database(tx, &owner_, &share.database)?;
            let entry = new_share(&owner_, &share, database.as_ref())?;
            let present = tx
                .query_opt(
                    "SELECT 1 FROM pond_shares WHERE owner = $1 AND name = $2",
                    &[&owner_, &share.name],
                )
                .map_err(pg_error)?
                .is_some();
            if !may_make(present, existing, || share_taken(&share.name))? {
                return Ok(None);
            }
            if present {
                tx.execute(
                    "DELETE FROM pond_shares WHERE owner = $1 AND name = $2",
                    &[&owner_, &share.name],
                )
                .map_err(pg_error)?;
            }
            tx.execute(
                "INSERT INTO pond_shares (owner, name, token_sha256, database_id, share) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &entry.owner,
                    &entry.name,
                    &token_digest(&entry.token),
                    &entry.database_id,
                    &json(&entry)?,
                ],
            )
            .map_err(pg_error)?;
            Ok(Some(entry))
        })
    }

    fn publish_share(&self, owner: &str, name: &str, seq: u64) -> Result<ShareEntry> {
        let (owner_, name) = (owner.to_string(), name.to_string());
        self.change(owner, move |tx| {
            let mut share = owned_share(tx, &owner_, &name)?;
            if share.settings.update == Update::Manual {
                share.published_seq = Some(seq);
                save_share(tx, &share)?;
            }
            Ok(share)
        })
    }

    fn drop_share(&self, owner: &str, name: &str, if_exists: bool) -> Result<bool> {
        let (owner_, name) = (owner.to_string(), name.to_string());
        self.change(owner, move |tx| {
            let gone = tx
                .execute(
                    "DELETE FROM pond_shares WHERE owner = $1 AND name = $2",
                    &[&owner_, &name],
                )
                .map_err(pg_error)?;
            removed(gone > 0, if_exists, || no_share(&name))
        })
    }

    fn grant_share(&self, owner: &str, name: &str, grantees: &[String], grant: bool) -> Result<()> {
        for grantee in grantees {
            validate_name("user", grantee)?;
        }
        let (owner_, name, grantees) = (owner.to_string(), name.to_string(), grantees.to_vec());
        self.change(owner, move |tx| {
            if grant {
                let known: Vec<String> = tx
                    .query("SELECT name FROM pond_users WHERE name = ANY($1)", &[&grantees])
                    .map_err(pg_error)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if let Some(missing) = grantees.iter().find(|g| !known.contains(g)) {
                    return Err(CoordinatorError::NotFound(format!(
                        "there is no user named {missing} (a user exists once they have connected)"
                    )));
                }
            }
            let mut share = owned_share(tx, &owner_, &name)?;
            share.grants.retain(|g| !grantees.contains(g));
            if grant {
                share.grants.extend(grantees.iter().cloned());
                share.grants.sort();
            }
            save_share(tx, &share)
        })
    }

    fn owned_shares(&self, owner: &str) -> Result<Vec<ShareEntry>> {
        let owner = owner.to_string();
        self.run(move |c| {
            c.query(
                "SELECT share FROM pond_shares WHERE owner = $1 ORDER BY name",
                &[&owner],
            )
            .map_err(pg_error)?
            .iter()
            .map(|r| parsed(r.get(0)))
            .collect()
        })
    }

    fn discoverable_shares(&self, user: &str) -> Result<Vec<ShareEntry>> {
        let user = user.to_string();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT s.share FROM pond_shares s JOIN pond_databases d ON d.id = s.database_id \
                     WHERE s.owner <> $1 AND d.dropped_ms IS NULL ORDER BY s.owner, s.name",
                    &[&user],
                )
                .map_err(pg_error)?;
            let mut out = Vec::new();
            for row in rows {
                let share: ShareEntry = parsed(row.get(0))?;
                if share.discoverable_by(&user) {
                    out.push(share.for_reader());
                }
            }
            Ok(out)
        })
    }

    fn attach_share(&self, user: &str, url: &ShareUrl, alias: Option<&str>) -> Result<(String, ShareEntry)> {
        let (user_, url, alias) = (user.to_string(), url.clone(), alias.map(str::to_string));
        self.change(user, move |tx| {
            let share = readable_share(tx, &user_, &url.token, Some(&url.database_name))?;
            let alias = alias.unwrap_or_else(|| share.database_name.clone());
            validate_name("database", &alias)?;
            let clash = tx
                .query_opt(
                    "SELECT 1 FROM pond_databases WHERE owner = $1 AND dropped_ms IS NULL AND lower(name) = $2",
                    &[&user_, &alias.to_ascii_lowercase()],
                )
                .map_err(pg_error)?;
            if clash.is_some() {
                return Err(alias_is_a_database(&alias));
            }
            if share_alias_taken(tx, &user_, &alias)? {
                return Err(alias_is_taken(&alias));
            }
            let attachment = ShareAttachment {
                user: user_.clone(),
                alias: alias.clone(),
                token: url.token.clone(),
                attached_ms: now_ms(),
            };
            tx.execute(
                "INSERT INTO pond_share_attachments (user_name, alias_folded, attachment) VALUES ($1, $2, $3)",
                &[&user_, &alias.to_ascii_lowercase(), &json(&attachment)?],
            )
            .map_err(pg_error)?;
            Ok((alias, share))
        })
    }

    fn detach_share(&self, user: &str, alias: &str) -> Result<bool> {
        let (user_, alias) = (user.to_string(), alias.to_string());
        self.change(user, move |tx| {
            // The alias as attached, not only in another case (as the file catalog).
            let rows = tx
                .query(
                    "SELECT alias_folded, attachment FROM pond_share_attachments WHERE user_name = $1 AND alias_folded = $2",
                    &[&user_, &alias.to_ascii_lowercase()],
                )
                .map_err(pg_error)?;
            for row in rows {
                let attachment: ShareAttachment = parsed(row.get(1))?;
                if attachment.alias == alias {
                    tx.execute(
                        "DELETE FROM pond_share_attachments WHERE user_name = $1 AND alias_folded = $2",
                        &[&user_, &row.get::<_, String>(0)],
                    )
                    .map_err(pg_error)?;
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    fn attached_shares(&self, user: &str) -> Result<Vec<AttachedShare>> {
        let user = user.to_string();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT attachment FROM pond_share_attachments WHERE user_name = $1",
                    &[&user],
                )
                .map_err(pg_error)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let a: ShareAttachment = parsed(row.get(0))?;
                out.push(AttachedShare {
                    share: readable_share(c, &user, &a.token, None).map_err(|e| e.to_string()),
                    alias: a.alias,
                    attached_ms: a.attached_ms,
                });
            }
            out.sort_by(|a, b| a.alias.cmp(&b.alias));
            Ok(out)
        })
    }

    fn published_snapshots(&self) -> Result<Vec<(String, u64)>> {
        self.run(|c| {
            let mut out = Vec::new();
            for row in c.query("SELECT share FROM pond_shares", &[]).map_err(pg_error)? {
                let share: ShareEntry = parsed(row.get(0))?;
                if let Some(seq) = share.published_seq {
                    out.push((share.database_id, seq));
                }
            }
            Ok(out)
        })
    }

    fn record_queries(&self, records: &[QueryRecord]) -> Result<()> {
        let rows = records
            .iter()
            .map(|r| Ok((r.user_name.clone(), as_i64(r.end_us / MICROS_PER_DAY), json(r)?)))
            .collect::<Result<Vec<_>>>()?;
        self.run(move |c| {
            let mut tx = c.transaction().map_err(pg_error)?;
            let insert = tx
                .prepare("INSERT INTO pond_query_history (user_name, day, record) VALUES ($1, $2, $3)")
                .map_err(pg_error)?;
            for (user, day, record) in &rows {
                tx.execute(&insert, &[user, day, record]).map_err(pg_error)?;
            }
            tx.commit().map_err(pg_error)
        })
    }

    fn query_history(&self, user: Option<&str>) -> Result<Vec<QueryRecord>> {
        let user = user.map(str::to_string);
        self.run(move |c| {
            let limit = as_i64(crate::history::MAX_READ_RECORDS as u64);
            let rows = match &user {
                Some(u) => c.query(
                    "SELECT record FROM pond_query_history WHERE user_name = $1 ORDER BY seq DESC LIMIT $2",
                    &[u, &limit],
                ),
                None => c.query(
                    "SELECT record FROM pond_query_history ORDER BY seq DESC LIMIT $1",
                    &[&limit],
                ),
            }
            .map_err(pg_error)?;
            let mut newest_first = Vec::with_capacity(rows.len());
            let mut budget = ReadBudget::default();
            for row in rows {
                let r: QueryRecord = parsed(row.get(0))?;
                if !budget.take(&r) {
                    break;
                }
                newest_first.push(r);
            }
            newest_first.reverse();
            Ok(newest_first)
        })
    }

    fn prune_query_history(&self, before_us: u64) -> Result<usize> {
        // Whole days: those whose end is at or before `before_us`.
        let first_kept = as_i64(before_us / MICROS_PER_DAY);
        self.run(move |c| {
            let days: i64 = c
                .query_one(
                    "WITH gone AS (DELETE FROM pond_query_history WHERE day < $1 RETURNING day) \
                     SELECT count(DISTINCT day) FROM gone",
                    &[&first_kept],
                )
                .map_err(pg_error)?
                .get(0);
            Ok(days.unsigned_abs() as usize)
        })
    }
}

/// The signing key is one row, made by whichever coordinator comes first; revocations are
/// rows every coordinator reads.
impl TokenStore for PgCatalog {
    fn signing_key(&self) -> Result<Vec<u8>> {
        let proposed: [u8; 32] = rand::random();
        self.run(move |c| {
            c.execute(
                "INSERT INTO pond_signing_key (key) VALUES ($1) ON CONFLICT (only_one) DO NOTHING",
                &[&proposed.as_slice()],
            )
            .map_err(pg_error)?;
            Ok(c.query_one("SELECT key FROM pond_signing_key", &[])
                .map_err(pg_error)?
                .get(0))
        })
    }

    fn revoke_token(&self, id: &str) -> Result<()> {
        crate::auth::check_token_id(id)?;
        let id = id.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO pond_revoked_tokens (id, revoked_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&id, &as_i64(now_ms())],
            )
            .map_err(pg_error)?;
            Ok(())
        })
    }

    fn revoked_tokens(&self) -> Result<HashSet<String>> {
        self.run(|c| {
            Ok(c.query("SELECT id FROM pond_revoked_tokens", &[])
                .map_err(pg_error)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }
}

/// A lease row's columns, its time left measured by the server's clock.
const LEASE_COLUMNS: &str = "user_name, coordinator, key_id, generation, duckling_id, address, \
     greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::bigint";

fn lease_of(row: &postgres::Row) -> Result<WriterLease> {
    Ok(WriterLease {
        user: row.get(0),
        coordinator: row.get(1),
        key_id: row.get(2),
        generation: generation_of(row.get(3))?,
        duckling_id: row.get(4),
        address: row.get(5),
        // The query clamps it at zero.
        expires_in: Duration::from_millis(u64::try_from(row.get::<_, i64>(6)).unwrap_or(0)),
    })
}

/// A duration in whole milliseconds, as the statements' intervals take it.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn generation_of(stored: i64) -> Result<u64> {
    u64::try_from(stored).map_err(|_| CoordinatorError::Internal(format!("a writer lease has generation {stored}")))
}

/// Each lease operation is one statement: the condition and the write are decided together
/// by the server, so two coordinators claiming at once get one winner.
impl WriterLeases for PgCatalog {
    fn claim_writer(&self, user: &str, claimant: Claimant<'_>, ttl: Duration) -> Result<Claim> {
        let (user, coordinator, key_id) = (
            user.to_string(),
            claimant.coordinator.to_string(),
            claimant.key_id.to_string(),
        );
        self.run_lease(move |c| {
            loop {
                let won = c
                .query_opt(
                    &format!(
                        "INSERT INTO pond_writer_leases AS l (user_name, coordinator, key_id, generation, expires_at) \
                         VALUES ($1, $2, $3, 1, clock_timestamp() + $4::bigint * interval '1 millisecond') \
                         ON CONFLICT (user_name) DO UPDATE SET coordinator = excluded.coordinator, \
                           key_id = excluded.key_id, generation = l.generation + 1, duckling_id = '', \
                           address = '', expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond' \
                         WHERE l.expires_at <= clock_timestamp() OR l.coordinator = excluded.coordinator \
                         RETURNING {LEASE_COLUMNS}"
                    ),
                    &[&user, &coordinator, &key_id, &millis(ttl)],
                )
                .map_err(pg_error)?;
                if let Some(row) = won {
                    return Ok(Claim::Won(lease_of(&row)?));
                }
                let held = c
                    .query_opt(
                        &format!("SELECT {LEASE_COLUMNS} FROM pond_writer_leases WHERE user_name = $1"),
                        &[&user],
                    )
                    .map_err(pg_error)?;
                if let Some(row) = held {
                    return Ok(Claim::Held(lease_of(&row)?));
                }
                // Gone between the two statements (rows are expired, never deleted, so only by
                // hand): claim again.
            }
        })
    }

    fn publish_writer(
        &self,
        user: &str,
        coordinator: &str,
        generation: u64,
        duckling_id: &str,
        address: &str,
    ) -> Result<bool> {
        let (user, coordinator, duckling_id, address) = (
            user.to_string(),
            coordinator.to_string(),
            duckling_id.to_string(),
            address.to_string(),
        );
        self.run_lease(move |c| {
            Ok(c.execute(
                "UPDATE pond_writer_leases SET duckling_id = $4, address = $5 \
                 WHERE user_name = $1 AND coordinator = $2 AND generation = $3",
                &[&user, &coordinator, &as_i64(generation), &duckling_id, &address],
            )
            .map_err(pg_error)?
                == 1)
        })
    }

    fn renew_writers(&self, coordinator: &str, asked: &[(String, u64)], ttl: Duration) -> Result<Vec<(String, u64)>> {
        let coordinator = coordinator.to_string();
        let users: Vec<String> = asked.iter().map(|(u, _)| u.clone()).collect();
        let generations: Vec<i64> = asked.iter().map(|(_, g)| as_i64(*g)).collect();
        self.run_lease(move |c| {
            c.query(
                "UPDATE pond_writer_leases l \
                 SET expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond' \
                 FROM unnest($2::text[], $3::bigint[]) AS a(user_name, generation) \
                 WHERE l.coordinator = $1 AND l.user_name = a.user_name AND l.generation = a.generation \
                   AND l.expires_at > '-infinity' \
                 RETURNING l.user_name, l.generation",
                &[&coordinator, &users, &generations, &millis(ttl)],
            )
            .map_err(pg_error)?
            .iter()
            .map(|r| Ok((r.get(0), generation_of(r.get(1))?)))
            .collect()
        })
    }

    fn release_writer(&self, user: &str, coordinator: &str, generation: u64) -> Result<()> {
        let (user, coordinator) = (user.to_string(), coordinator.to_string());
        self.run_lease(move |c| {
            c.execute(
                "UPDATE pond_writer_leases SET expires_at = '-infinity', duckling_id = '', address = '' \
                 WHERE user_name = $1 AND coordinator = $2 AND generation = $3",
                &[&user, &coordinator, &as_i64(generation)],
            )
            .map_err(pg_error)?;
            Ok(())
        })
    }

    fn writers(&self, users: &[String]) -> Result<Vec<WriterLease>> {
        let users = users.to_vec();
        self.run_lease(move |c| {
            c.query(
                &format!(
                    "SELECT {LEASE_COLUMNS} FROM pond_writer_leases \
                     WHERE user_name = ANY($1) AND expires_at > clock_timestamp() ORDER BY user_name"
                ),
                &[&users],
            )
            .map_err(pg_error)?
            .iter()
            .map(lease_of)
            .collect()
        })
    }
}

/// How long the rows of a coordinator that stopped reporting are kept (for nobody: they only
/// stop the table from growing).
const STALE_REPORTS_MS: i64 = 24 * 3600 * 1000;

/// A coordinator's report is one transaction: its rows replaced, stale ones of coordinators
/// long gone dropped.
impl DucklingDirectory for PgCatalog {
    fn report_ducklings(&self, coordinator: &str, ducklings: &[DucklingInfo]) -> Result<()> {
        let coordinator = coordinator.to_string();
        let ids: Vec<String> = ducklings.iter().map(|d| d.id.clone()).collect();
        let infos = ducklings.iter().map(json).collect::<Result<Vec<String>>>()?;
        self.run_lease(move |c| {
            let mut tx = c.transaction().map_err(pg_error)?;
            tx.execute(
                "DELETE FROM pond_ducklings WHERE (coordinator = $1 AND duckling_id <> ALL($2)) \
                 OR reported_at < clock_timestamp() - $3::bigint * interval '1 millisecond'",
                &[&coordinator, &ids, &STALE_REPORTS_MS],
            )
            .map_err(pg_error)?;
            tx.execute(
                "INSERT INTO pond_ducklings (duckling_id, coordinator, info, reported_at) \
                 SELECT id, $1, info, clock_timestamp() FROM unnest($2::text[], $3::text[]) AS r(id, info) \
                 ON CONFLICT (coordinator, duckling_id) DO UPDATE SET \
                   info = excluded.info, reported_at = excluded.reported_at",
                &[&coordinator, &ids, &infos],
            )
            .map_err(pg_error)?;
            tx.commit().map_err(pg_error)
        })
    }

    fn ducklings(&self, fresh: Duration) -> Result<Vec<DucklingInfo>> {
        let fresh = millis(fresh);
        self.run_lease(move |c| {
            c.query(
                "SELECT info FROM pond_ducklings \
                 WHERE reported_at > clock_timestamp() - $1::bigint * interval '1 millisecond'",
                &[&fresh],
            )
            .map_err(pg_error)?
            .iter()
            .map(|r| parsed(r.get(0)))
            .collect()
        })
    }
}
