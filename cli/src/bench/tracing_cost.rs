//! What tracing costs: the flight benchmark's `SELECT 1` round trips (Pond's client, and a
//! standard Flight SQL client's two calls), run in child processes alternately without an
//! exporter and exporting every span (100% sampling) to a real collector, measured in the same
//! run. Off is the shipped default and the baseline: its figures are P1's.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::figure;

/// The figures compared, as the flight benchmark prints them.
const COMPARED: [&str; 2] = ["flight_select1_p50", "flight_standard_select1_p50"];

/// Rounds of each mode, interleaved; each mode's figure is its median round.
const ROUNDS: usize = 3;

pub async fn run(collector: Option<String>, iterations: usize) -> Result<()> {
    let collector = collector.context(
        "the tracing benchmark exports to a collector: give --otlp-collector http://HOST:4317 (Jaeger, or an \
         OpenTelemetry collector)",
    )?;
    let mut off: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut on: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for (exporting, into) in [(false, &mut off), (true, &mut on)] {
            let figures = flight_round_trips(exporting.then_some(collector.as_str()), iterations).await?;
            for name in COMPARED {
                let value = *figures
                    .get(name)
                    .with_context(|| format!("the flight benchmark printed no {name}"))?;
                into.entry(name).or_default().push(value);
            }
        }
    }
    for name in COMPARED {
        let (off, on) = (median(&off[name]), median(&on[name]));
        let short = name.trim_start_matches("flight_").trim_end_matches("_p50");
        figure(&format!("tracing_off_{short}_p50"), off, "us");
        figure(&format!("tracing_on_{short}_p50"), on, "us");
        figure(&format!("tracing_on_over_off_{short}_p50"), on / off, "x");
    }
    Ok(())
}

/// Runs `pond bench flight` (round trips, little streaming) in a child process, exporting to
/// `collector` when given; returns the figures it printed.
async fn flight_round_trips(collector: Option<&str>, iterations: usize) -> Result<BTreeMap<String, f64>> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .args(["bench", "flight", "--rows", "100000", "--iterations"])
        .arg(iterations.to_string())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("OTEL_TRACES_SAMPLER", "always_on");
    if let Some(collector) = collector {
        command.arg(format!("--otlp-endpoint={collector}"));
    }
    let out = command.output().await.context("running the flight benchmark")?;
    if !out.status.success() {
        bail!("the flight benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            let value = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
