//! The channel of a session with a Pond server. On every request it sends
//! - the bearer token, under Pond's own header ([`pond_proto::token`]), which HTTP/2 sends in
//!   full once per connection rather than once per call;
//! - the server's session cookie: it remembers `set-cookie` from responses and sends it back,
//!   as browsers and the JDBC driver do;
//! - the current trace span (`traceparent`), so a client's spans and the server's make one
//!   trace when the client exports (`--otlp-endpoint`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{HeaderValue, Request, Response, header};
use tonic::transport::Channel;

/// A [`Channel`] with a token and a cookie jar of one session cookie.
#[derive(Clone)]
pub struct SessionChannel {
    inner: Channel,
    token: Option<HeaderValue>,
    cookie: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for SessionChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionChannel")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl SessionChannel {
    /// Wraps a connected channel; `token` goes with every request.
    pub fn new(inner: Channel, token: Option<HeaderValue>) -> Self {
        Self {
            inner,
            token,
            cookie: Arc::new(Mutex::new(None)),
        }
    }
}

impl Service<Request<Body>> for SessionChannel {
    type Response = Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if let Some(token) = &self.token {
            request.headers_mut().insert(pond_proto::token::HEADER, token.clone());
        }
        if let Some(c) = self.cookie.lock().as_deref()
            && let Ok(v) = c.parse()
        {
            request.headers_mut().insert(header::COOKIE, v);
        }
        inject_trace_context(request.headers_mut());
        let jar = Arc::clone(&self.cookie);
        let fut = self.inner.call(request);
        Box::pin(async move {
            let response = fut.await?;
            if let Some(set) = response.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok())
                && let Some(pair) = set.split(';').next()
            {
                *jar.lock() = Some(pair.trim().to_string());
            }
            Ok(response)
        })
    }
}

/// Puts the current span's trace context (`traceparent`) in `headers`, when a span is exported.
fn inject_trace_context(headers: &mut tonic::codegen::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Injector<'a>(&'a mut tonic::codegen::http::HeaderMap);
    impl opentelemetry::propagation::Injector for Injector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                header::HeaderName::from_bytes(key.as_bytes()),
                tonic::codegen::http::HeaderValue::from_str(&value),
            ) {
                self.0.insert(key, value);
            }
        }
    }
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut Injector(headers)));
}
