"""Ducklings on several hosts: `pond duckling` processes in network namespaces the test makes
(one per "host", each with an address of its own on a private link to the test's namespace),
registered with two coordinators that share a PostgreSQL catalog and an S3 store (moto). A
host's ducklings are killed (every process in its namespace, SIGKILL) in the middle of a
query: the query fails cleanly with UNAVAILABLE and a retry hint, and the user's next query
runs on a duckling of the other host with every acknowledged row, through either
coordinator."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PondServer, S3Server
from pond_helpers import Error, scalar, unique
from test_catalog_postgres import PG, fresh_database, psql

pytestmark = pytest.mark.skipif(not PG, reason="POND_TEST_POSTGRES names no PostgreSQL server")


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


@dataclass
class Host:
    """A network namespace linked to the test's by a veth pair: `outside` is the test's end,
    `inside` the host's address."""

    namespace: str
    outside: str
    inside: str

    def pids(self) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]

    def kill(self) -> None:
        """Every process of the host, at once, as when the machine dies."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def hosts():
    """Two hosts; skipped where network namespaces cannot be made (no CAP_NET_ADMIN)."""
    tag = f"{random.randrange(1 << 16):04x}"
    net = random.randrange(16, 250)
    if subprocess.run(["ip", "netns", "add", f"pond{tag}0"], capture_output=True).returncode != 0:
        pytest.skip("this machine cannot make network namespaces (ip netns add failed)")
    made: list[Host] = []
    try:
        for i in range(2):
            ns = f"pond{tag}{i}"
            if i:
                ip("netns", "add", ns)
            outside, inside = f"10.{net}.{i}.1", f"10.{net}.{i}.2"
            ip("link", "add", f"pv{tag}{i}o", "type", "veth", "peer", "name", f"pv{tag}{i}i")
            ip("link", "set", f"pv{tag}{i}i", "netns", ns)
            ip("addr", "add", f"{outside}/24", "dev", f"pv{tag}{i}o")
            ip("link", "set", f"pv{tag}{i}o", "up")
            ip("netns", "exec", ns, "ip", "addr", "add", f"{inside}/24", "dev", f"pv{tag}{i}i")
            ip("netns", "exec", ns, "ip", "link", "set", f"pv{tag}{i}i", "up")
            ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            made.append(Host(ns, outside, inside))
        yield made
    finally:
        for i in range(2):
            host = made[i] if i < len(made) else None
            if host:
                host.kill()
            subprocess.run(["ip", "link", "del", f"pv{tag}{i}o"], capture_output=True)
            subprocess.run(["ip", "netns", "del", f"pond{tag}{i}"], capture_output=True)


def start_duckling(server: PondServer, host: Host, env: dict, data_dir: Path, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.namespace, server.bin, "duckling",
         "--coordinator", f"grpc://{host.outside}:{server.port}",
         "--listen", f"{host.inside}:0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=open(log, "wb"), stdin=subprocess.DEVNULL, env=env,
    )
    line = proc.stdout.readline().decode()
    assert f"listening on grpc://{host.inside}:" in line, line + log.read_text(errors="replace")
    return proc


def test_a_hosts_ducklings_killed_mid_query_lose_nothing_and_the_next_query_runs_elsewhere(hosts, tmp_path):
    catalog = fresh_database()
    # On every address: the hosts reach it through their links.
    moto = S3Server(tmp_path / "moto.log", host="0.0.0.0")
    moto.start()
    try:
        bucket = f"s3://{moto.new_bucket()}/pond"
        key = os.urandom(32)
        coordinators = []
        for n in range(2):
            d = tmp_path / f"coordinator{n}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "cluster.key").write_bytes(key)
            (d / "data" / "cluster.key").chmod(0o600)
            server = PondServer(
                d / "data", d, ["--ducklings", "remote", "--storage", bucket],
                {"POND_CATALOG": catalog, **moto.pond_env(f"http://127.0.0.1:{moto.port}")},
                listen="0.0.0.0:0",
            )
            server.start()
            coordinators.append(server)
        a, b = coordinators
        # Each host runs a duckling for each coordinator.
        ducklings = []
        for h, host in enumerate(hosts):
            for n, server in enumerate(coordinators):
                env = dict(os.environ, POND_CLUSTER_SECRET=key.hex(), POND_LOG="info",
                           **moto.pond_env(f"http://{host.outside}:{moto.port}"))
                ducklings.append(start_duckling(server, host, env, tmp_path / f"d{h}{n}", tmp_path / f"d{h}{n}.log"))

        name = unique("u")
        token = a.new_user(name)
        deadline = time.monotonic() + 60
        while True:  # until a's ducklings registered
            try:
                with a.connect(token=token, autocommit=True) as c, c.cursor() as cur:
                    cur.execute("CREATE TABLE t AS SELECT range AS k FROM range(1000)")
                break
            except Error as e:
                assert "no duckling is free" in str(e) and time.monotonic() < deadline, e
                time.sleep(0.2)
        with a.connect(token=token, autocommit=True) as c, c.cursor() as cur:
            for k in range(1000, 1010):
                cur.execute(f"INSERT INTO t VALUES ({k})")
        address = psql(catalog, f"SELECT address FROM pond_writer_leases WHERE user_name = '{name}'")
        [doomed] = [h for h in hosts if address.startswith(h.inside + ":")]
        [survivor] = [h for h in hosts if h is not doomed]

        # A stream runs when its host dies: the query fails with UNAVAILABLE and says to retry.
        conn = a.connect(token=token, autocommit=True)
        cur = conn.cursor()
        cur.execute("SELECT r.range AS i, t.k FROM range(20000) r, t")
        assert len(cur.fetchmany(2048)) == 2048
        doomed.kill()
        with pytest.raises(Error) as failed:
            while cur.fetchmany(100_000):
                pass
        text = str(failed.value)
        assert "UNAVAILABLE" in text.upper() and "retry" in text.lower(), text
        for closing in (cur.close, conn.close):
            try:
                closing()
            except Error:
                pass

        # The next query runs on the other host's duckling, with every acknowledged row, and
        # so through the other coordinator.
        deadline = time.monotonic() + 60
        while True:
            try:
                with a.connect(token=token, autocommit=True) as c:
                    assert scalar(c, "SELECT count(*) FROM t") == 1010
                break
            except Error as e:
                assert "retry" in str(e).lower() and time.monotonic() < deadline, e
                time.sleep(0.1)
        moved = psql(catalog, f"SELECT address FROM pond_writer_leases WHERE user_name = '{name}'")
        assert moved.startswith(survivor.inside + ":"), moved
        with b.connect(token=token, autocommit=True) as c, c.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (5000)")
            assert scalar(c, "SELECT count(*) FROM t") == 1011
            assert scalar(c, "SELECT max(k) FROM t") == 5000
        assert not doomed.pids(), "the killed host still runs processes"

        # A token revoked through the catalog is refused by both coordinators.
        minted = subprocess.run(
            [a.bin, "token", "create", "--user", name, "--data-dir", str(tmp_path / "cli"), "--show-id"],
            env=a.process_env(), capture_output=True, text=True, timeout=60,
        )
        assert minted.returncode == 0, minted.stderr
        doomed_token, token_id = minted.stdout.strip(), minted.stderr.split("token id: ")[1].split()[0]
        for server in (a, b):
            with server.connect(token=doomed_token, autocommit=True) as c:
                assert scalar(c, "SELECT count(*) FROM t") == 1011
        revoked = subprocess.run(
            [a.bin, "token", "revoke", token_id, "--data-dir", str(tmp_path / "cli")],
            env=a.process_env(), capture_output=True, text=True, timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        for server in (a, b):
            deadline = time.monotonic() + 10
            while True:
                try:
                    with server.connect(token=doomed_token, autocommit=True) as c:
                        scalar(c, "SELECT 1")
                except Error as e:
                    assert "invalid or expired token" in str(e), e
                    break
                assert time.monotonic() < deadline, "a revoked token is still accepted"
                time.sleep(0.2)
    finally:
        for server in locals().get("coordinators", []):
            if server.proc is not None:
                server.stop()
        for proc in locals().get("ducklings", []):
            if proc.poll() is None:
                proc.kill()
        moto.stop()

