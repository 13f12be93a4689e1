"""`pond serve --catalog postgres://…` (or POND_CATALOG): the catalog in a real PostgreSQL
server, started by `tests/postgres.sh` (run-all.sh exports its address as POND_TEST_POSTGRES),
used through the ADBC driver, and read back with psql and pg_dump."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from conftest import PondServer
from pond_helpers import Error, rows, scalar, unique

PG = os.environ.get("POND_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not PG, reason="POND_TEST_POSTGRES names no PostgreSQL server")


def fresh_database() -> str:
    """A new database on the test server; its connection string."""
    name = "pond_py_" + uuid.uuid4().hex
    subprocess.run(["psql", PG, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return PG.rsplit("/", 1)[0] + "/" + name


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-tAc", sql], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("mode", [[], ["--ducklings", "process"]], ids=["in-process", "process"])
def test_the_catalog_lives_in_postgres_and_survives_a_restart(pond_factory, mode):
    url = fresh_database()
    server = pond_factory(mode, env={"POND_CATALOG": url})
    alice_name = unique("alice")
    alice = server.new_user(alice_name)
    with server.connect(token=alice, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE sales")
        cur.execute("CREATE TABLE sales.t AS SELECT 42 AS x")
        cur.execute("CREATE SECRET lake IN POND (TYPE s3, KEY_ID 'AKIAPGKEY', SECRET 'pg-hidden-value')")
        cur.execute("DROP DATABASE IF EXISTS nothing_here")
    # Nothing of the catalog in the data directory; all of it in PostgreSQL.
    assert not (server.data_dir / "catalog.json").exists()
    assert psql(url, f"SELECT count(*) FROM pond_databases WHERE owner = '{alice_name}'") == "2"
    assert psql(url, "SELECT max(version) FROM pond_schema_migrations") == "3"
    dump = subprocess.run(["pg_dump", "--data-only", url], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert "pond_secrets" in dump.stdout and "lake" in dump.stdout
    assert "pg-hidden-value" not in dump.stdout and "AKIAPGKEY" not in dump.stdout, "a secret is in the clear"

    server.restart()
    with server.connect(token=alice, autocommit=True) as c:
        assert scalar(c, "SELECT x FROM sales.t") == 42
        assert rows(c, "SELECT name FROM pond_information_schema.secrets") == [("lake",)]
        history = rows(
            c,
            "SELECT query_text, status FROM pond_information_schema.query_history "
            "WHERE query_text LIKE 'CREATE DATABASE%'",
        )
        assert history == [("CREATE DATABASE sales", "ok")], history
    assert int(psql(url, "SELECT count(*) FROM pond_query_history")) >= 4


def test_an_unreachable_catalog_stops_the_server_with_a_clear_error_and_no_password(tmp_path):
    server = PondServer(tmp_path / "data", tmp_path, env={"POND_CATALOG": "postgres://pond:sekrit-pw@127.0.0.1:1/pond"})
    done = subprocess.run(
        [server.bin, "serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0"],
        env=server.process_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "catalog" in done.stderr and "cannot be reached" in done.stderr, done.stderr
    assert "sekrit-pw" not in done.stderr + done.stdout
    bad = subprocess.run(
        [server.bin, "serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0"],
        env=dict(server.process_env(), POND_CATALOG="mysql://x"), capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode != 0 and "not a PostgreSQL connection string" in bad.stderr, bad.stderr


def refused(server: PondServer, token: str) -> bool:
    """Whether `server` refuses `token` (a fresh connection's first query fails)."""
    try:
        with server.connect(token=token, autocommit=True) as c:
            scalar(c, "SELECT 1")
        return False
    except Error:
        return True


def test_two_coordinators_on_one_catalog_serve_the_same_users_tokens_and_revocations(pond_factory, tmp_path):
    url = fresh_database()
    storage = tmp_path / "storage"
    storage.mkdir()
    shared = ["--storage", f"file://{storage}"]
    a = pond_factory(shared, env={"POND_CATALOG": url})
    b = pond_factory(shared, env={"POND_CATALOG": url})
    name = unique("alice")
    minted = subprocess.run(
        [a.bin, "token", "create", "--user", name, "--data-dir", str(tmp_path / "cli"), "--show-id"],
        env=a.process_env(), capture_output=True, text=True, timeout=60,
    )
    assert minted.returncode == 0, minted.stderr
    token, token_id = minted.stdout.strip(), minted.stderr.split("token id: ")[1].split()[0]

    # Written through one coordinator, read through the other with the same token.
    with a.connect(token=token, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE sales")
        cur.execute("CREATE TABLE sales.t AS SELECT 7 AS x")
        cur.execute("CREATE SECRET lake IN POND (TYPE s3, KEY_ID 'AKIASHARED', SECRET 'shared-hidden')")
    with b.connect(token=token, autocommit=True) as c:
        assert scalar(c, "SELECT x FROM sales.t") == 7
        assert rows(c, "SELECT name FROM pond_information_schema.secrets") == [("lake",)], "sealed under one key"
    # Each one's admin token is good on the other: one signing key, from the catalog.
    assert not refused(b, a.token) and not refused(a, b.token)
    assert psql(url, "SELECT count(*) FROM pond_signing_key") == "1"
    assert not (a.data_dir / "signing.key").exists() and not (b.data_dir / "signing.key").exists()

    # Revoked once, through the catalog: both refuse it within the revocation poll (2 s).
    done = subprocess.run(
        [a.bin, "token", "revoke", token_id, "--data-dir", str(tmp_path / "cli")],
        env=a.process_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.time() + 10
    while not (refused(a, token) and refused(b, token)):
        assert time.time() < deadline, "a coordinator still accepts the revoked token"
        time.sleep(0.2)
    assert not refused(a, a.token), "only the revoked token is refused"


def test_a_duckling_process_is_never_given_the_catalogs_password(pond_factory):
    url = fresh_database()
    server = pond_factory(["--ducklings", "process"], env={"POND_CATALOG": url})
    with server.connect(autocommit=True) as c:
        assert scalar(c, "SELECT 42") == 42
    children = subprocess.run(
        ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True, timeout=10
    ).stdout.split()
    ducklings = [pid for pid in children if "duckling" in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")]
    assert ducklings, f"no duckling process among {children}"
    for pid in ducklings:
        environ = open(f"/proc/{pid}/environ", "rb").read()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        assert b"POND_CATALOG" not in environ and url.encode() not in environ + cmdline


def test_the_catalog_connection_uses_tls_and_verifies_the_servers_certificate(pond_factory, tmp_path):
    # tests/postgres.sh serves TLS with a certificate of its own, named by PGSSLROOTCERT.
    assert os.environ.get("PGSSLROOTCERT"), "the test server's CA is not given"
    url = fresh_database()
    # libpq's verify-full reads as require: certificates are always verified.
    server = pond_factory([], env={"POND_CATALOG": url + "?sslmode=verify-full"})
    with server.connect(autocommit=True) as c:
        assert scalar(c, "SELECT 42") == 42
    name = url.rsplit("/", 1)[1]
    encrypted = psql(
        url,
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        f"WHERE a.datname = '{name}' AND a.pid <> pg_backend_pid()",
    )
    tls, total = map(int, encrypted.split("|"))
    assert total >= 1 and tls == total, f"{tls} of Pond's {total} catalog connections use TLS"

    # Without the server's CA, its certificate is refused, even for a password-less URL.
    env = {k: v for k, v in server.process_env().items() if k != "PGSSLROOTCERT"}
    env["POND_CATALOG"] = url + "?sslmode=require"
    refused = subprocess.run(
        [server.bin, "serve", "--data-dir", str(tmp_path / "other"), "--listen", "127.0.0.1:0"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0
    assert "catalog" in refused.stderr and "certificate" in refused.stderr, refused.stderr
