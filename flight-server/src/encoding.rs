//! Which requests may arrive compressed: uploads only.
//!
//! tonic inflates a unary request (GetFlightInfo, DoAction, …) before Pond's handler checks
//! its token, up to the message limit: a few kilobytes of zstd from anyone could make the
//! server allocate hundreds of megabytes. A DoPut's messages are inflated only as its handler
//! reads them, after the token is checked, so uploads may come compressed
//! ([`crate::flight_service`]'s callers enable it on the public front doors).
//!
//! Invariant: a request other than DoPut reaches tonic without `grpc-encoding`, so a
//! compressed message in it is refused as a protocol error, never inflated.

use std::task::{Context, Poll};

/// The gRPC path of Flight's DoPut.
const DO_PUT: &str = "/arrow.flight.protocol.FlightService/DoPut";

/// A layer that drops `grpc-encoding` from every request but DoPut (see the module).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressedUploadsOnly;

impl<S> tower::Layer<S> for CompressedUploadsOnly {
    type Service = UploadsOnly<S>;

    fn layer(&self, inner: S) -> UploadsOnly<S> {
        UploadsOnly { inner }
    }
}

/// A service behind [`CompressedUploadsOnly`].
#[derive(Debug, Clone)]
pub struct UploadsOnly<S> {
    inner: S,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for UploadsOnly<S>
where
    S: tower::Service<http::Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        if request.uri().path() != DO_PUT {
            request.headers_mut().remove("grpc-encoding");
        }
        self.inner.call(request)
    }
}
