"""Data where it lives: secrets IN POND, and ducklings reading and writing s3:// and http://.

S3 is the moto server on loopback (the s3_server fixture); HTTP is a loopback file server.
The server runs with --private-endpoints (moto listens on 127.0.0.1) and allows the HTTP
server's prefix; the shared server of the other tests keeps the defaults.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import socket
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from adbc_driver_manager import Error

from conftest import PondServer, unique
from pond_helpers import rows

SECRET_VALUE = "s3cr3t-value-never-shown"
KEY_ID_VALUE = "AKIA-KEY-ID-NEVER-SHOWN"


@pytest.fixture(scope="module")
def http_files(tmp_path_factory):
    """A loopback HTTP server over a directory; yields (root Path, base URL)."""
    root = tmp_path_factory.mktemp("http")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def lake(tmp_path_factory, http_files, s3_server):
    """A server whose ducklings may reach the moto server and the HTTP file server."""
    base = tmp_path_factory.mktemp("lake")
    _, http_base = http_files
    server = PondServer(
        base / "data",
        base,
        ["--private-endpoints", "--remote-prefixes", f"s3://,https://,{http_base}"],
        None,
    )
    server.start()
    yield server
    server.stop_clean()


def secret_sql(s3, name="lake", scope=None, replace=False, keyword="IN POND"):
    scope_part = f", SCOPE '{scope}'" if scope else ""
    verb = "CREATE OR REPLACE SECRET" if replace else "CREATE SECRET"
    return (
        # moto takes any credentials: these are distinctive, so a leak of them would show.
        f"{verb} {name} {keyword} (TYPE s3, KEY_ID '{KEY_ID_VALUE}', SECRET '{SECRET_VALUE}', "
        f"REGION '{s3.region}', ENDPOINT '{s3.host}:{s3.port}', URL_STYLE 'path', USE_SSL false{scope_part})"
    )


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.fixture
def lake_user(lake):
    name = unique("u")
    return name, lake.new_user(name)


@pytest.fixture
def lake_conn(lake, lake_user):
    with lake.connect(token=lake_user[1], autocommit=True) as c:
        yield c


def test_secrets_are_listed_never_shown_and_dropped(lake, lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    fake = (
        f"CREATE SECRET shown IN POND (TYPE s3, KEY_ID '{KEY_ID_VALUE}', SECRET '{SECRET_VALUE}', "
        f"SCOPE 's3://{bucket}/p/')"
    )
    rows(lake_conn, fake)
    listed = rows(lake_conn, "SHOW SECRETS")
    assert [(r[0], r[1], r[2], r[3]) for r in listed] == [("shown", "s3", f"s3://{bucket}/p/", "pond")]
    mine = rows(lake_conn, "SELECT name, type, storage, scope, secret_string FROM duckdb_secrets()")
    assert mine[0][:4] == ("shown", "s3", "pond", [f"s3://{bucket}/p/"])
    assert "key_id=redacted" in mine[0][4]
    info = rows(lake_conn, "SELECT name, type, scope FROM pond_information_schema.secrets")
    assert info == [("shown", "s3", f"s3://{bucket}/p/")]
    for sql, columns in [
        ("SELECT * FROM pond_information_schema.secrets", ["name", "type", "scope", "created"]),
        ("SHOW SECRETS", ["name", "type", "scope", "storage", "created"]),
    ]:
        cur = lake_conn.cursor()
        cur.execute(sql)
        assert [d[0] for d in cur.description] == columns, sql
        cur.fetchall()
        cur.close()
    everything = repr(listed) + repr(mine) + repr(info)
    assert SECRET_VALUE not in everything and KEY_ID_VALUE not in everything
    # DuckDB's own listing, qualified or after dropping Pond's, stays out of reach.
    for sql in [
        "SELECT * FROM system.main.duckdb_secrets()",
        "DROP MACRO TABLE duckdb_secrets",
    ]:
        with pytest.raises(Error, match="duckdb_secrets"):
            rows(lake_conn, sql)
    # A second CREATE names the conflict, not the values.
    with pytest.raises(Error) as e:
        rows(lake_conn, fake)
    assert "already exists" in str(e.value) and SECRET_VALUE not in str(e.value)
    rows(lake_conn, fake.replace("CREATE SECRET shown", "CREATE SECRET IF NOT EXISTS shown"))
    rows(lake_conn, "DROP SECRET shown")
    assert rows(lake_conn, "SHOW SECRETS") == []
    assert rows(lake_conn, "SELECT count(*) FROM duckdb_secrets()") == [(0,)]
    with pytest.raises(Error, match="does not exist"):
        rows(lake_conn, "DROP SECRET shown")
    rows(lake_conn, "DROP SECRET IF EXISTS shown")
    # Sealed at rest: the catalog file does not hold a value.
    catalog = (lake.data_dir / "catalog.json").read_text()
    assert SECRET_VALUE not in catalog and KEY_ID_VALUE not in catalog


def test_secret_errors_name_the_option_not_the_value(lake_conn):
    cases = {
        f"CREATE SECRET bad IN POND (TYPE s3, SECRET '{SECRET_VALUE}', PROVIDER credential_chain)": "PROVIDER",
        f"CREATE SECRET bad IN POND (TYPE s3, SECRET '{SECRET_VALUE}', KMS_KEY_ID 'x')": "kms_key_id",
        f"CREATE SECRET bad IN POND (TYPE azure, SECRET '{SECRET_VALUE}')": "not supported",
        f"CREATE SECRET bad IN POND (TYPE s3, SECRET '{SECRET_VALUE}', ENDPOINT '169.254.169.254')": "link-local",
        f"CREATE TEMPORARY SECRET bad (TYPE s3, SECRET '{SECRET_VALUE}')": "IN POND",
        f"CREATE SECRET bad IN POND (TYPE s3, SECRET '{SECRET_VALUE}' KEY_ID 'k')": "CREATE SECRET",
    }
    for sql, expected in cases.items():
        with pytest.raises(Error) as e:
            rows(lake_conn, sql)
        assert expected in str(e.value), (sql, str(e.value))
        assert SECRET_VALUE not in str(e.value), sql
    assert rows(lake_conn, "SHOW SECRETS") == []


def test_reads_parquet_csv_and_json_on_s3_with_globs_and_hive_partitions(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    for year in (2024, 2025):
        for part in range(2):
            table = pa.table({"id": [year * 10 + part], "v": [float(part)]})
            s3_server.put_object(bucket, f"events/year={year}/part{part}.parquet", parquet_bytes(table))
    csv = io.BytesIO()
    pacsv.write_csv(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), csv)
    s3_server.put_object(bucket, "raw/data.csv", csv.getvalue())
    s3_server.put_object(bucket, "raw/data.json", b'{"k": 1, "s": "a"}\n{"k": 2, "s": "b"}\n')
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/"))

    hive = rows(
        lake_conn,
        f"SELECT year, count(*), sum(id) FROM read_parquet('s3://{bucket}/events/*/*.parquet', "
        "hive_partitioning = true) GROUP BY year ORDER BY year",
    )
    assert hive == [(2024, 2, 2024 * 20 + 1), (2025, 2, 2025 * 20 + 1)]
    assert rows(lake_conn, f"SELECT count(*) FROM 's3://{bucket}/events/**/*.parquet'") == [(4,)]
    assert rows(lake_conn, f"SELECT count(*) FROM parquet_scan('s3://{bucket}/events/year=2024/*.parquet')") == [(2,)]
    files = rows(lake_conn, f"SELECT file FROM glob('s3://{bucket}/events/**') ORDER BY file")
    assert len(files) == 4 and all(f[0].startswith(f"s3://{bucket}/events/") for f in files)
    assert rows(lake_conn, f"SELECT sum(a), string_agg(b, '' ORDER BY b) FROM read_csv('s3://{bucket}/raw/data.csv')") == [
        (6, "xyz")
    ]
    assert rows(lake_conn, f"SELECT count(*) FROM read_csv_auto('s3://{bucket}/raw/*.csv')") == [(3,)]
    assert rows(lake_conn, f"SELECT sum(k), max(s) FROM read_json('s3://{bucket}/raw/data.json')") == [(3, "b")]
    assert rows(lake_conn, f"SELECT count(*) FROM read_json_auto('s3://{bucket}/raw/data.json')") == [(2,)]
    # A table of the user's database filled from S3.
    rows(lake_conn, f"CREATE TABLE events AS FROM read_parquet('s3://{bucket}/events/*/*.parquet', filename = true)")
    assert rows(lake_conn, "SELECT count(DISTINCT filename) FROM events") == [(4,)]


def test_copy_to_s3_writes_every_format(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    for fmt in ("parquet", "csv", "json"):
        rows(lake_conn, f"COPY (SELECT range AS n FROM range(5)) TO 's3://{bucket}/out/n.{fmt}' (FORMAT {fmt})")
    keys = sorted(o["Key"] for o in s3_server.objects(bucket, "out/"))
    assert keys == ["out/n.csv", "out/n.json", "out/n.parquet"]
    body = s3_server.client.get_object(Bucket=bucket, Key="out/n.parquet")["Body"].read()
    assert pq.read_table(io.BytesIO(body)).column("n").to_pylist() == [0, 1, 2, 3, 4]
    assert rows(lake_conn, f"SELECT sum(n) FROM 's3://{bucket}/out/n.csv'") == [(10,)]


def test_a_changed_object_is_read_anew(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [1, 2, 3]})))
    query = f"SELECT sum(x) FROM 's3://{bucket}/t.parquet'"
    assert rows(lake_conn, query) == [(6,)]
    assert rows(lake_conn, query) == [(6,)]
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [10, 20]})))
    assert rows(lake_conn, query) == [(30,)]


def test_the_longest_scope_wins(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "a/deep/t.parquet", parquet_bytes(pa.table({"x": [1]})))
    # A secret for the bucket that points at a closed port, and a working one for a prefix.
    broken = secret_sql(s3_server, name="whole_bucket", scope=f"s3://{bucket}/").replace(
        f"{s3_server.host}:{s3_server.port}", "127.0.0.1:9"
    )
    rows(lake_conn, broken)
    rows(lake_conn, secret_sql(s3_server, name="deep", scope=f"s3://{bucket}/a/deep/"))
    assert rows(lake_conn, f"SELECT x FROM 's3://{bucket}/a/deep/t.parquet'") == [(1,)]
    which = rows(lake_conn, f"SELECT name FROM which_secret('s3://{bucket}/a/deep/t.parquet', 's3')")
    assert which == [("deep",)]


def test_secrets_belong_to_their_user(lake, lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [7]})))
    rows(lake_conn, secret_sql(s3_server, name="mine", scope=f"s3://{bucket}/"))
    other = lake.new_user(unique("u"))
    with lake.connect(token=other, autocommit=True) as c:
        assert rows(c, "SHOW SECRETS") == []
        assert rows(c, "SELECT count(*) FROM duckdb_secrets()") == [(0,)]
        assert rows(c, "SELECT count(*) FROM pond_information_schema.secrets") == [(0,)]
        with pytest.raises(Error, match="does not exist"):
            rows(c, "DROP SECRET mine")
        # Without the owner's secret the duckling goes to AWS itself (which this machine may
        # not reach): the bucket's object is not served, and the error says how to give
        # Pond credentials.
        with pytest.raises(Error) as e:
            rows(c, f"SELECT x FROM 's3://{bucket}/t.parquet'")
        assert bucket in str(e.value) and "amazonaws.com" in str(e.value), str(e.value)
        if "(NotFound;" not in str(e.value):
            assert "CREATE SECRET name IN POND" in str(e.value), str(e.value)
    assert rows(lake_conn, f"SELECT x FROM 's3://{bucket}/t.parquet'") == [(7,)]


def test_read_only_tokens_use_secrets_but_cannot_change_them(lake, lake_user, lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [5]})))
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    reader = lake.new_user(lake_user[0], read_only=True)
    with lake.connect(token=reader, autocommit=True) as c:
        assert rows(c, f"SELECT x FROM 's3://{bucket}/t.parquet'") == [(5,)]
        assert [r[0] for r in rows(c, "SHOW SECRETS")] == ["lake"]
        with pytest.raises(Error, match="read-only"):
            rows(c, secret_sql(s3_server, name="another"))
        with pytest.raises(Error, match="read-only"):
            rows(c, "DROP SECRET lake")


def test_secrets_survive_a_restart_sealed(pond_factory, s3_server):
    server = pond_factory(["--private-endpoints"])
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [3]})))
    with server.connect(autocommit=True) as c:
        rows(c, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    server.restart()
    with server.connect(autocommit=True) as c:
        assert rows(c, f"SELECT x FROM 's3://{bucket}/t.parquet'") == [(3,)]
    catalog = (server.data_dir / "catalog.json").read_text()
    assert [s["name"] for s in json.loads(catalog)["secrets"]] == ["lake"]
    assert SECRET_VALUE not in catalog and KEY_ID_VALUE not in catalog


def test_a_store_that_is_gone_fails_the_query_and_leaves_the_duckling_healthy(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    gone = secret_sql(s3_server, scope=f"s3://{bucket}/").replace(f"{s3_server.host}:{s3_server.port}", "127.0.0.1:9")
    rows(lake_conn, gone)
    with pytest.raises(Error) as e:
        rows(lake_conn, f"SELECT * FROM 's3://{bucket}/t.parquet'")
    # UNAVAILABLE (a retry may succeed).
    assert "(Unavailable;" in str(e.value), str(e.value)
    assert SECRET_VALUE not in str(e.value)
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/", replace=True))
    with pytest.raises(Error) as e:
        rows(lake_conn, f"SELECT * FROM 's3://{bucket}/missing.parquet'")
    assert "(NotFound;" in str(e.value) and "missing.parquet" in str(e.value), str(e.value)
    assert rows(lake_conn, "SELECT 42") == [(42,)]


def pipe(source: socket.socket, sink: socket.socket, on_data=None) -> None:
    """Copies `source` to `sink` until either ends; `on_data(n)` after each chunk, which
    returns False to stop."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
            if on_data is not None and on_data(len(data)) is False:
                return
    except OSError:
        pass


class LoopbackProxy:
    """A loopback TCP proxy to `upstream` (the S3 server): every accepted connection goes to
    `serve`, which by default relays both ways."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket, downstream=None) -> None:
        server = socket.create_connection(self.upstream)
        self.connected(client, server)
        threading.Thread(target=pipe, args=(client, server), daemon=True).start()
        pipe(server, client, downstream)

    def connected(self, client: socket.socket, server: socket.socket) -> None:
        """Called with each relayed pair of sockets."""


class DyingProxy(LoopbackProxy):
    """A loopback proxy to the S3 server that dies once `budget` bytes came back: it stops
    listening and cuts every connection, as a store that goes away mid-read."""

    def __init__(self, upstream: tuple[str, int], budget: int):
        self.budget, self.sent = budget, 0
        self.sockets: list[socket.socket] = []
        super().__init__(upstream)

    def connected(self, client, server):
        with self.lock:
            self.sockets += [client, server]

    def serve(self, client, downstream=None):
        super().serve(client, self._count)

    def _count(self, n: int) -> bool:
        with self.lock:
            self.sent += n
            dead = self.sent >= self.budget
        if dead:
            self.die()
        return not dead

    def die(self):
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def test_a_store_that_dies_mid_scan_fails_the_query_unavailable(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    big = pa.table({"x": pa.array(range(2_000_000), pa.int64()), "y": pa.array(range(2_000_000), pa.float64())})
    s3_server.put_object(bucket, "big.parquet", parquet_bytes(big))
    proxy = DyingProxy((s3_server.host, s3_server.port), budget=1_000_000)
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/").replace(
        f"{s3_server.host}:{s3_server.port}", f"127.0.0.1:{proxy.port}"
    ))
    with pytest.raises(Error) as e:
        rows(lake_conn, f"SELECT sum(x), sum(y) FROM 's3://{bucket}/big.parquet'")
    assert proxy.sent >= 1_000_000, "the store died before the scan began"
    assert "(Unavailable;" in str(e.value), str(e.value)
    # The duckling is healthy: with the store back (directly), the same scan answers.
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/", replace=True))
    assert rows(lake_conn, f"SELECT sum(x) FROM 's3://{bucket}/big.parquet'") == [(sum(range(2_000_000)),)]


def test_reads_over_http_from_an_allowed_prefix(lake_conn, http_files):
    root, base = http_files
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), root / "h.parquet")
    (root / "h.csv").write_text("a,b\n1,2\n3,4\n")
    assert rows(lake_conn, f"SELECT sum(x) FROM read_parquet('{base}h.parquet')") == [(10,)]
    assert rows(lake_conn, f"SELECT sum(a + b) FROM '{base}h.csv'") == [(10,)]


def test_the_sandbox_holds_with_remote_reads_on(lake, lake_conn, http_files):
    _, base = http_files
    private = rows(lake_conn, "SELECT value FROM duckdb_settings() WHERE name = 'temp_directory'")[0][0]
    data_dir = str(lake.data_dir)
    refused = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv('file:///etc/passwd')",
        "SELECT * FROM 'file:///etc/passwd'",
        f"SELECT * FROM read_text('{data_dir}/catalog.json')",
        f"SELECT * FROM read_blob('{data_dir}/signing.key')",
        f"SELECT * FROM read_csv('{private}/../../../catalog.json')",
        f"SELECT * FROM glob('{data_dir}/*')",
        # Plain HTTP beyond the allowed prefix (the server's own network, metadata services).
        "SELECT * FROM read_csv('http://169.254.169.254/latest/meta-data/')",
        # HTTPS tunnels too: the proxy refuses the CONNECT (curl reports it as a failed read).
        "SELECT * FROM read_text('https://169.254.169.254/latest/meta-data/')",
        "SELECT * FROM read_text('s3://x/y?s3_endpoint=169.254.169.254&s3_use_ssl=false&s3_url_style=path')",
        f"SELECT * FROM read_csv('{base.replace('127.0.0.1', 'localhost')}h.csv')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET s3_endpoint = 'evil.example'",
        "SET GLOBAL enable_external_access = true",
        "ATTACH 's3://bucket/db.duckdb' AS x",
    ]
    for sql in refused:
        with pytest.raises(Error):
            rows(lake_conn, sql)
    assert rows(lake_conn, "SELECT 1") == [(1,)]


def test_jdbc_and_adbc_clients_see_the_same_s3_rows(lake_conn, s3_server):
    # The JDBC side of this runs in tests/java (LakeTest); here the ADBC side and the shared
    # fixture for it: a parquet read returns typed columns through Arrow.
    bucket = s3_server.new_bucket()
    s3_server.put_object(
        bucket, "typed.parquet", parquet_bytes(pa.table({"i": pa.array([1, 2], pa.int32()), "s": ["a", "b"]}))
    )
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    cur = lake_conn.cursor()
    cur.execute(f"SELECT i, s FROM 's3://{bucket}/typed.parquet' ORDER BY i")
    table = cur.fetch_arrow_table()
    assert table.schema.field("i").type == pa.int32()
    assert table.to_pylist() == [{"i": 1, "s": "a"}, {"i": 2, "s": "b"}]


class RefusingProxy(LoopbackProxy):
    """A loopback proxy to the S3 server that answers its first `refusals` requests with an S3
    error (`status`, `code`), then passes everything through."""

    def __init__(self, upstream: tuple[str, int], refusals: int, status=b"503 Slow Down", code="SlowDown"):
        self.refusals, self.status, self.code = refusals, status, code
        self.refused = 0
        super().__init__(upstream)

    def serve(self, client, downstream=None):
        with self.lock:
            throttle = self.refused < self.refusals
            if throttle:
                self.refused += 1
        if not throttle:
            return super().serve(client)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                break
            head += chunk
        body = f"<Error><Code>{self.code}</Code><Message>refused by the test</Message></Error>".encode()
        client.sendall(
            b"HTTP/1.1 " + self.status + b"\r\nContent-Type: application/xml\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        client.close()


def test_a_throttling_store_is_retried(lake_conn, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [4, 5]})))
    proxy = RefusingProxy((s3_server.host, s3_server.port), refusals=2)
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/").replace(
        f"{s3_server.host}:{s3_server.port}", f"127.0.0.1:{proxy.port}"
    ))
    assert rows(lake_conn, f"SELECT sum(x) FROM 's3://{bucket}/t.parquet'") == [(9,)]
    assert proxy.refused == 2


def test_the_servers_own_credentials_never_reach_a_user(pond_factory, s3_server):
    """The server's storage credentials come from AWS_* in its environment, which httpfs would
    copy into DuckDB's global s3 settings."""
    storage = s3_server.new_bucket()
    env = s3_server.pond_env() | {"AWS_ACCESS_KEY_ID": KEY_ID_VALUE, "AWS_SECRET_ACCESS_KEY": SECRET_VALUE}
    server = pond_factory(["--storage", f"s3://{storage}/pond", "--private-endpoints"], env=env)
    with server.connect(autocommit=True) as c:
        rows(c, "CREATE TABLE t AS SELECT 1 AS x")
        settings = rows(c, "SELECT name, value FROM duckdb_settings() WHERE name LIKE 's3%' OR name LIKE 'http%'")
        assert KEY_ID_VALUE not in repr(settings) and SECRET_VALUE not in repr(settings), settings
        # A path without a secret of the user's does not go out with the server's keys.
        with pytest.raises(Error) as e:
            rows(c, f"SELECT * FROM read_text('s3://{storage}/x?s3_endpoint=169.254.169.254')")
        assert SECRET_VALUE not in str(e.value)


def test_read_replicas_take_secrets_created_and_dropped_on_the_primary(pond_factory, s3_server):
    server = pond_factory(["--ducklings", "process", "--read-replicas", "2", "--private-endpoints"])
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [11]})))
    name = unique("u")
    writer = server.connect(token=server.new_user(name), autocommit=True)
    read_only = server.new_user(name, read_only=True)
    readers = [server.connect(token=read_only, autocommit=True) for _ in range(4)]
    for r in readers:
        assert rows(r, "SELECT 1") == [(1,)]
    # Created on the primary after the replicas started: their next statement has it.
    rows(writer, secret_sql(s3_server, scope=f"s3://{bucket}/"))
    query = f"SELECT x FROM 's3://{bucket}/t.parquet'"
    for r in readers:
        assert rows(r, query) == [(11,)]
    # Dropped: no replica reads with it any more.
    rows(writer, "DROP SECRET lake")
    for r in readers:
        with pytest.raises(Error) as e:
            rows(r, query)
        assert "amazonaws.com" in str(e.value), str(e.value)


def test_a_store_that_refuses_the_secret_answers_permission_denied(lake_conn, s3_server):
    # moto takes any credentials; this store refuses every request as S3 does wrong keys.
    bucket = s3_server.new_bucket()
    s3_server.put_object(bucket, "t.parquet", parquet_bytes(pa.table({"x": [1]})))
    proxy = RefusingProxy((s3_server.host, s3_server.port), refusals=10**9, status=b"403 Forbidden", code="InvalidAccessKeyId")
    rows(lake_conn, secret_sql(s3_server, scope=f"s3://{bucket}/").replace(
        f"{s3_server.host}:{s3_server.port}", f"127.0.0.1:{proxy.port}"
    ))
    with pytest.raises(Error) as e:
        rows(lake_conn, f"SELECT x FROM 's3://{bucket}/t.parquet'")
    assert "(PermissionDenied;" in str(e.value) and "403" in str(e.value), str(e.value)
    assert SECRET_VALUE not in str(e.value) and KEY_ID_VALUE not in str(e.value)
    assert proxy.refused >= 1
