"""Ducklings: per-user DuckDB workers in-process, as `pond duckling` children, and as remote
processes that register with a coordinator; their limits, lifecycle and visibility."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import PondServer
from pond_helpers import (
    LONG_QUERY,
    Error,
    assert_usable,
    jwt,
    rows,
    run,
    run_in_thread,
    scalar,
    table,
    unique,
)


def ducklings(admin) -> list[dict]:
    return table(admin, "SELECT * FROM pond_ducklings() ORDER BY user_name").to_pylist()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by the server) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def new_user(server: PondServer):
    name = unique("u")
    token = server.new_user(name)
    return name, server.connect(token=token, autocommit=True)


# ---- process ducklings ----------------------------------------------------------------------


@pytest.fixture
def cluster(pond_factory):
    return pond_factory(["--ducklings", "process"])


def test_each_user_gets_its_own_duckling_process(cluster):
    admin = cluster.connect(autocommit=True)
    alice, a = new_user(cluster)
    bob, b = new_user(cluster)
    for conn, n in ((a, 1), (b, 2)):
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE t AS SELECT {n} AS who")
        cur.close()
    assert scalar(a, "SELECT who FROM t") == 1
    assert scalar(b, "SELECT who FROM t") == 2
    listed = {d["user_name"]: d for d in ducklings(admin)}
    assert {alice, bob, "admin"} <= set(listed)
    pids = {listed[u]["pid"] for u in (alice, bob, "admin")}
    assert len(pids) == 3, "two users never share a duckling"
    assert cluster.proc.pid not in pids, "process ducklings run outside the server"
    for u in (alice, bob):
        d = listed[u]
        assert d["mode"] == "process"
        assert d["address"].startswith("127.0.0.1:")
        assert pid_alive(d["pid"])
    # A user's own token does not open a duckling: only the coordinator's hop tokens do.
    client = flight.FlightClient(f"grpc://{listed[alice]['address']}")
    headers = [(b"authorization", f"Bearer {cluster.new_user(alice)}".encode())]
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.list_actions(options=flight.FlightCallOptions(headers=headers)))


def test_a_spare_duckling_process_serves_the_next_new_user(cluster):
    admin = cluster.connect(autocommit=True)

    def spares():
        return [d for d in ducklings(admin) if d["user_name"] == ""]

    # The admin's own first query took the first spare; another takes its place.
    spare = wait_for(spares, what="a spare duckling process")[0]
    assert spare["mode"] == "process" and pid_alive(spare["pid"])
    # A spare serves nobody until it is assigned: a user's token is refused there too.
    client = flight.FlightClient(f"grpc://{spare['address']}")
    headers = [(b"authorization", f"Bearer {cluster.new_user(unique('u'))}".encode())]
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.list_actions(options=flight.FlightCallOptions(headers=headers)))
    alice, a = new_user(cluster)
    cur = a.cursor()
    cur.execute("CREATE TABLE t AS SELECT 41 + 1 AS v")
    cur.close()
    assert scalar(a, "SELECT v FROM t") == 42
    listed = {d["user_name"]: d for d in ducklings(admin)}
    assert listed[alice]["pid"] == spare["pid"], "the new user got the waiting process"
    assert listed[alice]["duckling_id"] == spare["duckling_id"]
    wait_for(lambda: [d for d in spares() if d["duckling_id"] != spare["duckling_id"]], what="the next spare")
    # Once the spare's process exits, its working copies go home to alice; her next duckling
    # (the next spare) gets them moved in before it is assigned.
    run(a, "SHUTDOWN")
    wait_for(lambda: not pid_alive(spare["pid"]), what="the stopped duckling's process to exit")
    copies = cluster.data_dir / "cluster" / "primary" / alice / "ducklings"
    wait_for(lambda: copies.is_dir() and any(copies.rglob("*.duckdb")), what="the working copies to go home")
    wait_for(lambda: not (cluster.data_dir / "cluster" / "spare" / spare["duckling_id"]).exists(),
             what="the spare's directory to go")
    waiting = wait_for(spares, what="a spare for alice's next duckling")[0]
    assert scalar(a, "SELECT v FROM t") == 42
    listed = {d["user_name"]: d for d in ducklings(admin)}
    assert listed[alice]["duckling_id"] == waiting["duckling_id"]
    moved = cluster.data_dir / "cluster" / "spare" / waiting["duckling_id"] / "ducklings"
    assert any(moved.rglob("*.duckdb")) and not copies.exists(), "her copies moved in"


def test_killed_duckling_fails_its_query_cleanly_and_loses_nothing(cluster):
    admin = cluster.connect(autocommit=True)
    name, conn = new_user(cluster)
    cur = conn.cursor()
    cur.execute("CREATE TABLE kept AS SELECT range AS x FROM range(1000)")
    cur.execute("INSERT INTO kept VALUES (1000)")
    cur.close()
    pid = next(d["pid"] for d in ducklings(admin) if d["user_name"] == name)

    thread, out = run_in_thread(conn.cursor(), LONG_QUERY, close=True)
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert not thread.is_alive()
    err = out.get("error")
    assert err is not None, f"the query should fail, got {out}"
    assert "UNAVAILABLE" in str(err).upper() or "Unavailable" in str(err), err
    assert "duckling" in str(err), err

    # The next query works, on a new duckling, with every committed row.
    assert scalar(conn, "SELECT count(*) FROM kept") == 1001
    assert scalar(conn, "SELECT max(x) FROM kept") == 1000
    new_pid = next(d["pid"] for d in ducklings(admin) if d["user_name"] == name)
    assert new_pid != pid
    assert_usable(conn)


def test_writer_and_concurrent_readers_see_consistent_snapshots(cluster):
    check_ledger(cluster, read_only_readers=False)


def test_read_replicas_stay_consistent_under_a_writer(pond_factory):
    check_ledger(pond_factory(["--ducklings", "process", "--read-replicas", "2"]), read_only_readers=True)


def check_ledger(cluster, read_only_readers: bool):
    """A writer commits balanced pairs while readers sum the ledger: every read sees whole
    transactions, and the last commit is visible to the next query of another session."""
    name = unique("u")
    token = cluster.new_user(name)
    reader_token = cluster.new_user(name, read_only=True) if read_only_readers else token
    setup = cluster.connect(token=token, autocommit=True)
    run(setup, "CREATE TABLE ledger (id INTEGER, amount INTEGER)")
    writer = cluster.connect(token=token, autocommit=False)
    stop = threading.Event()
    problems: list[str] = []
    seen_counts: list[int] = []

    def read():
        conn = cluster.connect(token=reader_token, autocommit=True)
        try:
            while not stop.is_set():
                total, count = rows(conn, "SELECT COALESCE(sum(amount), 0), count(*) FROM ledger")[0]
                if total != 0 or count % 2:
                    problems.append(f"torn read: sum={total} count={count}")
                seen_counts.append(count)
        except Exception as e:  # noqa: BLE001 - reported below
            problems.append(f"reader failed: {e}")
        finally:
            conn.close()

    readers = [threading.Thread(target=read, daemon=True) for _ in range(3)]
    for r in readers:
        r.start()
    try:
        for i in range(40):
            # Every transaction keeps the ledger balanced: +n and -n.
            cur = writer.cursor()
            cur.execute(f"INSERT INTO ledger VALUES ({i}, {i + 1}), ({i}, -{i + 1})")
            cur.close()
            writer.commit()
        # Another session sees the last commit on its next query.
        assert scalar(setup, "SELECT count(*) FROM ledger") == 80
        last = cluster.connect(token=reader_token, autocommit=True)
        assert scalar(last, "SELECT count(*) FROM ledger") == 80
    finally:
        stop.set()
        for r in readers:
            r.join(30)
    assert not problems, problems[:5]
    assert seen_counts and max(seen_counts) <= 80


def test_idle_duckling_stops_and_restarts(pond_factory):
    server = pond_factory(["--ducklings", "process", "--duckling-idle-timeout", "1s"])
    admin = server.connect(autocommit=True)
    name, conn = new_user(server)
    run(conn, "CREATE TABLE t AS SELECT 7 AS v")
    pid = next(d["pid"] for d in ducklings(admin) if d["user_name"] == name)
    wait_for(lambda: not pid_alive(pid), timeout=30, what="the idle duckling to stop")
    # The next query starts a new one, with the data.
    assert scalar(conn, "SELECT v FROM t") == 7
    new_pid = next(d["pid"] for d in ducklings(admin) if d["user_name"] == name)
    assert new_pid != pid and pid_alive(new_pid)


def test_direct_endpoints_name_the_duckling_with_a_signed_ticket(pond_factory):
    server = pond_factory(["--ducklings", "process", "--endpoints", "direct"])
    name, conn = new_user(server)
    run(conn, "CREATE TABLE t AS SELECT range AS x FROM range(5000)")
    # ADBC follows the endpoint's location to the duckling.
    assert scalar(conn, "SELECT sum(x) FROM t") == sum(range(5000))

    token = server.new_user(name)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    options = flight.FlightCallOptions(headers=headers)
    # pyarrow has no Flight SQL messages: CommandStatementQuery{query} packed in an Any, by hand.
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    query = b"SELECT 42 AS answer"
    inner = b"\x0a" + varint(len(query)) + query
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    anymsg = b"\x0a" + varint(len(type_url)) + type_url + b"\x12" + varint(len(inner)) + inner
    client = flight.FlightClient(server.url)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(anymsg), options)
    endpoint = info.endpoints[0]
    location = endpoint.locations[0].uri.decode()
    assert location.startswith("grpc://127.0.0.1:")
    assert not location.endswith(f":{server.port}"), "the location names the duckling, not the server"
    assert "0.0.0.0" not in location
    # The duckling accepts the signed ticket without any token ...
    direct = flight.FlightClient(location)
    answer = direct.do_get(endpoint.ticket).read_all()
    assert answer.column(0).to_pylist() == [42]
    # ... and refuses a tampered one.
    info = client.get_flight_info(flight.FlightDescriptor.for_command(anymsg), options)
    raw = bytearray(info.endpoints[0].ticket.ticket)
    raw[-1] ^= 1
    with pytest.raises(flight.FlightError):
        direct.do_get(flight.Ticket(bytes(raw))).read_all()


# ---- remote ducklings -----------------------------------------------------------------------


def start_duckling(server: PondServer, tmp_path, n: int) -> subprocess.Popen:
    secret = (server.data_dir / "cluster.key").read_bytes().hex()
    env = dict(os.environ, POND_CLUSTER_SECRET=secret, POND_LOG="info")
    log = open(tmp_path / f"duckling-{n}.log", "wb")
    proc = subprocess.Popen(
        [
            server.bin,
            "duckling",
            "--coordinator",
            server.url,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(tmp_path / f"duckling-{n}"),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    line = proc.stdout.readline().decode()
    assert "listening on grpc://127.0.0.1:" in line, line
    return proc


def test_remote_ducklings_register_and_serve_one_user_each(pond_factory, tmp_path):
    server = pond_factory(["--ducklings", "remote"])
    procs = [start_duckling(server, tmp_path, n) for n in range(2)]
    try:
        admin = server.connect(autocommit=True)

        def both_registered():
            # A duckling registers once its DuckDB is open; until one has, the admin's query
            # finds none free.
            try:
                return len(ducklings(admin)) == 2
            except Error as e:
                assert "no duckling is free" in str(e), e
                return False

        wait_for(both_registered, what="two registered ducklings")
        listed = ducklings(admin)
        assert {d["mode"] for d in listed} == {"remote"}
        # The admin's own connection took one of them.
        assert "admin" in {d["user_name"] for d in listed}
        name, conn = new_user(server)
        cur = conn.cursor()
        cur.execute("CREATE TABLE t AS SELECT 5 AS v")
        cur.close()
        assert scalar(conn, "SELECT v FROM t") == 5
        users = {d["user_name"] for d in ducklings(admin)}
        assert users == {"admin", name}
        # Both are taken: a third user gets a clear UNAVAILABLE, and the others keep working.
        _, third = new_user(server)
        with pytest.raises(Error, match="no duckling is free"):
            scalar(third, "SELECT 1")
        assert scalar(conn, "SELECT v FROM t") == 5
        # A wrong cluster secret cannot register.
        env = dict(os.environ, POND_CLUSTER_SECRET="ab" * 32)
        bad = subprocess.run(
            [server.bin, "duckling", "--coordinator", server.url, "--data-dir", str(tmp_path / "bad")],
            capture_output=True,
            env=env,
            timeout=60,
        )
        assert bad.returncode != 0
        assert len(ducklings(admin)) == 2
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(30) == 0


# ---- limits -----------------------------------------------------------------------------------


def test_query_timeout_interrupts_and_concurrency_limit_queues(pond_factory):
    server = pond_factory(["--query-timeout", "2s", "--max-concurrent-queries", "1"])
    name = unique("u")
    token = server.new_user(name)
    a = server.connect(token=token, autocommit=True)
    b = server.connect(token=token, autocommit=True)
    started = time.time()
    long_thread, long_out = run_in_thread(a.cursor(), LONG_QUERY, close=True)
    time.sleep(0.5)
    short_thread, short_out = run_in_thread(b.cursor(), "SELECT 42", close=True)
    time.sleep(0.7)
    # Queued behind the long query, not refused.
    assert "done" not in short_out, short_out
    long_thread.join(30)
    short_thread.join(30)
    err = long_out.get("error")
    assert err is not None and "query timeout" in str(err) and "--query-timeout" in str(err), long_out
    assert short_out.get("rows") == [(42,)], short_out
    assert short_out["done"] >= long_out["done"] - 0.05
    assert long_out["done"] - started < 15
    assert_usable(a)


def test_query_timeout_interrupts_a_scripts_rehearsal(pond_factory):
    # Preparing a script whose last statement needs a CREATE TABLE ... AS before it rehearses
    # that CREATE on a connection of its own: the timeout must reach that connection too, or
    # the rehearsal would run its hours-long query holding the user's write gate.
    server = pond_factory(["--query-timeout", "2s"])
    conn = server.connect(autocommit=True)
    name = unique("rh")
    cur = conn.cursor()
    started = time.time()
    cur.adbc_prepare(f"CREATE TABLE {name} AS {LONG_QUERY}; SELECT * FROM {name}")
    cur.close()
    assert time.time() - started < 15
    assert rows(conn, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'") == [(0,)]
    # The write gate is free again: a write neither waits nor times out.
    run(conn, f"CREATE TABLE {name}_after AS SELECT 1 AS one")
    assert rows(conn, f"SELECT one FROM {name}_after") == [(1,)]


def test_max_result_bytes(pond_factory):
    server = pond_factory(["--max-result-bytes", "1MiB"])
    conn = server.connect(autocommit=True)
    with pytest.raises(Error, match="--max-result-bytes") as e:
        rows(conn, "SELECT range AS x, range * 2 AS y FROM range(10000000)")
    assert "RESOURCE_EXHAUSTED" in str(e.value).upper() or "ResourceExhausted" in str(e.value)
    assert scalar(conn, "SELECT count(*) FROM range(10000000)") == 10000000


def test_idle_in_process_duckling_stops_and_restarts(pond_factory):
    server = pond_factory(["--duckling-idle-timeout", "1s"])
    admin = server.connect(autocommit=True)
    name, conn = new_user(server)
    run(conn, "CREATE TABLE t AS SELECT 7 AS v")
    started = next(d["started_ts"] for d in ducklings(admin) if d["user_name"] == name)
    wait_for(
        lambda: name not in {d["user_name"] for d in ducklings(admin)},
        timeout=30,
        what="the idle duckling to stop",
    )
    assert scalar(conn, "SELECT v FROM t") == 7
    restarted = next(d["started_ts"] for d in ducklings(admin) if d["user_name"] == name)
    assert restarted > started


def test_pond_ducklings_is_for_admins(pond, user, admin_conn):
    conn = user.connect(autocommit=True)
    assert scalar(conn, "SELECT 1") == 1
    with pytest.raises(Error, match="admin"):
        rows(conn, "SELECT * FROM pond_ducklings()")
    listed = ducklings(admin_conn)
    mine = [d for d in listed if d["user_name"] == user.name]
    assert len(mine) == 1
    d = mine[0]
    assert d["mode"] == "in-process" and d["cold_start_ms"] > 0 and d["sessions"] >= 1
    assert set(d) >= {"duckling_id", "state", "memory_bytes", "running_queries", "started_ts"}


def test_memory_limit_reaches_process_ducklings_with_a_clear_error(pond_factory):
    server = pond_factory(["--ducklings", "process", "--duckling-memory", "64MB"])
    _, conn = new_user(server)
    # One list of 50M integers cannot spill: it needs far more than 64MB at once.
    with pytest.raises(Error, match="(?i)memory") as e:
        rows(conn, "SELECT list(range) FROM range(50000000)")
    assert "RESOURCE_EXHAUSTED" in str(e.value).upper() or "ResourceExhausted" in str(e.value)
    limit = scalar(conn, "SELECT current_setting('memory_limit')")
    assert limit.startswith(("61", "64")), limit
    assert_usable(conn)


@pytest.mark.parametrize("mode", ["in-process", "process"])
def test_shutdown_drains_running_queries(pond_factory, mode):
    server = pond_factory(["--ducklings", mode])
    _, conn = new_user(server)
    n = 300_000_000
    expected = scalar(conn, "SELECT sum(i % 7) FROM range(1000) t(i)")  # the duckling is up
    assert expected is not None
    thread, out = run_in_thread(conn.cursor(), f"SELECT sum(i % 7) FROM range({n}) t(i)", close=True)
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    thread.join(60)
    assert out.get("rows") == [(sum(range(7)) * (n // 7) + sum(range(n % 7)),)], out
    assert server.proc.wait(60) == 0
    server.proc = None


def test_read_replicas_serve_read_only_sessions_and_see_new_commits(pond_factory):
    server = pond_factory(["--ducklings", "process", "--read-replicas", "2"])
    admin = server.connect(autocommit=True)
    name = unique("u")
    writer = server.connect(token=server.new_user(name), autocommit=True)
    run(writer, "CREATE TABLE t AS SELECT 1 AS v")
    read_only = server.new_user(name, read_only=True)
    readers = [server.connect(token=read_only, autocommit=True) for _ in range(4)]
    for r in readers:
        assert scalar(r, "SELECT count(*) FROM t") == 1
    # A commit on the primary is seen by every replica's next query.
    run(writer, "INSERT INTO t VALUES (2)")
    for r in readers:
        assert scalar(r, "SELECT sum(v) FROM t") == 3
    with pytest.raises(Error, match="read-only"):
        rows(readers[0], "INSERT INTO t VALUES (3)")

    def mine():
        return [d for d in ducklings(admin) if d["user_name"] == name]

    listed = mine()
    assert sorted(d["read_replica"] for d in listed) == [False, True, True]
    assert len({d["pid"] for d in listed}) == 3
    # Round-robin: both replicas carry sessions.
    wait_for(
        lambda: all(d["sessions"] >= 1 for d in mine() if d["read_replica"]),
        what="sessions on both replicas",
    )
    assert scalar(writer, "SELECT sum(v) FROM t") == 3


def _jwt_hs256(key: bytes, claims: dict) -> str:
    return jwt({"alg": "HS256", "typ": "JWT"}, claims, key)


def _catalog_request(owner: str) -> bytes:
    # pond.cluster.v1.CatalogRequest{op: DATABASES (3), owner}
    data = owner.encode()
    return b"\x08\x03" + b"\x12" + bytes([len(data)]) + data


def test_a_duckling_key_cannot_act_for_another_duckling_or_user(cluster):
    admin = cluster.connect(autocommit=True)
    alice, a = new_user(cluster)
    bob, b = new_user(cluster)
    assert scalar(a, "SELECT 1") == 1 and scalar(b, "SELECT 1") == 1
    listed = {d["user_name"]: d for d in ducklings(admin)}
    # What a compromised duckling holds: its own id and key (from its environment).
    env = open(f"/proc/{listed[alice]['pid']}/environ", "rb").read().split(b"\0")
    key_hex = next(e for e in env if e.startswith(b"POND_DUCKLING_KEY=")).split(b"=", 1)[1]
    assert not any(e.startswith(b"POND_CLUSTER_SECRET=") for e in env), "children never get the cluster secret"
    key = bytes.fromhex(key_hex.decode())
    now = int(time.time())
    peer = _jwt_hs256(key, {"sub": "@pond-duckling", "iat": now, "exp": now + 60, "jti": "x", "scope": "read_only"})
    client = flight.FlightClient(cluster.url)

    def catalog(as_duckling: str, owner: str):
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {peer}".encode()), (b"x-pond-duckling", as_duckling.encode())]
        )
        return list(client.do_action(flight.Action("pond.cluster.catalog", _catalog_request(owner)), options))

    # Its own user's catalog: allowed (that is its job).
    assert catalog(listed[alice]["duckling_id"], alice)
    # Another user's, under its own id: refused.
    with pytest.raises(flight.FlightError, match="does not serve"):
        catalog(listed[alice]["duckling_id"], bob)
    # Posing as bob's duckling: its key is not bob's duckling's key.
    with pytest.raises(flight.FlightUnauthenticatedError):
        catalog(listed[bob]["duckling_id"], bob)
    # A token it mints for bob opens neither bob's duckling nor the coordinator.
    as_bob = _jwt_hs256(key, {"sub": bob, "iat": now, "exp": now + 60, "jti": "y", "scope": "read_write"})
    direct = flight.FlightClient(f"grpc://{listed[bob]['address']}")
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(direct.list_actions(options=flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {as_bob}".encode())])))
    # Clients cannot send the coordinator's duckling actions through the proxy.
    user_token = cluster.new_user(alice)
    with pytest.raises(pa.ArrowInvalid, match="unknown action"):
        list(
            client.do_action(
                flight.Action("pond.duckling.drain", b""),
                flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {user_token}".encode())]),
            )
        )
    assert scalar(a, "SELECT 1") == 1 and scalar(b, "SELECT 1") == 1


def test_sandbox_holds_in_duckling_processes(cluster):
    """The escape attempts of test_adversarial, against a duckling process."""
    from test_adversarial import ATTEMPTS, assert_attempt_refused, files_left_behind

    name, conn = new_user(cluster)
    for sql in ATTEMPTS.values():
        assert_attempt_refused(conn, sql)
    assert files_left_behind() == []
    # Another user's database is invisible from this user's duckling process.
    _, victim = new_user(cluster)
    private = unique("private")
    victim.cursor().execute(f"CREATE DATABASE {private}")
    listed = str(scalar(conn, "SELECT string_agg(database_name, ',') FROM duckdb_databases()"))
    assert private not in listed
    from pond_helpers import expect_error

    assert private in str(expect_error(conn, f"SELECT * FROM {private}.main.anything"))


@pytest.mark.parametrize("mode", ["in-process", "process"])
def test_shutdown_statement_stops_the_duckling_and_the_next_query_restarts_it(pond_factory, mode):
    server = pond_factory(["--ducklings", mode])
    admin = server.connect(autocommit=True)
    name, conn = new_user(server)
    run(conn, "CREATE TABLE t AS SELECT 11 AS v")
    before = next(d for d in ducklings(admin) if d["user_name"] == name)
    other = server.connect(token=server.new_user(name), autocommit=True)
    thread, out = run_in_thread(other.cursor(), LONG_QUERY, close=True)
    time.sleep(0.5)
    run(conn, "SHUTDOWN")
    thread.join(30)
    assert "error" in out, f"SHUTDOWN interrupts the user's running queries: {out}"
    if mode == "process":
        wait_for(lambda: not pid_alive(before["pid"]), what="the duckling process to exit")
    else:
        assert name not in {d["user_name"] for d in ducklings(admin)}
    # The next query starts a new duckling, with the data.
    assert scalar(conn, "SELECT v FROM t") == 11
    after = next(d for d in ducklings(admin) if d["user_name"] == name)
    assert (after["pid"], after["started_ts"]) != (before["pid"], before["started_ts"])


def test_active_connections_and_interrupting_one(pond, user):
    busy = user.connect(autocommit=True)
    me = user.connect(autocommit=True)
    thread, out = run_in_thread(busy.cursor(), LONG_QUERY, close=True)
    time.sleep(1.0)
    listed = rows(me, "SELECT connection_id, running_queries FROM pond_active_connections() WHERE running_queries > 0")
    assert len(listed) == 1, listed
    connection = listed[0][0]
    assert rows(me, f"SELECT pond_interrupt('{connection}')") == [(True,)]
    thread.join(30)
    assert "error" in out and "cancel" in str(out["error"]).lower(), out
    assert_usable(busy)
    # Only your own connections.
    with pytest.raises(Error, match="no connection"):
        rows(me, "SELECT pond_interrupt('not-a-connection')")
    other = pond.connect(token=pond.new_user(unique("other")), autocommit=True)
    with pytest.raises(Error, match="no connection"):
        rows(other, f"CALL pond_interrupt('{connection}')")
    assert connection not in str(rows(other, "SELECT * FROM pond_active_connections()"))
