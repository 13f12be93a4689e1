//! Pond's own statements (see [`crate::commands`]), run by the coordinator instead of DuckDB:
//! databases, clones, snapshots, time travel, retention, `REFRESH`, `USE`, `SHUTDOWN`,
//! `pond_interrupt`, `pond_kill_session`, secrets and shares (run in `shares.rs`).
//!
//! Invariants:
//! - The catalog and the duckling agree after every statement: when the second step of a
//!   change fails, the first is undone (a share attachment the catalog forgot but the duckling
//!   still shows is withdrawn by the next follow, `shares.rs`).
//! - A read-only token runs only the statements that change no data, database, secret or
//!   share ([`writes`]); it may attach and detach shares.
//! - A caller names only its own databases and sessions; another user's are NOT_FOUND. The
//!   admin may interrupt or end any session of this process (logged, and in the history).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use pond_duckling::DucklingError;
use pond_duckling::engine::quote_literal;
use pond_storage::{DatabaseWriter, SnapshotSelector, block_on};
use tracing::warn;

use super::{ADMIN_USER, Coordinator};
use crate::catalog::{DEFAULT_DATABASE, OnExisting};
use crate::commands::{CloneSource, Command, SnapshotSpec};
use crate::error::{CoordinatorError, Result};
use crate::secrets::{SecretEntry, SecretSpec};
use crate::session::Session;

pub(super) fn single_column(name: &str, values: Vec<String>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(values)) as ArrayRef],
    )
    .map_err(DucklingError::from)?;
    Ok((schema, vec![batch]))
}

/// The result DuckDB gives statements that only succeed (`USE`, `DROP`, `SET`): a `Success`
/// column and no rows.
fn success_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("Success", DataType::Boolean, true)]))
}

/// Whether `cmd` changes data, databases, secrets or shares (refused with a read-only token).
/// Attaching and detaching a share (or a snapshot) changes only what the caller sees: a
/// read-only token may, as MotherDuck lets read-only tokens attach shares.
fn writes(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::ShowDatabases
            | Command::Shutdown
            | Command::Interrupt { .. }
            | Command::Use { .. }
            | Command::AttachSnapshot { .. }
            | Command::Detach { .. }
            | Command::Refresh { .. }
            | Command::ShowSecrets
            | Command::AttachShare { .. }
    )
}

/// The schema of what `cmd` answers, as Flight SQL announces it before the command runs (a
/// prepared statement's): the one `run_command` answers with.
pub(super) fn result_schema(cmd: &Command) -> SchemaRef {
    let one = |name: &str, data_type: DataType| Arc::new(Schema::new(vec![Field::new(name, data_type, false)]));
    match cmd {
        Command::ShowDatabases => one("database_name", DataType::Utf8),
        Command::Interrupt { .. } => one("interrupted", DataType::Boolean),
        Command::KillSession { .. } => one("killed", DataType::Boolean),
        Command::CreateSnapshot { .. } => one("snapshot_id", DataType::UInt64),
        Command::CreateShare { .. } => one("share_url", DataType::Utf8),
        Command::ShowSecrets => secrets_schema(),
        // `USE` answers `Success` when run, but like DuckDB's `DROP` it prepares as a
        // statement without a result set (what JDBC's `execute` reports).
        _ => Arc::new(Schema::empty()),
    }
}

/// `SHOW SECRETS`' columns.
fn secrets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, true),
        Field::new("storage", DataType::Utf8, false),
        Field::new(
            "created",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

/// A one-row, one-column result.
fn single_value(name: &str, data_type: DataType, value: ArrayRef) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, data_type, false)]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![value]).map_err(DucklingError::from)?;
    Ok((schema, vec![batch]))
}

impl Coordinator {
    /// Runs a coordinator-owned statement; returns its result.
    pub(super) fn run_command(&self, session: &Arc<Session>, cmd: Command) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let principal = session.principal();
        let user = principal.user.as_str();
        if writes(&cmd) && principal.read_only {
            return Err(CoordinatorError::PermissionDenied(
                "a read-only token cannot create, drop, restore, snapshot or alter databases, create or drop secrets, create, update, grant or drop shares, or end sessions"
                    .into(),
            ));
        }
        let duckling = session.duckling();
        match cmd {
            Command::Shutdown => self.stop_duckling(user, session.id()),
            Command::Interrupt { connection } => return self.interrupt(user, &connection),
            Command::KillSession { connection } => return self.kill_session(session, &connection),
            Command::ShowDatabases => return single_column("database_name", self.catalogs(principal)?),
            Command::Use { database, schema } => {
                self.usable_database(user, &database)?;
                session.use_database(&database, schema.as_deref())?;
                return Ok((success_schema(), vec![]));
            }
            Command::CreateDatabase {
                name,
                if_not_exists,
                from,
            } => self.create_database(session, &name, if_not_exists, from.as_ref())?,
            Command::DropDatabase { name, if_exists } => self.drop_database(session, &name, if_exists)?,
            Command::UndropDatabase { name } => {
                let entry = self.catalog.undrop_database(user, &name)?;
                duckling.attach(&entry.name, &entry.id)?;
            }
            Command::CreateSnapshot { name, database } => {
                self.own_database(user, &database)?;
                let seq = duckling.create_snapshot(&database, name.as_deref().unwrap_or(""))?;
                let value = Arc::new(arrow::array::UInt64Array::from(vec![seq]));
                return single_value("snapshot_id", DataType::UInt64, value);
            }
            Command::SetRetention { database, days } => {
                self.catalog.set_retention(user, &database, days)?;
            }
            Command::Refresh { database } => {
                if duckling.is_share(&database) {
                    return Err(CoordinatorError::InvalidArgument(format!(
                        "{database} is a share: it shows what its owner publishes, and moves by itself"
                    )));
                }
                if !duckling.databases().contains(&database) {
                    return Err(CoordinatorError::NotFound(format!(
                        "database {database} is not attached"
                    )));
                }
                duckling.refresh(&database)?;
            }
            Command::AttachSnapshot { source, alias, at } => {
                self.attach_snapshot(session, &source, &alias, at.as_ref())?
            }
            Command::Detach { alias, if_exists } => self.detach(session, &alias, if_exists)?,
            Command::CreateSecret { spec, existing } => self.create_secret(session, spec, existing)?,
            Command::DropSecret { name, if_exists } => {
                let _changing = self.secret_changes.lock();
                if self.catalog.drop_secret(user, &name, if_exists)? {
                    duckling.drop_secret(&name)?;
                }
            }
            Command::ShowSecrets => return self.show_secrets(user),
            Command::CreateShare {
                name,
                database,
                options,
                existing,
            } => return self.create_share(session, name, database, options, existing),
            Command::UpdateShare { name } => self.update_share(session, &name)?,
            Command::GrantShare { name, users, grant } => self.catalog.grant_share(user, &name, &users, grant)?,
            Command::DropShare { name, if_exists } => {
                self.catalog.drop_share(user, &name, if_exists)?;
            }
            Command::AttachShare { url, alias } => self.attach_share(session, &url, alias.as_deref())?,
        }
        Ok((Arc::new(Schema::empty()), vec![]))
    }

    /// `CREATE SECRET … IN POND`: stored sealed in the catalog, then made a temporary secret of
    /// the caller's duckling; when the duckling refuses it, the catalog is put back.
    fn create_secret(&self, session: &Session, spec: SecretSpec, existing: OnExisting) -> Result<()> {
        let user = session.principal().user.as_str();
        let spec = spec.checked(self.config.private_endpoints)?;
        let _changing = self.secret_changes.lock();
        let previous = self
            .catalog
            .secrets(user)?
            .into_iter()
            .find(|s| s.spec.name == spec.name);
        if !self.catalog.put_secret(user, &spec, existing)? {
            return Ok(());
        }
        if let Err(e) = session.duckling().put_secret(&spec.name, &spec.create_sql()) {
            let undone = match previous {
                Some(p) => self.catalog.put_secret(user, &p.spec, OnExisting::Replace).map(|_| ()),
                None => self.catalog.drop_secret(user, &spec.name, true).map(|_| ()),
            };
            if let Err(undo) = undone {
                warn!(error = %undo, secret = spec.name, "could not undo a secret DuckDB refused");
            }
            return Err(CoordinatorError::InvalidArgument(
                spec.mask(&format!("DuckDB refused secret {}: {e}", spec.name)),
            ));
        }
        Ok(())
    }

    /// `SHOW SECRETS`: name, type, scope and creation time of the caller's secrets.
    fn show_secrets(&self, user: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let secrets = self.catalog.secrets(user)?;
        let schema = secrets_schema();
        let column = |f: &dyn Fn(&SecretEntry) -> Option<String>| {
            Arc::new(StringArray::from(secrets.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                column(&|s| Some(s.spec.name.clone())),
                column(&|s| Some(s.spec.secret_type.clone())),
                column(&|s| s.spec.scope.clone()),
                column(&|_| Some("pond".into())),
                Arc::new(arrow::array::TimestampMillisecondArray::from(
                    secrets.iter().map(|s| s.created_ms as i64).collect::<Vec<_>>(),
                )),
            ],
        )
        .map_err(DucklingError::from)?;
        Ok((schema, vec![batch]))
    }

    /// Session `connection`, when `user` may act on it: their own, or anyone's for the admin.
    fn connection_for(&self, user: &str, connection: &str) -> Result<Arc<Session>> {
        self.sessions
            .lock()
            .get(connection)
            .filter(|s| user == ADMIN_USER || s.principal().user == user)
            .cloned()
            .ok_or_else(|| CoordinatorError::NotFound(format!("you have no connection {connection}")))
    }

    /// `pond_interrupt('connection')`: interrupts what one of `user`'s sessions (the admin:
    /// anyone's) runs; answers whether it ran anything.
    fn interrupt(&self, user: &str, connection: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let target = self.connection_for(user, connection)?;
        let interrupted = target.running_count() > 0;
        target.interrupt_all();
        if target.principal().user != user {
            tracing::info!(by = user, user = %target.principal().user, session = connection, "interrupted another user's session");
        }
        let value = Arc::new(arrow::array::BooleanArray::from(vec![interrupted]));
        single_value("interrupted", DataType::Boolean, value)
    }

    /// `pond_kill_session('connection')`: interrupts one of the caller's sessions (the admin:
    /// anyone's) and closes it; its client's next call on it finds it gone. A session cannot
    /// kill itself.
    fn kill_session(&self, caller: &Session, connection: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let user = caller.principal().user.as_str();
        if connection == caller.id() {
            return Err(CoordinatorError::InvalidArgument(
                "pond_kill_session cannot end the session that calls it: close the connection instead".into(),
            ));
        }
        let target = self.connection_for(user, connection)?;
        self.close_session(&target);
        tracing::info!(by = user, user = %target.principal().user, session = connection, "killed a session");
        single_value(
            "killed",
            DataType::Boolean,
            Arc::new(arrow::array::BooleanArray::from(vec![true])),
        )
    }

    /// `CREATE DATABASE [IF NOT EXISTS] name [FROM source]`: a new database, or a branch of
    /// one of the caller's at a snapshot. The catalog entry goes again if storage fails.
    fn create_database(
        &self,
        session: &Session,
        name: &str,
        if_not_exists: bool,
        from: Option<&CloneSource>,
    ) -> Result<()> {
        let user = session.principal().user.as_str();
        let source = match from {
            None => None,
            Some(CloneSource::Local(what)) => {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "CREATE DATABASE … FROM {what} uploads a local database: run it from the pond client (pond shell), which has the file"
                )));
            }
            Some(CloneSource::Database { name: src, at }) => {
                let entry = self.own_database(user, src)?;
                let seq = self.select_snapshot(session, &entry.id, at.as_ref())?;
                Some((entry.id, seq))
            }
        };
        let Some(entry) = self.catalog.create_database(user, name, if_not_exists)? else {
            return Ok(());
        };
        let made = source
            .map(|(src, seq)| block_on(DatabaseWriter::branch(&self.storage, &entry.id, &src, seq)))
            .transpose()
            .map_err(DucklingError::from)
            .and_then(|_| session.duckling().attach(&entry.name, &entry.id));
        if let Err(e) = made {
            let _ = self.catalog.drop_database(user, name, true);
            return Err(e.into());
        }
        Ok(())
    }

    /// `DROP DATABASE [IF EXISTS] name`: sessions using it fall back to the default database;
    /// the catalog entry comes back if the duckling cannot detach it.
    fn drop_database(&self, session: &Session, name: &str, if_exists: bool) -> Result<()> {
        let user = session.principal().user.as_str();
        let Some(entry) = self.catalog.drop_database(user, name, if_exists)? else {
            return Ok(());
        };
        // Copied out first: forget_database may wait for a session's connection, and
        // the sessions map must not stay locked meanwhile.
        let users_sessions = self.sessions_of(user);
        for s in users_sessions {
            s.forget_database(name, DEFAULT_DATABASE);
        }
        if let Err(e) = session.duckling().detach(name) {
            // Keep catalog and duckling in agreement: the database stays.
            let _ = self.catalog.undrop_database(user, &entry.name);
            return Err(e.into());
        }
        Ok(())
    }

    /// `ATTACH 'pond:source' AS alias [(snapshot)]`: a read-only copy of one of the caller's
    /// databases at a snapshot, following the newest when none is named.
    fn attach_snapshot(&self, session: &Session, source: &str, alias: &str, at: Option<&SnapshotSpec>) -> Result<()> {
        let user = session.principal().user.as_str();
        if self.catalog.database(user, alias)?.is_some() {
            return Err(CoordinatorError::AlreadyExists(format!(
                "{alias} is the name of one of your databases; attach under another name"
            )));
        }
        let entry = self.own_database(user, source)?;
        let seq = self.select_snapshot(session, &entry.id, at)?;
        session
            .duckling()
            .attach_snapshot(alias, &entry.id, seq, at.is_none())?;
        Ok(())
    }

    /// `DETACH [IF EXISTS] alias`: only snapshot and share attachments detach; a database drops.
    fn detach(&self, session: &Session, alias: &str, if_exists: bool) -> Result<()> {
        let duckling = session.duckling();
        let user = session.principal().user.as_str();
        // A share's record goes even when this duckling does not show it (a share the catalog
        // withdrew, or one attached on a read replica).
        let recorded = self.catalog.detach_share(user, alias)?;
        if duckling.is_snapshot(alias) && recorded {
            self.withdraw_share(duckling, user, alias)?;
        } else if duckling.is_snapshot(alias) {
            for s in self.sessions_of(user) {
                s.forget_database(alias, DEFAULT_DATABASE);
            }
            duckling.detach(alias)?;
        } else if recorded {
            // Nothing attached here to detach.
        } else if self.catalog.database(user, alias)?.is_some() {
            return Err(CoordinatorError::InvalidArgument(format!(
                "{alias} is one of your databases, not an attachment: use DROP DATABASE {alias}"
            )));
        } else if !if_exists {
            return Err(CoordinatorError::NotFound(format!("database {alias} is not attached")));
        }
        Ok(())
    }

    /// Checks that `user` may select `name` (`USE`, the catalog session option): one of their
    /// databases, or a share they attached and may still read.
    pub(super) fn usable_database(&self, user: &str, name: &str) -> Result<()> {
        let shared = || -> Result<bool> {
            Ok(self
                .catalog
                .attached_shares(user)?
                .iter()
                .any(|a| a.alias == name && a.share.is_ok()))
        };
        if self.catalog.database(user, name)?.is_some() || shared()? {
            return Ok(());
        }
        Err(CoordinatorError::NotFound(format!("database {name} does not exist")))
    }

    /// The caller's database `name`, or NOT_FOUND.
    pub(super) fn own_database(&self, user: &str, name: &str) -> Result<crate::catalog::DatabaseEntry> {
        self.catalog
            .database(user, name)?
            .ok_or_else(|| CoordinatorError::NotFound(format!("database {name} does not exist")))
    }

    /// The snapshot of database `id` that `at` names (the newest when `None`).
    fn select_snapshot(&self, session: &Session, id: &str, at: Option<&SnapshotSpec>) -> Result<u64> {
        let selector = match at {
            None => SnapshotSelector::Latest,
            Some(SnapshotSpec::Id(n)) => SnapshotSelector::Id(*n),
            Some(SnapshotSpec::Name(n)) => SnapshotSelector::Name(n.clone()),
            Some(SnapshotSpec::Time(ts)) => {
                // DuckDB reads the timestamp, in every format its casts accept.
                let conn = session.duckling().connect(DEFAULT_DATABASE)?;
                let ms = conn
                    .query_i64(&format!("SELECT epoch_ms(CAST({} AS TIMESTAMPTZ))", quote_literal(ts)))?
                    .ok_or_else(|| CoordinatorError::InvalidArgument(format!("{ts} is not a timestamp")))?;
                SnapshotSelector::AtOrBefore(ms)
            }
        };
        Ok(block_on(self.storage.select(id, &selector)).map_err(DucklingError::from)?)
    }
}
