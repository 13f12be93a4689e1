"""Behind a TLS front door, coordinator and duckling processes speak mutual TLS under the
cluster's own CA (derived from the cluster key), whatever host a duckling runs on; clients
fetching from a duckling directly see the front door's certificate."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as flight
import pytest

from pond_helpers import Error, rows, scalar, unique
from test_ducklings import wait_for
from test_tls import certs  # noqa: F401 - the fixture


def tls_args(certs) -> list[str]:
    return ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]


def trusting(certs) -> dict:
    return {"adbc.flight.sql.client_option.tls_root_certs": (certs / "ca.pem").read_text()}


def s_client(address: str, server_name: str | None = None) -> str:
    """What `openssl s_client` learns from a TLS port (no client certificate offered)."""
    args = ["openssl", "s_client", "-connect", address, "-showcerts"]
    if server_name:
        args += ["-servername", server_name]
    done = subprocess.run(args, input="", capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def asks_for_a_cluster_certificate(out: str) -> bool:
    names = out.split("Acceptable client certificate CA names", 1)
    return len(names) == 2 and "Pond cluster CA" in names[1].split("---", 1)[0]


def refused_without_a_client_certificate(address: str) -> bool:
    """Whether a TLS port turns away a client that presents no certificate (asking for the
    cluster's name). TLS 1.3 finishes the client's handshake first: the refusal arrives as an
    alert on the first read, where a port that only asks would answer the HTTP/2 preface."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="pond-cluster") as tls:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                answer = tls.recv(9)
        except ssl.SSLError as e:
            return "CERTIFICATE_REQUIRED" in str(e).upper() or "HANDSHAKE_FAILURE" in str(e).upper()
        except (ConnectionResetError, BrokenPipeError):
            return True
    return not answer


def children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10)
    return [int(p) for p in done.stdout.split()]


def test_process_ducklings_and_their_coordinator_speak_mutual_tls(pond_factory, certs):
    server = pond_factory([*tls_args(certs), "--ducklings", "process"])
    with server.connect(autocommit=True, db_kwargs=trusting(certs)) as conn:
        assert scalar(conn, "SELECT 40 + 2") == 42
        addresses = [a for (a,) in rows(conn, "SELECT address FROM pond_ducklings() WHERE mode = 'process'")]
    assert addresses
    for address in addresses:
        # The coordinator asks for the cluster's name: the duckling's cluster leaf, and a
        # demand for a cluster certificate in return.
        out = s_client(address, "pond-cluster")
        assert "Pond cluster CA" in out, out
        assert asks_for_a_cluster_certificate(out), out
        assert refused_without_a_client_certificate(address)
        # Plaintext gRPC is not spoken there at all.
        plain = flight_sql.connect(f"grpc://{address}", db_kwargs=server.db_kwargs(), autocommit=True)
        try:
            with pytest.raises(Error):
                scalar(plain, "SELECT 1")
        finally:
            try:
                plain.close()
            except Error:
                pass
        # A client without a cluster certificate gets no call through, even with a token.
        client = flight.FlightClient(f"grpc+tls://{address}", disable_server_verification=True)
        with pytest.raises(flight.FlightError):
            list(client.list_actions(options=flight.FlightCallOptions(
                headers=[(b"authorization", f"Bearer {server.token}".encode())], timeout=10)))

    # The children register on the coordinator's cluster port, which is TLS and asks for a
    # cluster certificate too; each child holds its own leaf, never the cluster key.
    secret = (server.data_dir / "cluster.key").read_bytes().hex()
    kids = children(server.proc.pid)
    assert kids
    for pid in kids:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        coordinator = cmdline[cmdline.index(b"--coordinator") + 1].decode()
        assert coordinator.startswith("grpc+tls://127.0.0.1:"), coordinator
        out = s_client(coordinator.removeprefix("grpc+tls://"), "pond-cluster")
        assert "Pond cluster CA" in out and asks_for_a_cluster_certificate(out), out
        assert refused_without_a_client_certificate(coordinator.removeprefix("grpc+tls://"))
        environ = open(f"/proc/{pid}/environ", "rb").read()
        assert b"POND_CLUSTER_TLS_KEY=" in environ
        assert secret.encode() not in environ, "a child was given the cluster key"
    log = server._stderr_tail(1_000_000)
    assert "PRIVATE KEY" not in log and secret not in log


def test_direct_endpoints_over_tls_name_grpc_tls_and_show_the_public_certificate(pond_factory, certs):
    server = pond_factory([*tls_args(certs), "--ducklings", "process", "--endpoints", "direct"])
    name = unique("u")
    token = server.new_user(name)
    with server.connect(token=token, autocommit=True, db_kwargs=trusting(certs)) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE t AS SELECT range AS x FROM range(5000)")
        cur.close()
        # ADBC follows the endpoint's location to the duckling, over TLS.
        assert scalar(conn, "SELECT sum(x) FROM t") == sum(range(5000))
    ca = (certs / "ca.pem").read_bytes()
    client = flight.FlightClient(server.url, tls_root_certs=ca)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    query = b"SELECT 42 AS answer"
    inner = b"\x0a" + bytes([len(query)]) + query
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    anymsg = b"\x0a" + bytes([len(type_url)]) + type_url + b"\x12" + bytes([len(inner)]) + inner
    info = client.get_flight_info(flight.FlightDescriptor.for_command(anymsg), options)
    location = info.endpoints[0].locations[0].uri.decode()
    assert re.fullmatch(r"grpc\+tls://127\.0\.0\.1:\d+", location), location
    assert not location.endswith(f":{server.port}")
    # A client that trusts the front door's CA fetches from the duckling, without a client
    # certificate (the signed ticket is its credential): the duckling shows the public
    # certificate to anyone who does not ask for the cluster's name, the cluster leaf to whoever
    # does.
    direct = flight.FlightClient(location, tls_root_certs=ca)
    assert direct.do_get(info.endpoints[0].ticket).read_all().column(0).to_pylist() == [42]
    address = location.removeprefix("grpc+tls://")
    public = s_client(address)
    assert "i:CN = Pond test CA" in public and "Pond cluster CA\n" not in public.split("---")[1], public
    assert "i:CN = Pond cluster CA" in s_client(address, "pond-cluster")
    # Clients fetching directly need no cluster certificate: the port answers without one.
    assert not refused_without_a_client_certificate(address)


def test_a_remote_duckling_registers_over_tls_with_a_certificate_of_its_own(pond_factory, certs, tmp_path):
    server = pond_factory([*tls_args(certs), "--ducklings", "remote"])
    secret = (server.data_dir / "cluster.key").read_bytes().hex()
    env = dict(os.environ, POND_CLUSTER_SECRET=secret, POND_LOG="info")
    log = open(tmp_path / "duckling.log", "wb")
    proc = subprocess.Popen(
        [server.bin, "duckling", "--coordinator", f"grpc+tls://localhost:{server.port}",
         "--coordinator-ca", str(certs / "ca.pem"), "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path / "duckling")],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
    )
    try:
        line = proc.stdout.readline().decode()
        assert "listening on grpc+tls://127.0.0.1:" in line, line
        address = line.rsplit("://", 1)[1].strip()

        def serves():
            try:
                with server.connect(autocommit=True, db_kwargs=trusting(certs)) as conn:
                    return scalar(conn, "SELECT 6 * 7") == 42
            except Error as e:
                assert "no duckling is free" in str(e), e
                return False

        wait_for(serves, what="the remote duckling to register over TLS and serve")
        out = s_client(address, "pond-cluster")
        assert "Pond cluster CA" in out and asks_for_a_cluster_certificate(out), out
        assert refused_without_a_client_certificate(address)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
