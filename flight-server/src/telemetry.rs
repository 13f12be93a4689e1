//! Traces of Flight calls: one span per call, continuing the caller's W3C trace
//! (`traceparent`), and the current span handed on to the next process (a proxied call).
//!
//! Invariants:
//! - Pond's trace spans have the target [`TARGET`]; with no exporter nothing listens to it, so
//!   each span is a disabled callsite and nothing is extracted or injected (no propagator is
//!   installed).
//! - A span never carries a token, a secret or a literal of the user's SQL: calls are named by
//!   gRPC method, statements by their text with literals removed (`pond-coordinator`).

use std::task::{Context, Poll};

use opentelemetry::propagation::{Extractor, Injector};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `tracing` target of every span Pond exports.
pub const TARGET: &str = "pond_trace";

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Puts the current span's trace context in `metadata` (`traceparent`), for the process the
/// call goes to next; a call outside any exported span keeps what it carries.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut MetadataInjector(metadata)));
}

/// The tower layer that runs each call in a span of its own.
#[derive(Clone, Copy, Default)]
pub struct TraceCalls;

impl<S> tower::Layer<S> for TraceCalls {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// A service whose calls are traced (see [`TraceCalls`]).
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    /// Untraced calls go straight through: no allocation, no label, when nothing exports.
    type Future =
        futures::future::Either<S::Future, futures::future::BoxFuture<'static, Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        use futures::future::Either;
        if !tracing::enabled!(target: "pond_trace", tracing::Level::INFO) {
            return Either::Left(self.inner.call(request));
        }
        let method = crate::metrics::method_label(request.uri().path());
        let name = method.rsplit('/').next().unwrap_or(method);
        let span = tracing::info_span!(
            target: "pond_trace",
            "rpc",
            otel.name = name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if span.is_disabled() {
            return Either::Left(self.inner.call(request));
        }
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        // A caller without a trace gets a new one.
        let _ = span.set_parent(parent);
        let call = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let recorded = span.clone();
        Either::Right(Box::pin(
            async move {
                let response = call.await?;
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                recorded.record("rpc.grpc.status_code", code);
                if code != 0 {
                    recorded.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        ))
    }
}
