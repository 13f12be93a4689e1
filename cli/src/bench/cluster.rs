//! What the shared catalog costs: the same in-process server on the embedded catalog and on
//! PostgreSQL (`--catalog`), measured alternately in one run. The query path must not touch the
//! catalog (P1 must not move); a new user's first query does (their row and default database
//! are made), and is reported apart.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_coordinator::CatalogUrl;

use super::{BenchServer, figure, latency_figures, micros, percentile};

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
    let mut pg = BenchServer::start_with(|c| c.catalog_url = Some(CatalogUrl(url))).await?;
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
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    micros(a) / micros(b).max(f64::MIN_POSITIVE)
}
