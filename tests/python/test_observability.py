"""What an operator sees of a running server through `--metrics-listen`: `/metrics` (parsed
with the Prometheus client library's OpenMetrics parser), `/healthz` and `/readyz`, in-process
and with process ducklings. The gRPC health service on the Flight port is tested in
`cli/tests/e2e.rs` with tonic's health client."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from pond_helpers import LONG_QUERY, Error, run_in_thread, scalar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(port: int) -> dict[str, list]:
    status, text = get(port, "/metrics")
    assert status == 200, text
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


GET_FLIGHT_INFO = "/arrow.flight.protocol.FlightService/GetFlightInfo"


@pytest.mark.parametrize("mode", [[], ["--ducklings", "process"]], ids=["in-process", "process"])
def test_metrics_count_calls_and_readyz_turns_503_while_queries_drain(pond_factory, mode):
    port = free_port()
    server = pond_factory(mode + ["--metrics-listen", f"127.0.0.1:{port}", "--drain-timeout", "3s"])
    assert get(port, "/healthz") == (200, "ok\n")
    assert get(port, "/readyz")[0] == 200
    assert get(port, "/nope")[0] == 404

    conn = server.connect(autocommit=True)
    conn.cursor().execute("CREATE TABLE counted AS SELECT range AS i FROM range(1000)")
    # A snapshot read through the local object cache.
    snapshot = scalar(conn, "SELECT max(snapshot_id) FROM pond_information_schema.database_snapshots")
    conn.cursor().execute(f"ATTACH 'pond:my_db' AS earlier (SNAPSHOT_ID {snapshot})")
    assert scalar(conn, "SELECT count(*) FROM earlier.counted") == 1000
    for i in range(5):
        assert scalar(conn, f"SELECT {i}") == i
    with pytest.raises(Error):
        with server.connect(token="not-a-token", autocommit=True) as bad:
            scalar(bad, "SELECT 1")

    # Finished statements are counted: in-process as they end, from process ducklings as
    # their history records reach the coordinator.
    deadline = time.time() + 15
    while True:
        m = samples(port)
        ended = {s.labels["status"]: s.value for s in m.get("pond_statements_total", [])}
        if ended.get("ok", 0) >= 6:
            break
        assert time.time() < deadline, f"finished statements were never counted: {ended}"
        time.sleep(0.1)
    assert sum(s.value for s in m["pond_statement_seconds_count"]) >= 6
    assert m["pond_statement_rows_total"][0].value >= 5
    assert m["pond_running_statements"][0].value >= 0
    calls = {(s.labels["method"], s.labels["code"]): s.value for s in m["pond_rpc_calls_total"]}
    assert calls.get((GET_FLIGHT_INFO, "0"), 0) >= 5, calls
    assert any(code == "16" for (_, code) in calls), f"no UNAUTHENTICATED call counted: {calls}"
    timed = {s.labels["method"]: s.value for s in m["pond_rpc_seconds_count"]}
    assert timed[GET_FLIGHT_INFO] >= 5, timed
    assert sum(s.value for s in m["pond_ducklings"]) >= 1, m["pond_ducklings"]
    # The commit's snapshot went up through the duckling's store: in-process this process's,
    # with process ducklings theirs, reported in their heartbeats (every second).
    deadline = time.time() + 15
    while True:
        m = samples(port)
        cache = m["pond_cache_hits_total"][0].value + m["pond_cache_misses_total"][0].value
        if (m["pond_commit_seconds_count"][0].value >= 1 and cache >= 1) or time.time() > deadline:
            break
        time.sleep(0.2)
    if not mode:
        assert m["pond_sessions"][0].value >= 1
    assert m["pond_store_put_bytes_total"][0].value > 0, m["pond_store_put_bytes_total"]
    assert m["pond_store_puts_total"][0].value >= 1
    # Commits and cold starts as histograms: every bucket's count adds up to the total.
    for histogram in ("pond_commit_seconds", "pond_duckling_cold_start_seconds"):
        count = m[f"{histogram}_count"][0].value
        assert count >= 1, histogram
        assert m[f"{histogram}_sum"][0].value > 0, histogram
        buckets = {s.labels["le"]: s.value for s in m[f"{histogram}_bucket"]}
        assert buckets["+Inf"] == count, buckets
        assert len(buckets) == 21, buckets
        ordered = sorted(buckets.items(), key=lambda kv: float(kv[0]))
        assert all(a[1] <= b[1] for a, b in zip(ordered, ordered[1:])), ordered
    assert cache >= 1, "the snapshot's objects never went through the cache"
    assert m["pond_queued_statements"][0].value == 0
    # No label carries a user's name, a token or SQL text.
    _, text = get(port, "/metrics")
    assert "SELECT" not in text and "admin" not in text and "not-a-token" not in text

    # Shutdown: not ready while the running query drains; alive until the process ends.
    thread, outcome = run_in_thread(conn.cursor(), LONG_QUERY, close=True)
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    while get(port, "/readyz")[0] != 503:
        assert time.time() < deadline, "/readyz never turned 503"
        time.sleep(0.05)
    assert server.proc.poll() is None, "the server exited before its query drained"
    assert get(port, "/healthz")[0] == 200
    thread.join(60)
    assert "error" in outcome, "the long query was interrupted at the drain's end"
    assert server.proc.wait(60) == 0
    server.proc = None
