"""Every table function and PRAGMA DuckDB has, called by a non-admin user: the server survives
each one, the user's session stays usable, and what the sandbox refuses it refuses by name.

The list comes from the server's own `duckdb_functions()`, so a function a new DuckDB release
adds is walked too (and refused until reviewed: the sandbox allows, it does not forbid).
"""

from __future__ import annotations

import pytest

from pond_helpers import Error, assert_usable, rows

# Plausible values per DuckDB parameter type; paths point where a user has no business.
VALUES = {
    "VARCHAR": "'/tmp/pond_walk.csv'",
    "BIGINT": "1",
    "INTEGER": "1",
    "UBIGINT": "1",
    "DOUBLE": "1.0",
    "BOOLEAN": "true",
    "DATE": "DATE '2024-01-01'",
    "TIMESTAMP": "TIMESTAMP '2024-01-01'",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ '2024-01-01'",
    "INTERVAL": "INTERVAL 1 DAY",
    "VARCHAR[]": "['/tmp/pond_walk.csv']",
    "ANY": "1",
    "TABLE": "(SELECT 1 AS a)",
    "BLOB": "'\\x00'::BLOB",
    "POINTER": "0",
}

# Must be refused whatever DuckDB version runs: they run SQL the check never sees, take raw
# pointers, or (enable_logging with a storage path) aborted the whole process.
MUST_REFUSE = {
    "query",
    "query_table",
    "json_execute_serialized_sql",
    "arrow_scan",
    "enable_logging",
    "disable_logging",
    "truncate_duckdb_logs",
}
# Reviewed and allowed: refusing them would be a regression.
MUST_ALLOW = {"range", "generate_series", "duckdb_tables", "duckdb_settings", "read_csv", "unnest", "summary"}


def value_for(parameter_type: str) -> str:
    return VALUES.get(parameter_type, "NULL")


def calls_for(name: str, kind: str, types: list[str]) -> list[str]:
    """Calls of `name` with 0..n plausible positional arguments, in every statement form."""
    arg_lists = [", ".join(value_for(t) for t in types[:n]) for n in range(len(types) + 1)]
    quoted = '"' + name.replace('"', '""') + '"'
    if kind == "pragma":
        out = [f"PRAGMA {quoted}"]
        out += [f"PRAGMA {quoted}({args})" for args in arg_lists if args]
        if types:
            out.append(f"PRAGMA {quoted} = {value_for(types[0])}")
        return out
    out = [f"SELECT * FROM {quoted}({args}) LIMIT 3" for args in arg_lists]
    out += [f"CALL {quoted}({args})" for args in arg_lists]
    return out


def functions(conn) -> dict[tuple[str, str], list[list[str]]]:
    found: dict[tuple[str, str], list[list[str]]] = {}
    for name, kind, types in rows(
        conn,
        "SELECT function_name, function_type, parameter_types FROM duckdb_functions() "
        "WHERE database_name = 'system' AND function_type IN ('table', 'table_macro', 'pragma') "
        "ORDER BY ALL",
    ):
        found.setdefault((name, kind), []).append(list(types or []))
    return found


def test_every_table_function_and_pragma_leaves_the_server_up(pond, conn):
    listed = functions(conn)
    names = {name for name, _ in listed}
    assert len(names) > 100, f"duckdb_functions() listed only {len(names)} table functions and pragmas"
    assert MUST_REFUSE | MUST_ALLOW <= names | {"arrow_scan"}, sorted((MUST_REFUSE | MUST_ALLOW) - names)

    refused: dict[str, str] = {}
    answered: set[str] = set()
    calls = 0
    for (name, kind), overloads in sorted(listed.items()):
        statements = [s for types in overloads for s in calls_for(name, kind, types)]
        if name == "enable_logging":
            statements.append("CALL enable_logging(storage_path = '/tmp/pond_walk_logs')")
        for sql in dict.fromkeys(statements):
            calls += 1
            cur = conn.cursor()
            try:
                cur.execute(sql)
                cur.fetch_arrow_table()  # not Python values: test_all_types holds extremes
                answered.add(name)
            except Error as e:
                message = str(e)
                if "not allowed" in message:
                    refused[name] = message
            finally:
                cur.close()
            assert pond.proc.poll() is None, f"the server died on {sql!r}"
            assert_usable(conn)

    for name in MUST_REFUSE & names:
        assert name in refused, f"{name} was not refused"
        assert name not in answered, f"{name} answered a call"
    for name, message in refused.items():
        assert name.lower() in message.lower(), f"the refusal of {name} does not name it: {message}"
    wrongly_refused = MUST_ALLOW & set(refused)
    assert not wrongly_refused, {n: refused[n] for n in wrongly_refused}
    assert calls > 300


def test_a_refused_function_hides_nowhere(conn):
    for sql in [
        "SELECT * FROM query('SELECT 1')",
        'SELECT * FROM main."Query"(\'SELECT 1\')',
        "SELECT * FROM query /* c */ ('SELECT 1')",
        "SELECT $$'$$, * FROM query('SELECT 1') -- '",
        "SELECT E'\\'', * FROM query('SELECT 1')",
        "CREATE MACRO m() AS TABLE SELECT * FROM query('SELECT 1')",
        "WITH t AS (SELECT * FROM query('SELECT 1')) SELECT * FROM t",
    ]:
        cur = conn.cursor()
        try:
            with pytest.raises(Error, match="query"):
                cur.execute(sql)
                cur.fetchall()
        finally:
            cur.close()
    assert_usable(conn)


def test_a_session_setting_stays_in_its_session(user):
    order = "SELECT x FROM (VALUES (1), (NULL)) t(x) ORDER BY x"
    with user.connect(autocommit=True) as a, user.connect(autocommit=True) as b:
        rows(a, "SET default_null_order = 'nulls_first'")
        assert rows(a, order) == [(None,), (1,)]
        assert rows(b, order) == [(1,), (None,)]
    with user.connect(autocommit=True) as later:
        assert rows(later, order) == [(1,), (None,)]
        with pytest.raises(Error, match="not allowed"):
            rows(later, "SET GLOBAL default_null_order = 'nulls_first'")
        rows(later, "SET TimeZone = 'America/New_York'")
        assert rows(later, "SELECT current_setting('TimeZone')") == [("America/New_York",)]
        rows(later, "RESET TimeZone")
        assert rows(later, "SELECT current_setting('TimeZone')") != [("America/New_York",)]


def test_statements_that_run_others_are_judged_by_what_they_run(conn):
    # The duckling's own directory, where DuckDB's file lock would let a COPY write.
    private = rows(conn, "SELECT value FROM duckdb_settings() WHERE name = 'temp_directory'")[0][0]
    refused = [
        f"EXPLAIN ANALYZE COPY (SELECT 42) TO '{private}/pond_walk.csv'",
        "EXPLAIN ANALYZE SET GLOBAL TimeZone = 'Asia/Tokyo'",
        "EXPLAIN ANALYZE PRAGMA enable_profiling",
        "EXPLAIN (ANALYZE) LOAD icu",
        "IMPORT DATABASE '/tmp'",
        "CHECKPOINT",
        "SELECT * FROM\u200bquery('SELECT 1')",
        "CALL\u200benable_logging()",
        "\u200bPRAGMA enable_profiling",
        "SELECT 1 --\r, * FROM query('SELECT 42')",
        "SELECT 1x$a$, * FROM query('SELECT 42') --$a$",
    ]
    for sql in refused:
        cur = conn.cursor()
        try:
            with pytest.raises(Error, match="not allowed|could not read|Unicode"):
                cur.execute(sql)
                cur.fetchall()
        finally:
            cur.close()
        assert_usable(conn)
    t = f"t_{abs(hash(conn)) % 10**8}"
    rows(conn, f"CREATE TABLE {t} AS SELECT 1 AS a")
    with pytest.raises(Error, match="not allowed"):
        rows(conn, f"EXPLAIN ANALYZE DELETE FROM {t}")
    assert rows(conn, f"SELECT count(*) FROM {t}") == [(1,)]
    plan = rows(conn, f"EXPLAIN ANALYZE SELECT count(*) FROM {t}")
    assert plan and "QUERY" in str(plan).upper()
    assert rows(conn, "SELECT current_setting('TimeZone')") != [("Asia/Tokyo",)]
