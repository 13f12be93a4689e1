"""Fixtures for Pond's Python ADBC end-to-end suite.

Every test talks to the real `pond` binary (env POND_BIN, default
$HOME/.cache/pond-target/release/pond) started on 127.0.0.1:0 in a fresh data directory.

Fixtures:
  pond        session-scoped server shared by most tests (admin token, helpers below)
  pond_factory  function-scoped factory for private servers (tests that restart or need a
              clean data dir): pond_factory(extra_args=None, env=None); every server it starts
              is stopped and checked at teardown
  user        a fresh user (own `my_db`) on the shared server: a PondUser with .token/.connect
  conn        an autocommit connection of a fresh user (closed at teardown)
  admin_conn  the admin's autocommit connection on the shared server
  s3_server   session-scoped S3-compatible server (moto) on loopback: an S3Server
  jaeger      Jaeger v2 (jaeger.py), started before the first test when test_tracing.py is
              collected

Helpers on a server object: url, port, token, data_dir, connect(token=None, autocommit=False,
cookies=True), new_user(name, read_only=False, ttl=None) -> token, revoke(token_id),
restart(), stop(), stop_clean(), crash().

An S3Server has endpoint_url, host, port, region, access_key_id, secret_access_key, a boto3
`client`, and new_bucket(), put_object(bucket, key, body), objects(bucket, prefix) and
pond_env(endpoint_url=None): the environment that points `pond serve --storage s3://…` at it.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import adbc_driver_flightsql.dbapi as flight_sql

from pond_helpers import unique

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
S3_START_TIMEOUT_S = 30
# Client-side deadline on every Flight RPC, so a server that never answers fails the test with
# DEADLINE_EXCEEDED instead of hanging the run (pytest-timeout is the backstop).
RPC_TIMEOUT_S = "90"

LISTEN_RE = re.compile(r"listening on (grpc(?:\+tls)?)://([0-9.]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d+)")


def pond_bin() -> str:
    return os.environ.get(
        "POND_BIN", os.path.expanduser("~/.cache/pond-target/release/pond")
    )


def _die_with_parent():
    """Runs in the child before exec: SIGTERM the server if the test runner dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def pond_stacks(pid: int, limit: int = 12000) -> str:
    """The backtraces of process `pid`'s threads that are in Pond's own code (by gdb, when the
    machine has it), for the report of a server that hangs: a hang seen once in CI names its
    cause without a second occurrence."""
    try:
        gdb = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "thread apply all bt 40"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"<no backtraces: {e}>"
    threads = re.split(r"\n(?=Thread \d+ )", gdb.stdout)
    ours = [t for t in threads if t.startswith("Thread ") and " in pond_" in t]
    if not ours:
        # gdb may not have attached (ptrace refused): say what it said.
        return f"<no thread was in Pond's code; gdb exited {gdb.returncode}: {gdb.stderr[-2000:]}>"
    return "\n".join(ours)[:limit]


class PondServer:
    """One `pond serve` process over one data directory (restartable)."""

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        listen: str = "127.0.0.1:0",
    ):
        self.bin = pond_bin()
        # Where it listens: loopback unless a test needs other hosts to reach it.
        self.listen = listen
        self.extra_args = list(extra_args or [])
        # Added to the test runner's environment for every `pond` process of this server
        # (e.g. S3Server.pond_env()).
        self.env = dict(env or {})
        self.scheme = "grpc"
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.host = "127.0.0.1"
        self.token: str | None = None
        self._starts = 0
        self._stdout_lines: list[str] = []
        self._stderr_path: Path | None = None
        self._connections: list = []

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def _stderr_tail(self, n: int = 4000) -> str:
        if self._stderr_path and self._stderr_path.exists():
            text = self._stderr_path.read_text(errors="replace")
            return text[-n:]
        return "<no stderr>"

    def log_about(self, user: str, limit: int = 200) -> str:
        """The log lines naming `user` or one of the sessions it opened (ANSI colours removed),
        from this server's latest start."""
        try:
            text = self._stderr_path.read_text(errors="replace") if self._stderr_path else ""
        except OSError as e:
            return f"<the server's log could not be read: {e}>"
        session_id = re.compile(r'session="?([0-9a-f]{32})')
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in text.splitlines()]
        sessions = {m for l in lines if user in l for m in session_id.findall(l)}
        about = [l for l in lines if user in l or any(m in sessions for m in session_id.findall(l))]
        return "\n".join(about[-limit:]) or "<no line about this user>"

    def process_env(self) -> dict[str, str]:
        """The environment of this server's `pond` processes (serve and the token CLI)."""
        return {**os.environ, **self.env}

    def start(self) -> None:
        if not os.path.isfile(self.bin) or not os.access(self.bin, os.X_OK):
            pytest.fail(
                f"pond binary not found or not executable at {self.bin} (set POND_BIN)",
                pytrace=False,
            )
        self._starts += 1
        self._stderr_path = self.log_dir / f"pond-stderr-{self._starts}.log"
        stderr_f = open(self._stderr_path, "wb")
        env = self.process_env()
        # Sessions opened, closed and their connections (debug) name the session a failed
        # test ran on (see pytest_runtest_makereport).
        env.setdefault("POND_LOG", "info,pond_coordinator::coordinator=debug,pond_coordinator::session=debug")
        self.proc = subprocess.Popen(
            [
                self.bin,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                self.listen,
                # Queries still running at shutdown are interrupted well within STOP_TIMEOUT_S
                # (the default, 30 s, is for production); a test may pass its own.
                *([] if "--drain-timeout" in self.extra_args else ["--drain-timeout", "3s"]),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr_f,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        stderr_f.close()
        lines: "queue.Queue[str | None]" = queue.Queue()
        self._stdout_lines = []

        proc = self.proc
        collected = self._stdout_lines

        def pump():
            # Drains stdout for the life of the process so the pipe never fills.
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                collected.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="pond-stdout", daemon=True).start()

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                pytest.fail(
                    f"pond serve printed no 'listening on grpc://HOST:PORT' line within "
                    f"{START_TIMEOUT_S}s.\nstdout:\n" + "\n".join(collected)
                    + "\nstderr:\n" + self._stderr_tail(),
                    pytrace=False,
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if proc.poll() is not None:
                    # Let the pump flush what is left before reporting.
                    time.sleep(0.2)
                    pytest.fail(
                        f"pond serve exited with code {proc.returncode} before listening."
                        f"\nstdout:\n" + "\n".join(collected)
                        + "\nstderr:\n" + self._stderr_tail(),
                        pytrace=False,
                    )
                continue
            if line is None:
                proc.wait(timeout=5)
                pytest.fail(
                    f"pond serve closed stdout (exit code {proc.returncode}) before "
                    f"listening.\nstdout:\n" + "\n".join(collected)
                    + "\nstderr:\n" + self._stderr_tail(),
                    pytrace=False,
                )
            m = LISTEN_RE.search(line)
            if m:
                self.scheme, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
                if self.host == "0.0.0.0":  # every address: the test reaches it on loopback
                    self.host = "127.0.0.1"
                break

        assert self.port and self.port != 0, f"bad port in listening line: {collected}"
        token_file = self.data_dir / "admin.token"
        deadline = time.monotonic() + 10
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert token_file.exists(), (
            f"{token_file} missing after the server said it was listening; stderr:\n"
            + self._stderr_tail()
        )
        token = token_file.read_text().strip()
        assert token and "\n" not in token, f"admin.token is not one line: {token!r}"
        self.token = token

    def _close_connections(self) -> None:
        for conn in self._connections:
            try:
                conn.close()
            except Exception:
                pass
        self._connections.clear()

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def crash(self) -> None:
        """SIGKILL the server (no shutdown of any kind), as a crash would; start() again after.

        Connections opened before are forgotten, not closed: their server is gone."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        self._kill()
        self.proc = None
        self._connections.clear()

    def stop(self) -> int:
        """SIGTERM the server; assert that it exits within STOP_TIMEOUT_S. Returns its code."""
        self._close_connections()
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is not None:
            code = proc.returncode
            self.proc = None
            raise AssertionError(
                f"pond serve had already exited with code {code}; stderr:\n"
                + self._stderr_tail()
            )
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stacks = pond_stacks(proc.pid)
            self._kill()
            self.proc = None
            raise AssertionError(
                f"pond serve did not exit within {STOP_TIMEOUT_S}s of SIGTERM; stderr:\n"
                + self._stderr_tail()
                + "\nits threads that were in Pond's code:\n"
                + stacks
            )
        self.proc = None
        return code

    def stop_clean(self) -> None:
        """stop(), asserting exit code 0 (a graceful shutdown)."""
        code = self.stop()
        assert code == 0, (
            f"pond serve exited with code {code} on SIGTERM; stderr:\n" + self._stderr_tail()
        )

    def restart(self) -> None:
        """Stop gracefully (asserting a clean exit) and start again on the same data dir.

        The port may change; `url` follows it. Connections opened before are closed.
        """
        self.stop_clean()
        self.start()

    # ---- clients -----------------------------------------------------------------------
    def db_kwargs(self, token: str | None = None, cookies: bool = True, **extra) -> dict:
        kwargs = {
            "adbc.flight.sql.rpc.timeout_seconds.fetch": RPC_TIMEOUT_S,
            "adbc.flight.sql.rpc.timeout_seconds.query": RPC_TIMEOUT_S,
            "adbc.flight.sql.rpc.timeout_seconds.update": RPC_TIMEOUT_S,
        }
        tok = self.token if token is None else token
        if tok != "":
            kwargs["adbc.flight.sql.authorization_header"] = "Bearer " + tok
        if cookies:
            kwargs["adbc.flight.sql.rpc.with_cookie_middleware"] = "true"
        kwargs.update(extra)
        return kwargs

    def connect(
        self,
        token: str | None = None,
        autocommit: bool = False,
        cookies: bool = True,
        db_kwargs: dict | None = None,
        **extra,
    ):
        """An ADBC DB-API connection. token=None means the admin token; token="" means none.

        autocommit=False is ADBC's default (a Flight SQL transaction until commit()).
        """
        kwargs = self.db_kwargs(token, cookies, **extra)
        if db_kwargs:
            kwargs.update(db_kwargs)
        conn = flight_sql.connect(self.url, db_kwargs=kwargs, autocommit=autocommit)
        self._connections.append(conn)
        return conn

    def new_user(
        self, name: str | None = None, read_only: bool = False, ttl: str | None = None
    ) -> str:
        """Runs `pond token create --user NAME [--read-only] [--ttl TTL]`; returns the token."""
        name = name or unique("u")
        cmd = [self.bin, "token", "create", "--user", name, "--data-dir", str(self.data_dir)]
        if read_only:
            cmd.append("--read-only")
        if ttl is not None:
            cmd += ["--ttl", ttl]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.process_env())
        assert res.returncode == 0, (
            f"{' '.join(cmd)} failed with {res.returncode}:\n{res.stderr}"
        )
        out_lines = [l for l in res.stdout.splitlines() if l.strip()]
        assert len(out_lines) == 1, f"token create must print one line, got {res.stdout!r}"
        token = out_lines[0].strip()
        assert " " not in token and len(token) >= 16, f"odd token {token!r}"
        return token

    def revoke(self, token_id: str) -> None:
        """Runs `pond token revoke ID` against this server's data dir."""
        cmd = [self.bin, "token", "revoke", token_id, "--data-dir", str(self.data_dir)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.process_env())
        assert res.returncode == 0, f"{' '.join(cmd)} failed with {res.returncode}:\n{res.stderr}"


class PondUser:
    def __init__(self, server: PondServer, name: str, token: str):
        self.server = server
        self.name = name
        self.token = token

    def connect(self, autocommit: bool = False, cookies: bool = True, **kw):
        return self.server.connect(
            token=self.token, autocommit=autocommit, cookies=cookies, **kw
        )


class S3Server:
    """A real S3-compatible server (moto) on loopback, for `--storage s3://…` and for ducklings
    reading s3:// files. Each test takes its own bucket (new_bucket), so one server serves the
    whole session. moto accepts any credentials; these are the ones Pond is given."""

    region = "us-east-1"
    access_key_id = "test"
    secret_access_key = "test"

    def __init__(self, log_path: Path, host: str = "127.0.0.1"):
        self.log_path = Path(log_path)
        self.host = host
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self._client = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + S3_START_TIMEOUT_S
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"moto server did not start on {self.endpoint_url}; log:\n"
                    + self.log_path.read_text(errors="replace")[-4000:],
                    pytrace=False,
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def client(self):
        """A boto3 S3 client on this server (created on first use)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                region_name=self.region,
            )
        return self._client

    def new_bucket(self, prefix: str = "pond") -> str:
        """Creates a bucket no other test uses and returns its name."""
        # Bucket names allow no underscore.
        name = unique(prefix).replace("_", "-")
        self.client.create_bucket(Bucket=name)
        return name

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def objects(self, bucket: str, prefix: str = "") -> list[dict]:
        """Every object under prefix, as boto3 lists them (dicts with Key, Size, ...)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])]

    def pond_env(self, endpoint_url: str | None = None) -> dict[str, str]:
        """The environment that points Pond's object store at this server (or at endpoint_url,
        e.g. a proxy in front of it); pass it as pond_factory(..., env=...)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT": endpoint_url or self.endpoint_url,
            "AWS_ALLOW_HTTP": "true",
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- pytest plumbing ---------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test of a user on the shared server shows the server's log lines about that
    user and the sessions they opened: what a flaky failure needs to be understood."""
    outcome = yield
    report = outcome.get_result()
    user = getattr(item, "funcargs", {}).get("user")
    if report.when != "call" or not report.failed or not isinstance(user, PondUser):
        return
    try:
        about = user.server.log_about(user.name)
    except Exception as e:  # a diagnostic must never break the run it describes
        about = f"<no log: {e!r}>"
    report.sections.append((f"pond log about {user.name}", about))


@pytest.fixture(scope="session")
def pond(tmp_path_factory):
    base = tmp_path_factory.mktemp("pond")
    server = PondServer(base / "data", base)
    server.start()
    yield server
    server.stop_clean()


@pytest.fixture
def pond_factory(tmp_path):
    started: list[PondServer] = []

    def make(extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> PondServer:
        d = tmp_path / f"server{len(started)}"
        d.mkdir()
        s = PondServer(d / "data", d, extra_args, env)
        s.start()
        started.append(s)
        return s

    yield make
    errors = []
    for s in started:
        try:
            s.stop_clean()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "; ".join(errors)


@pytest.fixture
def user(pond) -> PondUser:
    """A fresh user on the shared server, so the test owns an empty `my_db`."""
    name = unique("u")
    return PondUser(pond, name, pond.new_user(name))


@pytest.fixture
def conn(user):
    """An autocommit connection of a fresh user (own `my_db`)."""
    with user.connect(autocommit=True) as c:
        yield c


@pytest.fixture
def admin_conn(pond):
    """Admin connection in autocommit mode (cookies on)."""
    conn = pond.connect(autocommit=True)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One S3-compatible server (moto) for the session; tests take buckets with new_bucket()."""
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    server.start()
    yield server
    server.stop()


def pytest_configure(config):
    # connect() warns when BeginTransaction is refused (e.g. bad token); that is expected in
    # the auth tests and noise elsewhere.
    warnings.filterwarnings("ignore", message="Cannot disable autocommit")


# ---- the tracing tests' collector ---------------------------------------------------------

_jaeger = None


def pytest_collection_modifyitems(session, config, items):
    """Starts Jaeger before any test runs when a tracing test is collected: it needs an inotify
    instance, and the servers of a long run can hold all 128 a user may have by the time the
    tracing tests come."""
    global _jaeger
    if any(Path(str(item.fspath)).name == "test_tracing.py" for item in items):
        import jaeger as jaeger_module

        if not os.access(jaeger_module.JAEGER, os.X_OK):
            raise pytest.UsageError(f"no Jaeger at {jaeger_module.JAEGER}: tests/python/install-jaeger.sh builds it")
        _jaeger = jaeger_module.Jaeger(Path(tempfile.mkdtemp(prefix="pond-jaeger-")))


def pytest_sessionfinish(session, exitstatus):
    if _jaeger is not None:
        _jaeger.stop()


@pytest.fixture
def jaeger():
    assert _jaeger is not None, "Jaeger starts when test_tracing.py is collected"
    return _jaeger
