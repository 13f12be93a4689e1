//! The process's `tracing` subscriber: logs on stderr, and, when `--otlp-endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) names a collector, Pond's spans exported over OTLP.
//!
//! Invariants:
//! - Without an endpoint nothing listens to Pond's trace spans (target
//!   `pond_flight_server::telemetry::TARGET`): the log filter turns them off unless `POND_LOG`
//!   names them, and no exporter, propagator or OpenTelemetry layer is installed.
//! - The standard variables hold: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (the
//!   resource), `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` (sampling, read by the SDK),
//!   `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_TIMEOUT` (read by the exporter).
//! - Spans still buffered at exit are flushed by [`Telemetry::shutdown`].

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfig, BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use pond_flight_server::telemetry::TARGET;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// How traces are exported; the flags every process of a server shares (a spawned duckling
/// gets them too).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct TelemetryArgs {
    /// Export traces over OTLP to this collector, e.g. http://127.0.0.1:4317 (gRPC) or
    /// http://127.0.0.1:4318 (HTTP, to which `/v1/traces` is added). Default: no traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// The OTLP protocol: grpc, or http/protobuf (plain HTTP only: a collector behind TLS is
    /// reached over gRPC).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, default_value_t = OtlpProtocol::Grpc, global = true)]
    pub otlp_protocol: OtlpProtocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The log format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What [`init`] set up; flush it before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "traces could not all be exported");
        }
    }
}

/// Installs the process's subscriber. `process` names the kind of process in the exported
/// resource (`serve`, `duckling`, `client`).
pub fn init(format: LogFormat, default_level: &str, telemetry: &TelemetryArgs, process: &str) -> Result<Telemetry> {
    // Trace spans stay off in the logs unless POND_LOG names them: they would cost on every
    // call, and their fields (a user, a statement's shape) are not log lines.
    let directives = match std::env::var("POND_LOG") {
        Ok(given) if given.contains(TARGET) => given,
        Ok(given) => format!("{given},{TARGET}=off"),
        Err(_) => format!("{default_level},{TARGET}=off"),
    };
    let logs = EnvFilter::try_new(&directives).with_context(|| format!("POND_LOG={directives}"))?;
    let stderr = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(stderr.with_filter(logs));
    let Some(endpoint) = &telemetry.otlp_endpoint else {
        registry.init();
        return Ok(Telemetry { provider: None });
    };
    let exporter = match telemetry.otlp_protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build(),
        OtlpProtocol::HttpProtobuf => {
            if !endpoint.starts_with("http://") {
                anyhow::bail!(
                    "--otlp-protocol http/protobuf takes a plain http:// endpoint, not {endpoint}: \
                     export to a collector behind TLS over gRPC (the default)"
                );
            }
            // As OpenTelemetry's variables say: the endpoint is the collector's base URL and
            // traces go to its `/v1/traces`.
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(OnRuntime::new()?)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
        }
    }
    .with_context(|| format!("the OTLP exporter for {endpoint}"))?;
    let mut resource = Resource::builder().with_attribute(KeyValue::new("pond.process", process.to_string()));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("pond");
    }
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch_config())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    // Only what the spans say: source locations, threads, targets and busy/idle times are
    // attributes nobody reads, exported with every span.
    let spans = tracing_opentelemetry::layer()
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_tracer(provider.tracer("pond"))
        .with_filter(Targets::new().with_target(TARGET, LevelFilter::TRACE));
    registry.with(spans).init();
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// The batch span processor's sizes: OpenTelemetry's `OTEL_BSP_*` variables when set,
/// otherwise larger batches than the SDK's 512 (a fourth as many exports, each well under a
/// collector's 4 MiB message limit) and room for a few of them.
fn batch_config() -> BatchConfig {
    let mut config = BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        config = config.with_max_queue_size(16_384);
    }
    if std::env::var_os("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
        config = config.with_max_export_batch_size(2_048);
    }
    config.build()
}

/// OTLP/HTTP's client: hyper's, run on the process's tokio runtime. The SDK's batch processor
/// exports from a thread of its own, where hyper (which needs a runtime's sockets and timers)
/// cannot run; its requests are handed to the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: std::sync::Arc<opentelemetry_http::hyper::HyperClient>,
    runtime: tokio::runtime::Handle,
}

impl OnRuntime {
    fn new() -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().context("OTLP/HTTP export needs the process's runtime")?;
        let timeout = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(std::time::Duration::from_secs(10), std::time::Duration::from_millis);
        Ok(Self {
            client: std::sync::Arc::new(opentelemetry_http::hyper::HyperClient::with_default_connector(
                timeout, None,
            )),
            runtime,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = std::sync::Arc::clone(&self.client);
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}
