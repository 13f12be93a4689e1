//! The front door's view of each call: counted for `/metrics` when `--metrics-listen` is on,
//! and run in a span of its own (continuing the caller's `traceparent`) when traces are
//! exported. One layer does both, from one method label and one read of the call's status.
//!
//! Invariants:
//! - With neither on, a call goes straight through: no allocation, no label.
//! - A call is observed when its response headers leave: its code is the `grpc-status` of a
//!   response without a body (errors), else OK; its time is the time to those headers (for
//!   DoGet, to the stream's start), tracing included.
//! - Labels and span names are gRPC methods only, never a path a client made up (`other`).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::{BoxFuture, Either};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;
use crate::telemetry::TARGET;

/// The tower layer that observes a front door's calls; `metrics` counts them when set.
#[derive(Clone, Default)]
pub struct ObserveCalls {
    metrics: Option<Arc<Metrics>>,
}

impl ObserveCalls {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveCalls {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service whose calls are observed (see [`ObserveCalls`]).
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Observed<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let span = call_span(&request);
        if self.metrics.is_none() && span.is_none() {
            return Either::Left(self.inner.call(request));
        }
        let method = method_label(request.uri().path());
        let call = match &span {
            Some(span) => span.in_scope(|| self.inner.call(request)),
            None => self.inner.call(request),
        };
        let metrics = self.metrics.clone();
        let recorded = span.clone();
        let observed = async move {
            let response = call.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            if let Some(metrics) = metrics {
                metrics.record_call(method, code, started);
            }
            if let Some(span) = recorded {
                span.record("rpc.grpc.status_code", code);
                if code != 0 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Ok(response)
        };
        Either::Right(match span {
            Some(span) => Box::pin(observed.instrument(span)),
            None => Box::pin(observed),
        })
    }
}

/// The call's span, continuing its caller's trace; `None` when no trace is exported.
fn call_span<B>(request: &http::Request<B>) -> Option<tracing::Span> {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return None;
    }
    let method = method_label(request.uri().path());
    let name = method.rsplit('/').next().unwrap_or(method);
    let span = tracing::info_span!(
        target: TARGET,
        "rpc",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return None;
    }
    // A caller without a trace gets a new one.
    let _ = span.set_parent(crate::telemetry::caller_context(request.headers()));
    Some(span)
}

/// A call's method as a label: the services a front door serves by name, anything else (a
/// client may send any path) as `other`, so labels stay few.
pub(crate) fn method_label(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/arrow.flight.protocol.FlightService/Handshake",
        "/arrow.flight.protocol.FlightService/ListFlights",
        "/arrow.flight.protocol.FlightService/GetFlightInfo",
        "/arrow.flight.protocol.FlightService/PollFlightInfo",
        "/arrow.flight.protocol.FlightService/GetSchema",
        "/arrow.flight.protocol.FlightService/DoGet",
        "/arrow.flight.protocol.FlightService/DoPut",
        "/arrow.flight.protocol.FlightService/DoExchange",
        "/arrow.flight.protocol.FlightService/DoAction",
        "/arrow.flight.protocol.FlightService/ListActions",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    ];
    KNOWN.iter().find(|k| **k == path).copied().unwrap_or("other")
}
