//! Mixed queries: the coordinator's plan, checked here, then carried out.
//!
//! Relations become fixed-width placeholders (`__pond_ref_000`…), the coordinator's cost model
//! (`pond-planner`) returns a `pond.dual.v1.Plan`, bridges move reduced relations into
//! temporary tables (downloads are Flight streams appended through the Arrow interface;
//! uploads are ingests into session-scoped temporary tables), and the query runs on the
//! chosen side with each placeholder replaced by the plan's name for it.
//!
//! Invariants:
//! - A plan is checked before anything of it runs: SQL from the server reaches the local
//!   (unsandboxed) DuckDB only if it reads the query's own local relations (`check_plan`).
//! - Every temporary table a plan creates is dropped when its statement ends, on success or error.
//! - A read-only token's mixed queries fall back to a plan that only downloads.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pond_proto::dual::{Bridge, Plan, PlanRequest, Relation, Side};

use super::routing::{Rel, with_alias};
use super::user_error::{splice, splice_mapped};
use super::{DualSession, Outcome, Venue};
use crate::ClientError;
use crate::analyze::{self, QueryShape};

/// What running a dual plan measured, for `EXPLAIN ANALYZE`.
#[derive(Debug, Default)]
pub(super) struct Measured {
    /// Each bridge's target, rows, bytes moved and time.
    pub bridges: Vec<(String, u64, u64, Duration)>,
    pub local_time: Duration,
    pub remote_time: Duration,
    pub result_bytes: u64,
}

/// Placeholder names are fixed-width so no one is a prefix of another.
fn placeholder(i: usize) -> String {
    format!("__pond_ref_{i:03}")
}

impl DualSession {
    pub(super) fn plan_request(
        &self,
        text: &str,
        shape: &QueryShape,
        rels: &[Rel],
    ) -> Result<PlanRequest, ClientError> {
        let mut edits = Vec::new();
        let mut relations = Vec::new();
        for (i, r) in rels.iter().enumerate() {
            let name = placeholder(i);
            edits.push((r.span, with_alias(&name, &r.alias)));
            let statistics = if r.side == Side::Local {
                let schema = self.local.describe(&format!("SELECT * FROM {}", r.source))?;
                Some(pond_planner::statistics::collect(&r.source, &schema, |q| {
                    self.local.query(q).map(|(_, b)| b)
                })?)
            } else if pond_planner::statistics::parse_quoted_name(&r.source).is_some() {
                None
            } else {
                // A remote reader: the coordinator measures only tables; plan it blind.
                Some(Default::default())
            };
            relations.push(Relation {
                name,
                side: r.side as i32,
                source: r.source.clone(),
                statistics,
            });
        }
        Ok(PlanRequest {
            sql: splice(text, edits),
            relations,
            run: self.run.as_str().to_string(),
            column_names: shape.columns.iter().cloned().collect(),
            star: shape.star,
            downloads_only: false,
        })
    }

    pub(super) async fn run_dual(
        &mut self,
        text: &str,
        shape: &QueryShape,
        rels: &[Rel],
    ) -> Result<(Outcome, Measured), ClientError> {
        let mut request = self.plan_request(text, shape, rels)?;
        let before = self.link.moved();
        let mut plan = self.cloud_client("a query on cloud data")?.plan_dual(&request).await?;
        self.check_plan(&request, &plan)?;
        let mut measured = Measured::default();
        let mut local_temps = Vec::new();
        let mut remote_temps = Vec::new();
        let mut result = self
            .execute_plan(&plan, text, rels, &mut measured, &mut local_temps, &mut remote_temps)
            .await;
        // A read-only token may not upload: such a user's mixed queries run locally.
        let uploads = plan.bridges.iter().any(|b| b.from == Side::Local as i32);
        if uploads
            && request.run != "local"
            && result.as_ref().err().and_then(ClientError::code) == Some(tonic::Code::PermissionDenied)
        {
            request.run = "local".into();
            request.downloads_only = true;
            plan = self.cloud_client("a query on cloud data")?.plan_dual(&request).await?;
            self.check_plan(&request, &plan)?;
            if plan.bridges.iter().all(|b| b.from == Side::Remote as i32) {
                measured = Measured::default();
                result = self
                    .execute_plan(&plan, text, rels, &mut measured, &mut local_temps, &mut remote_temps)
                    .await;
            }
        }
        for t in &local_temps {
            self.local.drop_temp(t);
        }
        if !remote_temps.is_empty()
            && let Some(cloud) = self.cloud.as_mut()
        {
            let drops: Vec<String> = remote_temps
                .iter()
                .map(|t| format!("DROP TABLE IF EXISTS {}", pond_planner::temp_name(t)))
                .collect();
            if let Err(e) = cloud.execute(&drops.join("; ")).await {
                tracing::warn!(error = %e, "could not drop the plan's temporary tables");
            }
        }
        let (schema, batches) = result?;
        let outcome = Outcome {
            schema,
            batches,
            venue: Venue::Dual,
            bytes_moved: self.link.moved() - before,
            plan: Some(plan),
            is_query: true,
        };
        Ok((outcome, measured))
    }

    /// Refuses a plan that would make the local DuckDB do more than the query asked: the local
    /// DuckDB is not sandboxed, so SQL from the server runs here only if it reads nothing but
    /// the query's own local relations and the plan's key tables, through comparison, boolean,
    /// `LIKE` and cast operators, and final names are the relations' own or the plan's temps.
    fn check_plan(&self, request: &PlanRequest, plan: &Plan) -> Result<(), ClientError> {
        let refuse = |what: String| ClientError::Invalid(format!("refused a plan from the server: {what}"));
        let source_of = |name: &str| request.relations.iter().find(|r| r.name == name);
        for (name, replacement) in &plan.names {
            let relation = source_of(name).ok_or_else(|| refuse(format!("unknown relation {name}")))?;
            if *replacement != relation.source && *replacement != pond_planner::temp_name(name) {
                return Err(refuse(format!("{name} read as {replacement}")));
            }
        }
        let local_sources: Vec<&str> = request
            .relations
            .iter()
            .filter(|r| r.side == Side::Local as i32)
            .map(|r| r.source.as_str())
            .collect();
        for bridge in &plan.bridges {
            if !bridge.target.starts_with("__pond_") {
                return Err(refuse(format!("temporary table {}", bridge.target)));
            }
            if bridge.from != Side::Local as i32 {
                continue;
            }
            let sql = bridge.sql.as_str();
            let shape = analyze::analyze(sql, &self.local.serialize(sql)?).map_err(|e| refuse(e.to_string()))?;
            let mut allowed_spans = Vec::new();
            for t in &shape.tables {
                let written = &sql[t.span.0..t.span.1];
                let keys = t.catalog.eq_ignore_ascii_case("temp") && t.table.starts_with("__pond_keys_");
                if !keys && !local_sources.contains(&written) {
                    return Err(refuse(format!("a bridge reads {written}")));
                }
            }
            for f in &shape.functions {
                let call = f.span.map(|(a, b)| &sql[a..b]);
                match (f.span, call) {
                    (Some(span), Some(call)) if local_sources.contains(&call) => allowed_spans.push(span),
                    _ => return Err(refuse(format!("a bridge calls {}", f.name))),
                }
            }
            const OPERATORS: &[&str] = &[
                "~~",
                "!~~",
                "~~*",
                "!~~*",
                "like_escape",
                "not_like_escape",
                "ilike_escape",
                "not_ilike_escape",
            ];
            for (name, at) in &shape.calls {
                let inside_source = allowed_spans.iter().any(|(a, b)| at >= a && at < b);
                if !inside_source && !OPERATORS.contains(&name.as_str()) {
                    return Err(refuse(format!("a bridge calls {name}")));
                }
            }
        }
        Ok(())
    }

    /// Moves one bridge's rows into its temporary table, recording the table to drop; returns
    /// the rows moved.
    async fn run_bridge(
        &mut self,
        bridge: &Bridge,
        local_temps: &mut Vec<String>,
        remote_temps: &mut Vec<String>,
    ) -> Result<u64, ClientError> {
        if bridge.from == Side::Remote as i32 {
            let cloud = self.cloud_client("a download")?;
            let (schema, batches) = cloud.query_with_schema(&bridge.sql).await?;
            local_temps.push(bridge.target.clone());
            self.local.load_temp(&bridge.target, &schema, &batches)
        } else {
            let (schema, batches) = self.local.query(&bridge.sql)?;
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            remote_temps.push(bridge.target.clone());
            self.cloud_client("an upload")?
                .upload_temp(&bridge.target, schema, batches)
                .await?;
            Ok(rows)
        }
    }

    async fn execute_plan(
        &mut self,
        plan: &Plan,
        text: &str,
        rels: &[Rel],
        measured: &mut Measured,
        local_temps: &mut Vec<String>,
        remote_temps: &mut Vec<String>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        for bridge in &plan.bridges {
            let started = Instant::now();
            let before = self.link.moved();
            let rows = self.run_bridge(bridge, local_temps, remote_temps).await?;
            measured.bridges.push((
                bridge.target.clone(),
                rows,
                self.link.moved() - before,
                started.elapsed(),
            ));
        }
        // Each relation's placeholder becomes the plan's name for it, spliced at the offsets
        // the placeholder was, so errors can point into the user's text.
        let edits = rels
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = placeholder(i);
                let replacement = plan.names.get(&name).unwrap_or(&name);
                (r.span, with_alias(replacement, &r.alias))
            })
            .collect();
        let final_sql = splice_mapped(text, edits);
        let started = Instant::now();
        if plan.run_on == Side::Remote as i32 {
            let before = self.link.moved();
            let result = self
                .cloud_client("a remote query")?
                .query_with_schema(&final_sql.sql)
                .await
                .map_err(|e| final_sql.user_error(text, e))?;
            measured.remote_time += started.elapsed();
            measured.result_bytes = self.link.moved() - before;
            Ok(result)
        } else {
            let result = self
                .local
                .query(&final_sql.sql)
                .map_err(|e| final_sql.user_error(text, e))?;
            measured.local_time += started.elapsed();
            Ok(result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_plans_that_reach_beyond_the_query() {
        let session = DualSession::open(None, None).await.unwrap();
        session
            .local
            .execute("CREATE TABLE customers AS SELECT 1 AS id")
            .unwrap();
        let request = PlanRequest {
            sql: "SELECT * FROM __pond_ref_000".into(),
            relations: vec![Relation {
                name: "__pond_ref_000".into(),
                side: Side::Local as i32,
                source: "customers".into(),
                statistics: None,
            }],
            ..Default::default()
        };
        let bridge = |sql: &str| Plan {
            bridges: vec![pond_proto::dual::Bridge {
                from: Side::Local as i32,
                sql: sql.into(),
                target: "__pond_ref_000".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ok = bridge(
            "SELECT \"id\" FROM customers WHERE (\"id\" > 1) AND \"id\" IN (SELECT \"k\" FROM temp.main.\"__pond_keys_ref_000\")",
        );
        session.check_plan(&request, &ok).unwrap();
        for evil in [
            "SELECT * FROM read_text('/etc/passwd')",
            "SELECT \"id\" FROM customers WHERE getenv('HOME') IS NOT NULL",
            "SELECT * FROM other_table",
        ] {
            assert!(session.check_plan(&request, &bridge(evil)).is_err(), "{evil}");
        }
        let mut renamed = Plan::default();
        renamed
            .names
            .insert("__pond_ref_000".into(), "read_text('/etc/passwd')".into());
        assert!(session.check_plan(&request, &renamed).is_err());
    }
}
