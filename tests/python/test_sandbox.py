"""The sandbox: user SQL cannot touch the server's files, extensions or locked settings."""

import glob
import os
import secrets

import pytest

from pond_helpers import Error, assert_refused, assert_usable, expect_error, rows, run, scalar, unique


TRIED: list[str] = []


def escape_path(ext: str) -> str:
    path = f"/tmp/pond_escape_{secrets.token_hex(6)}{ext}"
    TRIED.append(path)
    return path


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    """A readable file on the server's machine whose content must never reach a user."""
    marker = f"secret_marker_{secrets.token_hex(8)}"
    d = tmp_path_factory.mktemp("secret")
    path = d / "secret.csv"
    path.write_text(f"name,value\n{marker},1\n")
    (d / "secret.json").write_text(f'{{"name": "{marker}"}}\n')
    return str(path), marker


READS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv('{csv}')",
    "SELECT * FROM read_csv_auto('{csv}', header = true)",
    "SELECT * FROM '{csv}'",
    "SELECT content FROM read_text('{csv}')",
    "SELECT content FROM read_blob('{csv}')",
    "SELECT * FROM read_json('{json}')",
    "SELECT * FROM read_parquet('{dir}/*.parquet')",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT * FROM sniff_csv('{csv}')",
]


@pytest.mark.parametrize(
    "sql", READS, ids=["passwd", "read_csv", "read_csv_auto", "replacement_scan", "read_text",
                       "read_blob", "read_json", "read_parquet", "glob", "sniff_csv"]
)
def test_reading_server_files_is_refused(conn, secret_file, sql):
    csv, marker = secret_file
    sql = sql.format(csv=csv, json=csv[: -len(".csv")] + ".json", dir=os.path.dirname(csv))
    err = expect_error(conn, sql)
    assert_refused(err, sql)
    assert marker not in str(err) and "root:" not in str(err), "file content leaked into the error"
    assert_usable(conn)


def test_reading_pond_data_dir_is_refused(pond, conn):
    for f in ("signing.key", "admin.token", "catalog.json"):
        path = os.path.join(pond.data_dir, f)
        err = expect_error(conn, f"SELECT content FROM read_text('{path}')")
        assert_refused(err, path)
        assert pond.token not in str(err)
    assert_usable(conn)


def test_copy_to_file_is_refused_and_creates_nothing(conn):
    target = escape_path(".csv")
    err = expect_error(conn, f"COPY (SELECT 42 AS x) TO '{target}' (HEADER)")
    assert_refused(err, "COPY TO")
    assert not os.path.exists(target), f"{target} was created on the server"
    name = unique("cp")
    run(conn, f"CREATE TABLE {name} AS SELECT 1 AS x")
    target2 = escape_path(".parquet")
    err = expect_error(conn, f"COPY {name} TO '{target2}' (FORMAT parquet)")
    assert_refused(err, "COPY table TO")
    assert not os.path.exists(target2)
    assert_usable(conn)


def test_copy_from_file_is_refused(conn):
    name = unique("cf")
    run(conn, f"CREATE TABLE {name} (line VARCHAR)")
    err = expect_error(conn, f"COPY {name} FROM '/etc/passwd'")
    assert_refused(err, "COPY FROM")
    assert scalar(conn, f"SELECT count(*) FROM {name}") == 0


def test_export_database_is_refused(conn):
    target = escape_path("_dir")
    err = expect_error(conn, f"EXPORT DATABASE '{target}'")
    assert_refused(err, "EXPORT DATABASE")
    assert not os.path.exists(target)
    assert_usable(conn)


def test_attach_file_is_refused_and_creates_nothing(conn):
    target = escape_path(".db")
    err = expect_error(conn, f"ATTACH '{target}' AS escape_db")
    assert_refused(err, "ATTACH")
    assert not os.path.exists(target), f"ATTACH created {target}"
    assert not os.path.exists(target + ".wal")
    assert "escape_db" not in [r[0] for r in rows(conn, "SHOW DATABASES")]
    assert_usable(conn)


def test_attach_other_users_database_files_is_refused(pond, conn):
    files = [
        p
        for p in glob.glob(os.path.join(str(pond.data_dir), "**", "*"), recursive=True)
        if os.path.isfile(p) and not p.endswith((".wal", ".token", ".json", ".key"))
    ]
    assert files, "expected database files in the data dir"
    for path in files[:5]:
        err = expect_error(conn, f"ATTACH '{path}' AS stolen (READ_ONLY)")
        assert_refused(err, f"ATTACH {path}")
    assert_usable(conn)


def test_install_and_load_are_refused(conn):
    for sql in (
        "INSTALL httpfs",
        "LOAD httpfs",
        "INSTALL json",
        "LOAD '/tmp/evil.duckdb_extension'",
        "FORCE INSTALL httpfs FROM 'http://127.0.0.1:1/'",
    ):
        err = expect_error(conn, sql)
        assert_refused(err, sql)
    assert_usable(conn)


def test_locked_settings_cannot_be_changed(conn):
    for sql in (
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "SET allow_unsigned_extensions = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
    ):
        err = expect_error(conn, sql)
        assert_refused(err, sql)
    # Still locked down afterwards.
    err = expect_error(conn, "SELECT * FROM read_csv('/etc/passwd')")
    assert_refused(err, "read after SET attempts")
    assert_usable(conn)


def test_secrets_cannot_reach_server_files(conn):
    target = escape_path(".csv")
    # Whatever CREATE SECRET does, it must not let the next statement write a file.
    try:
        run(conn, "CREATE SECRET s_escape (TYPE s3, KEY_ID 'a', SECRET 'b')")
    except Error:
        pass
    err = expect_error(conn, f"COPY (SELECT 1) TO '{target}'")
    assert_refused(err, "COPY after CREATE SECRET")
    assert not os.path.exists(target)


def test_refusals_in_prepared_statements_and_transactions(user):
    target = escape_path(".csv")
    with user.connect(autocommit=False) as conn:
        err = expect_error(conn, "SELECT * FROM read_csv('/etc/passwd') WHERE ? = 1", (1,))
        assert_refused(err, "prepared read_csv")
        conn.rollback()
        err = expect_error(conn, f"COPY (SELECT ?) TO '{target}'", (1,))
        assert_refused(err, "prepared COPY")
        conn.rollback()
        assert not os.path.exists(target)
        assert_usable(conn)


def test_file_functions_over_parameters_are_refused(conn):
    err = expect_error(conn, "SELECT * FROM read_csv(?)", ("/etc/passwd",))
    assert "root:" not in str(err)
    assert_usable(conn)


def test_no_escape_files_left_behind():
    # Belt and braces: nothing this module tried to write may exist now.
    assert TRIED, "run with the rest of the module"
    leftovers = [p for p in TRIED if os.path.exists(p) or os.path.exists(p + ".wal")]
    assert leftovers == [], leftovers
