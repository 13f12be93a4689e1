"""Upload integrity: a commit is acknowledged only when the object store kept the bytes that were
sent. `pond serve --storage s3://…` talks to a real S3-compatible server (moto) through a real
HTTP proxy on loopback that, on demand, mangles PUT bodies the ways a broken proxy does. moto
verifies neither `x-amz-checksum-sha256` nor `Content-MD5` (checked by experiment: it stores
what arrives and answers 200), so what catches the damage here is Pond comparing the answer's
ETag with what it sent; servers that verify the checksum refuse the body outright."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from pond_helpers import Error, rows, run, scalar


def read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """Reads an HTTP head; returns (head, bytes read past it), or None at end of stream."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def without(lines: list[bytes], *names: bytes) -> list[bytes]:
    return [h for h in lines if h.split(b":", 1)[0].strip().lower() not in names]


class ManglingProxy:
    """A plain-HTTP proxy in front of the S3 server. While `mode` is set, each PUT body is
    changed on its way:
      empty  the body dropped, Content-Length 0 (consistent: the server sees a valid request);
      cut    the first half, Content-Length to match;
      flip   one byte changed, the length kept;
      short  the first half sent under the original Content-Length, then the stream closed.
    One request per connection (`Connection: close` both ways) keeps the relaying simple."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode: str | None = None
        self.mangled = 0
        # PUTs seen, and those that carried a checksum for the server to verify.
        self.puts = 0
        self.puts_with_checksum = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket):
        upstream = None
        try:
            got = read_head(client)
            if got is None:
                return
            head, body = got
            request_line, *headers = head.split(b"\r\n")
            length = 0
            for h in headers:
                name, _, value = h.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                assert name.strip().lower() != b"transfer-encoding", "chunked bodies are not expected"
            while len(body) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                body += chunk
            body = body[:length]
            declared = length
            mode = self.mode
            if request_line.startswith(b"PUT ") and body:
                self.puts += 1
                if any(h.lower().startswith(b"x-amz-checksum-sha256:") for h in headers):
                    self.puts_with_checksum += 1
            if request_line.startswith(b"PUT ") and body and mode:
                self.mangled += 1
                if mode == "empty":
                    body = b""
                    declared = 0
                elif mode == "cut":
                    body = body[: len(body) // 2]
                    declared = len(body)
                elif mode == "flip":
                    i = len(body) // 2
                    body = body[:i] + bytes([body[i] ^ 0x5A]) + body[i + 1 :]
                elif mode == "short":
                    body = body[: len(body) // 2]
                else:
                    raise AssertionError(mode)
            headers = without(headers, b"content-length", b"connection")
            headers += [b"Content-Length: %d" % declared, b"Connection: close"]
            upstream = socket.create_connection(self.upstream)
            upstream.sendall(b"\r\n".join([request_line, *headers]) + b"\r\n\r\n" + body)
            if mode == "short" and request_line.startswith(b"PUT "):
                upstream.shutdown(socket.SHUT_WR)
            got = read_head(upstream)
            if got is None:
                return
            head, rest = got
            status_line, *headers = head.split(b"\r\n")
            headers = without(headers, b"connection") + [b"Connection: close"]
            client.sendall(b"\r\n".join([status_line, *headers]) + b"\r\n\r\n" + rest)
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    s.close()


@pytest.fixture
def proxied_s3(s3_server):
    """A fresh bucket on the S3 server and a ManglingProxy in front of it that Pond is pointed
    at; yields (proxy, bucket)."""
    bucket = s3_server.new_bucket("integrity")
    proxy = ManglingProxy(s3_server.port)
    yield proxy, bucket
    proxy.close()


NOT_ACKNOWLEDGED = "(?i)not acknowledged"


@pytest.mark.parametrize("mode", ["empty", "cut", "flip", "short"])
def test_a_mangled_upload_is_never_acknowledged(pond_factory, s3_server, proxied_s3, mode):
    proxy, bucket = proxied_s3
    server = pond_factory(
        ["--storage", f"s3://{bucket}/deployment"],
        env=s3_server.pond_env(endpoint_url=f"http://127.0.0.1:{proxy.port}"),
    )
    conn = server.connect(autocommit=True)
    run(conn, "CREATE TABLE t(i BIGINT, s VARCHAR)")
    run(conn, "INSERT INTO t SELECT range, 'bulk ' || range FROM range(100000)")
    acked = set(range(100000))
    for i in (100000, 100001):
        run(conn, f"INSERT INTO t VALUES ({i}, 'one row')")
        acked.add(i)

    proxy.mode = mode
    # WAL-only commits and a bulk commit that writes blocks: each refused, none acknowledged.
    for i in (200000, 200001):
        with pytest.raises(Error, match=NOT_ACKNOWLEDGED):
            run(conn, f"INSERT INTO t VALUES ({i}, 'refused')")
    with pytest.raises(Error, match=NOT_ACKNOWLEDGED):
        run(conn, "CREATE TABLE big AS SELECT range AS i, 'big ' || range AS s FROM range(300000)")
    assert proxy.mangled > 0, "the proxy changed no upload: the test proved nothing"
    # Every upload carried a SHA-256 for servers that verify it (AWS, MinIO) to refuse it.
    assert proxy.puts_with_checksum == proxy.puts > 0
    # The server stays up and keeps answering.
    assert server.proc.poll() is None
    assert scalar(conn, "SELECT count(*) FROM t WHERE i < 100000") == 100000

    # Once bodies get through again, commits are acknowledged again.
    proxy.mode = None
    for i in (300000, 300001):
        run(conn, f"INSERT INTO t VALUES ({i}, 'after')")
        acked.add(i)
    server.stop_clean()

    # Local disk is a cache: what survives is what the store holds.
    shutil.rmtree(server.data_dir / "ducklings")
    shutil.rmtree(server.data_dir / "cache")
    server.start()
    conn = server.connect(autocommit=True)
    present = {r[0] for r in rows(conn, "SELECT i FROM t")}
    missing = sorted(acked - present)
    assert not missing, f"acknowledged rows lost: {missing[:10]}"
    # Every snapshot has a manifest that reads back and objects that match their names (an
    # attachment is built from them, each checked): no mangled manifest was left behind, and
    # no acknowledged object was overwritten.
    snapshots = rows(
        conn,
        "SELECT snapshot_id FROM pond_information_schema.database_snapshots "
        "WHERE database_name = 'my_db' ORDER BY snapshot_id",
    )
    assert len(snapshots) >= 5, snapshots
    for (sid,) in snapshots:
        run(conn, f"ATTACH 'pond:my_db' AS s{sid} (SNAPSHOT_ID {sid})")
        run(conn, f"DETACH s{sid}")
    manifests = s3_server.objects(bucket, prefix="deployment/databases/")
    assert manifests and all(o["Size"] > 0 for o in manifests), [o["Key"] for o in manifests if not o["Size"]]
