"""Escape attempts in disguise: case, comments, several statements in one string, table
functions in subqueries, environment variables, URLs, output paths, other users' databases,
and shares (guessed and forged URLs, another owner's database, unpublished snapshots).

Every attempt must be refused, leave the session usable, and create no file on the server.
"""

import os
import secrets

import pytest

from pond_helpers import Error, assert_refused, assert_usable, expect_error, rows, run, scalar, unique

TARGET = f"/tmp/pond_adversarial_{secrets.token_hex(6)}"

ATTEMPTS = {
    "mixed_case": "SeLeCt * FrOm ReAd_CsV('/etc/passwd')",
    "comment_inside": "SELECT * FROM /* harmless */ read_csv('/etc/passwd')",
    "line_comment_newline": "SELECT * FROM -- x\nread_text('/etc/hostname')",
    "quoted_function_name": "SELECT * FROM \"read_text\"('/etc/hostname')",
    "subquery_table_function": "SELECT (SELECT count(*) FROM read_blob('/etc/passwd'))",
    "cte_table_function": "WITH f AS (SELECT * FROM glob('/etc/*')) SELECT count(*) FROM f",
    "lateral_join": "SELECT * FROM range(1) r, LATERAL (SELECT * FROM read_text('/etc/hostname'))",
    "second_statement_copy": f"SELECT 1; COPY (SELECT 42) TO '{TARGET}_a.csv'",
    "second_statement_attach": f"SELECT 1; ATTACH '{TARGET}_b.duckdb' AS x",
    "copy_uppercase_comment": f"/* c */ COPY (SELECT 1) TO '{TARGET}_c.parquet' (FORMAT PARQUET)",
    "export_database": f"EXPORT DATABASE '{TARGET}_d'",
    "create_table_as_read": "CREATE TABLE stolen AS SELECT * FROM read_csv('/etc/passwd')",
    "insert_select_read": "CREATE TABLE IF NOT EXISTS t_adv (x VARCHAR); INSERT INTO t_adv SELECT content FROM read_text('/etc/hostname')",
    "view_over_file": "CREATE VIEW v_adv AS SELECT * FROM read_csv('/etc/passwd')",
    "macro_over_file": "CREATE MACRO m_adv() AS TABLE SELECT * FROM read_text('/etc/hostname'); SELECT * FROM m_adv()",
    "url_read": "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')",
    # httpfs takes an endpoint from the URL: the metadata service must stay out of reach.
    "s3_query_endpoint": "SELECT * FROM read_text('s3://latest/meta-data?s3_endpoint=169.254.169.254&s3_use_ssl=false&s3_url_style=path')",
    "unicode_escaped_function": "SELECT * FROM U&\"quer\\0079\"('SELECT 1')",
    "getenv": "SELECT getenv('HOME')",
    "profiling_output": f"SET profiling_output = '{TARGET}_e.json'",
    "enable_profiling_pragma": "PRAGMA enable_profiling = 'json'",
    "log_output": "SET enable_logging = true",
    "temp_directory": "SET temp_directory = '/tmp'",
    "detach_own_db": "DETACH my_db",
    "use_system_catalog": "USE system",
    "path_trick_database": "CREATE DATABASE \"../../etc\"",
    "attach_memory_path": "ATTACH ':memory:' AS scratch",
    "arrow_scan_pointer": "SELECT * FROM arrow_scan(1, 2, 3)",
    "load_by_path": "LOAD '/tmp/x.duckdb_extension'",
    "pragma_install": "PRAGMA install_extension('httpfs')",
    "reset_all": "RESET ALL",
    "threads_setting": "SET threads = 64",
    # The host changes threads after the lockdown (adaptive threads); a user may not.
    "threads_global": "SET GLOBAL threads = 1",
    "threads_pragma": "PRAGMA threads = 64",
    "threads_reset": "RESET threads",
    "memory_limit": "SET memory_limit = '100GB'",
}


def assert_attempt_refused(conn, sql):
    """`sql` fails without leaking file content, as a refusal, and the session stays usable."""
    err = expect_error(conn, sql)
    msg = str(err).lower()
    assert "root:" not in msg, f"file content leaked: {err}"
    # A refusal says "permission"/"not allowed"; some disguises fail earlier in DuckDB's
    # binder, which is a refusal too as long as nothing ran.
    if not any(w in msg for w in ("does not exist", "not found", "invalid", "unknown")):
        assert_refused(err, sql)
    assert_usable(conn)


def files_left_behind():
    return [p for p in os.listdir("/tmp") if p.startswith(os.path.basename(TARGET))]


@pytest.mark.parametrize("sql", list(ATTEMPTS.values()), ids=list(ATTEMPTS))
def test_escape_attempt_is_refused(user, sql):
    with user.connect(autocommit=True) as conn:
        assert_attempt_refused(conn, sql)


def test_other_users_databases_stay_invisible(pond, user):
    other = pond.new_user(unique("victim"))
    with pond.connect(other, autocommit=True) as victim:
        name = unique("private")
        victim.cursor().execute(f"CREATE DATABASE {name}")
    with user.connect(autocommit=True) as conn:
        listed = str(scalar(conn, "SELECT string_agg(database_name, ',') FROM duckdb_databases()"))
        assert name not in listed, listed
        err = expect_error(conn, f"SELECT * FROM {name}.main.anything")
        assert name in str(err)
        err = expect_error(conn, f"USE {name}")
        assert name in str(err)
        assert conn.adbc_get_objects(depth="catalogs").read_all().column(0).to_pylist().count(name) == 0
        assert_usable(conn)


def test_a_share_opens_only_with_its_url_and_only_what_it_publishes(pond, user):
    owner_name = unique("owner")
    with pond.connect(pond.new_user(owner_name), autocommit=True) as owner, user.connect(autocommit=True) as conn:
        assert_usable(conn)
        db = unique("private")
        run(owner, f"CREATE DATABASE {db}")
        run(owner, f"CREATE TABLE {db}.t AS SELECT 1 AS published")
        run(owner, f"CREATE SECRET {unique('s')} IN POND (TYPE s3, KEY_ID 'AKIAOWNER', SECRET 'owner-secret-value')")
        url = scalar(owner, f"CREATE SHARE s FROM {db} (ACCESS RESTRICTED)")
        other_url = scalar(owner, f"CREATE SHARE open_one FROM {db} (ACCESS UNRESTRICTED)")
        run(owner, f"INSERT INTO {db}.t VALUES (2)")
        token = url.rsplit("/", 1)[1]
        for attempt in (
            # Guessed tokens, of the right form and not.
            *[f"pond:_share/{db}/{secrets.token_hex(16)}" for _ in range(20)],
            f"pond:_share/{db}/{token[:-1]}",
            f"pond:_share/{db}/{token.upper()}",
            f"pond:_share/{db}/{token}{token}",
            # A valid token under another database's name.
            f"pond:_share/my_db/{token}",
            f"pond:_share/{db}/../{token}",
        ):
            err = expect_error(conn, f"ATTACH '{attempt}' AS x")
            assert "no share at that URL" in str(err) or "share's URL" in str(err), (attempt, err)
        # The right URL, not granted: refused by name, not served.
        assert_refused(expect_error(conn, f"ATTACH '{url}' AS x"), "a RESTRICTED share not granted")
        # The source by name, or by id, is the owner's, not the reader's.
        for attempt in (f"pond:{db}", f"md:{db}"):
            err = expect_error(conn, f"ATTACH '{attempt}' AS x")
            assert "does not exist" in str(err), err
        # Past or unpublished snapshots: a share takes no snapshot options.
        for spec in ("SNAPSHOT_ID 1", "SNAPSHOT_ID 999", "SNAPSHOT_NAME 'x'", "SNAPSHOT_TIME '2999-01-01'"):
            assert_refused(expect_error(conn, f"ATTACH '{other_url}' AS x ({spec})"), spec)
        # An UNRESTRICTED share: its published snapshot only, none of the owner's secrets,
        # snapshots or other databases.
        run(conn, f"ATTACH '{other_url}' AS theirs")
        assert scalar(conn, "SELECT count(*) FROM theirs.t") == 1
        assert scalar(conn, "SELECT count(*) FROM pond_information_schema.secrets") == 0
        assert scalar(conn, "SELECT count(*) FROM duckdb_secrets()") == 0
        snapshots_of = rows(conn, "SELECT DISTINCT database_name FROM pond_information_schema.database_snapshots")
        assert snapshots_of == [("my_db",)] or snapshots_of == [], snapshots_of
        for bad in ("REFRESH DATABASE theirs", f"CREATE SHARE mine FROM theirs", "CREATE DATABASE cl FROM theirs"):
            err = expect_error(conn, bad)
            assert "theirs" in str(err) or "not" in str(err), (bad, err)
        assert "AKIAOWNER" not in str(rows(conn, "SELECT * FROM pond_information_schema.shared_with_me"))
        assert_refused(expect_error(conn, "INSERT INTO theirs.t VALUES (3)"), "a write to a share")
        run(conn, "DETACH theirs")
        assert_usable(conn)


def test_no_file_was_created():
    leftovers = files_left_behind()
    assert leftovers == [], leftovers
