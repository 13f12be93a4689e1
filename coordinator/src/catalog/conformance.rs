//! One suite, both backends: every behaviour of [`Catalog`] the coordinator relies on, run
//! against [`FileCatalog`] and [`PgCatalog`]. The PostgreSQL half needs a server:
//! `POND_TEST_POSTGRES` names one (`postgres://user@host:port/db`; each test makes a database
//! of its own there), as `tests/run-all.sh` does; without it that half says it was skipped.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::secrets::SecretOptions;
use crate::shares::{Access, ShareOptions, new_token};

/// A backend to run a test against, with whatever keeps it alive (dropped last).
struct Backend {
    catalog: Arc<dyn Catalog>,
    tokens: Arc<dyn TokenStore>,
    leases: Arc<dyn WriterLeases>,
    directory: Arc<dyn DucklingDirectory>,
    /// A second catalog on the same state (another coordinator), where the backend has one.
    other: Option<(Arc<dyn Catalog>, Arc<dyn TokenStore>)>,
    other_leases: Option<Arc<dyn WriterLeases>>,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

/// A database made on the test server for one test, dropped after it.
struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut admin) = ::postgres::Client::connect(&url, ::postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

fn key() -> SecretsKey {
    SecretsKey::derive(&[7u8; 32])
}

fn file_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        FileCatalog::open(&dir.path().join("catalog.json"))
            .unwrap()
            .with_secrets_key(key()),
    );
    Backend {
        catalog: Arc::clone(&catalog) as Arc<dyn Catalog>,
        tokens: catalog,
        leases: Arc::new(LocalLeases::default()),
        directory: Arc::new(LocalDirectory::default()),
        other: None,
        other_leases: None,
        _dir: Some(dir),
        _database: None,
    }
}

/// A fresh database on the test server, and two catalogs on it (two coordinators), migrated
/// at once; `None` when no server is given.
fn postgres_backend() -> Option<Backend> {
    let Ok(admin_url) = std::env::var("POND_TEST_POSTGRES") else {
        eprintln!("POND_TEST_POSTGRES is not set: the PostgreSQL catalog was not tested");
        return None;
    };
    let name = format!("pond_test_{}", uuid::Uuid::new_v4().simple());
    {
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // The sync driver starts a runtime of its own: on a thread of its own.
        std::thread::spawn(move || {
            let mut admin = ::postgres::Client::connect(&admin_url, ::postgres::NoTls).expect("POND_TEST_POSTGRES");
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        })
        .join()
        .unwrap();
    }
    let url = with_database(&admin_url, &name);
    let (a, b) = {
        let (ua, ub) = (url.clone(), url.clone());
        let ta = std::thread::spawn(move || PgCatalog::connect(&ua).unwrap().with_secrets_key(key()).unwrap());
        let tb = std::thread::spawn(move || PgCatalog::connect(&ub).unwrap().with_secrets_key(key()).unwrap());
        (ta.join().unwrap(), tb.join().unwrap())
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    Some(Backend {
        catalog: Arc::clone(&a) as Arc<dyn Catalog>,
        tokens: Arc::clone(&a) as Arc<dyn TokenStore>,
        leases: Arc::clone(&a) as Arc<dyn WriterLeases>,
        directory: a,
        other: Some((
            Arc::clone(&b) as Arc<dyn Catalog>,
            Arc::clone(&b) as Arc<dyn TokenStore>,
        )),
        other_leases: Some(b),
        _dir: None,
        _database: Some(TestDatabase { admin_url, name }),
    })
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rsplit_once('/') {
        Some((head, _)) if head.contains("://") && head.len() > head.find("://").unwrap() + 2 => head,
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn each_backend(test: impl Fn(&Backend)) {
    test(&file_backend());
    if let Some(pg) = postgres_backend() {
        test(&pg);
    }
}

#[test]
fn users_get_a_default_database_and_databases_drop_and_come_back() {
    each_backend(|b| {
        let c = &*b.catalog;
        let alice = c.ensure_user("alice").unwrap();
        assert_eq!(c.ensure_user("alice").unwrap().id, alice.id, "a user is made once");
        assert_eq!(c.user("alice").unwrap().unwrap().id, alice.id);
        assert!(c.user("nobody").unwrap().is_none());
        assert!(c.ensure_user("../etc").is_err());
        let sales = c.create_database("alice", "sales", false).unwrap().unwrap();
        assert!(matches!(
            c.create_database("alice", "sales", false),
            Err(CoordinatorError::AlreadyExists(_))
        ));
        assert!(c.create_database("alice", "sales", true).unwrap().is_none());
        let names: Vec<_> = c.databases("alice").unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, vec!["my_db", "sales"]);
        assert!(c.databases("bob").unwrap().is_empty());
        assert!(matches!(
            c.drop_database("alice", DEFAULT_DATABASE, false),
            Err(CoordinatorError::PermissionDenied(_))
        ));
        assert_eq!(c.drop_database("alice", "sales", false).unwrap().unwrap().id, sales.id);
        assert!(c.drop_database("alice", "sales", true).unwrap().is_none());
        assert!(matches!(
            c.drop_database("alice", "sales", false),
            Err(CoordinatorError::NotFound(_))
        ));
        assert!(c.database("alice", "sales").unwrap().is_none());
        // Made again under the same name: a new database; UNDROP then finds a live one.
        let again = c.create_database("alice", "sales", false).unwrap().unwrap();
        assert_ne!(again.id, sales.id);
        assert!(c.undrop_database("alice", "sales").is_err());
        c.drop_database("alice", "sales", false).unwrap();
        // The most recently dropped comes back.
        assert_eq!(c.undrop_database("alice", "sales").unwrap().id, again.id);
        assert!(matches!(
            c.undrop_database("alice", "nothing"),
            Err(CoordinatorError::NotFound(_))
        ));
        assert_eq!(c.set_retention("alice", "sales", 30).unwrap().retention_days(), 30);
        assert_eq!(c.database("alice", "sales").unwrap().unwrap().retention_days(), 30);
        assert!(c.set_retention("alice", "gone", 1).is_err());
        // GC sees every database, dropped ones too.
        let all = c.all_databases().unwrap();
        assert!(all.iter().any(|d| d.id == sales.id && d.dropped_ms.is_some()));
        assert_eq!(all.iter().filter(|d| d.owner == "alice").count(), 3);
        if let Some((other, _)) = &b.other {
            assert_eq!(other.database("alice", "sales").unwrap().unwrap().id, again.id);
        }
        // Names sort as bytes, whatever the server's collation.
        for name in ["alpha", "Zeta", "a_b", "a-b", "B"] {
            c.create_database("alice", name, false).unwrap();
        }
        let names: Vec<_> = c.databases("alice").unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, vec!["B", "Zeta", "a-b", "a_b", "alpha", "my_db", "sales"]);
    });
}

#[test]
fn two_coordinators_creating_one_database_at_once_make_one() {
    each_backend(|b| {
        b.catalog.ensure_user("alice").unwrap();
        let catalogs: Vec<Arc<dyn Catalog>> = match &b.other {
            Some((other, _)) => vec![Arc::clone(&b.catalog), Arc::clone(other)],
            None => vec![Arc::clone(&b.catalog), Arc::clone(&b.catalog)],
        };
        for round in 0..5 {
            let name = format!("race_{round}");
            let made: Vec<_> = (0..8)
                .map(|i| {
                    let c = Arc::clone(&catalogs[i % 2]);
                    let name = name.clone();
                    std::thread::spawn(move || c.create_database("alice", &name, false))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            let created: Vec<_> = made.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(created.len(), 1, "{made:?}");
            assert!(
                made.iter()
                    .filter(|r| r.is_err())
                    .all(|r| matches!(r, Err(CoordinatorError::AlreadyExists(_)))),
                "{made:?}"
            );
            let id = created[0].as_ref().unwrap().id.clone();
            for c in &catalogs {
                assert_eq!(c.database("alice", &name).unwrap().unwrap().id, id);
            }
        }
    });
}

#[test]
fn secrets_are_sealed_per_owner_and_follow_create_options() {
    each_backend(|b| {
        let c = &*b.catalog;
        let spec = SecretSpec {
            name: "lake".into(),
            secret_type: "s3".into(),
            scope: Some("s3://bucket".into()),
            options: SecretOptions([("secret".to_string(), "hunter2-value".to_string())].into()),
        };
        assert!(c.put_secret("alice", &spec, OnExisting::Fail).unwrap());
        assert!(!c.put_secret("alice", &spec, OnExisting::Keep).unwrap());
        assert!(matches!(
            c.put_secret("alice", &spec, OnExisting::Fail),
            Err(CoordinatorError::AlreadyExists(_))
        ));
        let replaced = SecretSpec {
            secret_type: "gcs".into(),
            ..spec.clone()
        };
        assert!(c.put_secret("alice", &replaced, OnExisting::Replace).unwrap());
        assert_eq!(c.secrets("alice").unwrap()[0].spec, replaced);
        assert!(c.secrets("bob").unwrap().is_empty(), "no user sees another's secrets");
        assert!(c.drop_secret("alice", "lake", false).unwrap());
        assert!(!c.drop_secret("alice", "lake", true).unwrap());
        assert!(matches!(
            c.drop_secret("alice", "lake", false),
            Err(CoordinatorError::NotFound(_))
        ));
        assert!(c.secrets("alice").unwrap().is_empty());
    });
}

#[test]
fn shares_on_every_backend() {
    each_backend(|b| shares_open_to_who_may_read_and_end_with_their_share_or_source(&*b.catalog));
}

#[test]
fn the_query_history_keeps_each_users_records_and_drops_whole_days() {
    use crate::history::MICROS_PER_DAY;
    each_backend(|b| {
        let c = &*b.catalog;
        let record = crate::history::test_record;
        let day = MICROS_PER_DAY;
        c.record_queries(&[record("alice", day + 10), record("bob", day + 20)])
            .unwrap();
        c.record_queries(&[record("alice", 3 * day + 1)]).unwrap();
        let alice = c.query_history(Some("alice")).unwrap();
        assert_eq!(
            alice.iter().map(|r| r.end_us).collect::<Vec<_>>(),
            vec![day + 10, 3 * day + 1]
        );
        assert_eq!(alice[0], record("alice", day + 10), "a record comes back as written");
        assert_eq!(c.query_history(None).unwrap().len(), 3);
        // Day 1 ended at 2 days: pruning before 2 days + 1 drops it, not day 3.
        assert_eq!(c.prune_query_history(2 * day + 1).unwrap(), 1);
        let left = c.query_history(None).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].end_us, 3 * day + 1);
        assert_eq!(c.prune_query_history(2 * day + 1).unwrap(), 0);
    });
}

#[test]
fn names_cannot_steer_paths() {
    for bad in ["../x", "a/b", "", "memory", "x y", "1abc"] {
        assert!(validate_name("database", bad).is_err(), "{bad}");
    }
    validate_name("database", "sales_2026").unwrap();
}

#[test]
fn a_database_name_is_replaced_in_a_connection_string() {
    assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
    assert_eq!(
        with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
        "postgres://u@h:5/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
}

fn shares_open_to_who_may_read_and_end_with_their_share_or_source(c: &dyn Catalog) {
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
fn every_coordinator_of_a_catalog_signs_with_one_key_and_sees_every_revocation() {
    each_backend(|b| {
        let key = b.tokens.signing_key().unwrap();
        assert!(key.len() >= 32);
        assert_eq!(b.tokens.signing_key().unwrap(), key, "the key is made once");
        assert!(b.tokens.revoked_tokens().unwrap().is_empty());
        b.tokens.revoke_token("abc123").unwrap();
        b.tokens.revoke_token("abc123").unwrap();
        assert!(matches!(
            b.tokens.revoke_token("../etc"),
            Err(CoordinatorError::InvalidArgument(_))
        ));
        assert_eq!(b.tokens.revoked_tokens().unwrap(), ["abc123".to_string()].into());
        if let Some((_, other)) = &b.other {
            assert_eq!(other.signing_key().unwrap(), key);
            other.revoke_token("def456").unwrap();
            assert_eq!(b.tokens.revoked_tokens().unwrap().len(), 2);
        }
    });
}

#[test]
fn share_aliases_and_database_names_do_not_collide_in_any_case() {
    each_backend(|b| {
        let c = &*b.catalog;
        for u in ["alice", "bob"] {
            c.ensure_user(u).unwrap();
        }
        let db = c.create_database("alice", "sales", false).unwrap().unwrap();
        let share = c
            .create_share(
                "alice",
                &NewShare {
                    name: "s".into(),
                    database: "sales".into(),
                    database_id: db.id,
                    settings: ShareOptions::default().resolved().unwrap(),
                    published_seq: Some(1),
                },
                OnExisting::Fail,
            )
            .unwrap()
            .unwrap();
        let url = ShareUrl::parse(share.url().strip_prefix("pond:").unwrap()).unwrap();
        // bob's default database is my_db: MY_DB is the same name to DuckDB.
        assert!(matches!(
            c.attach_share("bob", &url, Some("MY_DB")),
            Err(CoordinatorError::AlreadyExists(_))
        ));
        let (alias, _) = c.attach_share("bob", &url, Some("Lake")).unwrap();
        assert_eq!(alias, "Lake");
        assert!(matches!(
            c.attach_share("bob", &url, Some("lake")),
            Err(CoordinatorError::AlreadyExists(_))
        ));
        assert!(matches!(
            c.create_database("bob", "LAKE", false),
            Err(CoordinatorError::AlreadyExists(_))
        ));
        // Detached by the name it was attached under.
        assert!(!c.detach_share("bob", "lake").unwrap());
        assert!(c.detach_share("bob", "Lake").unwrap());
        assert!(c.attached_shares("bob").unwrap().is_empty());
        c.create_database("bob", "LAKE", false).unwrap();
    });
}

#[test]
fn a_writer_lease_has_one_holder_until_it_expires_or_is_released() {
    each_backend(|b| {
        let other = b.other_leases.clone().unwrap_or_else(|| Arc::clone(&b.leases));
        let (a, c) = (&*b.leases, &*other);
        let ttl = Duration::from_secs(60);
        let one = Claimant {
            coordinator: "c_one",
            key_id: "k1",
        };
        let two = Claimant {
            coordinator: "c_two",
            key_id: "k1",
        };
        let Claim::Won(won) = a.claim_writer("alice", one, ttl).unwrap() else {
            panic!("the first claim wins")
        };
        assert!(!won.is_published());
        assert!(won.expires_in > Duration::from_secs(50) && won.expires_in <= ttl);
        // While it starts, another sees the holder and no duckling yet.
        let Claim::Held(held) = c.claim_writer("alice", two, ttl).unwrap() else {
            panic!("a live lease is held")
        };
        assert_eq!((held.coordinator.as_str(), held.generation), ("c_one", won.generation));
        assert!(!held.is_published());
        assert!(
            a.publish_writer("alice", "c_one", won.generation, "d_1", "10.0.0.1:7000")
                .unwrap()
        );
        assert!(
            !c.publish_writer("alice", "c_two", won.generation, "d_2", "10.0.0.2:7000")
                .unwrap(),
            "only the holder names the duckling"
        );
        let Claim::Held(held) = c.claim_writer("alice", two, ttl).unwrap() else {
            panic!("still held")
        };
        assert_eq!(
            (held.duckling_id.as_str(), held.address.as_str()),
            ("d_1", "10.0.0.1:7000")
        );
        let live = c.writers(&["alice".into(), "bob".into()]).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(
            WriterLease {
                expires_in: Duration::ZERO,
                ..live[0].clone()
            },
            WriterLease {
                expires_in: Duration::ZERO,
                ..held.clone()
            }
        );
        // The holder may claim again (its duckling was lost): a new generation, unpublished.
        let Claim::Won(again) = a.claim_writer("alice", one, ttl).unwrap() else {
            panic!("the holder claims again")
        };
        assert!(again.generation > won.generation && !again.is_published());
        assert!(
            !a.publish_writer("alice", "c_one", won.generation, "d_1", "x:1")
                .unwrap(),
            "a stale generation names nothing"
        );
        a.release_writer("alice", "c_one", won.generation).unwrap();
        assert_eq!(
            c.writers(&["alice".into()]).unwrap().len(),
            1,
            "a stale release ends nothing"
        );
        a.release_writer("alice", "c_one", again.generation).unwrap();
        assert!(c.writers(&["alice".into()]).unwrap().is_empty());
        assert!(
            a.renew_writers("c_one", &[("alice".into(), again.generation)], ttl)
                .unwrap()
                .is_empty(),
            "a released lease is not renewed"
        );
        let Claim::Won(after) = c.claim_writer("alice", two, ttl).unwrap() else {
            panic!("a released lease is claimed")
        };
        assert!(after.generation > again.generation, "generations only grow");

        // A lease left to expire passes to the next claimant; its old holder cannot renew it.
        let Claim::Won(short) = a.claim_writer("bob", one, Duration::ZERO).unwrap() else {
            panic!("bob's first claim wins")
        };
        assert!(
            c.writers(&["bob".into()]).unwrap().is_empty(),
            "an expired lease is not live"
        );
        let Claim::Won(taken) = c.claim_writer("bob", two, ttl).unwrap() else {
            panic!("an expired lease is claimed")
        };
        assert!(taken.generation > short.generation);
        assert!(
            a.renew_writers("c_one", &[("bob".into(), short.generation)], ttl)
                .unwrap()
                .is_empty()
        );
        let mut renewed = c
            .renew_writers(
                "c_two",
                &[("bob".into(), taken.generation), ("alice".into(), after.generation)],
                ttl,
            )
            .unwrap();
        renewed.sort();
        assert_eq!(
            renewed,
            vec![
                ("alice".to_string(), after.generation),
                ("bob".to_string(), taken.generation)
            ]
        );
        assert!(
            c.renew_writers("c_two", &[("bob".into(), short.generation)], ttl)
                .unwrap()
                .is_empty(),
            "only the generation held is renewed"
        );

        // Expired but claimed by nobody since: its holder renews it.
        let Claim::Won(carol) = a.claim_writer("carol", one, Duration::ZERO).unwrap() else {
            panic!("carol's first claim wins")
        };
        assert_eq!(
            a.renew_writers("c_one", &[("carol".into(), carol.generation)], ttl)
                .unwrap(),
            vec![("carol".to_string(), carol.generation)]
        );
        assert!(matches!(c.claim_writer("carol", two, ttl).unwrap(), Claim::Held(_)));
    });
}

#[test]
fn coordinators_claiming_one_writer_at_once_get_one_winner() {
    each_backend(|b| {
        let other = b.other_leases.clone().unwrap_or_else(|| Arc::clone(&b.leases));
        for round in 0..5 {
            let user = format!("racer{round}");
            let winners: usize = (0..8)
                .map(|i| {
                    let leases = if i % 2 == 0 {
                        Arc::clone(&b.leases)
                    } else {
                        Arc::clone(&other)
                    };
                    let user = user.clone();
                    std::thread::spawn(move || {
                        let id = format!("c_{i}");
                        let claimant = Claimant {
                            coordinator: &id,
                            key_id: "k",
                        };
                        matches!(
                            leases.claim_writer(&user, claimant, Duration::from_secs(60)).unwrap(),
                            Claim::Won(_)
                        )
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| usize::from(t.join().unwrap()))
                .sum();
            assert_eq!(winners, 1, "round {round}");
        }
    });
}

#[test]
fn the_duckling_directory_lists_each_coordinators_latest_report() {
    use crate::coordinator::DucklingInfo;
    let info = |id: &str, coordinator: &str| DucklingInfo {
        id: id.into(),
        user: format!("user_of_{id}"),
        mode: "process".into(),
        state: "idle".into(),
        address: "10.0.0.1:7000".into(),
        pid: Some(42),
        started_ms: 1,
        cold_start_ms: 2.5,
        memory_bytes: 3,
        running_queries: 4,
        sessions: 5,
        read_replica: false,
        coordinator: coordinator.into(),
    };
    let ids = |mut v: Vec<DucklingInfo>| {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    each_backend(|b| {
        let directory = &b.directory;
        let minute = Duration::from_secs(60);
        directory
            .report_ducklings("c_one", &[info("d1", "c_one"), info("d2", "c_one")])
            .unwrap();
        directory.report_ducklings("c_two", &[info("d3", "c_two")]).unwrap();
        let listed = directory.ducklings(minute).unwrap();
        assert_eq!(ids(listed.clone()), ["d1", "d2", "d3"]);
        assert_eq!(
            listed.iter().find(|d| d.id == "d3").unwrap(),
            &info("d3", "c_two"),
            "every field kept"
        );
        // A report replaces the last one whole.
        directory.report_ducklings("c_one", &[info("d2", "c_one")]).unwrap();
        assert_eq!(ids(directory.ducklings(minute).unwrap()), ["d2", "d3"]);
        directory.report_ducklings("c_one", &[]).unwrap();
        assert_eq!(ids(directory.ducklings(minute).unwrap()), ["d3"]);
        // A report older than the reader allows is not listed.
        assert!(directory.ducklings(Duration::ZERO).unwrap().is_empty());
    });
}
