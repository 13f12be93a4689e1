//! Flight SQL prepared statements: prepared on the session's connection, planned for
//! GetFlightInfo, run as updates once per bound parameter row.
//!
//! Invariants:
//! - Only a single DuckDB statement is prepared: a script's leading statements would run at
//!   prepare time, so a script (and any of Pond's own statements) is kept as text and runs
//!   whole when executed, like a plain statement ([`PreparedBody::AsStatement`]), as are
//!   transaction control and `SET`, so that the session knows its transaction and settings; parameters
//!   bound to it are refused, never dropped. Its announced schema is its last statement's;
//!   when that needs the statements before it, they are rehearsed in a transaction that is
//!   rolled back, so preparing still changes nothing.
//! - A prepared statement's text is classified once, when it is prepared, and the
//!   classification is kept with it.
//! - Preparing never writes, so it does not queue for admission; only a rehearsal takes the write
//!   gate, and commits nothing.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use pond_duckling::{Connection, DucklingError, StatementKind, prepare_script};

use super::Coordinator;
use super::connection::{on_connection, reading_on_connection, run_in_transaction};
use super::history::run_recorded;
use super::pond_statements::result_schema;
use super::pond_views::run_prelude;
use super::statements::{Planned, allowed_kinds, collect};
use crate::classify::{Classification, classify};
use crate::error::{CoordinatorError, Result};
use crate::session::{Access, PendingQuery, PreparedBody, PreparedStatement, Session, SqlQuery};

/// A prepared statement's public description.
#[derive(Debug, Clone)]
pub struct PreparedInfo {
    pub handle: String,
    pub dataset_schema: SchemaRef,
    pub parameter_schema: Schema,
}

/// Whether a statement of `kind` changes rows and reports how many.
fn is_dml(kind: StatementKind) -> bool {
    use StatementKind::*;
    matches!(kind, Insert | Update | Delete | Merge)
}

/// A prepared statement run as plain text takes no parameters: refuse bound ones rather than
/// drop them.
fn refuse_parameters(stmt: &PreparedStatement) -> Result<()> {
    match &stmt.params {
        Some(p) if p.num_columns() > 0 => Err(CoordinatorError::InvalidArgument(
            "parameters cannot be bound to a text of several statements; prepare one statement".into(),
        )),
        _ => Ok(()),
    }
}

/// What preparing on the session's connection gave.
enum Prepared {
    /// One DuckDB statement, or one that runs as a plain statement: described whole.
    Described(PreparedStatement),
    /// A script, kept as text to run whole, whose schema is still to be chosen: `alone` is its
    /// last statement's prepared alone, when it can be.
    Script {
        stmt: PreparedStatement,
        alone: Option<SchemaRef>,
    },
}

/// Prepares `sql` on `conn`: one DuckDB statement, or a script kept as text to run whole.
fn prepare_on(conn: &Connection, sql: String, statement: Classification) -> Result<Prepared> {
    let prepared = match pond_duckling::prepare_checked(conn, &sql, &pond_duckling::any_kind) {
        Ok(prepared) => prepared,
        // Only DuckDB's own refusal to prepare several statements: a sandbox refusal stands,
        // and refused text never reaches DuckDB's parser.
        Err(e @ DucklingError::Sql { .. }) if conn.extract(&sql).is_ok_and(|statements| statements.len() > 1) => {
            tracing::debug!(error = %e, "a multi-statement text, prepared as text");
            let alone = pond_duckling::lexer::last_statement(&sql).and_then(|last| {
                let prepared = pond_duckling::prepare_checked(conn, last, &pond_duckling::any_kind).ok()?;
                Some(pond_duckling::describe(&prepared, 1).ok()?.dataset_schema)
            });
            let stmt = PreparedStatement {
                sql,
                dataset_schema: Arc::new(Schema::empty()),
                parameter_schema: Schema::empty(),
                params: None,
                body: PreparedBody::AsStatement,
                classification: statement,
            };
            return Ok(Prepared::Script { stmt, alone });
        }
        Err(e) => return Err(e.into()),
    };
    let described = pond_duckling::describe(&prepared, 1)?;
    // `BEGIN`, `COMMIT`, `ROLLBACK` and `SET` run as plain statements, which keep the
    // session's transaction and settings (and its connection) with them.
    let body = if statement.transaction_control.is_some() || statement.changes_settings {
        PreparedBody::AsStatement
    } else {
        PreparedBody::Statement(described.kind)
    };
    Ok(Prepared::Described(PreparedStatement {
        sql,
        dataset_schema: described.dataset_schema,
        parameter_schema: prepared.param_schema()?,
        params: None,
        body,
        classification: statement,
    }))
}

/// Whether a statement before the script's last changes the catalog: the last one prepared
/// alone would then be prepared against the catalog before it.
fn changes_the_catalog_before_its_last(sql: &str) -> bool {
    let statements = pond_duckling::lexer::statements(sql).unwrap_or_default();
    statements.split_last().is_some_and(|(_, earlier)| {
        earlier
            .iter()
            .any(|text| pond_duckling::duckling::changes_the_catalog(text))
    })
}

/// A script's result schema learnt by rehearsing it ([`pond_duckling::Duckling::rehearse`]) on
/// a connection of its own, with `prelude` run first; `None` when it cannot be rehearsed. Like
/// any work on a session's connection, a cancel, `--query-timeout` or a caller that leaves
/// interrupts it.
async fn rehearse(session: &Arc<Session>, sql: &str, prelude: Option<String>) -> Option<SchemaRef> {
    let sql = sql.to_string();
    let rehearsed = reading_on_connection(session, Access::Fresh, move |s, conn| {
        run_prelude(conn, prelude.as_deref())?;
        Ok(s.duckling().rehearse(conn, &sql, &allowed_kinds(s.principal()))?)
    })
    .await;
    match rehearsed {
        Ok(schema) => Some(schema),
        Err(e) => {
            tracing::debug!(error = %e, "a script's result schema is announced empty: no rehearsal");
            None
        }
    }
}

/// A script's result is its last statement's, and JDBC reads an empty schema as "no result
/// set". Its schema is `alone` (the last statement prepared alone), or a rehearsal's (when
/// `may_rehearse`, with `prelude` first) when that needs the statements before it, or when one
/// of them changes the catalog; empty when neither tells.
async fn script_schema(
    session: &Arc<Session>,
    sql: &str,
    alone: Option<SchemaRef>,
    may_rehearse: bool,
    prelude: Option<String>,
) -> SchemaRef {
    let schema = match alone {
        Some(alone) if may_rehearse && changes_the_catalog_before_its_last(sql) => {
            Some(rehearse(session, sql, prelude).await.unwrap_or(alone))
        }
        None if may_rehearse => rehearse(session, sql, prelude).await,
        alone => alone,
    };
    schema.unwrap_or_else(|| Arc::new(Schema::empty()))
}

impl Coordinator {
    /// Creates a Flight SQL prepared statement. One that cannot be prepared is in the history
    /// as a failed statement: the client ran it, and it failed.
    pub async fn prepare(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
    ) -> Result<PreparedInfo> {
        let prepared = self.prepare_unrecorded(session, sql, transaction).await;
        if let Err(e) = &prepared {
            let kind = classify(sql).map_or_else(|_| "UNKNOWN".to_string(), |c| c.kind);
            self.record(session, &session.new_query_id(), sql, &kind, transaction)
                .done(Some(e));
        }
        prepared
    }

    async fn prepare_unrecorded(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sql: &str,
        transaction: Option<&str>,
    ) -> Result<PreparedInfo> {
        let statement = classify(sql)?;
        let stmt = if let Some(cmd) = &statement.command {
            let schema = result_schema(cmd);
            PreparedStatement {
                sql: sql.to_string(),
                dataset_schema: schema,
                parameter_schema: Schema::empty(),
                params: None,
                body: PreparedBody::AsStatement,
                classification: statement,
            }
        } else {
            self.follow_latest(session).await?;
            self.fill_information_schema_for(session, &statement).await?;
            let prelude = self.prelude_for(session, &statement)?;
            let sql = sql.to_string();
            let txn = transaction.map(str::to_string);
            // A rehearsal runs a script in a transaction of its own that it rolls back: not
            // inside the caller's.
            let may_rehearse = txn.is_none() && statement.transaction_control.is_none();
            let prepared = {
                let prelude = prelude.clone();
                reading_on_connection(session, txn, move |_, conn| {
                    run_prelude(conn, prelude.as_deref())?;
                    prepare_on(conn, sql, statement)
                })
                .await?
            };
            match prepared {
                Prepared::Described(stmt) => stmt,
                Prepared::Script { mut stmt, alone } => {
                    let may_rehearse = may_rehearse && !session.in_transaction();
                    stmt.dataset_schema = script_schema(session, &stmt.sql, alone, may_rehearse, prelude).await;
                    stmt
                }
            }
        };
        let info = PreparedInfo {
            handle: String::new(),
            dataset_schema: Arc::clone(&stmt.dataset_schema),
            parameter_schema: stmt.parameter_schema.clone(),
        };
        let handle = session.add_prepared(stmt);
        Ok(PreparedInfo { handle, ..info })
    }

    /// Plans a prepared query for GetFlightInfo, recorded in the history.
    pub async fn plan_prepared(self: &Arc<Self>, session: &Arc<Session>, handle: &str) -> Result<Planned> {
        let stmt = session.prepared(handle)?;
        let query_id = session.new_query_id();
        let recorded = self.record(session, &query_id, &stmt.sql, &stmt.classification.kind, None);
        run_recorded(session, recorded, self.plan_prepared_recorded(session, stmt, query_id)).await
    }

    async fn plan_prepared_recorded(
        self: &Arc<Self>,
        session: &Arc<Session>,
        stmt: PreparedStatement,
        query_id: String,
    ) -> Result<Planned> {
        // Run as a plain statement (its transaction control, prelude, write gate and DuckDB's own
        // result, empty for DDL): scripts, Pond's commands, and statements that are neither a
        // query nor an update. That path follows the latest snapshot itself.
        let as_statement = match stmt.body {
            PreparedBody::AsStatement => true,
            PreparedBody::Statement(kind) => stmt.dataset_schema.fields().is_empty() && !is_dml(kind),
        };
        if as_statement {
            refuse_parameters(&stmt)?;
            return self
                .plan_recorded(session, &stmt.sql, stmt.classification.clone(), None, None, query_id)
                .await;
        }
        self.follow_latest(session).await?;
        self.fill_information_schema_for(session, &stmt.classification).await?;
        if stmt.dataset_schema.fields().is_empty() {
            // An update run through the query path: run it now, report the count.
            let rows = self.execute_prepared_recorded(session, stmt).await?;
            let schema = Arc::new(Schema::new(vec![Field::new("Count", DataType::Int64, true)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(arrow::array::Int64Array::from(vec![rows])) as ArrayRef],
            )
            .map_err(DucklingError::from)?;
            let query_id = session.park_as(
                query_id,
                PendingQuery::Ready {
                    schema: Arc::clone(&schema),
                    batches: vec![batch],
                },
            );
            return Ok(Planned::parked(query_id, schema));
        }
        if stmt
            .dataset_schema
            .fields()
            .iter()
            .any(|f| f.data_type() == &DataType::Null)
        {
            // A result type hangs on a parameter type DuckDB only learns from the bound value
            // (`SELECT ? AS v`): run now, so the FlightInfo announces the real schema.
            let pending = on_connection(session, None, move |s, conn| {
                let (mut prepared, _) = prepare_script(conn, &stmt.sql, &allowed_kinds(s.principal()))?;
                collect(&mut prepared, stmt.params.as_ref(), s.limits())
            })
            .await?;
            let schema = pending.schema();
            let query_id = session.park_as(query_id, pending);
            return Ok(Planned::parked(query_id, schema));
        }
        let schema = Arc::clone(&stmt.dataset_schema);
        let prelude = self.prelude_for(session, &stmt.classification)?;
        let query_id = session.park_as(
            query_id,
            PendingQuery::Sql(SqlQuery {
                sql: stmt.sql,
                prelude,
                params: stmt.params,
                transaction: None,
                schema: Arc::clone(&schema),
                advances_a_sequence: stmt.classification.advances_a_sequence,
                names_temporary: stmt.classification.names_temporary,
            }),
        );
        Ok(Planned::parked(query_id, schema))
    }

    /// Runs a prepared update once per bound parameter row; returns the total rows changed.
    /// Recorded in the history.
    pub async fn execute_prepared_update(self: &Arc<Self>, session: &Arc<Session>, handle: &str) -> Result<i64> {
        let stmt = session.prepared(handle)?;
        let recorded = self.record(
            session,
            &session.new_query_id(),
            &stmt.sql,
            &stmt.classification.kind,
            None,
        );
        run_recorded(session, recorded, self.execute_prepared_recorded(session, stmt)).await
    }

    async fn execute_prepared_recorded(
        self: &Arc<Self>,
        session: &Arc<Session>,
        stmt: PreparedStatement,
    ) -> Result<i64> {
        if stmt.body == PreparedBody::AsStatement {
            refuse_parameters(&stmt)?;
            return self
                .execute_recorded(session, &stmt.sql, stmt.classification.clone(), None)
                .await;
        }
        on_connection(session, None, move |s, conn| {
            let (mut prepared, _) = prepare_script(conn, &stmt.sql, &allowed_kinds(s.principal()))?;
            match &stmt.params {
                None => Ok(prepared.execute()? as i64),
                Some(params) => {
                    let mut total = 0i64;
                    run_in_transaction(conn, s.in_transaction(), || {
                        for row in 0..params.num_rows() {
                            prepared.bind_row(params, row)?;
                            total += prepared.execute()? as i64;
                        }
                        Ok(())
                    })?;
                    Ok(total)
                }
            }
        })
        .await
    }
}
