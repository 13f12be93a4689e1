//! The coordinator's front door when ducklings are processes: authenticate the client, find
//! its duckling, forward the Flight SQL call, relay the answer as it streams.
//!
//! The proxy understands no Flight SQL: descriptors, tickets and actions pass through
//! untouched (direct endpoints excepted, whose tickets it signs). The only calls it answers
//! itself are the handshake (tokens are the coordinator's) and the cluster actions of
//! ducklings. A call whose duckling dies fails with UNAVAILABLE; the next one starts another.

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    Location, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use pond_coordinator::{Coordinator, Principal};
use pond_flight_server::{FlightSqlError, PondFlightSql};
use pond_proto::cluster as pb;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{ClusterError, Result};
use crate::pool::{Endpoints, Member, Pool};
use crate::protocol;

/// How long the proxy waits, after a failed call, to learn whether its duckling died.
const LOSS_CHECK: Duration = Duration::from_millis(500);

/// The coordinator's gRPC service in process and remote modes.
#[derive(Clone)]
pub struct Proxy {
    pool: Arc<Pool>,
    coordinator: Arc<Coordinator>,
    /// Answers the handshake with the coordinator's tokens.
    local: Arc<PondFlightSql>,
}

impl Proxy {
    pub fn new(pool: Arc<Pool>, coordinator: Arc<Coordinator>) -> Result<Self, Status> {
        let local = Arc::new(PondFlightSql::new(Arc::clone(&coordinator))?);
        Ok(Self {
            pool,
            coordinator,
            local,
        })
    }

    fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal> {
        let token = crate::bearer(metadata).ok_or(ClusterError::Unauthenticated)?;
        Ok(self.coordinator.authenticate(&token)?)
    }

    /// The caller's duckling, and the call rewritten for it: the client's token replaced by
    /// a cluster token for the same principal, every other header (session cookie) kept.
    async fn route<T>(&self, request: Request<T>) -> Result<(Principal, Arc<Member>, Request<T>)> {
        let principal = self.authenticate(request.metadata())?;
        let member = self.pool.route(&principal, request.remote_addr()).await?;
        let (mut metadata, _, message) = request.into_parts();
        let token = member.key().mint_for(&principal)?;
        crate::set_bearer(&mut metadata, &token)?;
        metadata.remove("content-length");
        // How the client's messages are encoded is this hop's business: the duckling answers
        // the proxy plainly, and the proxy's own server compresses for a client that asked.
        metadata.remove("grpc-accept-encoding");
        metadata.remove("grpc-encoding");
        // The duckling's spans continue this call's.
        pond_flight_server::telemetry::inject_current(&mut metadata);
        Ok((
            principal,
            member,
            Request::from_parts(metadata, Default::default(), message),
        ))
    }

    /// A duckling's answer to a forwarded call, as the client's: the headers it set (the
    /// session cookie) kept, and a failure reported by [`failure`].
    async fn answer<T>(&self, member: &Member, result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
        match result {
            Ok(r) => {
                let (md, body, _) = r.into_parts();
                Ok(respond(&md, body))
            }
            Err(s) => Err(failure(&self.pool, member, s).await),
        }
    }

    /// [`Self::answer`] for a streamed answer, whose items are relayed as they come.
    async fn answer_stream<T: Send + 'static>(
        &self,
        member: Arc<Member>,
        result: Result<Response<Streaming<T>>, Status>,
    ) -> Result<Response<BoxStream<'static, Result<T, Status>>>, Status> {
        let answer = self.answer(&member, result).await?;
        Ok(answer.map(|body| relay(Arc::clone(&self.pool), member, body)))
    }
}

async fn failure(pool: &Pool, member: &Member, status: Status) -> Status {
    // A status the duckling sent is its answer (a storage error included), however it reads;
    // only one the client library made itself, from a broken connection, carries a source.
    let transport = std::error::Error::source(&status).is_some();
    let dead = member
        .gone_within(if transport { LOSS_CHECK } else { Duration::ZERO })
        .await;
    if dead || transport {
        pool.lost(member, &format!("a call failed: {}", status.message()));
        return ClusterError::Unavailable(format!(
            "the duckling running this call stopped ({}); the call did not complete and nothing it had not committed was kept. \
             Retry: the next query starts a new duckling",
            status.message()
        ))
        .into();
    }
    status
}

/// Relays a duckling's response stream, turning a lost duckling into UNAVAILABLE.
fn relay<T: Send + 'static>(
    pool: Arc<Pool>,
    member: Arc<Member>,
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
) -> BoxStream<'static, Result<T, Status>> {
    Box::pin(stream.then(move |item| {
        let (pool, member) = (Arc::clone(&pool), Arc::clone(&member));
        async move {
            match item {
                Ok(v) => Ok(v),
                Err(s) => Err(failure(&pool, &member, s).await),
            }
        }
    }))
}

/// Keeps the headers a duckling set (the session cookie, whether it framed its answer) on the
/// client's response.
fn respond<T>(upstream: &tonic::metadata::MetadataMap, body: T) -> Response<T> {
    let mut response = Response::new(body);
    for name in ["set-cookie", pond_proto::frames::HEADER] {
        for v in upstream.get_all(name) {
            response.metadata_mut().append(name, v.clone());
        }
    }
    response
}

/// A client's upload, forwarded. If the client's stream fails, the forwarded one fails too
/// (it never ends cleanly), so the duckling rolls back instead of committing a partial upload.
fn forward_upload(
    incoming: Streaming<FlightData>,
) -> (
    impl Stream<Item = FlightData> + Send + 'static,
    tokio::sync::oneshot::Receiver<Status>,
) {
    let (failed_tx, failed) = tokio::sync::oneshot::channel();
    let stream = futures::stream::unfold(
        (incoming, Some(failed_tx)),
        |(mut incoming, mut failed_tx)| async move {
            match incoming.message().await {
                Ok(Some(m)) => Some((m, (incoming, failed_tx))),
                Ok(None) => None,
                Err(s) => {
                    if let Some(tx) = failed_tx.take() {
                        let _ = tx.send(s);
                    }
                    // Never end: the call is dropped, which resets the duckling's stream.
                    futures::future::pending().await
                }
            }
        },
    );
    (stream, failed)
}

fn one_result(message: &impl prost::Message) -> BoxStream<'static, Result<arrow_flight::Result, Status>> {
    let result = arrow_flight::Result {
        body: message.encode_to_vec().into(),
    };
    Box::pin(futures::stream::once(async { Ok(result) }))
}

impl Proxy {
    /// A duckling's cluster action, on the coordinator.
    async fn cluster_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxStream<'static, Result<arrow_flight::Result, Status>>>> {
        let token = crate::bearer(request.metadata()).ok_or(ClusterError::Unauthenticated)?;
        // The duckling names itself, and proves it with its own key.
        let duckling = request
            .metadata()
            .get(crate::DUCKLING_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.pool.key().for_duckling(&duckling).verify_peer(&token)?;
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            protocol::REGISTER => {
                let request: pb::RegisterRequest = protocol::decode(&action.body)?;
                if request.duckling_id != duckling {
                    return Err(ClusterError::PermissionDenied(
                        "a duckling registers under its own id only".into(),
                    ));
                }
                one_result(&self.pool.register(request)?)
            }
            protocol::HEARTBEAT => {
                let beat: pb::Heartbeat = protocol::decode(&action.body)?;
                if beat.status.as_ref().is_some_and(|s| s.duckling_id != duckling) {
                    return Err(ClusterError::PermissionDenied(
                        "a duckling reports for itself only".into(),
                    ));
                }
                one_result(&self.pool.heartbeat(beat))
            }
            protocol::CATALOG => one_result(&self.pool.catalog(&duckling, protocol::decode(&action.body)?).await?),
            protocol::DUCKLINGS => one_result(&self.pool.duckling_list().await),
            other => return Err(ClusterError::Protocol(format!("unknown cluster action {other}"))),
        };
        Ok(Response::new(body))
    }

    /// FlightInfo endpoints rewritten to name the duckling, with signed tickets.
    fn direct(&self, principal: &Principal, member: &Member, mut info: FlightInfo) -> FlightInfo {
        if self.pool.config().endpoints == Endpoints::Direct {
            for endpoint in &mut info.endpoint {
                if let Some(ticket) = &mut endpoint.ticket {
                    ticket.ticket = member.key().sign_ticket(&ticket.ticket, principal, &member.id).into();
                    let scheme = crate::tls::scheme(self.pool.config().tls.is_some());
                    endpoint.location = vec![Location {
                        uri: format!("{scheme}://{}", member.address),
                    }];
                }
            }
        }
        info
    }
}

#[tonic::async_trait]
impl FlightService for Proxy {
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
        FlightService::handshake(self.local.as_ref(), request).await
    }

    async fn list_flights(&self, request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        let (_, member, request) = self.route(request).await?;
        let result = member.client().list_flights(request).await;
        self.answer_stream(member, result).await
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let (principal, member, request) = self.route(request).await?;
        let result = member.client().get_flight_info(request).await;
        let answer = self.answer(&member, result).await?;
        Ok(answer.map(|info| self.direct(&principal, &member, info)))
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let (principal, member, request) = self.route(request).await?;
        let result = member.client().poll_flight_info(request).await;
        let answer = self.answer(&member, result).await?;
        Ok(answer.map(|mut poll| {
            poll.info = poll.info.map(|i| self.direct(&principal, &member, i));
            poll
        }))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let (_, member, request) = self.route(request).await?;
        let result = member.client().get_schema(request).await;
        self.answer(&member, result).await
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let (_, member, request) = self.route(request).await?;
        let result = member.client().do_get(request).await;
        self.answer_stream(member, result).await
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let (_, member, request) = self.route(request).await?;
        let (metadata, extensions, incoming) = request.into_parts();
        let (upload, mut client_failed) = forward_upload(incoming);
        let upstream = Request::from_parts(metadata, extensions, upload);
        let mut client = member.client();
        let call = client.do_put(upstream);
        tokio::pin!(call);
        let result = tokio::select! {
            r = &mut call => r,
            // Dropping the call resets the duckling's stream: the upload rolls back.
            Ok(s) = &mut client_failed => return Err(s),
        };
        self.answer_stream(member, result).await
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        if request.get_ref().r#type.starts_with("pond.cluster.") {
            return Ok(self.cluster_action(request).await?);
        }
        if request.get_ref().r#type.starts_with("pond.") {
            // The coordinator's actions on ducklings are not for clients to send.
            self.authenticate(request.metadata())?;
            return Err(ClusterError::Protocol(format!("unknown action {}", request.get_ref().r#type)).into());
        }
        let (_, member, request) = self.route(request).await?;
        let result = member.client().do_action(request).await;
        self.answer_stream(member, result).await
    }

    async fn list_actions(&self, request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        let (_, member, request) = self.route(request).await?;
        let result = member.client().list_actions(request).await;
        self.answer_stream(member, result).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.authenticate(request.metadata())?;
        Err(FlightSqlError::Unsupported("DoExchange is not supported".into()).into())
    }
}
