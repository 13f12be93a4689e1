"""Jaeger v2 (an OpenTelemetry collector with in-memory storage and a query API) on loopback,
for the tracing tests: built by `install-jaeger.sh`, started once per test session by
`conftest.py` before any test runs (it needs an inotify instance, and a long suite's servers
can hold all 128 a user may have)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

JAEGER = os.environ.get("JAEGER_BIN", str(Path.home() / "go" / "bin" / "jaeger"))

CONFIG = """
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
extensions:
  jaeger_storage:
    backends: {mem: {memory: {max_traces: 10000}}}
  jaeger_query:
    storage: {traces: mem}
    enable_tracing: false
    http: {endpoint: "127.0.0.1:${env:JAEGER_QUERY_HTTP_PORT}"}
    grpc: {endpoint: "127.0.0.1:${env:JAEGER_QUERY_GRPC_PORT}"}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:${env:JAEGER_OTLP_GRPC_PORT}"}
      http: {endpoint: "127.0.0.1:${env:JAEGER_OTLP_HTTP_PORT}"}
processors:
  batch: {timeout: 100ms}
exporters:
  jaeger_storage_exporter: {trace_storage: mem}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jaeger:
    def __init__(self, tmp: Path):
        self.otlp, self.otlp_http, self.query = free_port(), free_port(), free_port()
        config = tmp / "jaeger.yaml"
        config.write_text(CONFIG)
        env = dict(
            os.environ,
            JAEGER_OTLP_GRPC_PORT=str(self.otlp),
            JAEGER_OTLP_HTTP_PORT=str(self.otlp_http),
            JAEGER_QUERY_HTTP_PORT=str(self.query),
            JAEGER_QUERY_GRPC_PORT=str(free_port()),
        )
        self.log = open(tmp / "jaeger.log", "wb")
        self.proc = subprocess.Popen([JAEGER, f"--config={config}"], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, (tmp / "jaeger.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.otlp), timeout=1):
                    pass
                self.get("/api/services")
                return
            except OSError:
                assert time.time() < deadline, "Jaeger never became ready"
                time.sleep(0.1)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.query}{path}", timeout=10) as r:
            return json.loads(r.read())

    def trace(self, trace_id: str, done) -> dict:
        """The trace, once `done(trace)` holds (spans arrive in batches)."""
        deadline = time.time() + 30
        while True:
            try:
                data = self.get(f"/api/traces/{trace_id}")["data"]
            except urllib.error.HTTPError:
                data = []
            if data and done(data[0]):
                return data[0]
            assert time.time() < deadline, f"trace {trace_id} never completed: {data}"
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()
