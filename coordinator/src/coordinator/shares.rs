//! Shares in the coordinator: `CREATE`/`UPDATE`/`DROP SHARE`, `GRANT`/`REVOKE READ ON SHARE`,
//! a reader's `ATTACH 'pond:_share/…'`, and keeping every reader's attachments true to their
//! shares ([`Coordinator::follow_shares`]).
//!
//! Invariants:
//! - The catalog decides who reads ([`crate::shares`]); a reader's duckling only shows what
//!   the catalog answers for that reader, every [`FOLLOW_EVERY`]: the published snapshot of a
//!   MANUAL share, the newest of an AUTOMATIC one, nothing once the share is dropped, revoked
//!   or its database dropped.
//! - A share attachment moves only when none of its reader's statements runs (the duckling's
//!   swap lock, waited for briefly and tried again at the next round), so a running query
//!   finishes on the snapshot it started with. A withdrawn one goes at once: DuckDB lets a
//!   running query finish on the copy it reads, and no new statement finds it.
//! - One follow at a time per duckling, `ATTACH` included (the slot's `shares` lock); ducklings
//!   are followed side by side, so one large copy delays nobody else's revoke.
//! - An attachment is kept by the catalog, so it survives sessions, duckling restarts and
//!   server restarts, as the user's own databases do; only `DETACH` ends it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_duckling::{Duckling, DucklingError};
use pond_storage::{SnapshotSelector, block_on};
use tracing::{debug, warn};

use super::Coordinator;
use super::connection::blocking;
use super::pond_statements::single_column;
use crate::catalog::{DEFAULT_DATABASE, NewShare, OnExisting};
use crate::error::{CoordinatorError, Result};
use crate::session::Session;
use crate::shares::{ShareEntry, ShareOptions, ShareUrl, Update};

/// How often readers' attachments are brought in line with their shares: the delay before a
/// reader sees an AUTOMATIC share's commit, an `UPDATE SHARE`, a revoke or a drop. Each round
/// costs one catalog lookup per duckling with share attachments (over the cluster protocol in
/// a duckling process) and one look at the store's newest snapshot per AUTOMATIC share
/// attached (a GET on S3).
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// A duckling whose user had no share attachment at its last follow is followed only every
/// this many rounds (attachments made through another process of the user, a read replica or
/// its primary, show up within two seconds; an `ATTACH` here shows at once).
const IDLE_ROUNDS: u32 = 8;

/// How long one move waits for a reader's running statements before trying again at the
/// next round; while it waits, the reader's new statements wait too.
const MOVE_WAIT: Duration = Duration::from_millis(100);

impl Coordinator {
    /// `CREATE [OR REPLACE] SHARE …`: answers the share's URL.
    pub(super) fn create_share(
        &self,
        session: &Session,
        name: Option<String>,
        database: Option<String>,
        options: ShareOptions,
        existing: OnExisting,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let user = session.principal().user.as_str();
        let database = database.unwrap_or_else(|| session.current().0);
        let name = name.unwrap_or_else(|| database.clone());
        let settings = options.resolved()?;
        let source = self.own_database(user, &database)?;
        let published_seq = match settings.update {
            Update::Manual => Some(self.newest_snapshot(&source.id)?),
            Update::Automatic => None,
        };
        let share = NewShare {
            name: name.clone(),
            database,
            database_id: source.id,
            settings,
            published_seq,
        };
        let url = match self.catalog.create_share(user, &share, existing)? {
            Some(made) => made.url(),
            // IF NOT EXISTS kept the one there: its URL.
            None => self.owned_share(user, &name)?.url(),
        };
        single_column("share_url", vec![url])
    }

    /// `UPDATE SHARE name`: a MANUAL share publishes its database's newest snapshot.
    pub(super) fn update_share(&self, session: &Session, name: &str) -> Result<()> {
        let user = session.principal().user.as_str();
        let share = self.owned_share(user, name)?;
        let seq = self.newest_snapshot(&share.database_id)?;
        self.catalog.publish_share(user, name, seq)?;
        Ok(())
    }

    /// `ATTACH 'pond:_share/<db>/<token>' [AS alias]`: recorded in the catalog (which checks the
    /// caller may read it), then shown by the caller's duckling; the record goes again if the
    /// duckling cannot show it.
    pub(super) fn attach_share(&self, session: &Session, url: &ShareUrl, alias: Option<&str>) -> Result<()> {
        let user = session.principal().user.as_str();
        let slot = self.slot(user);
        let _following = slot.shares.lock();
        let (alias, share) = self.catalog.attach_share(user, url, alias)?;
        slot.idle_follows.store(0, Ordering::Relaxed);
        if let Err(e) = self.show_share(session.duckling(), &alias, &share) {
            if let Err(undo) = self.catalog.detach_share(user, &alias) {
                warn!(error = %undo, alias, "could not forget a share attachment that failed");
            }
            return Err(e);
        }
        Ok(())
    }

    /// The caller's share `name`, or NOT_FOUND.
    fn owned_share(&self, user: &str, name: &str) -> Result<ShareEntry> {
        self.catalog
            .owned_shares(user)?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| CoordinatorError::NotFound(format!("you have no share named {name}")))
    }

    fn newest_snapshot(&self, database_id: &str) -> Result<u64> {
        Ok(block_on(self.storage.select(database_id, &SnapshotSelector::Latest)).map_err(DucklingError::from)?)
    }

    /// The snapshot `share` shows its readers now.
    fn shown_snapshot(&self, share: &ShareEntry) -> Result<u64> {
        match (share.settings.update, share.published_seq) {
            (Update::Manual, Some(seq)) => Ok(seq),
            _ => self.newest_snapshot(&share.database_id),
        }
    }

    /// Makes `d` show `share` as `alias`: attached, or moved to the snapshot the share shows.
    fn show_share(&self, d: &Duckling, alias: &str, share: &ShareEntry) -> Result<()> {
        let target = self.shown_snapshot(share)?;
        let follows_latest = share.settings.update == Update::Automatic;
        let shown = d.shares().into_iter().find(|c| c.alias == alias);
        match shown {
            Some(c) if c.database_id == share.database_id && c.follows_latest == follows_latest => {
                if c.seq != target && d.move_within(alias, Some(target), MOVE_WAIT)?.is_none() {
                    debug!(alias, "a reader's statements run; the share moves at the next round");
                }
            }
            other => {
                // Another share under this alias now (replaced, attached again elsewhere).
                if other.is_some() {
                    d.withdraw_share(alias)?;
                }
                d.attach_share(alias, &share.database_id, target, follows_latest)?;
            }
        }
        Ok(())
    }

    /// Brings `d`'s share attachments in line with what the catalog says `user` may read now;
    /// answers whether `user` has any.
    pub(super) fn follow_shares_of(&self, d: &Duckling, user: &str) -> Result<bool> {
        let attached = self.catalog.attached_shares(user)?;
        for a in &attached {
            let outcome = match &a.share {
                Ok(share) => self.show_share(d, &a.alias, share),
                Err(why) if d.is_share(&a.alias) => {
                    debug!(
                        user,
                        alias = a.alias,
                        why,
                        "a share can no longer be read; withdrawing it"
                    );
                    self.withdraw_share(d, user, &a.alias)
                }
                Err(_) => Ok(()),
            };
            if let Err(e) = outcome {
                warn!(user, alias = a.alias, error = %e, "could not show a share");
            }
        }
        // Detached through another process of the user (a read replica's primary): gone here too.
        for c in d.shares() {
            if !attached.iter().any(|a| a.alias == c.alias) {
                self.withdraw_share(d, user, &c.alias)?;
            }
        }
        Ok(!attached.is_empty())
    }

    /// Withdraws share attachment `alias` from `user`'s duckling `d`; sessions that had
    /// selected it (`USE`) go back to the default database.
    pub(super) fn withdraw_share(&self, d: &Duckling, user: &str, alias: &str) -> Result<()> {
        d.withdraw_share(alias)?;
        for s in self.sessions_of(user) {
            s.forget_database(alias, DEFAULT_DATABASE);
        }
        Ok(())
    }

    /// Brings every running duckling's share attachments in line with their shares, each on a
    /// blocking thread of its own; a duckling still being followed from the last round is
    /// skipped. Run every [`FOLLOW_EVERY`].
    pub fn follow_shares(self: &Arc<Self>) {
        let slots: Vec<_> = self
            .ducklings
            .lock()
            .iter()
            .map(|(user, slot)| (user.clone(), Arc::clone(slot)))
            .collect();
        for (user, slot) in slots {
            // A duckling starting or stopping is skipped: its start follows them itself.
            let Some(d) = slot.duckling.try_lock().and_then(|d| d.clone()) else {
                continue;
            };
            if d.is_closed() {
                continue;
            }
            let idle = slot.idle_follows.load(Ordering::Relaxed);
            if idle > 0 && idle % IDLE_ROUNDS != 0 {
                slot.idle_follows.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let this = Arc::clone(self);
            let follow = blocking(move || {
                let Some(_following) = slot.shares.try_lock() else {
                    return Ok(());
                };
                let followed = this.follow_shares_of(&d, &user);
                let failed_before = slot.follow_failing.swap(followed.is_err(), Ordering::Relaxed);
                match followed {
                    Ok(true) => slot.idle_follows.store(0, Ordering::Relaxed),
                    Ok(false) => {
                        slot.idle_follows.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if failed_before => tracing::debug!(user, error = %e, "still cannot follow a user's shares"),
                    Err(e) => warn!(user, error = %e, "could not follow a user's shares"),
                }
                Ok(())
            });
            tokio::spawn(follow);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoordinatorConfig;

    fn session(c: &Arc<Coordinator>, user: &str) -> Arc<Session> {
        let (token, _) = c.tokens().mint(user, false, Duration::from_secs(600)).unwrap();
        let principal = c.authenticate(&token).unwrap();
        c.session(&principal, None).unwrap().0
    }

    async fn run(c: &Arc<Coordinator>, s: &Arc<Session>, sql: &str) {
        c.execute_update(s, sql, None)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn count(s: &Session, sql: &str) -> Result<i64> {
        Ok(s.duckling().connect("my_db")?.query_i64(sql)?.unwrap_or(-1))
    }

    /// One follow of bob's shares, as `follow_shares` runs it every round.
    async fn follow(c: &Arc<Coordinator>) -> Result<bool> {
        let c = Arc::clone(c);
        let s = session(&c, "bob");
        blocking(move || c.follow_shares_of(s.duckling(), "bob")).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn readers_see_what_the_share_publishes_and_nothing_once_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let c = Coordinator::open(CoordinatorConfig::new(dir.path())).unwrap();
        let (alice, bob) = (session(&c, "alice"), session(&c, "bob"));
        run(&c, &alice, "CREATE DATABASE sales").await;
        run(&c, &alice, "CREATE TABLE sales.t AS SELECT range AS i FROM range(100)").await;
        run(
            &c,
            &alice,
            "CREATE TABLE sales.big AS SELECT range AS i FROM range(100000)",
        )
        .await;
        run(&c, &alice, "CREATE SHARE s FROM sales (ACCESS RESTRICTED)").await;
        run(&c, &alice, "GRANT READ ON SHARE s TO bob").await;
        let url = c.catalog.owned_shares("alice").unwrap()[0].url();
        run(&c, &bob, &format!("ATTACH '{url}' AS theirs")).await;
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 100);
        let write = c
            .execute_update(&bob, "INSERT INTO theirs.t VALUES (1)", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&write, CoordinatorError::Duckling(DucklingError::Sql { kind, .. }) if *kind == pond_duckling::SqlErrorKind::Permission),
            "{write}"
        );
        let refresh = c
            .execute_update(&bob, "REFRESH DATABASE theirs", None)
            .await
            .unwrap_err();
        assert!(refresh.to_string().contains("is a share"), "{refresh}");
        let taken = c
            .execute_update(&bob, "CREATE DATABASE THEIRS", None)
            .await
            .unwrap_err();
        assert!(matches!(taken, CoordinatorError::AlreadyExists(_)), "{taken}");

        // MANUAL: a commit reaches the reader only once published.
        run(&c, &alice, "INSERT INTO sales.t SELECT range FROM range(10)").await;
        follow(&c).await.unwrap();
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 100);
        run(&c, &alice, "UPDATE SHARE s").await;
        follow(&c).await.unwrap();
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 110);

        // Revoked: gone at the next follow, while a query already streaming finishes on the
        // snapshot it started with; granted again: back.
        let reading = bob.duckling().connect("my_db").unwrap();
        let mut statement = reading.prepare("SELECT i FROM theirs.big").unwrap();
        let mut stream = statement.execute_streaming().unwrap();
        let mut streamed = stream.next_batch().unwrap().map_or(0, |b| b.num_rows());
        run(&c, &alice, "REVOKE READ ON SHARE s FROM bob").await;
        follow(&c).await.unwrap();
        assert!(count(&bob, "SELECT count(*) FROM theirs.t").is_err());
        // No copy of the share's database stays in bob's directory, older ones included.
        let sales_id = c.catalog.database("alice", "sales").unwrap().unwrap().id;
        let copies = std::fs::read_dir(bob.duckling().dir().join("snapshots")).unwrap();
        let left: Vec<_> = copies
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&sales_id))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        while let Some(batch) = stream.next_batch().unwrap() {
            streamed += batch.num_rows();
        }
        assert_eq!(streamed, 100_000);
        drop(stream);
        drop(statement);
        drop(reading);
        run(&c, &alice, "GRANT READ ON SHARE s TO bob").await;
        follow(&c).await.unwrap();
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 110);

        // AUTOMATIC: the next follow shows the newest commit.
        run(
            &c,
            &alice,
            "CREATE OR REPLACE SHARE s FROM sales (ACCESS RESTRICTED, UPDATE AUTOMATIC)",
        )
        .await;
        run(&c, &alice, "GRANT READ ON SHARE s TO bob").await;
        follow(&c).await.unwrap();
        assert!(
            count(&bob, "SELECT count(*) FROM theirs.t").is_err(),
            "a replaced share's old URL leads nowhere"
        );
        let url = c.catalog.owned_shares("alice").unwrap()[0].url();
        run(&c, &bob, "DETACH theirs").await;
        run(&c, &bob, &format!("ATTACH '{url}' AS theirs")).await;
        run(&c, &alice, "INSERT INTO sales.t SELECT range FROM range(5)").await;
        follow(&c).await.unwrap();
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 115);
        c.shutdown();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn garbage_collection_keeps_the_snapshot_a_manual_share_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let c = Coordinator::open(CoordinatorConfig::new(dir.path())).unwrap();
        let (alice, bob) = (session(&c, "alice"), session(&c, "bob"));
        // Two databases written alike; only `sales` is shared.
        let mut published = Vec::new();
        for db in ["sales", "other"] {
            run(&c, &alice, &format!("CREATE DATABASE {db}")).await;
            run(
                &c,
                &alice,
                &format!("ALTER DATABASE {db} SET SNAPSHOT_RETENTION_DAYS = 0"),
            )
            .await;
            run(
                &c,
                &alice,
                &format!("CREATE TABLE {db}.t AS SELECT range AS i FROM range(100)"),
            )
            .await;
            run(&c, &alice, &format!("INSERT INTO {db}.t SELECT range FROM range(1)")).await;
            let id = c.catalog.database("alice", db).unwrap().unwrap().id;
            published.push((id.clone(), c.newest_snapshot(&id).unwrap()));
        }
        run(&c, &alice, "CREATE SHARE s FROM sales").await;
        let share = c.catalog.owned_shares("alice").unwrap().remove(0);
        assert_eq!(share.published_seq, Some(published[0].1));
        // Past a full manifest, newer snapshots no longer need the older ones.
        for db in ["sales", "other"] {
            for _ in 0..=pond_storage::manifest::FULL_EVERY {
                run(&c, &alice, &format!("INSERT INTO {db}.t VALUES (-1)")).await;
            }
        }
        c.collect_garbage(Duration::ZERO, &[]).await.unwrap();
        let kept = |(id, seq): &(String, u64)| block_on(c.storage.snapshots(id)).unwrap().iter().any(|s| s.seq == *seq);
        assert!(!kept(&published[1]), "the unshared database's snapshot is collected");
        assert!(kept(&published[0]), "the shared one's stays");
        run(&c, &bob, &format!("ATTACH '{}' AS theirs", share.url())).await;
        assert_eq!(count(&bob, "SELECT count(*) FROM theirs.t").unwrap(), 101);
        c.shutdown();
    }
}
