"""Prepared statements: parameters, schemas, reuse and executemany."""

import decimal

import pyarrow as pa

from pond_helpers import expect_error, rows, run, scalar, unique


def test_single_parameter(admin_conn):
    assert rows(admin_conn, "SELECT ? + 1 AS x", (41,)) == [(42,)]


def test_several_parameters_of_mixed_types(admin_conn):
    got = rows(
        admin_conn,
        "SELECT ? * 2, ? || '!', length(?), ?::DECIMAL(10,2) + 1",
        (21, "héllo", "ñandú", decimal.Decimal("1.25")),
    )
    assert got == [(42, "héllo!", 5, decimal.Decimal("2.25"))]


def test_untyped_parameters_take_the_bound_type(admin_conn):
    # DuckDB types `SELECT ?` from the bound value at execution (as in duckdb's own clients).
    assert rows(admin_conn, "SELECT ?", (7,)) == [(7,)]
    assert rows(admin_conn, "SELECT ?, ?", (1, "a")) == [(1, "a")]
    assert rows(admin_conn, "SELECT ? * 1000 + ?", (3, 4)) == [(3004,)]


def test_null_parameter_is_null(admin_conn):
    # None binds as an Arrow null column; it must reach DuckDB as SQL NULL.
    assert rows(admin_conn, "SELECT ?::INTEGER AS v, ? IS NULL AS n", (None, None)) == [
        (None, True)
    ]


def test_parameter_in_where_clause(admin_conn):
    name = unique("pw")
    run(admin_conn, f"CREATE TABLE {name} AS SELECT i AS id, 'n' || i AS label FROM range(100) t(i)")
    assert rows(admin_conn, f"SELECT label FROM {name} WHERE id = ?", (57,)) == [("n57",)]
    assert rows(
        admin_conn, f"SELECT count(*) FROM {name} WHERE id >= ? AND label LIKE ?", (90, "n9%")
    ) == [(10,)]
    # No match is an empty result, not an error.
    assert rows(admin_conn, f"SELECT label FROM {name} WHERE id = ?", (1000,)) == []


def test_prepared_statement_reused_with_new_parameters(admin_conn):
    cur = admin_conn.cursor()
    sql = "SELECT ?::BIGINT * ?::BIGINT"
    for a, b in [(1, 2), (3, 4), (1_000_000, 1_000_000), (-5, 7)]:
        cur.execute(sql, (a, b))
        assert cur.fetchall() == [(a * b,)]
    cur.close()


def test_prepare_reports_parameter_and_result_schemas(admin_conn):
    cur = admin_conn.cursor()
    param_schema = cur.adbc_prepare("SELECT ?::INTEGER AS a, ?::VARCHAR AS b")
    assert param_schema is not None, "parameter schema must be filled at prepare time"
    assert len(param_schema) == 2
    result_schema = cur.adbc_execute_schema("SELECT 1::BIGINT AS a, 'x' AS b, 2.5::DOUBLE AS c")
    assert result_schema.names == ["a", "b", "c"]
    assert result_schema.field("a").type == pa.int64()
    assert result_schema.field("c").type == pa.float64()
    cur.close()


def test_executemany_inserts_every_row(admin_conn):
    name = unique("em")
    run(admin_conn, f"CREATE TABLE {name} (id INTEGER, label VARCHAR, amount DOUBLE)")
    data = [(i, f"row-{i}-é", i * 0.5) for i in range(1000)]
    cur = admin_conn.cursor()
    cur.executemany(f"INSERT INTO {name} VALUES (?, ?, ?)", data)
    cur.close()
    assert rows(admin_conn, f"SELECT count(*), sum(id), sum(amount) FROM {name}") == [
        (1000, sum(range(1000)), sum(i * 0.5 for i in range(1000)))
    ]
    assert rows(admin_conn, f"SELECT id, label, amount FROM {name} ORDER BY id LIMIT 3") == data[:3]
    assert rows(admin_conn, f"SELECT label FROM {name} WHERE id = 999") == [("row-999-é",)]


def test_executemany_with_arrow_batch(admin_conn):
    name = unique("emb")
    run(admin_conn, f"CREATE TABLE {name} (id BIGINT, v VARCHAR)")
    batch = pa.record_batch(
        [pa.array(range(5000), pa.int64()), pa.array([f"v{i}" if i % 7 else None for i in range(5000)])],
        names=["id", "v"],
    )
    cur = admin_conn.cursor()
    cur.executemany(f"INSERT INTO {name} VALUES (?, ?)", batch)
    cur.close()
    assert rows(admin_conn, f"SELECT count(*), count(v), sum(id) FROM {name}") == [
        (5000, sum(1 for i in range(5000) if i % 7), sum(range(5000)))
    ]


def test_executemany_update(admin_conn):
    name = unique("emu")
    run(admin_conn, f"CREATE TABLE {name} AS SELECT i::INTEGER AS id, 0 AS hits FROM range(10) t(i)")
    cur = admin_conn.cursor()
    cur.executemany(f"UPDATE {name} SET hits = hits + ? WHERE id = ?", [(5, 1), (7, 2), (9, 1)])
    cur.close()
    assert rows(admin_conn, f"SELECT id, hits FROM {name} WHERE hits > 0 ORDER BY id") == [
        (1, 14),
        (2, 7),
    ]


def test_prepared_statements_in_a_transaction(pond):
    """Prepared statements work on the default (transactional) connection, without cookies."""
    name = unique("ptx")
    with pond.connect(autocommit=False, cookies=False) as conn:
        run(conn, f"CREATE TABLE {name} (id INTEGER)")
        cur = conn.cursor()
        cur.executemany(f"INSERT INTO {name} VALUES (?)", [(i,) for i in range(10)])
        cur.close()
        assert scalar(conn, f"SELECT sum(id) FROM {name} WHERE id > ?", (4,)) == 35
        conn.commit()
    with pond.connect(autocommit=True) as other:
        assert scalar(other, f"SELECT count(*) FROM {name}") == 10


def test_wrong_parameter_count_is_an_error(admin_conn):
    err = expect_error(admin_conn, "SELECT ? + ?", (1,))
    assert str(err)
    assert scalar(admin_conn, "SELECT ? * 3", (14,)) == 42


def test_preparing_a_script_changes_nothing_and_running_it_runs_it_once(admin_conn):
    # Its result schema needs the CREATE before it: preparing rehearses the script in a
    # transaction it rolls back.
    name = unique("ps")
    script = f"CREATE TABLE {name} (i INTEGER); INSERT INTO {name} VALUES (1), (2); SELECT sum(i) AS s FROM {name}"
    cur = admin_conn.cursor()
    cur.adbc_prepare(script)
    cur.close()
    assert rows(admin_conn, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'") == [(0,)]
    assert rows(admin_conn, script) == [(3,)]
    assert rows(admin_conn, f"SELECT count(*) FROM {name}") == [(2,)]
