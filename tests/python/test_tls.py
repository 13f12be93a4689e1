"""TLS: `pond serve --tls-cert/--tls-key` serves grpc+tls://, with a CA the test generates."""

import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from pond_helpers import Error, scalar


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(tmp_path):
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    d = tmp_path / "certs"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=Pond test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


@pytest.fixture
def tls_server(pond_factory, certs):
    server = pond_factory(["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")])
    assert server.scheme == "grpc+tls", f"listening line announced {server.scheme}://"
    return server


def test_queries_over_tls_with_the_test_ca(tls_server, certs):
    ca = (certs / "ca.pem").read_text()
    with tls_server.connect(autocommit=True, db_kwargs={
        "adbc.flight.sql.client_option.tls_root_certs": ca,
    }) as conn:
        assert scalar(conn, "SELECT 40 + 2") == 42


def test_process_ducklings_behind_a_tls_front_door(pond_factory, certs):
    # The children register on a loopback port of their own; clients see only TLS.
    server = pond_factory([
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        "--ducklings", "process",
    ])
    ca = (certs / "ca.pem").read_text()
    with server.connect(autocommit=True, db_kwargs={
        "adbc.flight.sql.client_option.tls_root_certs": ca,
    }) as conn:
        assert scalar(conn, "SELECT 40 + 2") == 42
        assert scalar(conn, "SELECT count(*) FROM pond_ducklings() WHERE mode = 'process'") >= 1


def refusal(url: str, db_kwargs: dict) -> str:
    """The error a client gets from its first query; fails the test if the query succeeds."""
    conn = flight_sql.connect(url, db_kwargs=db_kwargs, autocommit=True)
    try:
        with pytest.raises(Error) as info:
            scalar(conn, "SELECT 1")
        return str(info.value).lower()
    finally:
        try:
            conn.close()
        except Error:
            pass


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server):
    text = refusal(tls_server.url, tls_server.db_kwargs())
    assert "certificate" in text or "x509" in text or "unavailable" in text, text


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_server):
    refusal(tls_server.url.replace("grpc+tls://", "grpc://"), tls_server.db_kwargs())


@pytest.fixture
def client_cert(certs):
    """A client certificate signed by the test CA, for mutual TLS."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=pond-client", cwd=certs)
    (certs / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf", cwd=certs)
    return (certs / "client.pem").read_text(), (certs / "client.key").read_text()


@pytest.fixture
def mtls_server(pond_factory, certs):
    return pond_factory([
        "--tls-cert", str(certs / "server.pem"),
        "--tls-key", str(certs / "server.key"),
        "--tls-client-ca", str(certs / "ca.pem"),
    ])


def test_mutual_tls_accepts_a_client_certificate_from_the_ca(mtls_server, certs, client_cert):
    chain, key = client_cert
    with mtls_server.connect(autocommit=True, db_kwargs={
        "adbc.flight.sql.client_option.tls_root_certs": (certs / "ca.pem").read_text(),
        "adbc.flight.sql.client_option.mtls_cert_chain": chain,
        "adbc.flight.sql.client_option.mtls_private_key": key,
    }) as conn:
        assert scalar(conn, "SELECT 7") == 7


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_server, certs):
    refusal(mtls_server.url, mtls_server.db_kwargs(**{
        "adbc.flight.sql.client_option.tls_root_certs": (certs / "ca.pem").read_text(),
    }))
