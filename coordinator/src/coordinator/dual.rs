//! Dual execution's planning on the coordinator's side (see `pond-planner`): the statistics
//! of the caller's cloud tables, measured on the caller's duckling, then the cost model.
//!
//! Invariants:
//! - Only quoted `"database"."schema"."table"` names of the caller's own databases are
//!   measured, on the caller's sandboxed duckling; nothing else runs to measure them.
//! - Measuring reads tables, so it queues for admission like any statement; planning is CPU
//!   work, kept off the async workers.
//! - A table is measured once per snapshot of its database ([`super::dual_statistics`]).

use std::sync::Arc;

use super::Coordinator;
use super::connection::on_connection;
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
        let mut missing = Vec::new();
        for (i, r) in request.relations.iter_mut().enumerate() {
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
            // Read before measuring: a commit meanwhile leaves the measure under the older
            // version, which the next plan does not find.
            let version = session.duckling().attached_version(&parts[0]);
            match version.as_ref().and_then(|v| self.dual_statistics.get(v, &r.source)) {
                Some(stats) => r.statistics = Some(stats),
                None => missing.push((i, r.source.clone(), version)),
            }
        }
        if !missing.is_empty() {
            // What a session's own transaction changed is not the snapshot's to describe.
            let keep = !session.in_transaction();
            // Measuring reads tables: it queues for admission like any statement.
            let measured = on_connection(session, None, move |_, conn| {
                let mut out = Vec::new();
                for (i, source, version) in missing {
                    let schema = conn
                        .prepare(&format!("SELECT * FROM {source} LIMIT 0"))?
                        .result_schema()?;
                    let stats = pond_planner::statistics::collect(&source, &schema, |q| conn.query_all(q))?;
                    out.push((i, source, version, stats));
                }
                Ok(out)
            })
            .await?;
            for (i, source, version, stats) in measured {
                if let Some(version) = version.filter(|_| keep) {
                    self.dual_statistics.put(version, &source, stats.clone());
                }
                request.relations[i].statistics = Some(stats);
            }
        }
        // DataFusion's planning is CPU work; keep it off the async workers.
        tokio::task::spawn_blocking(move || pond_planner::plan(&request))
            .await
            .map_err(|e| CoordinatorError::Internal(format!("the planner failed: {e}")))
    }
}
