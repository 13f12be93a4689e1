"""Bulk ingest (CommandStatementIngest) through cursor.adbc_ingest."""

import datetime
import decimal
import os
import secrets

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pond_helpers import Error, assert_usable, rows, run, scalar, table, unique


def sample(n=5, offset=0):
    return pa.table(
        {
            "id": pa.array(range(offset, offset + n), pa.int64()),
            "name": pa.array([f"n{i}é" for i in range(offset, offset + n)]),
            "amount": pa.array(
                [decimal.Decimal(i) / 4 for i in range(offset, offset + n)], pa.decimal128(18, 3)
            ),
            "day": pa.array(
                [datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(n)],
                pa.date32(),
            ),
            "flag": pa.array([i % 2 == 0 for i in range(n)]),
        }
    )


def ingest(conn, name, data, mode="create", **kw):
    cur = conn.cursor()
    try:
        return cur.adbc_ingest(name, data, mode=mode, **kw)
    finally:
        cur.close()


def test_ingest_create_round_trips_values_and_types(user):
    name = unique("ing")
    data = sample(5)
    with user.connect(autocommit=True) as conn:
        assert ingest(conn, name, data) == 5
        t = table(conn, f"SELECT * FROM {name} ORDER BY id")
        assert t.column_names == ["id", "name", "amount", "day", "flag"]
        assert t.schema.field("id").type == pa.int64()
        assert t.schema.field("amount").type == pa.decimal128(18, 3)
        assert t.schema.field("day").type == pa.date32()
        assert t.schema.field("flag").type == pa.bool_()
        assert t.to_pylist() == data.to_pylist()


def test_ingest_create_fails_if_table_exists(user):
    name = unique("ing")
    with user.connect(autocommit=True) as conn:
        ingest(conn, name, sample(3))
        with pytest.raises(Error):
            ingest(conn, name, sample(3), mode="create")
        assert scalar(conn, f"SELECT count(*) FROM {name}") == 3
        assert_usable(conn)


def test_ingest_append(user):
    name = unique("ing")
    with user.connect(autocommit=True) as conn:
        ingest(conn, name, sample(3))
        assert ingest(conn, name, sample(4, offset=3), mode="append") == 4
        assert rows(conn, f"SELECT count(*), sum(id) FROM {name}") == [(7, sum(range(7)))]


def test_ingest_append_to_missing_table_fails(user):
    with user.connect(autocommit=True) as conn:
        with pytest.raises(Error):
            ingest(conn, unique("missing"), sample(2), mode="append")
        assert_usable(conn)


def test_ingest_replace(user):
    name = unique("ing")
    with user.connect(autocommit=True) as conn:
        ingest(conn, name, sample(10))
        other = pa.table({"x": pa.array(["only", "two"])})
        assert ingest(conn, name, other, mode="replace") == 2
        t = table(conn, f"SELECT * FROM {name} ORDER BY x")
        assert t.column_names == ["x"]
        assert t.column("x").to_pylist() == ["only", "two"]


def test_ingest_create_append(user):
    name = unique("ing")
    with user.connect(autocommit=True) as conn:
        ingest(conn, name, sample(3), mode="create_append")
        ingest(conn, name, sample(3, offset=10), mode="create_append")
        assert rows(conn, f"SELECT count(*), sum(id) FROM {name}") == [(6, 0 + 1 + 2 + 10 + 11 + 12)]


def test_ingest_temporary_table(user):
    name = unique("tmp")
    with user.connect(autocommit=True, cookies=True) as conn:
        ingest(conn, name, sample(4), temporary=True)
        assert scalar(conn, f"SELECT count(*) FROM {name}") == 4
        # It is temporary: not a table of my_db, and invisible to another session.
        assert scalar(
            conn,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
            (name,),
        ) == 0
        with user.connect(autocommit=True) as other:
            with pytest.raises(Error) as err:
                rows(other, f"SELECT count(*) FROM {name}")
            assert name in str(err.value)


def test_ingest_into_other_catalog_and_schema(user):
    db = unique("ingdb")
    name = unique("ing")
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        assert ingest(conn, name, sample(6), catalog_name=db, db_schema_name="main") == 6
        assert rows(conn, f"SELECT count(*), sum(id) FROM {db}.main.{name}") == [(6, 15)]
        # The current database (my_db) did not get it.
        assert scalar(
            conn,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'my_db' AND table_name = ?",
            (name,),
        ) == 0

        run(conn, "CREATE SCHEMA IF NOT EXISTS staging")
        assert ingest(conn, name, sample(2), db_schema_name="staging") == 2
        assert scalar(conn, f"SELECT count(*) FROM my_db.staging.{name}") == 2


def test_ingest_one_million_rows(user):
    n = 1_000_000
    chunk = 65_536
    name = unique("big")
    schema = pa.schema([("id", pa.int64()), ("v", pa.float64()), ("tag", pa.string())])

    def batches():
        # Generated with pyarrow in 64K-row batches (a single 22 MB batch would exceed the
        # Go driver's 16 MiB gRPC message limit on the client side).
        for start in range(0, n, chunk):
            ids = pa.array(range(start, min(start + chunk, n)), pa.int64())
            yield pa.record_batch(
                [
                    ids,
                    pc.cast(pc.bit_wise_and(ids, 1023), pa.float64()),
                    pc.binary_join_element_wise("t", pc.cast(pc.bit_wise_and(ids, 15), pa.string()), ""),
                ],
                schema=schema,
            )

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with user.connect(autocommit=True) as conn:
        count = ingest(conn, name, reader)
        assert count == n
        expected_v = float(sum(i & 1023 for i in range(n)))
        assert rows(conn, f"SELECT count(*), sum(id), sum(v), count(DISTINCT tag) FROM {name}") == [
            (n, n * (n - 1) // 2, expected_v, 16)
        ]
        assert rows(conn, f"SELECT id, v, tag FROM {name} WHERE id = 999999") == [
            (999999, float(999999 & 1023), f"t{999999 & 15}")
        ]


def test_ingest_in_transaction_commit_and_rollback(user):
    kept, dropped = unique("keep"), unique("drop")
    with user.connect(autocommit=False) as conn:
        ingest(conn, kept, sample(3))
        conn.commit()
        ingest(conn, dropped, sample(3))
        conn.rollback()
        with user.connect(autocommit=True) as other:
            assert scalar(other, f"SELECT count(*) FROM {kept}") == 3
            assert scalar(
                other,
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                (dropped,),
            ) == 0


def test_ingest_hostile_table_name_is_quoted(pond, user):
    """A table name is an identifier, never SQL: no injected statement may run."""
    target = f"/tmp/pond_escape_{secrets.token_hex(6)}.csv"
    evil = f"x\"; COPY (SELECT 42) TO '{target}'; --"
    with user.connect(autocommit=True) as conn:
        try:
            ingest(conn, evil, sample(2))
        except Error:
            pass
        else:
            # If it was accepted, the table has exactly that name.
            quoted = '"' + evil.replace('"', '""') + '"'
            assert scalar(conn, f"SELECT count(*) FROM {quoted}") == 2
        assert not os.path.exists(target), f"ingest ran injected SQL: {target} exists"
        assert_usable(conn)
