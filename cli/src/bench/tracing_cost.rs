//! What tracing costs a server: two real `pond serve` children running side by side, one
//! without an exporter (the shipped default, whose figures are P1's) and one exporting every
//! span (100% sampling) to a real collector, both driven by this process's untraced clients
//! (Pond's, asking for the result inline, and a standard Flight SQL client's two calls).
//!
//! Both servers live through the whole run and are measured in short interleaved rounds, the
//! order flipping each round, so drift on the machine (another process, the collector's own
//! work, frequency changes) falls on both alike: measuring each mode in a process of its own,
//! minutes apart, moved P1 itself by ±15% between runs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use pond_client::PondClient;

use super::process::ServerProcess;
use super::{figure, latency_figures, micros, percentile};

/// Interleaved rounds; each measures `iterations / ROUNDS` round trips of each client on each
/// server.
const ROUNDS: usize = 10;

/// Round trips of each client on each server before anything is measured.
const WARM_UP: usize = 200;

pub async fn run(collector: Option<String>, iterations: usize) -> Result<()> {
    let collector = collector.context(
        "the tracing benchmark exports to a collector: give --otlp-collector http://HOST:4317 (Jaeger, or an \
         OpenTelemetry collector)",
    )?;
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let off = ServerProcess::start(dirs.0.path(), &[]).await?;
    let on = ServerProcess::start_with_env(
        dirs.1.path(),
        &[&format!("--otlp-endpoint={collector}")],
        &[("OTEL_TRACES_SAMPLER", "always_on")],
    )
    .await?;
    let mut modes = [Mode::new("off", &off).await?, Mode::new("on", &on).await?];
    for mode in &mut modes {
        mode.round(WARM_UP, false).await?;
    }
    let per_round = (iterations / ROUNDS).max(1);
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            modes[i].round(per_round, true).await?;
        }
    }
    let [off_mode, on_mode] = &mut modes;
    for (short, off_times, on_times) in [
        ("select1", &mut off_mode.inline, &mut on_mode.inline),
        ("standard_select1", &mut off_mode.standard, &mut on_mode.standard),
    ] {
        off_times.sort();
        on_times.sort();
        latency_figures(&format!("tracing_off_{short}"), off_times);
        latency_figures(&format!("tracing_on_{short}"), on_times);
        figure(
            &format!("tracing_on_over_off_{short}_p50"),
            micros(percentile(on_times, 0.5)) / micros(percentile(off_times, 0.5)),
            "x",
        );
    }
    off.stop().await?;
    on.stop().await
}

/// One server and what was measured on it.
struct Mode {
    client: PondClient,
    inline: Vec<Duration>,
    standard: Vec<Duration>,
}

impl Mode {
    async fn new(name: &str, server: &ServerProcess) -> Result<Self> {
        let client = server
            .client("bench")
            .await
            .with_context(|| format!("connecting to the server with tracing {name}"))?;
        Ok(Self {
            client,
            inline: Vec::new(),
            standard: Vec::new(),
        })
    }

    /// `n` round trips of Pond's client, then `n` of the standard client's two calls (after
    /// the macro's own warm-up); kept when `measured`.
    async fn round(&mut self, n: usize, measured: bool) -> Result<()> {
        for _ in 0..n {
            let t = Instant::now();
            let batches = self.client.query("SELECT 1").await?;
            anyhow::ensure!(batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1);
            if measured {
                self.inline.push(t.elapsed());
            }
        }
        let times = standard_select1!(self.client.flight_sql(), n);
        if measured {
            self.standard.extend(times);
        }
        Ok(())
    }
}
