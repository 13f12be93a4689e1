//! The front door: the gRPC `FlightService` clients talk to.
//!
//! It authenticates every call (the handshake excepted), attaches the [`CallContext`], delegates
//! to the Flight SQL handlers, and sets the session cookie on responses that created a session.
//! It also serves what arrow-flight's Flight SQL dispatch leaves out: `PollFlightInfo`,
//! `GetSchema` and `ListFlights`.

use std::sync::Arc;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use pond_coordinator::Coordinator;
use tonic::{Request, Response, Status, Streaming};

use crate::context::{CallContext, bearer, session_cookie};
use crate::service::PondFlightSql;
use crate::status::{FlightSqlError, answer};

/// The gRPC service: authentication and session cookies around [`PondFlightSql`].
#[derive(Clone)]
pub struct FrontDoor {
    sql: Arc<PondFlightSql>,
}

impl FrontDoor {
    /// Wraps the Flight SQL handlers.
    pub fn new(sql: Arc<PondFlightSql>) -> Self {
        Self { sql }
    }

    fn coordinator(&self) -> &Arc<Coordinator> {
        self.sql.coordinator()
    }

    fn authenticate<T>(&self, request: &mut Request<T>) -> Result<CallContext, FlightSqlError> {
        let token = bearer(request.metadata()).ok_or(FlightSqlError::Unauthenticated)?;
        let principal = self.coordinator().authenticate(&token)?;
        let ctx = CallContext::new(
            principal,
            Arc::clone(self.coordinator()),
            session_cookie(request.metadata()),
        );
        request.extensions_mut().insert(ctx.clone());
        Ok(ctx)
    }
}

fn with_cookie<T>(ctx: &CallContext, mut response: Response<T>) -> Response<T> {
    if let Some(cookie) = ctx.new_session_cookie()
        && let Ok(v) = cookie.parse()
    {
        response.metadata_mut().insert("set-cookie", v);
    }
    response
}

#[tonic::async_trait]
impl FlightService for FrontDoor {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(self.sql.as_ref(), request).await
    }

    async fn list_flights(&self, mut request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.authenticate(&mut request)?;
        // Results are reached through queries, not as named flights: there is nothing to list.
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }

    async fn get_flight_info(&self, mut request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let ctx = self.authenticate(&mut request)?;
        let response = FlightService::get_flight_info(self.sql.as_ref(), request).await?;
        Ok(with_cookie(&ctx, response))
    }

    async fn poll_flight_info(&self, mut request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let ctx = self.authenticate(&mut request)?;
        // Planning completes before GetFlightInfo returns (the query itself runs as it streams),
        // so the first poll is already final: progress 1.0 and no descriptor to poll again.
        let info = FlightService::get_flight_info(self.sql.as_ref(), request)
            .await?
            .into_inner();
        let poll = PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        };
        Ok(with_cookie(&ctx, Response::new(poll)))
    }

    async fn get_schema(&self, mut request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        answer(async move {
            let ctx = self.authenticate(&mut request)?;
            let schema = self.sql.schema_of(request).await?;
            let result: SchemaResult = SchemaAsIpc::new(&schema, &IpcWriteOptions::default()).try_into()?;
            Ok(with_cookie(&ctx, Response::new(result)))
        })
        .await
    }

    async fn do_get(&self, mut request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let ctx = self.authenticate(&mut request)?;
        let response = FlightService::do_get(self.sql.as_ref(), request).await?;
        Ok(with_cookie(&ctx, response))
    }

    async fn do_put(&self, mut request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let ctx = self.authenticate(&mut request)?;
        let response = FlightService::do_put(self.sql.as_ref(), request).await?;
        Ok(with_cookie(&ctx, response))
    }

    async fn do_action(&self, mut request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        let ctx = self.authenticate(&mut request)?;
        let response = FlightService::do_action(self.sql.as_ref(), request).await?;
        Ok(with_cookie(&ctx, response))
    }

    async fn list_actions(&self, mut request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::list_actions(self.sql.as_ref(), request).await
    }

    async fn do_exchange(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.authenticate(&mut request)?;
        Err(FlightSqlError::Unsupported("DoExchange is not supported".into()).into())
    }
}
