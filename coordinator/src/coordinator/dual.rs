//! Dual execution's planning on the coordinator's side (see `pond-planner`): the statistics
//! of the caller's cloud tables, measured on the caller's duckling, then the cost model.
//!
//! Invariants:
//! - Only quoted `"database"."schema"."table"` names of the caller's own databases are
//!   measured, on the caller's sandboxed duckling; nothing else runs to measure them.
//! - Measuring reads tables, so it queues for admission like any statement; planning is CPU
//!   work, kept off the async workers.

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
            missing.push((i, r.source.clone()));
        }
        if !missing.is_empty() {
            // Measuring reads tables: it queues for admission like any statement.
            let measured = on_connection(session, None, move |_, conn| {
                let mut out = Vec::new();
                for (i, source) in missing {
                    let schema = conn
                        .prepare(&format!("SELECT * FROM {source} LIMIT 0"))?
                        .result_schema()?;
                    let stats = pond_planner::statistics::collect(&source, &schema, |q| conn.query_all(q))?;
                    out.push((i, stats));
                }
                Ok(out)
            })
            .await?;
            for (i, stats) in measured {
                request.relations[i].statistics = Some(stats);
            }
        }
        // DataFusion's planning is CPU work; keep it off the async workers.
        tokio::task::spawn_blocking(move || pond_planner::plan(&request))
            .await
            .map_err(|e| CoordinatorError::Internal(format!("the planner failed: {e}")))
    }
}
