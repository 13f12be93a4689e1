"""DuckDB's answers, exactly, through ADBC: types announced as streamed, ENUM as dictionaries,
time zones as DuckDB names them, several statements in one text, and no rows for DDL."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pond_helpers import rows, table, unique


def test_a_union_column_is_announced_as_streamed(conn):
    t = table(conn, "SELECT union_value(i32 := 1)::UNION(i32 INT, str VARCHAR) AS u")
    assert pa.types.is_union(t.schema.field("u").type)
    assert t.column("u").to_pylist() == [1]
    t = table(conn, "SELECT [union_value(str := 'a')::UNION(i32 INT, str VARCHAR)] AS l")
    assert t.column("l").to_pylist() == [["a"]]


def test_enums_arrive_as_dictionaries_as_duckdb_exports_them(conn):
    mood = unique("mood")
    rows(conn, f"CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy')")
    t = table(
        conn,
        f"SELECT 'ok'::{mood} AS m, ['happy'::{mood}] AS l, map(['sad'::{mood}], [1]) AS mp "
        "FROM range(3000)",
    )
    m = t.schema.field("m").type
    assert pa.types.is_dictionary(m) and m.index_type == pa.uint8() and m.value_type == pa.string()
    assert pa.types.is_dictionary(t.schema.field("l").type.value_type)
    assert pa.types.is_dictionary(t.schema.field("mp").type.key_type)
    assert t.num_rows == 3000
    assert set(t.column("m").to_pylist()) == {"ok"}
    assert t.column("l").to_pylist()[0] == ["happy"]


def test_time_zones_are_duckdbs(conn):
    t = table(conn, "SELECT TIMESTAMPTZ '2024-07-01 12:00:00+00' AS t")
    assert t.schema.field("t").type == pa.timestamp("us", tz="Etc/UTC")
    got = rows(conn, "SELECT (TIMESTAMPTZ '2024-07-01 12:00:00+00' AT TIME ZONE 'America/New_York')::VARCHAR")
    assert got == [("2024-07-01 08:00:00",)]


def test_a_text_of_several_statements_returns_the_last_result(conn):
    t = unique("t")
    cur = conn.cursor()
    try:
        cur.execute(
            f"CREATE TABLE {t}(d TIMESTAMP); INSERT INTO {t} VALUES ('2024-01-01'), ('2024-01-02'); "
            f"SELECT count(*) AS n, max(d)::VARCHAR AS latest FROM {t}"
        )
        assert cur.fetchall() == [(2, "2024-01-02 00:00:00")]
    finally:
        cur.close()
    assert rows(conn, f"SELECT count(*) FROM {t}") == [(2,)]


def test_several_statements_in_a_transaction_commit_together(user):
    t = unique("t")
    with user.connect() as c:
        rows(c, f"CREATE TABLE {t}(a INT); INSERT INTO {t} VALUES (1); INSERT INTO {t} VALUES (2)")
        c.rollback()
        with pytest.raises(Exception):
            rows(c, f"SELECT * FROM {t}")
        c.rollback()


def test_ddl_run_as_a_query_returns_no_rows(conn):
    t = unique("t")
    for sql, column in [
        (f"CREATE TABLE {t}(a INT)", "Count"),
        (f"CREATE VIEW {t}_v AS SELECT 1 AS x", "Count"),
        (f"DROP VIEW {t}_v", "Success"),
    ]:
        result = table(conn, sql)
        assert result.num_rows == 0, (sql, result.to_pylist())
        assert result.schema.names == [column]
    assert table(conn, f"INSERT INTO {t} VALUES (1), (2)").to_pylist() == [{"Count": 2}]
