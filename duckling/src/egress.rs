//! A duckling's only way out to the network: an HTTP proxy on loopback that DuckDB's httpfs
//! is locked to (`http_proxy`, set before the lockdown). URLs, secrets' endpoints, the
//! `?s3_endpoint=` a URL may carry, redirects and DNS all end in one place, a connection to an
//! address, and this proxy judges that address.
//!
//! Invariants:
//! - Every connection is checked on the address it actually connects to, resolved here once:
//!   a name that resolves elsewhere later (DNS rebinding) or a redirect is judged anew.
//! - Link-local addresses (where cloud metadata services answer), the shared address space
//!   (100.64/10, Alibaba's metadata) and unspecified or broadcast addresses are always refused;
//!   loopback and private ones only unless the server allows private endpoints.
//! - Plain HTTP carries one request per connection (`Connection: close` is forced), so a reused
//!   connection cannot move to another host unchecked; HTTPS is a `CONNECT` tunnel, checked
//!   when it opens.
//! - One proxy per process and policy, started on first use; it never stops.
//! - A destination cannot hold the proxy's resources: at most [`MAX_CONNECTIONS`] relays at
//!   once (more are answered 503), every socket times out after [`IDLE`] without traffic, and a
//!   client that leaves ends its relay both ways.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use tracing::{debug, warn};

use crate::error::DucklingError;

/// Why `ip` may not be reached, if it may not: `allow_private` lets loopback and private
/// addresses through, never link-local ones.
pub fn address_refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
    const AZURE_WIRESERVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(168, 63, 129, 16);
    match embedded_v4(ip.to_canonical()) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (b & 0xc0) == 64;
            let benchmarking = a == 198 && (b & 0xfe) == 18;
            let reserved = a >= 240;
            if v4.is_link_local()
                || shared
                || benchmarking
                || reserved
                || v4 == AZURE_WIRESERVER
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
            {
                return Some("link-local or reserved (where cloud metadata services answer)");
            }
            if (v4.is_loopback() || v4.is_private()) && !allow_private {
                return Some("on the server's own network (pond serve --private-endpoints allows it)");
            }
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            if link_local || v6 == AWS_METADATA_V6 || v6.is_unspecified() || v6.is_multicast() {
                return Some("link-local or reserved (where cloud metadata services answer)");
            }
            let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfec0;
            if (v6.is_loopback() || unique_local) && !allow_private {
                return Some("on the server's own network (pond serve --private-endpoints allows it)");
            }
        }
    }
    None
}

/// Why a destination is not reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreached {
    /// Pond's policy refuses it (answered 403).
    Refused(String),
    /// It cannot be resolved or connected to (answered 502: a retry may succeed).
    Unreachable(String),
}

impl std::fmt::Display for Unreached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreached::Refused(why) | Unreached::Unreachable(why) => f.write_str(why),
        }
    }
}

/// The IPv4 address an IPv6 one stands for when it only carries one: NAT64 (`64:ff9b::/96`),
/// 6to4 (`2002::/16`) and IPv4-compatible (`::a.b.c.d`) forms are judged as that address.
fn embedded_v4(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => v4(hi, lo),
        [0x2002, hi, lo, ..] => v4(hi, lo),
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => v4(hi, lo),
        _ => ip,
    }
}

/// The first address of `host:port` that may be reached, or why none may.
pub fn allowed_address(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, Unreached> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Unreached::Unreachable(format!("{host} cannot be resolved: {e}")))?
        .collect();
    let mut why = Unreached::Unreachable(format!("{host} has no address"));
    for a in addresses {
        match address_refusal(a.ip(), allow_private) {
            None => return Ok(a),
            Some(refused) => why = Unreached::Refused(format!("{host} ({}) is {refused}", a.ip())),
        }
    }
    Err(why)
}

/// The loopback proxy of this process for `allow_private`, started on first use; its
/// `host:port`, for DuckDB's `http_proxy`.
pub fn proxy(allow_private: bool) -> Result<String, DucklingError> {
    static STRICT: OnceLock<Result<String, String>> = OnceLock::new();
    static PRIVATE: OnceLock<Result<String, String>> = OnceLock::new();
    let cell = if allow_private { &PRIVATE } else { &STRICT };
    cell.get_or_init(|| start(allow_private).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| DucklingError::Internal(format!("the egress proxy did not start: {e}")))
}

/// Relays open at once, across the process; more connections are answered 503.
const MAX_CONNECTIONS: usize = 512;

/// How long a relayed socket may stay silent before the proxy drops it. DuckDB's own
/// `http_timeout` is 30 s (it retries on a new connection); the margin is for a store that
/// answers only once a large uploaded part has arrived.
const IDLE: Duration = Duration::from_secs(300);

static OPEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one open connection while it lives.
struct Slot;

impl Slot {
    fn take() -> Option<Self> {
        let before = OPEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if before >= MAX_CONNECTIONS {
            OPEN.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn start(allow_private: bool) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    std::thread::Builder::new().name("pond-egress".into()).spawn(move || {
        for client in listener.incoming() {
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: wait for relays to end instead of spinning.
                    debug!(error = %e, "the egress proxy could not accept");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let Some(slot) = Slot::take() else {
                answer_busy(client);
                continue;
            };
            let spawned = std::thread::Builder::new()
                .name("pond-egress-conn".into())
                .spawn(move || {
                    let _slot = slot;
                    serve(client, allow_private);
                });
            if let Err(e) = spawned {
                warn!(error = %e, "the egress proxy could not start a relay");
            }
        }
    })?;
    Ok(address)
}

fn answer_busy(mut client: TcpStream) {
    let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let _ = client.shutdown(Shutdown::Both);
}

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 64 << 10;

fn serve(mut client: TcpStream, allow_private: bool) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let Some((head, rest)) = read_head(&mut client) else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = split_host_port(target, 443) else {
            return refuse(client, "a CONNECT without host:port");
        };
        let server = match allowed_address(&host, port, allow_private).and_then(connect) {
            Ok(s) => s,
            Err(unreached) => return answer(client, &unreached),
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .is_err()
        {
            return;
        }
        return relay(client, server, &rest);
    }
    // Plain HTTP: an absolute URI, sent on in origin form, one request per connection.
    let Some(after_scheme) = target.strip_prefix("http://") else {
        return refuse(client, "only absolute http:// requests and CONNECT pass this proxy");
    };
    let (authority, path) = after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
    if authority.contains('@') {
        return refuse(client, "a URL with user information");
    }
    let Some((host, port)) = split_host_port(authority, 80) else {
        return refuse(client, "a URL without a host");
    };
    let mut server = match allowed_address(&host, port, allow_private).and_then(connect) {
        Ok(s) => s,
        Err(unreached) => return answer(client, &unreached),
    };
    let path = if path.is_empty() { "/" } else { path };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "connection" | "proxy-connection" | "proxy-authorization" | "keep-alive"
        ) {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if server.write_all(forwarded.as_bytes()).is_err() {
        return;
    }
    relay(client, server, &rest);
}

/// Reads up to the end of the request head; returns it and the bytes read past it.
fn read_head(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            return Some((head, buffer[end + 4..].to_vec()));
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (authority, default_port),
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn connect(address: SocketAddr) -> Result<TcpStream, Unreached> {
    TcpStream::connect_timeout(&address, Duration::from_secs(30))
        .map_err(|e| Unreached::Unreachable(format!("{address}: {e}")))
}

fn refuse(client: TcpStream, why: &str) {
    answer(client, &Unreached::Refused(why.to_string()));
}

/// Answers a request the proxy does not pass on: 403 for Pond's refusal, 502 for a
/// destination that cannot be reached.
fn answer(mut client: TcpStream, unreached: &Unreached) {
    debug!(%unreached, "the egress proxy did not pass a request on");
    let (status, body) = match unreached {
        Unreached::Refused(why) => ("403 Forbidden", format!("Pond refuses this destination: {why}\n")),
        Unreached::Unreachable(why) => ("502 Bad Gateway", format!("cannot reach {why}\n")),
    };
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies both ways until either side ends, `pending` (bytes the client sent past its head)
/// first.
fn relay(client: TcpStream, mut server: TcpStream, pending: &[u8]) {
    for socket in [&client, &server] {
        let _ = socket.set_read_timeout(Some(IDLE));
        let _ = socket.set_write_timeout(Some(IDLE));
    }
    if !pending.is_empty() && server.write_all(pending).is_err() {
        return;
    }
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = std::thread::Builder::new()
        .name("pond-egress-up".into())
        .spawn(move || {
            let _ = std::io::copy(&mut client_reader, &mut server_writer);
            // The client is gone (or silent past IDLE): a destination that never answers must not
            // keep the other direction waiting.
            let _ = server_writer.shutdown(Shutdown::Both);
        });
    let mut client_writer = client;
    if let Err(e) = std::io::copy(&mut server, &mut client_writer) {
        debug!(error = %e, "an egress connection ended early");
    }
    let _ = client_writer.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    match upstream {
        Ok(upstream) => {
            if upstream.join().is_err() {
                warn!("an egress relay thread panicked");
            }
        }
        Err(e) => warn!(error = %e, "the egress proxy could not start a relay's second half"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_services_are_never_reached_and_private_networks_only_when_allowed() {
        let refused = |ip: &str, private: bool| address_refusal(ip.parse().unwrap(), private).is_some();
        for always in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
            "0.0.0.0",
            "::",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::169.254.169.254",
            "168.63.129.16",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(refused(always, true), "{always}");
        }
        for private in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.1",
            "172.16.0.1",
            "::1",
            "fd12::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:5",
        ] {
            assert!(refused(private, false), "{private}");
            assert!(!refused(private, true), "{private}");
        }
        assert!(!refused("93.184.216.34", false));
        assert!(!refused("2606:4700::1111", false));
    }

    fn through_proxy(proxy: &str, request: &str) -> String {
        let mut s = TcpStream::connect(proxy).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn the_proxy_forwards_to_allowed_hosts_one_request_per_connection_and_refuses_others() {
        // An origin on loopback that echoes the request head it got.
        let origin = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = origin.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut c in origin.incoming().flatten() {
                let (head, _) = read_head(&mut c).unwrap();
                let body = head.replace("\r\n", "|");
                let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        let strict = proxy(false).unwrap();
        let request = format!(
            "GET http://127.0.0.1:{port}/bucket/key?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n\r\n"
        );
        let refused = through_proxy(&strict, &request);
        assert!(
            refused.starts_with("HTTP/1.1 403") && refused.contains("own network"),
            "{refused}"
        );
        let open = proxy(true).unwrap();
        let answer = through_proxy(&open, &request);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("GET /bucket/key?x=1 HTTP/1.1|"), "{answer}");
        assert!(
            answer.contains("Connection: close") && !answer.contains("keep-alive"),
            "{answer}"
        );
        let metadata = through_proxy(&open, "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n");
        assert!(
            metadata.starts_with("HTTP/1.1 403") && metadata.contains("metadata"),
            "{metadata}"
        );
        let userinfo = through_proxy(&open, &format!("GET http://x@127.0.0.1:{port}/ HTTP/1.1\r\n\r\n"));
        assert!(userinfo.starts_with("HTTP/1.1 403"), "{userinfo}");
        let closed = through_proxy(&open, "GET http://127.0.0.1:9/x HTTP/1.1\r\n\r\n");
        assert!(closed.starts_with("HTTP/1.1 502"), "{closed}");
    }

    #[test]
    fn a_destination_that_never_answers_is_let_go_when_its_client_leaves() {
        // Accepts and then says nothing, ever.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let keep = std::sync::Arc::clone(&held);
        std::thread::spawn(move || {
            for c in silent.incoming().flatten() {
                keep.lock().push(c);
            }
        });
        let open = proxy(true).unwrap();
        let before = OPEN.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..20 {
            let mut s = TcpStream::connect(&open).unwrap();
            write!(s, "GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            drop(s);
        }
        // Every relay ends once its client has gone, although the destination never spoke.
        let settled = || OPEN.load(std::sync::atomic::Ordering::SeqCst) <= before && held.lock().len() == 20;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !settled() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(held.lock().len(), 20, "the proxy reached the destination each time");
        assert!(
            OPEN.load(std::sync::atomic::Ordering::SeqCst) <= before,
            "relays left open"
        );
    }
}
