//! Traces of Flight calls: one span per call, continuing the caller's W3C trace
//! (`traceparent`), and the current span handed on to the next process (a proxied call).
//!
//! Invariants:
//! - Pond's trace spans have the target [`TARGET`]; with no exporter nothing listens to it, so
//!   each span is a disabled callsite and nothing is extracted or injected (no propagator is
//!   installed).
//! - A span never carries a token, a secret or a literal of the user's SQL: calls are named by
//!   gRPC method, statements by their text with literals removed (`pond-coordinator`).

use opentelemetry::propagation::{Extractor, Injector};
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

/// The trace a call's headers continue (`traceparent`); with none, the call starts its own.
pub(crate) fn caller_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}
