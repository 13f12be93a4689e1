//! A channel that keeps the server's session cookie: it remembers `set-cookie` from responses
//! and sends it back on every request, as browsers and the JDBC driver do. It also hands the
//! current trace span to the server (`traceparent`), so a client's spans and the server's make
//! one trace when the client exports (`--otlp-endpoint`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response, header};
use tonic::transport::Channel;

/// A [`Channel`] with a cookie jar of one session cookie.
#[derive(Clone, Debug)]
pub struct CookieChannel {
    inner: Channel,
    cookie: Arc<Mutex<Option<String>>>,
}

impl CookieChannel {
    /// Wraps a connected channel.
    pub fn new(inner: Channel) -> Self {
        Self {
            inner,
            cookie: Arc::new(Mutex::new(None)),
        }
    }
}

impl Service<Request<Body>> for CookieChannel {
    type Response = Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
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
