//! The client's network link: every byte to and from the server is counted here, and an
//! optional bandwidth limit emulates a slower network (the dual-execution benchmark's
//! 100 Mbit/s runs). It sits under gRPC and TLS as tonic's connector, so what it counts is
//! what crosses the wire.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// How far the limit may run ahead before a read or write waits.
const BURST: Duration = Duration::from_millis(20);

/// Byte counters and an optional bandwidth limit, shared by all of a client's connections.
#[derive(Debug, Default)]
pub struct Link {
    sent: AtomicU64,
    received: AtomicU64,
    /// Bytes per second in each direction; `None` is unlimited.
    bandwidth: Option<u64>,
    /// When each direction is free again under the limit.
    up_free: Mutex<Option<Instant>>,
    down_free: Mutex<Option<Instant>>,
}

impl Link {
    /// An unlimited, counting link.
    pub fn unlimited() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A link limited to `bits_per_second` in each direction.
    pub fn throttled(bits_per_second: u64) -> Arc<Self> {
        Arc::new(Self {
            bandwidth: Some((bits_per_second / 8).max(1)),
            ..Self::default()
        })
    }

    /// Bytes sent and received so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.received.load(Ordering::Relaxed))
    }

    /// Bytes in both directions so far.
    pub fn moved(&self) -> u64 {
        let (s, r) = self.totals();
        s + r
    }

    /// Records `n` bytes in one direction and returns how long the limit says to wait.
    fn pass(&self, n: usize, up: bool) -> Option<Instant> {
        if up {
            self.sent.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        let rate = self.bandwidth?;
        let slot = if up { &self.up_free } else { &self.down_free };
        let mut free = slot.lock();
        let now = Instant::now();
        let start = free.filter(|f| *f > now).unwrap_or(now);
        let until = start + Duration::from_secs_f64(n as f64 / rate as f64);
        *free = Some(until);
        // Sleep only once the debt is worth a timer tick: tokio's timer rounds up to whole
        // milliseconds, and a sleep per small read would hold the link well under its rate.
        // The debt is kept, so the average rate is exact.
        (until > now + BURST).then_some(until)
    }
}

/// A TCP stream that reports to a [`Link`] and waits out its limit.
pub(crate) struct MeteredStream {
    inner: TcpStream,
    link: Arc<Link>,
    read_wait: Option<Pin<Box<Sleep>>>,
    write_wait: Option<Pin<Box<Sleep>>>,
}

fn wait(slot: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(sleep) = slot {
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *slot = None;
    }
    Poll::Ready(())
}

impl AsyncRead for MeteredStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if wait(&mut this.read_wait, cx).is_pending() {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0
            && let Some(until) = this.link.pass(n, false)
        {
            this.read_wait = Some(Box::pin(tokio::time::sleep_until(until.into())));
        }
        r
    }
}

impl AsyncWrite for MeteredStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if wait(&mut this.write_wait, cx).is_pending() {
            return Poll::Pending;
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r
            && let Some(until) = this.link.pass(*n, true)
        {
            this.write_wait = Some(Box::pin(tokio::time::sleep_until(until.into())));
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Connecting = Pin<Box<dyn std::future::Future<Output = io::Result<TokioIo<MeteredStream>>> + Send>>;

/// Tonic's connector over a [`Link`]: TCP with Nagle off, metered.
pub(crate) fn connector(
    link: Arc<Link>,
) -> impl tower_service::Service<http::Uri, Response = TokioIo<MeteredStream>, Error = io::Error, Future = Connecting>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |uri: http::Uri| {
        let link = Arc::clone(&link);
        let fut: Connecting = Box::pin(async move {
            let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_string();
            let port = uri.port_u16().unwrap_or(80);
            let inner = TcpStream::connect((host.as_str(), port)).await?;
            inner.set_nodelay(true)?;
            Ok(TokioIo::new(MeteredStream {
                inner,
                link,
                read_wait: None,
                write_wait: None,
            }))
        });
        fut
    })
}
