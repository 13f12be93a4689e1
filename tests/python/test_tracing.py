"""Traces over OTLP, exported to a real collector (Jaeger v2: an OpenTelemetry collector with
in-memory storage, built by `install-jaeger.sh` and started by `conftest.py`) and read back through its query API: a query proxied to
a duckling process is one trace, continued from the client's `traceparent`, down to DuckDB's
execution and the storage commit."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

from pond_helpers import rows


def tags(span: dict) -> dict:
    return {t["key"]: t["value"] for t in span["tags"]}


def parent_of(span: dict) -> str | None:
    refs = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0] if refs else None


def test_a_proxied_query_is_one_trace_from_the_clients_traceparent_down_to_duckdb_and_storage(pond_factory, jaeger):
    server = pond_factory(
        ["--ducklings", "process", "--otlp-endpoint", f"http://127.0.0.1:{jaeger.otlp}"],
        env={"OTEL_SERVICE_NAME": "pond-under-test"},
    )
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    conn = server.connect(
        autocommit=True,
        db_kwargs={"adbc.flight.sql.rpc.call_header.traceparent": f"00-{trace_id}-{client_span}-01"},
    )
    conn.cursor().execute("CREATE TABLE traced AS SELECT range AS i FROM range(10)")
    assert rows(conn, "SELECT count(*), 'a-literal-value' FROM traced WHERE i > 3") == [(6, "a-literal-value")]
    conn.close()

    def complete(trace: dict) -> bool:
        names = [s["operationName"] for s in trace["spans"]]
        return "storage.commit" in names and names.count("duckdb") >= 2 and "SELECT" in names

    trace = jaeger.trace(trace_id, complete)
    spans = {s["spanID"]: s for s in trace["spans"]}
    process = {pid: p for pid, p in trace["processes"].items()}
    kind = {sid: {t["key"]: t["value"] for t in process[s["processID"]]["tags"]}.get("pond.process") for sid, s in spans.items()}
    assert all(p["serviceName"] == "pond-under-test" for p in process.values()), process

    # The proxy's calls continue the client's span; the duckling's continue the proxy's.
    proxy_calls = [s for sid, s in spans.items() if s["operationName"] != "statement" and kind[sid] == "serve" and tags(s).get("rpc.system") == "grpc"]
    assert proxy_calls and all(parent_of(s) == client_span for s in proxy_calls), proxy_calls
    duckling_calls = [s for sid, s in spans.items() if kind[sid] == "duckling" and tags(s).get("rpc.system") == "grpc"]
    assert duckling_calls and all(kind.get(parent_of(s)) == "serve" for s in duckling_calls), duckling_calls
    assert {"GetFlightInfo", "DoGet"} <= {s["operationName"] for s in duckling_calls}

    # The statement, in the duckling, under its call; DuckDB's execution under the statement.
    select = [s for s in spans.values() if s["operationName"] == "SELECT"]
    assert len(select) == 1, [s["operationName"] for s in spans.values()]
    t = tags(select[0])
    assert t["db.system.name"] == "duckdb" and t["db.namespace"] == "my_db", t
    assert "a-literal-value" not in t["db.query.text"] and "?" in t["db.query.text"], t
    assert t["db.response.returned_rows"] == 1, t
    assert parent_of(select[0]) in {s["spanID"] for s in duckling_calls}
    # DuckDB ran it under the statement (at GetFlightInfo) or under its stream at DoGet.
    streams = [
        s["spanID"] for s in spans.values()
        if s["operationName"] == "stream" and tags(s)["pond.query_id"] == t["pond.query_id"]
    ]
    assert all(kind.get(parent_of(spans[s])) == "duckling" for s in streams)
    assert any(
        s["operationName"] == "duckdb" and parent_of(s) in [select[0]["spanID"], *streams] for s in spans.values()
    ), [(s["operationName"], parent_of(s)) for s in spans.values()]

    # The CREATE's commit: under its statement, with what it uploaded.
    commit = [s for s in spans.values() if s["operationName"] == "storage.commit"]
    assert commit, "no storage commit span"
    ancestors, at = [], parent_of(commit[0])
    while at in spans:
        ancestors.append(spans[at]["operationName"])
        at = parent_of(spans[at])
    assert "CREATE" in ancestors, ancestors
    assert tags(commit[0])["pond.bytes_uploaded"] > 0

    # Never a token in a trace.
    assert server.token not in json.dumps(trace)


def test_a_dual_query_run_by_pond_sql_is_one_trace_from_the_client_into_the_server(pond_factory, jaeger):
    server = pond_factory(
        ["--otlp-endpoint", f"http://127.0.0.1:{jaeger.otlp}"],
        env={"OTEL_SERVICE_NAME": "pond-dual-server"},
    )
    with server.connect(autocommit=True) as c:
        c.cursor().execute("CREATE TABLE cloud_t AS SELECT range AS k, range * 2 AS v FROM range(1000)")
    env = dict(
        os.environ,
        OTEL_SERVICE_NAME="pond-dual-client",
        # The client exports over OTLP/HTTP, the server over gRPC: one trace needs both.
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{jaeger.otlp_http}",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        POND_TOKEN=server.token,
    )
    script = (
        "CREATE TABLE local_t AS SELECT range AS k FROM range(10);"
        "SELECT count(*) AS n, sum(v) AS s FROM local_t JOIN my_db.cloud_t USING (k) WHERE v >= 0"
    )
    done = subprocess.run(
        [server.bin, "sql", "--server", f"pond://127.0.0.1:{server.port}", "--format", "csv", "-c", script],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "10,90" in done.stdout.replace(" ", ""), done.stdout

    def dual_trace():
        deadline = time.time() + 30
        while time.time() < deadline:
            for trace in jaeger.get("/api/traces?service=pond-dual-client&limit=50")["data"] or []:
                names = {s["operationName"] for s in trace["spans"]}
                services = {p["serviceName"] for p in trace["processes"].values()}
                if "dual.plan" in names and "dual.bridge" in names and "pond-dual-server" in services:
                    return trace
            time.sleep(0.3)
        raise AssertionError("no trace of the dual query with the server's spans in it")

    trace = dual_trace()
    spans = {s["spanID"]: s for s in trace["spans"]}
    service = {sid: trace["processes"][s["processID"]]["serviceName"] for sid, s in spans.items()}
    roots = [s for s in spans.values() if parent_of(s) is None]
    assert [service[r["spanID"]] for r in roots] == ["pond-dual-client"], roots
    assert roots[0]["operationName"] == "pond.client"
    assert "?" in tags(roots[0])["db.query.text"]
    # The server's calls hang under the client's planning and bridges.
    server_calls = [s for sid, s in spans.items() if service[sid] == "pond-dual-server" and parent_of(s) in spans]
    parents = {spans[parent_of(s)]["operationName"] for s in server_calls if service[parent_of(s)] == "pond-dual-client"}
    assert {"dual.plan", "dual.bridge"} & parents, parents
    assert server.token not in json.dumps(trace)
