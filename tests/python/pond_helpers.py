"""Small helpers shared by the test modules (imported as a plain module; see conftest.py)."""

from __future__ import annotations

import secrets

import adbc_driver_manager

Error = adbc_driver_manager.Error
DatabaseError = adbc_driver_manager.DatabaseError
ProgrammingError = adbc_driver_manager.ProgrammingError
AdbcStatusCode = adbc_driver_manager.AdbcStatusCode


# Minutes of work for DuckDB: sums over 10^12 generated rows, no shortcut.
LONG_QUERY = "SELECT sum(i * 7 % 13) FROM range(1000000000000) t(i)"


def unique(prefix: str = "t") -> str:
    """A fresh identifier (lower case, safe unquoted) for tables, databases and users."""
    return f"{prefix}_{secrets.token_hex(4)}"


def rows(conn, sql, params=None):
    """Run one statement on a fresh cursor and return fetchall()."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def scalar(conn, sql, params=None):
    r = rows(conn, sql, params)
    assert len(r) == 1 and len(r[0]) == 1, f"expected one value from {sql!r}, got {r!r}"
    return r[0][0]


def table(conn, sql, params=None):
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()
    finally:
        cur.close()


def run(conn, sql, params=None):
    """Execute a statement for its effect (result, if any, is drained)."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        cur.fetchall()
    finally:
        cur.close()


def expect_error(conn, sql, params=None) -> Error:
    """Run sql and return the ADBC/DB-API error it must raise (fails the test otherwise)."""
    cur = conn.cursor()
    try:
        try:
            cur.execute(sql, params)
            result = cur.fetchall()
        except Error as e:
            return e
        raise AssertionError(f"{sql!r} should have failed but returned {result!r}")
    finally:
        try:
            cur.close()
        except Error:
            pass


REFUSAL_WORDS = ("permission", "denied", "not allowed", "disabled", "refused", "forbidden")


def assert_refused(err: Error, what: str) -> None:
    """A sandbox refusal: an error whose message says it is not permitted."""
    msg = str(err).lower()
    assert any(w in msg for w in REFUSAL_WORDS), (
        f"{what}: expected a permission error, got {type(err).__name__}: {err}"
    )


def assert_usable(conn) -> None:
    """The connection still answers queries correctly."""
    assert scalar(conn, "SELECT 40 + 2") == 42
