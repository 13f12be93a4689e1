"""Several `pond serve --ducklings process` coordinators on one PostgreSQL catalog and one S3
(moto) store: each user's writer duckling is unique across them (a lease in the catalog), any
coordinator serves any user, and a coordinator killed in the middle of a stream loses nothing
acknowledged: its users' next queries run through another."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import PondServer
from pond_helpers import Error, rows, scalar, table, unique
from test_catalog_postgres import PG, fresh_database, psql

pytestmark = pytest.mark.skipif(not PG, reason="POND_TEST_POSTGRES names no PostgreSQL server")


class Cluster:
    """Coordinators started on one catalog and one bucket, each with its own data directory
    holding the cluster key it is given."""

    def __init__(self, tmp_path: Path, s3_server):
        self.tmp_path = tmp_path
        self.catalog = fresh_database()
        self.storage = f"s3://{s3_server.new_bucket()}/pond"
        self.env = {"POND_CATALOG": self.catalog, **s3_server.pond_env()}
        self.key = os.urandom(32)
        self.servers: list[PondServer] = []

    def start(self, key: bytes | None = None) -> PondServer:
        d = self.tmp_path / f"coordinator{len(self.servers)}"
        (d / "data").mkdir(parents=True)
        key_file = d / "data" / "cluster.key"
        key_file.write_bytes(key or self.key)
        key_file.chmod(0o600)
        server = PondServer(d / "data", d, ["--ducklings", "process", "--storage", self.storage], self.env)
        server.start()
        self.servers.append(server)
        return server

    def user(self) -> tuple[str, str]:
        """A new user and a token minted through the catalog (good on every coordinator)."""
        name = unique("u")
        return name, self.servers[0].new_user(name)

    def stop(self) -> None:
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                s.stop()


@pytest.fixture
def cluster(tmp_path, s3_server):
    c = Cluster(tmp_path, s3_server)
    yield c
    c.stop()


def writers_of(server: PondServer, user: str) -> list[dict]:
    """The user's primary duckling processes, as `pond_ducklings()` lists the cluster's."""
    with server.connect(autocommit=True) as admin:
        listed = table(admin, "SELECT * FROM pond_ducklings()").to_pylist()
    return [d for d in listed if d["user_name"] == user and not d["read_replica"]]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def started_writers(server: PondServer, user: str) -> list[str]:
    """The user's primary ducklings this coordinator started since it last started, by id (from
    its log: a listing shows the ducklings that run now, the log every one ever started)."""
    assert server._stderr_path is not None
    text = ANSI.sub("", server._stderr_path.read_text(errors="replace"))
    return re.findall(rf'pond_cluster::pool: duckling started user="{user}" duckling="(d_\w+)" read_replica=false', text)


def live_leases(cluster: Cluster, user: str) -> int:
    return int(psql(
        cluster.catalog,
        f"SELECT count(*) FROM pond_writer_leases WHERE user_name = '{user}' AND expires_at > clock_timestamp()",
    ))


def lease(cluster: Cluster, user: str) -> str:
    return psql(cluster.catalog, f"SELECT address FROM pond_writer_leases WHERE user_name = '{user}'")


def test_concurrent_first_queries_on_two_coordinators_start_one_writer(cluster):
    a, b = cluster.start(), cluster.start()
    name, token = cluster.user()
    with a.connect(token=token, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE t (coordinator TEXT, k INTEGER)")
    assert lease(cluster, name) != "" and live_leases(cluster, name) == 1
    # A coordinator that stops releases its leases: the user's next first queries race on a
    # clean slate, through both coordinators at once.
    a.stop_clean()
    assert live_leases(cluster, name) == 0
    a.start()

    barrier = threading.Barrier(8)
    acknowledged: list[tuple[str, int]] = []
    failures: list[str] = []

    def writer(server: PondServer, label: str, k: int) -> None:
        try:
            with server.connect(token=token, autocommit=True) as c, c.cursor() as cur:
                barrier.wait(timeout=60)
                cur.execute(f"INSERT INTO t VALUES ('{label}', {k})")
                acknowledged.append((label, k))
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{label}{k}: {e}")

    threads = [
        threading.Thread(target=writer, args=(s, label, k))
        for k in range(4)
        for s, label in ((a, "a"), (b, "b"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert len(acknowledged) == 8

    # One writer duckling in the whole cluster, named by the user's lease.
    started = started_writers(a, name) + started_writers(b, name)
    assert len(started) == 1, started
    assert psql(cluster.catalog, f"SELECT duckling_id FROM pond_writer_leases WHERE user_name = '{name}'") == started[0]
    for server in (a, b):
        with server.connect(token=token, autocommit=True) as c:
            assert sorted(rows(c, "SELECT coordinator, k FROM t")) == sorted(acknowledged)

    # Either coordinator's pond_ducklings() lists the whole cluster (each coordinator reports
    # its own every second): the user's one writer, and ducklings of both coordinators.
    def listings():
        out = []
        for server in (a, b):
            with server.connect(autocommit=True) as admin:
                out.append(table(admin, "SELECT * FROM pond_ducklings()").to_pylist())
        return out

    deadline = time.monotonic() + 30
    while True:
        found = listings()
        if all(len({d["coordinator"] for d in listed}) == 2 for listed in found):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    for listed in found:
        writers = [d for d in listed if d["user_name"] == name and not d["read_replica"]]
        assert [d["duckling_id"] for d in writers] == started, listed


def test_a_killed_coordinators_users_go_on_through_another_with_every_commit(cluster):
    a, b = cluster.start(), cluster.start()
    name, token = cluster.user()
    with a.connect(token=token, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT range AS k FROM range(1000)")
        for k in range(1000, 1005):
            cur.execute(f"INSERT INTO t VALUES ({k})")
    [orphan] = writers_of(a, name)
    assert lease(cluster, name) == orphan["address"]

    # A stream is running through A when A dies.
    conn = a.connect(token=token, autocommit=True)
    cur = conn.cursor()
    cur.execute("SELECT r.range AS i, t.k FROM range(20000) r, t")
    first = cur.fetchmany(2048)
    assert len(first) == 2048
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(timeout=10)
    a.proc = None
    with pytest.raises(Error):
        while cur.fetchmany(100_000):
            pass

    for closing in (cur.close, conn.close):
        try:
            closing()
        except Error:
            pass  # their server is gone

    # B serves the user at once, through A's duckling while A's lease lasts, then through one
    # of its own once the lease lapsed: every acknowledged row is there either way.
    deadline = time.monotonic() + 60
    while True:
        try:
            with b.connect(token=token, autocommit=True) as c:
                assert scalar(c, "SELECT count(*) FROM t") == 1005
                assert scalar(c, "SELECT max(k) FROM t") == 1004
            break
        except Error as e:
            assert time.monotonic() < deadline, f"B never served the user: {e}"
            time.sleep(0.1)
    with b.connect(token=token, autocommit=True) as c, c.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2000)")
    deadline = time.monotonic() + 60
    while not started_writers(b, name):
        assert time.monotonic() < deadline, "B never took over the user's lease"
        try:
            with b.connect(token=token, autocommit=True) as c:
                scalar(c, "SELECT 1")
        except Error:
            pass  # A's duckling was fenced or stopped under this call: the next one starts B's
        time.sleep(0.2)
    [writer] = started_writers(b, name)
    with b.connect(token=token, autocommit=True) as c:
        assert scalar(c, "SELECT count(*) FROM t") == 1006
    assert psql(cluster.catalog, f"SELECT duckling_id FROM pond_writer_leases WHERE user_name = '{name}'") == writer
    assert lease(cluster, name) != orphan["address"]
    # A's duckling, which lost its coordinator, stops by itself.
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{orphan['pid']}") and not zombie(orphan["pid"]):
        assert time.monotonic() < deadline, "the dead coordinator's duckling did not stop"
        time.sleep(0.2)


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_coordinators_with_different_cluster_keys_say_so(cluster):
    a = cluster.start()
    b = cluster.start(key=os.urandom(32))
    name, token = cluster.user()
    with a.connect(token=token, autocommit=True) as c:
        assert scalar(c, "SELECT 1") == 1
    with pytest.raises(Error) as refused, b.connect(token=token, autocommit=True) as c:
        scalar(c, "SELECT 1")
    message = str(refused.value)
    assert "FAILED_PRECONDITION" in message or "precondition" in message.lower(), message
    assert "must share cluster.key" in message, message
    assert cluster.key.hex() not in message
