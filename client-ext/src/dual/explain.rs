//! `EXPLAIN [ANALYZE]` of a dual query: Pond's plan (where each relation is read, what
//! crosses the network, the estimates behind the choice) rather than DuckDB's, and with
//! `ANALYZE` what running it measured.
//!
//! Invariant: `EXPLAIN` without `ANALYZE` runs nothing and moves no table data (it may probe the
//! link and learn cloud relations' schemas, as planning a run does, so it shows the plan a run
//! would choose); a local-only query is planned here without asking the server.

use std::time::Instant;

use super::routing::{Rel, assign_sides};
use super::stream::Finish;
use super::{DualSession, Outcome, RunMode, Venue};
use crate::ClientError;
use crate::analyze::{self, QueryShape};
use pond_proto::dual::Side;

impl DualSession {
    /// `statement` is the whole `EXPLAIN [ANALYZE] query`.
    pub(super) async fn explain(
        &mut self,
        statement: &str,
        query: &str,
        analyze_run: bool,
    ) -> Result<Outcome, ClientError> {
        let json = self.local.serialize(query)?;
        let shape = match analyze::analyze(query, &json) {
            Ok(shape) => shape,
            // DuckDB's own EXPLAIN of the statement as typed, so its errors quote the user.
            Err(_) => return self.run_local(statement),
        };
        let rels = assign_sides(self.resolve(query, &shape));
        let has_remote = rels.iter().any(|r| r.side == Side::Remote);
        let has_local = rels.iter().any(|r| r.side == Side::Local);
        if !has_remote && self.run != RunMode::Remote {
            // Local-only: planned here, nothing crosses the network.
            let mut request = self.plan_request(query, &shape, &rels)?.request;
            request.run = "local".into();
            request.explain = true;
            let plan = pond_planner::plan(&request);
            let mut text = plan.explain.clone();
            if analyze_run {
                let started = Instant::now();
                let outcome = self.run_local(query)?;
                text += &format!(
                    "Actual: {} rows; 0 B moved; local {:.1} ms\n",
                    outcome.num_rows(),
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
            return Ok(Outcome::lines(Venue::Local, "explain", &text, Some(plan)));
        }
        if !analyze_run {
            // The plan shown is the plan a run would choose: over the same measured link.
            self.probe_link().await?;
            self.learn_cloud_schemas(&shape, &rels).await?;
            let mut request = self.plan_request(query, &shape, &rels)?.request;
            request.explain = true;
            if !has_local && self.run != RunMode::Local {
                request.run = "remote".into();
            }
            let (plan, _) = self.plan(&request).await?;
            let text = plan.explain.clone();
            return Ok(Outcome::lines(Venue::Dual, "explain", &text, Some(plan)));
        }
        self.explain_analyze_dual(query, &shape, &rels, has_local).await
    }

    /// `EXPLAIN ANALYZE` of a query that reads the cloud: the plan, run, with what each part
    /// measured.
    async fn explain_analyze_dual(
        &mut self,
        query: &str,
        shape: &QueryShape,
        rels: &[Rel],
        has_local: bool,
    ) -> Result<Outcome, ClientError> {
        let saved = self.run;
        if !has_local && self.run == RunMode::Auto {
            self.run = RunMode::Remote;
        }
        let started = Instant::now();
        let result = self.run_dual(query, shape, rels, Finish::Collect, true).await;
        self.run = saved;
        let (outcome, measured) = result?;
        let plan = outcome.plan.clone().unwrap_or_default();
        let mut text = plan.explain.clone();
        text += &format!(
            "Actual: {} rows; {} moved in total; {:.1} ms\n",
            outcome.num_rows(),
            pond_planner::human_bytes(outcome.bytes_moved as f64),
            started.elapsed().as_secs_f64() * 1e3
        );
        // Beside each bridge's estimate, so a misestimate that chose the plan shows.
        for (i, (target, rows, bytes, time, inline)) in measured.bridges.iter().enumerate() {
            let estimate = plan
                .bridges
                .get(i)
                .filter(|b| &b.target == target)
                .map(|b| {
                    format!(
                        " (estimated ~{:.0} rows, ~{})",
                        b.estimated_rows,
                        pond_planner::human_bytes(b.estimated_bytes)
                    )
                })
                .unwrap_or_default();
            let moved = match inline {
                true => "inline in the remote SQL".to_string(),
                false => pond_planner::human_bytes(*bytes as f64),
            };
            text += &format!(
                "Actual bridge {}: {target}: {rows} rows, {moved} in {:.1} ms{estimate}\n",
                i + 1,
                time.as_secs_f64() * 1e3
            );
        }
        text += &format!(
            "Actual time: local {:.1} ms, remote {:.1} ms; result download {}\n",
            measured.local_time.as_secs_f64() * 1e3,
            measured.remote_time.as_secs_f64() * 1e3,
            pond_planner::human_bytes(measured.result_bytes as f64)
        );
        Ok(Outcome::lines(Venue::Dual, "explain", &text, Some(plan)))
    }
}
