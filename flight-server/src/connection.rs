//! A client connection whose writes go out once per HTTP/2 flush.
//!
//! h2 encodes frames into its own buffer, except a DATA payload at or above its "chain
//! threshold", which it keeps aside and writes with a vectored write; before it encodes any
//! frame after such a payload it flushes. With vectored writes that threshold is 256 bytes,
//! below the size of a `FlightInfo` or a one-row batch, so every small reply went out as two
//! or three writes (headers and data, then more data, then the trailers), each a system call
//! and a TCP segment the client's kernel must take in. Measured under 64 k6 clients: 3.3
//! writes per call against 1.25 for arrow-go's reference server.
//!
//! [`CoalescedWrites`] says it has no vectored writes, which raises h2's threshold to 1 KiB so
//! a small reply is encoded in one piece, and keeps what h2 writes until h2 flushes, so the
//! frames after a large payload leave with it; a payload of [`LARGE`] bytes or more is not
//! copied but written at once after what is kept, in one vectored write. Under TLS, h2 sees the TLS stream (which
//! writes vectored), so its threshold stays at 256 bytes; the records of one flush still
//! leave together.
//!
//! Go's gRPC clients (ADBC's Flight SQL driver, k6) also send a PING with each response they
//! receive, to estimate the bandwidth, and it arrives with their next request. h2 acknowledges
//! it at once, one more write per call, and the reply follows a few hundred microseconds later.
//! A flush that would send nothing but PING acknowledgements lets them wait
//! [`PING_ACK_WAIT`] (plus the timer's granularity, about a millisecond) for the next flush,
//! so the acknowledgement leaves with the reply.
//!
//! Invariants: bytes reach the socket in the order they were written; nothing written stays
//! here after a flush or a shutdown returns `Ready(Ok)`, except PING acknowledgements alone,
//! which leave once their timer fires (it wakes the connection's task, which then reads, and
//! the read sends them); what is left when the connection drops (a TLS alert that nobody
//! flushed) is offered to the socket once, without waiting; at most [`LIMIT`] bytes wait
//! here, and a connection back to small replies gives a large buffer back; a write's count is
//! of its own bytes, never of kept ones sent with it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The most bytes kept before they must go out: four of h2's largest default frames.
pub const LIMIT: usize = 64 * 1024;

/// A write at least this large (a bulk DATA payload) is not copied: it leaves at once, after
/// what is kept, in one vectored write.
pub const LARGE: usize = 8 * 1024;

/// How long PING acknowledgements alone may wait for the next flush.
pub const PING_ACK_WAIT: Duration = Duration::from_millis(1);

/// A buffer larger than this is given back once a flush sends less than a tenth of it.
const KEPT_CAPACITY: usize = 16 * 1024;

/// An HTTP/2 frame header of a PING acknowledgement: 8 bytes long, type PING, flag ACK,
/// stream 0.
const PING_ACK_HEADER: [u8; 9] = [0, 0, 8, 6, 1, 0, 0, 0, 0];
const PING_ACK_LEN: usize = PING_ACK_HEADER.len() + 8;

/// A socket that takes bytes without waiting, for what is left when a connection drops.
pub trait SendNow {
    /// Writes what the socket takes at once; never waits.
    fn send_now(&self, buf: &[u8]) -> io::Result<usize>;
}

impl SendNow for tokio::net::TcpStream {
    fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_write(buf)
    }
}

/// A connection (TCP, or anything under TLS) whose writes wait for the next flush.
#[derive(Debug)]
pub struct CoalescedWrites<T: SendNow> {
    inner: T,
    pending: Vec<u8>,
    /// How much of `pending` has already gone out.
    sent: usize,
    /// The deadline of PING acknowledgements a flush let wait (allocated once, then reset).
    ack_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `pending` holds only such acknowledgements, and `ack_timer` runs for them.
    acks_waiting: bool,
    /// Their deadline passed: the next read or flush sends them.
    acks_overdue: bool,
}

impl<T: SendNow> CoalescedWrites<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
            ack_timer: None,
            acks_waiting: false,
            acks_overdue: false,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Whether everything kept (none of it sent yet) is PING acknowledgements. Over TLS the
    /// bytes are records, never of this shape, so nothing waits.
    fn only_ping_acks(&self) -> bool {
        self.sent == 0
            && !self.pending.is_empty()
            && self.pending.len().is_multiple_of(PING_ACK_LEN)
            && self
                .pending
                .chunks(PING_ACK_LEN)
                .all(|frame| frame.starts_with(&PING_ACK_HEADER))
    }

    /// Starts (or keeps) the acknowledgements' timer and registers `cx` with it; whether it
    /// is still running.
    fn acks_may_wait(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.acks_waiting {
            let deadline = tokio::time::Instant::now() + PING_ACK_WAIT;
            match self.ack_timer.as_mut() {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.ack_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.acks_waiting = true;
        }
        let timer = self.ack_timer.as_mut().expect("set above");
        if timer.as_mut().poll(cx).is_ready() {
            self.acks_overdue = true;
        }
        !self.acks_overdue
    }
}

impl<T: AsyncWrite + SendNow + Unpin> CoalescedWrites<T> {
    /// Sends everything kept so far.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.all_sent();
        Poll::Ready(Ok(()))
    }

    /// Forgets what was kept, all of it sent.
    fn all_sent(&mut self) {
        if self.pending.capacity() > KEPT_CAPACITY && self.pending.len() < self.pending.capacity() / 10 {
            self.pending = Vec::new();
        }
        self.pending.clear();
        self.sent = 0;
        self.acks_waiting = false;
        self.acks_overdue = false;
    }

    /// Writes `buf`, a large payload, after what is kept, in one vectored write and without
    /// copying it; the count returned is of `buf`'s bytes only.
    fn poll_write_large(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let kept = &self.pending[self.sent..];
            if kept.is_empty() {
                self.all_sent();
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            }
            let slices = [io::IoSlice::new(kept), io::IoSlice::new(buf)];
            let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let kept_len = kept.len();
            if n < kept_len {
                self.sent += n;
                continue;
            }
            self.all_sent();
            if n > kept_len {
                return Poll::Ready(Ok(n - kept_len));
            }
        }
    }
}

impl<T: AsyncWrite + SendNow + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() >= LARGE {
            return this.poll_write_large(cx, buf);
        }
        if !this.pending.is_empty() && this.pending.len() + buf.len() > LIMIT {
            ready!(this.poll_send_pending(cx))?;
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.only_ping_acks() && this.acks_may_wait(cx) {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    /// No: h2 then encodes payloads under 1 KiB into its buffer instead of flushing after
    /// each (see the module's comment).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<T: AsyncRead + AsyncWrite + SendNow + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.acks_waiting && !this.acks_may_wait(cx) {
            // Pending (a full socket) leaves them overdue: the next read or flush sends them.
            if let Poll::Ready(Err(e)) = this.poll_send_pending(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: SendNow> Drop for CoalescedWrites<T> {
    fn drop(&mut self) {
        if self.sent < self.pending.len() {
            let _ = self.inner.send_now(&self.pending[self.sent..]);
        }
    }
}

impl<T: SendNow + Connected<ConnectInfo = TcpConnectInfo>> Connected for CoalescedWrites<T> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A writer that records each write it receives and refuses every other one first
    /// (`Pending`), as a full socket would.
    struct Recording {
        writes: Vec<Vec<u8>>,
        /// What it was offered when its connection dropped.
        at_drop: Arc<std::sync::Mutex<Vec<u8>>>,
        calls: Arc<AtomicUsize>,
        stall_every_other: bool,
    }

    impl AsyncWrite for Recording {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let call = this.calls.fetch_add(1, Ordering::SeqCst);
            if this.stall_every_other && call.is_multiple_of(2) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // A short write, as a socket may make.
            let n = buf.len().min(40_000);
            this.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &joined)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl SendNow for Recording {
        fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
            self.at_drop.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
    }

    fn recording(stall: bool) -> CoalescedWrites<Recording> {
        CoalescedWrites::new(Recording {
            writes: Vec::new(),
            at_drop: Default::default(),
            calls: Arc::new(AtomicUsize::new(0)),
            stall_every_other: stall,
        })
    }

    #[tokio::test]
    async fn small_writes_leave_together_at_the_flush() {
        let mut conn = recording(false);
        conn.write_all(b"headers").await.unwrap();
        conn.write_all(b"data").await.unwrap();
        conn.write_all(b"trailers").await.unwrap();
        assert!(conn.get_ref().writes.is_empty(), "nothing goes out before the flush");
        conn.flush().await.unwrap();
        assert_eq!(conn.get_ref().writes, vec![b"headersdatatrailers".to_vec()]);
        conn.flush().await.unwrap();
        assert_eq!(conn.get_ref().writes.len(), 1, "an empty flush writes nothing");
    }

    #[tokio::test]
    async fn large_and_stalled_writes_keep_every_byte_in_order() {
        for stall in [false, true] {
            let mut conn = recording(stall);
            let mut expected = Vec::new();
            for (i, len) in [10, LIMIT - 5, 3, 2 * LIMIT + 7, 100, LIMIT, 1].into_iter().enumerate() {
                let chunk: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
                conn.write_all(&chunk).await.unwrap();
                expected.extend_from_slice(&chunk);
                assert!(conn.pending.len() <= LIMIT, "at most LIMIT bytes wait");
            }
            conn.shutdown().await.unwrap();
            assert!(conn.pending.is_empty());
            assert_eq!(conn.get_ref().writes.concat(), expected, "stall: {stall}");
        }
    }

    /// A loopback connection: the server's side wrapped, the client's running `client`, and
    /// the listener's address.
    async fn accepted<F, T>(
        client: impl FnOnce(tokio::net::TcpStream) -> F,
    ) -> (
        CoalescedWrites<tokio::net::TcpStream>,
        tokio::task::JoinHandle<T>,
        std::net::SocketAddr,
    )
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let client = tokio::spawn(client(stream));
        let (server_side, _) = listener.accept().await.unwrap();
        (CoalescedWrites::new(server_side), client, addr)
    }

    fn ping_ack(n: u8) -> Vec<u8> {
        let mut frame = PING_ACK_HEADER.to_vec();
        frame.extend_from_slice(&[n; 8]);
        frame
    }

    #[tokio::test]
    async fn a_lone_ping_ack_waits_for_the_reply_it_precedes() {
        let mut conn = recording(false);
        conn.write_all(&ping_ack(1)).await.unwrap();
        conn.write_all(&ping_ack(2)).await.unwrap();
        conn.flush().await.unwrap();
        assert!(conn.get_ref().writes.is_empty(), "acknowledgements alone wait");
        conn.write_all(b"reply").await.unwrap();
        conn.flush().await.unwrap();
        assert_eq!(
            conn.get_ref().writes,
            vec![[ping_ack(1), ping_ack(2), b"reply".to_vec()].concat()]
        );
        // Anything else alone goes at once: a PING that is not an acknowledgement, a part.
        for other in [
            [&[0, 0, 8, 6, 0, 0, 0, 0, 0][..], &[0; 8]].concat(),
            ping_ack(3)[..10].to_vec(),
        ] {
            let before = conn.get_ref().writes.len();
            conn.write_all(&other).await.unwrap();
            conn.flush().await.unwrap();
            assert_eq!(conn.get_ref().writes.len(), before + 1);
        }
    }

    #[tokio::test]
    async fn a_large_payload_leaves_at_once_with_the_frame_header_before_it() {
        let mut conn = recording(false);
        conn.write_all(b"frame header").await.unwrap();
        let payload = vec![7u8; 16 * 1024];
        assert_eq!(
            conn.write(&payload).await.unwrap(),
            payload.len(),
            "counts only its own bytes"
        );
        assert_eq!(conn.get_ref().writes, vec![[&b"frame header"[..], &payload].concat()]);
        assert!(conn.pending.is_empty());
    }

    #[tokio::test]
    async fn what_nobody_flushed_is_offered_to_the_socket_when_the_connection_drops() {
        let mut conn = recording(false);
        conn.write_all(b"an alert").await.unwrap();
        let at_drop = Arc::clone(&conn.get_ref().at_drop);
        drop(conn);
        assert_eq!(*at_drop.lock().unwrap(), b"an alert");
    }

    #[tokio::test]
    async fn a_connection_back_to_small_replies_gives_its_large_buffer_back() {
        let mut conn = recording(false);
        // Many frames under LARGE each, as a batch of small rows makes.
        for _ in 0..15 {
            conn.write_all(&[1; 4096]).await.unwrap();
        }
        conn.flush().await.unwrap();
        assert!(conn.pending.capacity() >= 15 * 4096, "kept while replies are large");
        conn.write_all(b"small").await.unwrap();
        conn.flush().await.unwrap();
        assert!(conn.pending.capacity() <= KEPT_CAPACITY, "{}", conn.pending.capacity());
    }

    #[tokio::test]
    async fn a_lone_ping_ack_leaves_by_its_deadline_while_the_connection_reads() {
        let (mut conn, client, _) = accepted(|mut s| async move {
            let mut ack = vec![0u8; PING_ACK_LEN];
            s.read_exact(&mut ack).await.unwrap();
            ack
        })
        .await;
        conn.write_all(&ping_ack(7)).await.unwrap();
        conn.flush().await.unwrap();
        assert_eq!(conn.pending.len(), PING_ACK_LEN, "kept at the flush");
        // As h2 does, the connection waits to read; the deadline wakes it and the read sends.
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            let _ = conn.read(&mut buf).await;
        });
        let ack = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ack, ping_ack(7));
        reading.abort();
    }

    #[tokio::test]
    async fn reads_and_writes_pass_through_a_real_socket() {
        let (mut conn, client, addr) = accepted(|mut s| async move {
            s.write_all(b"ping").await.unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.unwrap();
            answer
        })
        .await;
        assert_eq!(conn.connect_info().remote_addr.map(|a| a.ip()), Some(addr.ip()));
        let mut asked = [0u8; 4];
        conn.read_exact(&mut asked).await.unwrap();
        assert_eq!(&asked, b"ping");
        conn.write_all(b"po").await.unwrap();
        conn.write_all(b"ng").await.unwrap();
        conn.shutdown().await.unwrap();
        assert_eq!(client.await.unwrap(), b"pong");
    }
}
