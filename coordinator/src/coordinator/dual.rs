//! Dual execution's planning on the coordinator's side (see `pond-planner`): the statistics
//! of the caller's cloud tables, measured on the caller's duckling, then the cost model.
//!
//! Invariants:
//! - Only quoted `"database"."schema"."table"` names of the caller's own databases are
//!   measured, on the caller's sandboxed duckling; nothing else runs to measure them.
//! - Measuring reads tables, so it queues for admission like any statement; planning is CPU
//!   work, kept off the async workers.
//! - A table is measured once per snapshot of its database ([`super::dual_statistics`]), and
//!   afresh inside a transaction (its own changes, on an older snapshot).
//! - The plan returns the statistics it filled in, and only those: the client plans its next
//!   queries over those tables itself, and asks again only for tables it does not know.

use std::sync::Arc;

use super::Coordinator;
use super::connection::{blocking, on_connection};
use super::dual_statistics::DataVersion;
use crate::error::{CoordinatorError, Result};
use crate::session::Session;

impl Coordinator {
    /// Plans a dual-execution query (see `pond-planner`): fills in the statistics of the
    /// caller's cloud tables, measured on the caller's own duckling, then runs the cost model.
    /// Cloud relations must be quoted `"database"."schema"."table"` names of the caller's
    /// databases; nothing else is run to measure them.
    pub async fn plan_dual(
        &self,
        session: &Arc<Session>,
        mut request: pond_planner::PlanRequest,
    ) -> Result<pond_planner::Plan> {
        let allowed = self.catalogs(session.principal())?;
        // (relation, quoted name, database) of the cloud tables to describe.
        let mut wanted = Vec::new();
        for (i, r) in request.relations.iter().enumerate() {
            if r.side != pond_planner::Side::Remote as i32 || r.statistics.is_some() {
                continue;
            }
            let parts = pond_planner::statistics::parse_quoted_name(&r.source).ok_or_else(|| {
                CoordinatorError::InvalidArgument(format!(
                    "a cloud relation must be a quoted \"database\".\"schema\".\"table\" name, not {}",
                    r.source
                ))
            })?;
            if parts.len() != 3 || !allowed.iter().any(|a| a == &parts[0]) {
                return Err(CoordinatorError::NotFound(format!(
                    "database {} does not exist",
                    parts[0]
                )));
            }
            wanted.push((i, r.source.clone(), parts[0].clone()));
        }
        if wanted.is_empty() {
            // The client gave every cloud relation's statistics: it has them already.
            return self.plan_blocking(request).await;
        }
        let filled: Vec<usize> = wanted.iter().map(|(i, _, _)| *i).collect();
        let user = session.principal().user.clone();
        // A transaction sees its own changes on an older snapshot: not what a version names.
        let versions: Vec<Option<DataVersion>> = if session.in_transaction() {
            vec![None; wanted.len()]
        } else {
            // Read on a blocking thread: a commit holds the duckling's attachments while it
            // uploads.
            let duckling = Arc::clone(session.duckling());
            let databases: Vec<String> = wanted.iter().map(|(_, _, db)| db.clone()).collect();
            blocking(move || Ok(databases.iter().map(|db| duckling.attached_version(db)).collect())).await?
        };
        let mut missing = Vec::new();
        for ((i, source, database), version) in wanted.into_iter().zip(versions) {
            match version
                .as_ref()
                .and_then(|v| self.dual_statistics.get(&user, v, &source))
            {
                Some(stats) => request.relations[i].statistics = Some(stats),
                None => missing.push((i, source, database, version)),
            }
        }
        if !missing.is_empty() {
            // Measuring reads tables: it queues for admission like any statement.
            let measured = on_connection(session, None, move |s, conn| {
                let mut out = Vec::new();
                for (i, source, database, version) in missing {
                    let schema = conn
                        .prepare(&format!("SELECT * FROM {source} LIMIT 0"))?
                        .result_schema()?;
                    let stats = pond_planner::statistics::collect(&source, &schema, |q| conn.query_all(q))?;
                    // Kept only if no commit moved the database while it was measured.
                    let unmoved = version.filter(|v| s.duckling().attached_version(&database).as_ref() == Some(v));
                    out.push((i, source, unmoved, stats));
                }
                Ok(out)
            })
            .await?;
            for (i, source, version, stats) in measured {
                self.dual_statistics.counted_a_measure();
                if let Some(version) = version {
                    self.dual_statistics.put(&user, version, &source, stats.clone());
                }
                request.relations[i].statistics = Some(stats);
            }
        }
        // The client plans its next queries over these tables itself (see `cloud_statistics`
        // in `dual.proto`).
        let cloud_statistics = filled
            .into_iter()
            .filter_map(|i| {
                let r = &request.relations[i];
                Some((r.source.clone(), r.statistics.clone()?))
            })
            .collect();
        let mut plan = self.plan_blocking(request).await?;
        plan.cloud_statistics = cloud_statistics;
        Ok(plan)
    }

    /// The cost model, off the async workers: DataFusion's planning is CPU work.
    async fn plan_blocking(&self, request: pond_planner::PlanRequest) -> Result<pond_planner::Plan> {
        tokio::task::spawn_blocking(move || pond_planner::plan(&request))
            .await
            .map_err(|e| CoordinatorError::Internal(format!("the planner failed: {e}")))
    }
}
