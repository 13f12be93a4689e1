//! Pond's Rust client: connect to a Pond server over Arrow Flight SQL, run queries as Arrow
//! record batch streams, execute updates, use prepared statements and upload batches; and
//! [`DualSession`], a local DuckDB with the cloud attached (`ATTACH 'pond:'`) that runs each
//! query where its data lives (dual execution).
//!
//! - [`PondClient`]: the Flight SQL connection.
//! - [`DualSession`] (`dual/`): routing, bridges, `EXPLAIN`, database copies in both
//!   directions, DuckDB's errors pointed back into the user's text; the plans come from the
//!   coordinator's cost model (`pond-planner`).
//! - `analyze.rs`: what a query reads, from the local DuckDB's own parser. `sql_words.rs`: a
//!   statement's keywords, names and strings, from the workspace's one lexer.
//! - `local.rs`: the embedded DuckDB. `link.rs`: the metered (optionally throttled) transport.
//!
//! The connection string is `pond://HOST:PORT[/DATABASE][?token=…&tls=true]`; without a
//! `token` parameter the token comes from `POND_TOKEN`. The client carries Pond's session
//! cookie, so `USE`, temporary tables and transactions persist across calls.
//!
//! ```no_run
//! # async fn example() -> Result<(), pond_client::ClientError> {
//! let mut client = pond_client::PondClient::connect("pond://127.0.0.1:31337?token=…").await?;
//! client.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)").await?;
//! let batches = client.query("SELECT sum(i) FROM t").await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(()) }
//! ```

mod analyze;
mod dual;
mod link;
mod local;
mod session_channel;
mod sql_words;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::FlightEndpoint;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::{FlightSqlServiceClient, PreparedStatement};
use arrow_flight::sql::{CommandStatementIngest, TableDefinitionOptions, TableExistsOption, TableNotExistOption};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use pond_proto::frames;
use tonic::transport::{ClientTlsConfig, Endpoint};

pub use dual::{DualSession, DualStream, Outcome, Progress, RunMode, Venue};
pub use link::Link;
pub use local::LocalDb;
pub use pond_proto::dual::{Plan, Side};
pub use session_channel::SessionChannel;
pub use sql_words::split_statements;

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection string is malformed.
    #[error("invalid connection string {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The server could not be reached.
    #[error("could not connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The server answered with an error (its gRPC status and message).
    #[error("{}", .0.message())]
    Server(tonic::Status),
    /// Arrow or Flight decoding failed.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The local DuckDB refused a statement (DuckDB's message).
    #[error("{0}")]
    Local(#[from] pond_duckdb::DuckdbError),
    /// A statement needs the cloud, and the session has no server connection.
    #[error("not connected to a Pond server: {0}")]
    NotConnected(String),
    /// A statement Pond's client understands was malformed or refused.
    #[error("{0}")]
    Invalid(String),
    /// A framed stream (see [`pond_proto::frames`]) could not be made or read.
    #[error("{0}")]
    Frames(#[from] pond_proto::frames::FramesError),
}

impl From<FlightError> for ClientError {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Tonic(s) => ClientError::Server(*s),
            FlightError::Arrow(a) => ClientError::Arrow(a),
            other => ClientError::Server(tonic::Status::unknown(other.to_string())),
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Server(s)
    }
}

impl ClientError {
    /// The gRPC status code, for server errors.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Server(s) => Some(s.code()),
            _ => None,
        }
    }
}

/// A parsed `pond://` connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    pub token: Option<String>,
    pub tls: bool,
    /// PEM certificates of the CAs to trust for TLS, instead of the system's roots.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ConnectOptions {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

impl ConnectOptions {
    /// Parses `pond://HOST:PORT[/DATABASE][?token=…&tls=true]` (also `grpc://` and `grpc+tls://`).
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::InvalidUrl {
            url: url.split('?').next().unwrap_or_default().to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected pond://HOST:PORT"))?;
        let mut tls = match scheme {
            "pond" | "grpc" | "grpc+tcp" => false,
            "grpc+tls" => true,
            _ => return Err(bad("the scheme must be pond://")),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = match path.split_once('/') {
            Some((a, d)) if !d.is_empty() => (a, Some(d.to_string())),
            Some((a, _)) => (a, None),
            None => (path, None),
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
        let port = port.parse().map_err(|_| bad("the port is not a number"))?;
        let mut token = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "token" => token = Some(v.to_string()),
                "tls" => tls = v == "true" || v == "1",
                _ => return Err(bad(&format!("unknown parameter {k}"))),
            }
        }
        Ok(Self {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            database,
            token,
            tls,
            tls_ca_pem: None,
        })
    }
}

/// The most result bytes the client accepts inline in a FlightInfo (the server caps it too).
pub const INLINE_LIMIT: u64 = 1 << 20;

/// An upload goes in Arrow messages of at most this many rows each.
const COALESCED_ROWS: usize = 1 << 16;
/// A framed upload (over a slow link) goes in Arrow messages of DuckDB's chunk size.
const FRAMED_ROWS: usize = 2048;

/// `batches` joined, in order, into batches of at most `most` rows (one larger alone stays as
/// it is).
fn coalesced(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    most: usize,
) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for batch in batches {
        if rows + batch.num_rows() > most && !group.is_empty() {
            out.push(arrow::compute::concat_batches(schema, &group)?);
            group.clear();
            rows = 0;
        }
        rows += batch.num_rows();
        group.push(batch);
    }
    if !group.is_empty() {
        out.push(arrow::compute::concat_batches(schema, &group)?);
    }
    Ok(out)
}

/// What an upload whose source failed sends last: not an Arrow IPC message, so the server
/// fails the call, rolling the upload back before it answers.
const ABORT: &[u8] = b"POND-ABORT: the client's source failed";

/// An upload's messages: framed in one zstd stream ([`pond_proto::frames`]) when `framed` (a
/// plain message naming the command, then carriers made as the upload goes), else as
/// arrow-flight encodes them; and the source's error, if a batch fails. A failed batch ends
/// the upload with [`ABORT`], so the server fails the call and rolls back before it answers.
/// (Ending the stream at the error, as arrow-flight's `execute_ingest` does, let the server
/// commit what came before; resetting it leaves the rollback racing the caller's next call.)
fn upload_messages(
    descriptor: arrow_flight::FlightDescriptor,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    framed: bool,
) -> (
    impl Stream<Item = arrow_flight::FlightData> + Send + 'static,
    tokio::sync::oneshot::Receiver<FlightError>,
) {
    use futures::future::Either;
    let encoder = arrow_flight::encode::FlightDataEncoderBuilder::new();
    let messages = if framed {
        let head = arrow_flight::FlightData::new().with_descriptor(descriptor);
        Either::Left(
            futures::stream::once(futures::future::ready(Ok(head))).chain(frames::frame(encoder.build(batches))),
        )
    } else {
        Either::Right(encoder.with_flight_descriptor(Some(descriptor)).build(batches))
    };
    let (failed_tx, failed) = tokio::sync::oneshot::channel();
    let upload = futures::stream::unfold(
        (Box::pin(messages), Some(failed_tx)),
        |(mut messages, failed_tx)| async move {
            let failed_tx = failed_tx?;
            match messages.next().await {
                Some(Ok(m)) => Some((m, (messages, Some(failed_tx)))),
                None => None,
                Some(Err(e)) => {
                    let _ = failed_tx.send(e);
                    let abort = arrow_flight::FlightData {
                        data_header: ABORT.into(),
                        ..Default::default()
                    };
                    Some((abort, (messages, None)))
                }
            }
        },
    );
    (upload, failed)
}

/// The Flight SQL command that ingests into `target`.
fn ingest_command(target: IngestTarget) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: if target.replace {
                TableExistsOption::Replace as i32
            } else {
                TableExistsOption::Append as i32
            },
        }),
        table: target.table,
        schema: target.schema,
        catalog: target.catalog,
        temporary: target.temporary,
        transaction_id: None,
        options: Default::default(),
    }
}

/// DoGet of `ticket` framed in one zstd stream ([`pond_proto::frames`]), as a slow link wants.
async fn framed_do_get<T>(
    mut client: FlightServiceClient<T>,
    ticket: arrow_flight::Ticket,
) -> Result<FlightRecordBatchStream, ClientError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut request = tonic::Request::new(ticket);
    request.metadata_mut().insert(
        frames::HEADER,
        tonic::metadata::MetadataValue::from_static(frames::ZSTD),
    );
    let stream = client.do_get(request).await?.into_inner();
    let stream = frames::unframe(
        stream.map_err(|s| FlightError::Tonic(Box::new(s))),
        pond_proto::MAX_MESSAGE_BYTES,
    );
    Ok(FlightRecordBatchStream::new_from_flight_data(stream))
}

/// The result a FlightInfo carries inline (see [`pond_proto::inline`]), if it does.
fn inline_result(info: &arrow_flight::FlightInfo) -> Option<Result<(SchemaRef, Vec<RecordBatch>), ClientError>> {
    let ipc = info.app_metadata.strip_prefix(pond_proto::inline::MAGIC)?;
    Some((|| {
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        Ok((schema, batches))
    })())
}

/// A connection to a Pond server.
pub struct PondClient {
    sql: FlightSqlServiceClient<SessionChannel>,
    /// The connection `sql` calls over, for a client with other settings on it.
    channel: SessionChannel,
    compressed: bool,
    link: Arc<Link>,
    /// Clients of the other locations FlightInfo endpoints named (a duckling's address, when
    /// the server hands out direct endpoints), by URI.
    locations: std::collections::HashMap<String, FlightServiceClient<tonic::transport::Channel>>,
}

impl PondClient {
    /// Connects with a connection string; the token falls back to `POND_TOKEN`.
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let mut options = ConnectOptions::parse(url)?;
        if options.token.is_none() {
            options.token = std::env::var("POND_TOKEN").ok().filter(|t| !t.is_empty());
        }
        Self::connect_with(options).await
    }

    /// Connects with parsed options.
    pub async fn connect_with(options: ConnectOptions) -> Result<Self, ClientError> {
        Self::connect_over(options, Link::unlimited()).await
    }

    /// Connects with parsed options over `link`, which counts (and may throttle) every byte.
    pub async fn connect_over(options: ConnectOptions, link: Arc<Link>) -> Result<Self, ClientError> {
        let scheme = if options.tls { "https" } else { "http" };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{}:{}", options.host, options.port))?.tcp_nodelay(true);
        if options.tls {
            let config = match &options.tls_ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_native_roots(),
            };
            endpoint = endpoint.tls_config(config.domain_name(options.host.clone()))?;
        }
        let channel = endpoint
            .connect_with_connector(link::connector(Arc::clone(&link)))
            .await?;
        let token = options
            .token
            .map(|t| t.parse())
            .transpose()
            .map_err(|_| ClientError::Invalid("the token is not a valid header value".into()))?;
        let channel = SessionChannel::new(channel, token);
        let sql = FlightSqlServiceClient::new(channel.clone());
        let mut client = Self {
            sql,
            channel,
            compressed: false,
            link,
            locations: Default::default(),
        };
        if let Some(db) = options.database {
            client.execute(&format!("USE \"{}\"", db.replace('"', "\"\""))).await?;
        }
        Ok(client)
    }

    /// Asks for answers in zstd and compresses uploads from now on (`true`), or no longer
    /// (`false`): worth it over a link slower than compressing. The server compresses only for
    /// a client that asks, and takes only uploads compressed; other calls go plain. DoGet
    /// answers and uploads are framed in one zstd stream per call ([`pond_proto::frames`]);
    /// an answer inline in its FlightInfo is compressed as one message.
    pub fn set_compression(&mut self, on: bool) {
        use tonic::codec::CompressionEncoding::Zstd;
        let mut inner = FlightServiceClient::new(self.channel.clone());
        if on {
            inner = inner.accept_compressed(Zstd);
        }
        *self.sql.inner_mut() = inner;
        self.compressed = on;
        // Made again, as asked, when next used.
        self.locations.clear();
    }

    /// Whether answers come compressed ([`Self::set_compression`]).
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Runs a query and streams its batches, fetching each endpoint where it says. A small
    /// result comes whole with the query's FlightInfo (one round trip instead of two).
    pub async fn query_stream(
        &mut self,
        sql: &str,
    ) -> Result<impl Stream<Item = Result<RecordBatch, ClientError>> + use<>, ClientError> {
        Ok(self.query_stream_with_schema(sql).await?.1)
    }

    /// [`Self::query_stream`], with the result's schema. An error that binding the query
    /// raises comes here, before any row: the server prepares the query to answer.
    pub async fn query_stream_with_schema(
        &mut self,
        sql: &str,
    ) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch, ClientError>>), ClientError> {
        let info = self.plan_query(sql).await?;
        let (schema, inline) = match inline_result(&info) {
            Some(result) => result?,
            None => (Arc::new(info.clone().try_decode_schema()?), Vec::new()),
        };
        let mut streams = Vec::new();
        for endpoint in info.endpoint {
            streams.push(self.fetch(endpoint).await?.map_err(ClientError::from));
        }
        let inline = futures::stream::iter(inline.into_iter().map(Ok));
        Ok((schema, inline.chain(futures::stream::iter(streams).flatten()).boxed()))
    }

    /// GetFlightInfo for a query, asking for its result inline up to [`INLINE_LIMIT`] bytes.
    async fn plan_query(&mut self, sql: &str) -> Result<arrow_flight::FlightInfo, ClientError> {
        use arrow_flight::sql::ProstMessageExt;
        use prost::Message;
        let cmd = arrow_flight::sql::CommandStatementQuery {
            query: sql.to_string(),
            transaction_id: None,
        };
        let descriptor = arrow_flight::FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
        let mut request = tonic::Request::new(descriptor);
        request
            .metadata_mut()
            .insert(pond_proto::inline::REQUEST_HEADER, INLINE_LIMIT.into());
        Ok(self.sql.inner_mut().get_flight_info(request).await?.into_inner())
    }

    /// DoGet of one endpoint: on this connection, or at the location it names. A location's
    /// ticket is its own credential (Pond signs it), so no token goes to another address.
    async fn fetch(&mut self, endpoint: FlightEndpoint) -> Result<FlightRecordBatchStream, ClientError> {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| ClientError::Server(tonic::Status::internal("endpoint without a ticket")))?;
        let Some(location) = endpoint
            .location
            .into_iter()
            .map(|l| l.uri)
            .find(|uri| !uri.starts_with("arrow-flight-reuse-connection:"))
        else {
            if self.compressed {
                let client = FlightServiceClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX);
                return framed_do_get(client, ticket).await;
            }
            return Ok(self.sql.do_get(ticket).await?);
        };
        let client = match self.locations.get(&location) {
            Some(c) => c.clone(),
            None => {
                let address = location
                    .strip_prefix("grpc://")
                    .or_else(|| location.strip_prefix("grpc+tcp://"));
                let address = address.ok_or_else(|| ClientError::InvalidUrl {
                    url: location.clone(),
                    reason: "only grpc:// endpoint locations are supported".into(),
                })?;
                let channel = Endpoint::from_shared(format!("http://{address}"))?
                    .connect_with_connector(link::connector(Arc::clone(&self.link)))
                    .await?;
                let c = FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX);
                self.locations.insert(location, c.clone());
                c
            }
        };
        if self.compressed {
            return framed_do_get(client, ticket).await;
        }
        let stream = client.clone().do_get(ticket).await?.into_inner();
        Ok(FlightRecordBatchStream::new_from_flight_data(
            stream.map_err(|s| FlightError::Tonic(Box::new(s))),
        ))
    }

    /// DoPut of `batches` for `cmd` (see [`upload_messages`]), answered with the rows it
    /// changed, or with the source's error when a batch fails, once the server has rolled the
    /// upload back.
    async fn put(
        &mut self,
        cmd: CommandStatementIngest,
        batches: impl Stream<Item = Result<RecordBatch, ClientError>> + Send + 'static,
    ) -> Result<i64, ClientError> {
        use arrow_flight::sql::{DoPutUpdateResult, ProstMessageExt};
        use prost::Message;
        let descriptor = arrow_flight::FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
        let batches = batches.map_err(|e| FlightError::ExternalError(Box::new(e)));
        let (upload, mut failed) = upload_messages(descriptor, batches, self.compressed);
        let mut client = FlightServiceClient::new(self.channel.clone());
        let answered = client.do_put(upload).await;
        if let Ok(e) = failed.try_recv() {
            // The source's own error, as it failed.
            return Err(match e {
                FlightError::ExternalError(e) => match e.downcast::<ClientError>() {
                    Ok(e) => *e,
                    Err(e) => FlightError::ExternalError(e).into(),
                },
                e => e.into(),
            });
        }
        let result = answered?
            .into_inner()
            .message()
            .await?
            .ok_or_else(|| ClientError::Server(tonic::Status::internal("an upload without a result")))?;
        let result = DoPutUpdateResult::decode(&*result.app_metadata)
            .map_err(|e| ClientError::Server(tonic::Status::internal(format!("an upload's result: {e}"))))?;
        Ok(result.record_count)
    }

    /// Runs a query and collects its batches.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>, ClientError> {
        self.query_stream(sql).await?.try_collect().await
    }

    /// Runs a query and returns its schema and batches.
    pub async fn query_with_schema(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ClientError> {
        let (schema, stream) = self.query_stream_with_schema(sql).await?;
        Ok((schema, stream.try_collect().await?))
    }

    /// Runs a statement that returns no rows; returns the rows changed.
    pub async fn execute(&mut self, sql: &str) -> Result<i64, ClientError> {
        Ok(self.sql.execute_update(sql.to_string(), None).await?)
    }

    /// Prepares a statement; bind parameters with `set_parameters`, run with `execute` or
    /// `execute_update`.
    pub async fn prepare(&mut self, sql: &str) -> Result<PreparedStatement<SessionChannel>, ClientError> {
        Ok(self.sql.prepare(sql.to_string(), None).await?)
    }

    /// Uploads batches into `table`, creating it if needed and appending otherwise.
    pub async fn ingest(&mut self, table: &str, batches: Vec<RecordBatch>) -> Result<i64, ClientError> {
        let stream = futures::stream::iter(batches.into_iter().map(Ok));
        self.ingest_stream(IngestTarget::table(table), stream).await
    }

    /// Uploads a stream of batches into `target`, creating the table if needed and appending
    /// otherwise. The upload is all or nothing.
    pub async fn ingest_stream(
        &mut self,
        target: IngestTarget,
        batches: impl Stream<Item = Result<RecordBatch, ClientError>> + Send + 'static,
    ) -> Result<i64, ClientError> {
        self.put(ingest_command(target), batches).await
    }

    /// Uploads `batches` into the session-scoped temporary table `table`, replacing it. The
    /// table is created with `schema` even when there are no rows.
    pub async fn upload_temp(
        &mut self,
        table: &str,
        schema: SchemaRef,
        mut batches: Vec<RecordBatch>,
    ) -> Result<i64, ClientError> {
        // A local DuckDB result comes in chunks of at most 2,048 rows, often of a few; one
        // message per chunk would cost more in headers and padding than the rows themselves.
        // Framed, batches of DuckDB's full chunk compress best: their offsets restart at the
        // same places batch after batch, which one zstd stream finds in the batch before.
        let rows = if self.compressed { FRAMED_ROWS } else { COALESCED_ROWS };
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        } else if batches.len() > 1 {
            batches = coalesced(&schema, batches, rows)?;
        }
        let target = IngestTarget {
            table: table.to_string(),
            temporary: true,
            replace: true,
            ..Default::default()
        };
        self.ingest_stream(target, futures::stream::iter(batches.into_iter().map(Ok)))
            .await
    }

    /// The names of the caller's databases (Flight SQL catalogs).
    pub async fn catalogs(&mut self) -> Result<Vec<String>, ClientError> {
        let info = self.sql.get_catalogs().await?;
        let mut names = Vec::new();
        for endpoint in info.endpoint {
            let batches: Vec<RecordBatch> = self.fetch(endpoint).await?.try_collect().await?;
            for b in batches {
                let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
                let col = col
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .ok_or_else(|| ClientError::Invalid("catalog names are not text".into()))?;
                names.extend(col.iter().flatten().map(str::to_string));
            }
        }
        Ok(names)
    }

    /// Asks the coordinator to plan a dual-execution query.
    pub async fn plan_dual(
        &mut self,
        request: &pond_proto::dual::PlanRequest,
    ) -> Result<pond_proto::dual::Plan, ClientError> {
        use prost::Message;
        let action = arrow_flight::Action {
            r#type: "PlanDualQuery".into(),
            body: request.encode_to_vec().into(),
        };
        let mut results = self.sql.do_action(action).await?;
        let first = results
            .next()
            .await
            .ok_or_else(|| ClientError::Invalid("the server sent no plan".into()))??;
        pond_proto::dual::Plan::decode(first.body)
            .map_err(|e| ClientError::Invalid(format!("the server sent a malformed plan: {e}")))
    }

    /// The link this client's bytes cross.
    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// The underlying Flight SQL client, for calls this API does not wrap.
    pub fn flight_sql(&mut self) -> &mut FlightSqlServiceClient<SessionChannel> {
        &mut self.sql
    }
}

/// Where an upload goes.
#[derive(Debug, Clone, Default)]
pub struct IngestTarget {
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub table: String,
    /// A session-scoped temporary table.
    pub temporary: bool,
    /// Replace the table if it exists (otherwise append).
    pub replace: bool,
}

impl IngestTarget {
    /// A table in the session's current database and schema.
    pub fn table(name: &str) -> Self {
        Self {
            table: name.to_string(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_coalesced_into_large_batches_in_order() {
        use arrow::array::{AsArray, Int64Array};
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "i",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let batch = |from: i64, rows: i64| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(from..from + rows))],
            )
            .unwrap()
        };
        let sizes = |batches: &[RecordBatch]| batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>();
        let chunks: Vec<RecordBatch> = (0..5).map(|c| batch(c * 30_000, 30_000)).collect();
        let out = coalesced(&schema, chunks, COALESCED_ROWS).unwrap();
        assert_eq!(sizes(&out), vec![60_000, 60_000, 30_000]);
        let values: Vec<i64> = out
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..150_000).collect::<Vec<_>>());
        // A batch larger than the limit alone is not split.
        let out = coalesced(&schema, vec![batch(0, 100_000), batch(0, 10)], COALESCED_ROWS).unwrap();
        assert_eq!(sizes(&out), vec![100_000, 10]);
    }

    #[test]
    fn parses_connection_strings() {
        let o = ConnectOptions::parse("pond://127.0.0.1:31337/sales?token=abc&tls=true").unwrap();
        assert_eq!(
            o,
            ConnectOptions {
                host: "127.0.0.1".into(),
                port: 31337,
                database: Some("sales".into()),
                token: Some("abc".into()),
                tls: true,
                tls_ca_pem: None,
            }
        );
        assert!(ConnectOptions::parse("http://x:1").is_err());
        assert!(ConnectOptions::parse("pond://x").is_err());
        let e = ConnectOptions::parse("pond://x:1?token=secret&bogus=1").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let o = ConnectOptions::parse("pond://x:1?token=secret").unwrap();
        assert!(!format!("{o:?}").contains("secret"));
    }
}
