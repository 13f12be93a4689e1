"""SQL errors carry DuckDB's message and leave the connection usable."""

import pytest

from pond_helpers import (
    DatabaseError,
    Error,
    ProgrammingError,
    assert_usable,
    expect_error,
    rows,
    run,
    scalar,
    unique,
)


def test_missing_table_names_the_table(admin_conn):
    name = unique("no_such_table")
    err = expect_error(admin_conn, f"SELECT * FROM {name}")
    assert isinstance(err, DatabaseError), type(err)
    assert name in str(err), str(err)
    assert "does not exist" in str(err).lower() or "catalog error" in str(err).lower(), str(err)
    assert_usable(admin_conn)


def test_missing_table_is_programming_error(admin_conn):
    err = expect_error(admin_conn, "SELECT * FROM table_that_is_not_there")
    assert isinstance(err, ProgrammingError), f"{type(err).__name__}: {err}"


def test_syntax_error(admin_conn):
    err = expect_error(admin_conn, "SELEC 1 FORM nowhere")
    assert isinstance(err, DatabaseError)
    assert "syntax error" in str(err).lower(), str(err)
    assert_usable(admin_conn)


def test_missing_column_names_the_column(admin_conn):
    name = unique("cols")
    run(admin_conn, f"CREATE TABLE {name} (a INTEGER)")
    err = expect_error(admin_conn, f"SELECT missing_col_xyz FROM {name}")
    assert "missing_col_xyz" in str(err)
    assert_usable(admin_conn)


def test_conversion_error(admin_conn):
    err = expect_error(admin_conn, "SELECT CAST('not a number' AS INTEGER)")
    assert "not a number" in str(err) or "conversion" in str(err).lower(), str(err)
    assert_usable(admin_conn)


def test_error_raised_mid_stream(admin_conn):
    """A failure after rows have started flowing still surfaces as an error."""
    cur = admin_conn.cursor()
    with pytest.raises(Error) as info:
        cur.execute(
            "SELECT CASE WHEN i = 2500000 THEN error('boom at row 2500000') ELSE i END AS v "
            "FROM range(3000000) t(i)"
        )
        cur.fetchall()
    assert "boom at row 2500000" in str(info.value)
    cur.close()
    assert_usable(admin_conn)


def test_constraint_violation(admin_conn):
    name = unique("pk")
    run(admin_conn, f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)")
    run(admin_conn, f"INSERT INTO {name} VALUES (1)")
    err = expect_error(admin_conn, f"INSERT INTO {name} VALUES (1)")
    assert "constraint" in str(err).lower() or "duplicate" in str(err).lower(), str(err)
    assert scalar(admin_conn, f"SELECT count(*) FROM {name}") == 1


def test_many_errors_in_a_row_then_success(admin_conn):
    for i in range(20):
        err = expect_error(admin_conn, f"SELECT * FROM missing_{i}")
        assert f"missing_{i}" in str(err)
    assert rows(admin_conn, "SELECT 1, 2") == [(1, 2)]


def test_error_in_transaction_mode_connection(pond):
    """Default (autocommit off) connection: after an error and rollback() it works again."""
    with pond.connect() as conn:
        err = expect_error(conn, "SELECT * FROM not_here_either")
        assert "not_here_either" in str(err)
        conn.rollback()
        assert_usable(conn)


def test_error_in_prepared_statement_execution(admin_conn):
    err = expect_error(admin_conn, "SELECT 10 // ?::INTEGER + CAST(? AS INTEGER)", (1, "xx"))
    assert "xx" in str(err) or "conversion" in str(err).lower(), str(err)
    assert scalar(admin_conn, "SELECT 10 // ?", (5,)) == 2
