//! `pond bench ducklings`: how fast a duckling starts, and how a server with one duckling per
//! user serves many users at once, in each way ducklings run.
//!
//! Every mode runs the real `pond serve` binary (this executable) on loopback, so process
//! ducklings are real processes and the proxy and direct endpoints are the real code paths.

use std::time::{Duration, Instant};

use anyhow::Result;
use pond_client::PondClient;

use super::process::ServerProcess;
use super::{figure, percentile};

/// Users served at once in the throughput figures.
pub const USERS: usize = 16;

/// New users whose first query measures a cold start (the median is reported).
const COLD_SAMPLES: usize = 5;

/// One `pond serve` child on a fresh data directory.
struct Server {
    process: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        Ok(Self {
            process: ServerProcess::start(dir.path(), args).await?,
            _dir: dir,
        })
    }

    async fn client(&self, user: &str) -> Result<PondClient> {
        self.process.client(user).await
    }

    async fn stop(self) -> Result<()> {
        // SIGTERM: the server drains its ducklings and stops them.
        self.process.stop().await
    }
}

/// How long apart users arrive for the cold-start figure: users of a running server, not a
/// crowd arriving in the same instant (the burst figure measures that). Long enough, as a
/// process, for a stopped duckling's process to exit (it checks once per heartbeat), so the
/// next query starts a duckling as after an idle stop.
const ARRIVALS_APART: Duration = Duration::from_millis(1500);

/// What a user's first query adds to a warm one (medians over users): as a new user (the
/// catalog records them, their default database is created, their duckling starts), and as a
/// known user whose duckling stopped (`SHUTDOWN`, as after the idle timeout): the cold start.
/// Users arrive `apart` from each other (zero: one right after the other's warm queries);
/// `first` numbers the first user.
async fn cold_start(server: &Server, first: usize, users: usize, apart: Duration) -> Result<(Duration, Duration)> {
    let mut new_user = Vec::new();
    let mut cold = Vec::new();
    for u in first..first + users {
        let user = format!("cold_{u}");
        tokio::time::sleep(apart).await;
        let mut client = server.client(&user).await?;
        new_user.push(first_query_extra(&mut client).await?);
        client.query("SHUTDOWN").await?;
        tokio::time::sleep(apart).await;
        let mut client = server.client(&user).await?;
        cold.push(first_query_extra(&mut client).await?);
    }
    new_user.sort();
    cold.sort();
    Ok((percentile(&new_user, 0.5), percentile(&cold, 0.5)))
}

/// The first query's time less the median of 20 that follow it.
async fn first_query_extra(client: &mut PondClient) -> Result<Duration> {
    let t = Instant::now();
    client.query("SELECT 1").await?;
    let first = t.elapsed();
    let mut warm = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        client.query("SELECT 1").await?;
        warm.push(t.elapsed());
    }
    warm.sort();
    Ok(first.saturating_sub(percentile(&warm, 0.5)))
}

/// `USERS` users, one client each, running short queries for `duration`: (queries per second,
/// p99 latency).
async fn throughput(server: &Server, duration: Duration) -> Result<(f64, Duration)> {
    let mut clients = Vec::new();
    for u in 0..USERS {
        let mut c = server.client(&format!("load_{u}")).await?;
        c.query("SELECT 1").await?; // start the duckling before the clock
        clients.push(c);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(u, mut c)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while started.elapsed() < duration {
                    let t = Instant::now();
                    let batches = c.query(&format!("SELECT {u} + {i} AS v")).await?;
                    anyhow::ensure!(batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1);
                    latencies.push(t.elapsed());
                    i += 1;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok((all.len() as f64 / elapsed, percentile(&all, 0.99)))
}

/// Runs the benchmark: `seconds` of load per mode.
pub async fn run(seconds: u64) -> Result<()> {
    let duration = Duration::from_secs(seconds.max(1));
    let modes: [(&str, &[&str]); 3] = [
        ("in_process", &[]),
        ("proxy", &["--ducklings", "process", "--endpoints", "proxy"]),
        ("direct", &["--ducklings", "process", "--endpoints", "direct"]),
    ];
    for (name, args) in modes {
        let server = Server::start(args).await?;
        if name != "direct" {
            let label = if name == "in_process" { "in_process" } else { "process" };
            let (new_user, cold) = cold_start(&server, 0, COLD_SAMPLES, ARRIVALS_APART).await?;
            figure(&format!("ducklings_cold_start_{label}"), cold.as_secs_f64() * 1e3, "ms");
            figure(
                &format!("ducklings_new_user_first_query_{label}"),
                new_user.as_secs_f64() * 1e3,
                "ms",
            );
            let (_, burst) = cold_start(&server, COLD_SAMPLES, COLD_SAMPLES, Duration::ZERO).await?;
            figure(
                &format!("ducklings_cold_start_burst_{label}"),
                burst.as_secs_f64() * 1e3,
                "ms",
            );
        }
        let (qps, p99) = throughput(&server, duration).await?;
        figure(&format!("ducklings_{USERS}_users_qps_{name}"), qps, "queries/s");
        figure(
            &format!("ducklings_{USERS}_users_p99_{name}"),
            p99.as_secs_f64() * 1e3,
            "ms",
        );
        server.stop().await?;
    }
    Ok(())
}
