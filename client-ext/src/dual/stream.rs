//! A query's result as it streams ([`DualSession::query_stream`]): the final query (of a
//! split plan, or the whole query on its one side) runs once its rows are asked for, and its
//! batches reach the caller one by one instead of being collected first.
//!
//! Invariants:
//! - Binding errors come before the stream does: a local final query is prepared, a remote one
//!   planned by the server, before [`DualSession::query_stream`] returns, so a split DuckDB
//!   refuses still falls back to the whole query (`plan.rs`). An error while the rows stream
//!   reaches the caller: rows already handed over cannot be taken back to run the query whole.
//! - The mode is set anew by each statement, and a final query a cancelled call left unread
//!   is let go (its tables with it) before the next statement runs.
//! - The plan's temporary tables live until the stream ends: dropped when it is read to the
//!   end or fails; when it is dropped early, the local ones at once and the remote ones at the
//!   session's next statement (dropping them needs a round trip, which `Drop` cannot await).
//! - The DuckDB result is destroyed before the temporary tables it reads are dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use futures::stream::{BoxStream, LocalBoxStream, StreamExt};
use pond_duckdb::engine::ResultStream;
use pond_proto::dual::{Plan, Side};

use super::plan::Temps;
use super::{DualSession, Outcome, Venue};
use crate::local::LocalDb;
use crate::{ClientError, PondClient};

/// How a statement's final query hands its rows over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// Run it, and collect its rows into the [`Outcome`].
    Collect,
    /// Check that it binds, and leave it for [`DualSession::query_stream`] to read.
    Defer,
}

/// A final query left for the stream: where its rows come from, and the plan's temporary
/// tables to drop once they are read.
pub(super) struct Deferred {
    pub rows: DeferredRows,
    pub temps: Temps,
}

pub(super) enum DeferredRows {
    /// The local query to run (it bound when prepared).
    Local(String),
    /// The remote query's rows, planned by the server.
    Remote(BoxStream<'static, Result<RecordBatch, ClientError>>),
}

/// A query's result, read batch by batch; the session stays borrowed until it drops.
pub struct DualStream<'s> {
    schema: SchemaRef,
    venue: Venue,
    plan: Option<Plan>,
    rows: LocalBoxStream<'s, Result<RecordBatch, ClientError>>,
}

impl DualStream<'_> {
    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    /// Where the query ran.
    pub fn venue(&self) -> Venue {
        self.venue
    }

    /// The plan, for a query split between the two sides.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }
}

impl Stream for DualStream<'_> {
    type Item = Result<RecordBatch, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rows.poll_next_unpin(cx)
    }
}

/// Where the stream's batches come from.
enum Source<'s> {
    /// A statement whose rows were collected anyway (a session command, DDL).
    Collected(std::vec::IntoIter<RecordBatch>),
    Local(ResultStream<'s>),
    Remote(BoxStream<'static, Result<RecordBatch, ClientError>>),
}

impl Source<'_> {
    async fn next(&mut self) -> Option<Result<RecordBatch, ClientError>> {
        match self {
            Self::Collected(batches) => batches.next().map(Ok),
            Self::Local(stream) => stream.next_batch().map_err(ClientError::from).transpose(),
            Self::Remote(stream) => stream.next().await,
        }
    }
}

/// The plan's temporary tables while the stream reads them.
struct Cleanup<'s> {
    local: &'s LocalDb,
    cloud: Option<&'s mut PondClient>,
    temps: Temps,
    /// The session's list of remote tables to drop at its next statement.
    abandoned: &'s mut Vec<String>,
}

impl Cleanup<'_> {
    /// Drops every table now (the stream ended). The remote ones are forgotten only once
    /// dropped: a stream dropped meanwhile leaves them to the next statement.
    async fn finish(&mut self) {
        for t in std::mem::take(&mut self.temps.local) {
            self.local.drop_temp(&t);
        }
        if let Some(cloud) = self.cloud.as_deref_mut() {
            drop_remote_temps(cloud, &self.temps.remote).await;
        }
        self.temps.remote.clear();
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for t in &self.temps.local {
            self.local.drop_temp(t);
        }
        self.abandoned.append(&mut self.temps.remote);
    }
}

/// The stream's state; fields drop in order, the DuckDB result before the tables it reads.
struct Reading<'s> {
    source: Source<'s>,
    cleanup: Cleanup<'s>,
}

/// Drops a plan's remote temporary tables; a failure is logged, the tables go with the session.
pub(super) async fn drop_remote_temps(cloud: &mut PondClient, tables: &[String]) {
    if tables.is_empty() {
        return;
    }
    let drops: Vec<String> = tables
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {}", pond_planner::temp_name(t)))
        .collect();
    if let Err(e) = cloud.execute(&drops.join("; ")).await {
        tracing::warn!(error = %e, "could not drop the plan's temporary tables");
    }
}

impl DualSession {
    /// Runs a statement and streams its rows: a query's final part (a split plan's last
    /// fragment, or the whole query on its one side) runs as the stream is read, so a large
    /// result is never held whole. Other statements' rows come collected. While the stream
    /// lives it borrows the session; dropping it early stops the query.
    pub async fn query_stream(&mut self, sql: &str) -> Result<DualStream<'_>, ClientError> {
        let outcome = self.run_finishing(sql, Finish::Defer).await;
        self.finish = Finish::Collect;
        let deferred = self.deferred.take();
        let Outcome {
            schema,
            batches,
            venue,
            plan,
            ..
        } = outcome?;
        let Self {
            local,
            cloud,
            abandoned_remote_temps,
            ..
        } = self;
        let local: &LocalDb = local;
        let (rows, temps) = match deferred {
            None => (None, Temps::default()),
            Some(Deferred { rows, temps }) => (Some(rows), temps),
        };
        let cleanup = Cleanup {
            local,
            cloud: cloud.as_mut(),
            temps,
            abandoned: abandoned_remote_temps,
        };
        let source = match rows {
            None => Source::Collected(batches.into_iter()),
            // On error `cleanup` drops here, with the tables.
            Some(DeferredRows::Local(sql)) => Source::Local(local.query_stream(&sql)?),
            Some(DeferredRows::Remote(rows)) => Source::Remote(rows),
        };
        let reading = Reading { source, cleanup };
        let rows = futures::stream::unfold(Some(reading), |state| async move {
            let mut reading = state?;
            match reading.source.next().await {
                Some(Ok(batch)) => Some((Ok(batch), Some(reading))),
                Some(Err(e)) => {
                    let Reading { source, mut cleanup } = reading;
                    drop(source);
                    cleanup.finish().await;
                    Some((Err(e), None))
                }
                None => {
                    let Reading { source, mut cleanup } = reading;
                    drop(source);
                    cleanup.finish().await;
                    None
                }
            }
        })
        .boxed_local();
        Ok(DualStream {
            schema,
            venue,
            plan,
            rows,
        })
    }

    /// Checks that `sql` binds on `side` (the server plans a remote query; a local one is
    /// prepared) and leaves it for [`Self::query_stream`]: an [`Outcome`] with its schema and
    /// no rows yet.
    pub(super) async fn defer(&mut self, side: Side, sql: &str) -> Result<Outcome, ClientError> {
        let before = self.link.moved();
        let (schema, rows, venue) = if side == Side::Remote {
            let cloud = self.cloud_client("a remote query")?;
            let (schema, rows) = cloud.query_stream_with_schema(sql).await?;
            (schema, DeferredRows::Remote(rows), Venue::Remote)
        } else {
            let schema = self.local.describe(sql)?;
            (schema, DeferredRows::Local(sql.to_string()), Venue::Local)
        };
        self.deferred = Some(Deferred {
            rows,
            temps: Temps::default(),
        });
        Ok(Outcome {
            schema,
            batches: Vec::new(),
            venue,
            bytes_moved: self.link.moved() - before,
            planning_bytes: 0,
            plan: None,
            is_query: true,
        })
    }

    /// Lets go of what a cancelled call left: a final query nobody will read, and the
    /// temporary tables of a plan it stopped in; local tables now, remote ones with the
    /// abandoned streams'.
    pub(super) fn abandon_leftovers(&mut self) {
        let mut temps = std::mem::take(&mut self.temps);
        if let Some(Deferred { rows, temps: more }) = self.deferred.take() {
            drop(rows);
            temps.local.extend(more.local);
            temps.remote.extend(more.remote);
        }
        for t in &temps.local {
            self.local.drop_temp(t);
        }
        self.abandoned_remote_temps.append(&mut temps.remote);
    }

    /// Drops the remote temporary tables of streams dropped before their end.
    pub(super) async fn drop_abandoned_temps(&mut self) {
        if self.abandoned_remote_temps.is_empty() {
            return;
        }
        let tables = std::mem::take(&mut self.abandoned_remote_temps);
        if let Some(cloud) = self.cloud.as_mut() {
            drop_remote_temps(cloud, &tables).await;
        }
    }
}

#[cfg(test)]
mod tests {
    /// A statement's future can be spawned: no DuckDB handle (appender, result stream) is
    /// held across an await in it.
    #[allow(dead_code)]
    fn runs_are_send(session: &mut super::DualSession) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&session.run("SELECT 1"));
        is_send(&session.query("SELECT 1"));
    }
}
