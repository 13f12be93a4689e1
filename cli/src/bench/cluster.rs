//! `pond bench cluster`: what the shared catalog costs, and how long users wait when part of a
//! cluster dies.
//!
//! The catalog's cost: the same in-process server on the embedded catalog and on PostgreSQL
//! (`--catalog`), measured alternately in one run. The query path must not touch the catalog
//! (P1 must not move); a new user's first query does (their row and default database are
//! made), and is reported apart.
//!
//! Failover, with real `pond serve --ducklings process` processes on the catalog and one
//! store: two coordinators sharing a cluster key, one killed (alone, or with its ducklings as
//! when its host dies) after a user worked through it, timed until the other answers the
//! user's query with every row; and a user's duckling process killed, timed until the next
//! query answers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_client::PondClient;
use pond_coordinator::{CatalogUrl, TokenAuthority};

use super::process::ServerProcess;
use super::{BenchServer, figure, latency_figures, micros, percentile};

/// Killed coordinators (and duckling processes) per failover figure.
const FAILOVERS: usize = 3;

/// How long a failover may take before the benchmark gives up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Rounds of each catalog, interleaved, so drift on the machine falls on both alike.
const ROUNDS: usize = 5;
/// New users whose first query is timed, per round and catalog.
const NEW_USERS: usize = 10;

pub async fn run(catalog: Option<String>, iterations: usize) -> Result<()> {
    let url = catalog.context(
        "the cluster benchmark compares the embedded catalog with PostgreSQL: give --catalog \
         postgres://user@host:port/database (a database it may make its tables in)",
    )?;
    let mut file = BenchServer::start().await?;
    let mut pg = BenchServer::start_with(|c| c.catalog_url = Some(CatalogUrl(url.clone()))).await?;
    let per_round = (iterations / ROUNDS).max(1);
    // New in this run, also on a catalog an earlier run used.
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (mut file_p1, mut pg_p1, mut file_first, mut pg_first) = (vec![], vec![], vec![], vec![]);
    for server in [&mut file, &mut pg] {
        for _ in 0..100 {
            server.client.query("SELECT 1").await?;
        }
    }
    for round in 0..ROUNDS {
        for (name, server, p1, first) in [
            ("file", &mut file, &mut file_p1, &mut file_first),
            ("pg", &mut pg, &mut pg_p1, &mut pg_first),
        ] {
            for _ in 0..per_round {
                let t = Instant::now();
                server.client.query("SELECT 1").await?;
                p1.push(t.elapsed());
            }
            for n in 0..NEW_USERS {
                let t = Instant::now();
                let mut client = server
                    .user_client(&format!("bench_{run_id}_{name}_{round}_{n}"))
                    .await?;
                client.query("SELECT 1").await?;
                first.push(t.elapsed());
            }
        }
    }
    for v in [&mut file_p1, &mut pg_p1, &mut file_first, &mut pg_first] {
        v.sort();
    }
    latency_figures("cluster_file_catalog_select1", &file_p1);
    latency_figures("cluster_pg_catalog_select1", &pg_p1);
    figure(
        "cluster_pg_over_file_select1_p50",
        ratio(percentile(&pg_p1, 0.5), percentile(&file_p1, 0.5)),
        "x",
    );
    latency_figures("cluster_file_catalog_new_user_first_query", &file_first);
    latency_figures("cluster_pg_catalog_new_user_first_query", &pg_first);
    file.stop().await?;
    pg.stop().await?;
    failovers(&url, run_id).await
}

/// A cluster of process-duckling coordinators on `catalog` and one store.
struct Cluster {
    catalog: String,
    storage: tempfile::TempDir,
    key: Vec<u8>,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new(catalog: &str) -> Result<Self> {
        let key = [*uuid::Uuid::new_v4().as_bytes(), *uuid::Uuid::new_v4().as_bytes()].concat();
        Ok(Self {
            catalog: catalog.to_string(),
            storage: tempfile::tempdir()?,
            key,
            dirs: Vec::new(),
        })
    }

    /// Another coordinator, its data directory holding the cluster's key.
    async fn coordinator(&mut self) -> Result<ServerProcess> {
        let dir = tempfile::tempdir()?;
        let key_file = dir.path().join("cluster.key");
        std::fs::write(&key_file, &self.key)?;
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let storage = format!("file://{}", self.storage.path().display());
        let catalog = self.catalog.clone();
        let data_dir = dir.path().to_path_buf();
        let server = ServerProcess::start_with(
            dir.path(),
            &["--ducklings", "process", "--storage", &storage],
            &[(pond_coordinator::CATALOG_ENV, &self.catalog)],
            move || {
                let opened = pond_coordinator::catalog::open(&data_dir, Some(&catalog))?;
                Ok(TokenAuthority::from_secret(&opened.signing_key))
            },
        )
        .await?;
        self.dirs.push(dir);
        Ok(server)
    }
}

/// Time from `since` until `user` reads every row of `t` (`rows`) through `server`.
async fn until_served(server: &ServerProcess, user: &str, rows: i64, since: Instant) -> Result<Duration> {
    loop {
        let answered = async {
            let mut client = server.client(user).await?;
            count(&mut client).await
        }
        .await;
        match answered {
            Ok(n) => {
                anyhow::ensure!(n == rows, "{n} rows after the failover, {rows} acknowledged");
                return Ok(since.elapsed());
            }
            Err(e) if since.elapsed() > GIVE_UP => return Err(e.context("the failover never completed")),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn count(client: &mut PondClient) -> Result<i64> {
    let batches = client.query("SELECT count(*)::BIGINT FROM t").await?;
    only_bigint(&batches).context("count(*) answered no BIGINT")
}

/// The value of a result of one BIGINT row.
fn only_bigint(batches: &[arrow::array::RecordBatch]) -> Option<i64> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .filter(|b| b.num_rows() == 1)?;
    let column = batch.column(0).as_any().downcast_ref::<arrow::array::Int64Array>()?;
    Some(column.value(0))
}

/// A user's table of `rows` rows made through `server`.
async fn make_rows(server: &ServerProcess, user: &str, rows: i64) -> Result<()> {
    let mut client = server.client(user).await?;
    client
        .query(&format!("CREATE TABLE t AS SELECT range AS k FROM range({})", rows - 1))
        .await?;
    client.query(&format!("INSERT INTO t VALUES ({rows})")).await?;
    Ok(())
}

async fn failovers(catalog: &str, run_id: &str) -> Result<()> {
    const ROWS: i64 = 1000;
    let mut cluster = Cluster::new(catalog)?;
    let (mut alone, mut host) = (Vec::new(), Vec::new());
    let mut survivor = cluster.coordinator().await?;
    for round in 0..FAILOVERS * 2 {
        let with_host = round % 2 == 1;
        let doomed = cluster.coordinator().await?;
        let user = format!("failover_{run_id}_{round}");
        make_rows(&doomed, &user, ROWS).await?;
        let killed = Instant::now();
        if with_host {
            doomed.kill_host().await?;
        } else {
            doomed.kill().await?;
        }
        let took = until_served(&survivor, &user, ROWS, killed).await?;
        if with_host { &mut host } else { &mut alone }.push(took);
        // The next round's survivor is a fresh coordinator; this one now holds the leases.
        if round + 1 < FAILOVERS * 2 {
            let next = cluster.coordinator().await?;
            std::mem::replace(&mut survivor, next).stop().await?;
        }
    }
    // A user's duckling process killed under a running coordinator.
    let mut duckling = Vec::new();
    for round in 0..FAILOVERS {
        let user = format!("duckling_{run_id}_{round}");
        make_rows(&survivor, &user, ROWS).await?;
        let pid = duckling_pid(&survivor, &user).await?;
        let killed = Instant::now();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        duckling.push(until_served(&survivor, &user, ROWS, killed).await?);
    }
    survivor.stop().await?;
    drop(cluster);
    for (name, mut v) in [
        ("cluster_coordinator_killed_first_query", alone),
        ("cluster_coordinator_host_killed_first_query", host),
        ("cluster_duckling_killed_first_query", duckling),
    ] {
        v.sort();
        figure(&format!("{name}_p50"), micros(percentile(&v, 0.5)) / 1000.0, "ms");
        figure(
            &format!("{name}_max"),
            micros(*v.last().unwrap_or(&Duration::ZERO)) / 1000.0,
            "ms",
        );
    }
    Ok(())
}

/// The process id of `user`'s duckling under `server`, as the admin sees it.
async fn duckling_pid(server: &ServerProcess, user: &str) -> Result<u32> {
    let mut admin = server.client(pond_coordinator::ADMIN_USER).await?;
    let batches = admin
        .query(&format!(
            "SELECT pid::BIGINT FROM pond_ducklings() WHERE user_name = '{user}' AND NOT read_replica"
        ))
        .await?;
    let pid = only_bigint(&batches).context("the user's duckling is not listed")?;
    Ok(u32::try_from(pid)?)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    micros(a) / micros(b).max(f64::MIN_POSITIVE)
}
