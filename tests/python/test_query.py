"""Statement queries and updates through Flight SQL."""

import pyarrow as pa
import pyarrow.compute as pc

from pond_helpers import rows, run, scalar, table, unique


def test_select_literals(admin_conn):
    t = table(admin_conn, "SELECT 42 AS answer, 'héllo wörld 🦆' AS greeting, NULL::INTEGER AS nothing")
    assert t.column_names == ["answer", "greeting", "nothing"]
    assert t.schema.field("answer").type == pa.int32()
    assert t.schema.field("nothing").type == pa.int32()
    assert t.to_pylist() == [{"answer": 42, "greeting": "héllo wörld 🦆", "nothing": None}]


def test_default_connection_runs_in_transaction_mode(pond):
    # ADBC's DB-API default: autocommit off (the driver calls BeginTransaction).
    with pond.connect() as conn:
        assert rows(conn, "SELECT 1 + 1, 'x' || 'y'") == [(2, "xy")]
        conn.commit()
        assert rows(conn, "SELECT 3") == [(3,)]


def test_create_insert_select(admin_conn):
    name = unique("q")
    run(admin_conn, f"CREATE TABLE {name} (id INTEGER, label VARCHAR, score DOUBLE)")
    run(
        admin_conn,
        f"INSERT INTO {name} VALUES (3, 'c', 0.5), (1, 'a', 1.25), (2, NULL, -7.0)",
    )
    assert rows(admin_conn, f"SELECT id, label, score FROM {name} ORDER BY id") == [
        (1, "a", 1.25),
        (2, None, -7.0),
        (3, "c", 0.5),
    ]
    assert rows(
        admin_conn, f"SELECT count(*), sum(id), min(label) FROM {name} WHERE score > 0"
    ) == [(2, 4, "a")]
    run(admin_conn, f"UPDATE {name} SET label = 'b' WHERE id = 2")
    run(admin_conn, f"DELETE FROM {name} WHERE id = 3")
    assert rows(admin_conn, f"SELECT id, label FROM {name} ORDER BY id") == [(1, "a"), (2, "b")]
    run(admin_conn, f"DROP TABLE {name}")
    assert scalar(
        admin_conn,
        f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{name}'",
    ) == 0


def test_statement_update_returns_row_count(admin_conn):
    # CommandStatementUpdate: ADBC's execute_update must report the affected rows.
    name = unique("upd")
    run(admin_conn, f"CREATE TABLE {name} (x INTEGER)")
    cur = admin_conn.cursor()
    stmt = cur.adbc_statement
    stmt.set_sql_query(f"INSERT INTO {name} SELECT * FROM range(7)")
    assert stmt.execute_update() == 7
    stmt.set_sql_query(f"UPDATE {name} SET x = x + 100 WHERE x < 3")
    assert stmt.execute_update() == 3
    stmt.set_sql_query(f"DELETE FROM {name} WHERE x >= 100")
    assert stmt.execute_update() == 3
    cur.close()
    assert scalar(admin_conn, f"SELECT sum(x) FROM {name}") == 3 + 4 + 5 + 6


def test_large_result_streams_in_many_batches(admin_conn):
    n = 3_000_000
    cur = admin_conn.cursor()
    cur.execute(f"SELECT i, i * 2 AS doubled, 'row' || i AS label FROM range({n}) t(i)")
    reader = cur.fetch_record_batch()
    count = 0
    total = 0
    batches = 0
    last_label = None
    for batch in reader:
        batches += 1
        count += batch.num_rows
        total += pc.sum(batch.column(1)).as_py() or 0
        if batch.num_rows:
            last_label = batch.column(2)[batch.num_rows - 1].as_py()
    cur.close()
    assert count == n
    assert total == n * (n - 1)  # sum of 2*i
    assert batches > 1, "3M rows should arrive in more than one record batch"
    assert last_label is not None and last_label.startswith("row")


def test_empty_result_keeps_schema(admin_conn):
    t = table(
        admin_conn,
        "SELECT 1::BIGINT AS a, 'x'::VARCHAR AS b, 1.5::DOUBLE AS c WHERE false",
    )
    assert t.num_rows == 0
    assert t.schema.names == ["a", "b", "c"]
    assert t.schema.field("a").type == pa.int64()
    assert pa.types.is_string(t.schema.field("b").type) or pa.types.is_large_string(
        t.schema.field("b").type
    ) or t.schema.field("b").type == pa.string_view()
    assert t.schema.field("c").type == pa.float64()


def test_fetchone_fetchmany_and_description(admin_conn):
    cur = admin_conn.cursor()
    cur.execute("SELECT i AS n, i::VARCHAR AS s FROM range(10) t(i) ORDER BY i")
    assert [d[0] for d in cur.description] == ["n", "s"]
    assert cur.fetchone() == (0, "0")
    assert cur.fetchmany(3) == [(1, "1"), (2, "2"), (3, "3")]
    rest = cur.fetchall()
    assert rest == [(i, str(i)) for i in range(4, 10)]
    assert cur.fetchone() is None
    cur.close()


def test_views_ctes_and_joins(admin_conn):
    a, b, v = unique("a"), unique("b"), unique("v")
    run(admin_conn, f"CREATE TABLE {a} AS SELECT i AS id, i % 3 AS grp FROM range(30) t(i)")
    run(admin_conn, f"CREATE TABLE {b} (grp INTEGER, name VARCHAR)")
    run(admin_conn, f"INSERT INTO {b} VALUES (0, 'zero'), (1, 'one'), (2, 'two')")
    run(
        admin_conn,
        f"CREATE VIEW {v} AS SELECT name, count(*) AS n, sum(id) AS s "
        f"FROM {a} JOIN {b} USING (grp) GROUP BY name",
    )
    got = rows(
        admin_conn,
        f"WITH x AS (SELECT * FROM {v}) SELECT name, n, s FROM x ORDER BY name",
    )
    assert got == [
        ("one", 10, sum(i for i in range(30) if i % 3 == 1)),
        ("two", 10, sum(i for i in range(30) if i % 3 == 2)),
        ("zero", 10, sum(i for i in range(30) if i % 3 == 0)),
    ]


def test_many_statements_on_one_cursor(admin_conn):
    cur = admin_conn.cursor()
    for i in range(50):
        cur.execute(f"SELECT {i} * {i}")
        assert cur.fetchone() == (i * i,)
    cur.close()
