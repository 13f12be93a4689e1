"""Small helpers shared by the test modules (imported as a plain module; see conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time

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


def run_in_thread(cur, sql, close: bool = False):
    """Starts cur.execute(sql) and fetchall() on a daemon thread; returns (thread, outcome).

    outcome gets "rows" (the result) or "error" (the Error that ended it), then "done"
    (time.time() at the end) and "elapsed" (seconds). The caller keeps the cursor (to cancel
    it, say) unless close=True, when the thread closes it once the query ended."""
    outcome: dict = {}

    def work():
        started = time.monotonic()
        try:
            cur.execute(sql)
            outcome["rows"] = cur.fetchall()
        except Error as e:  # the test inspects it
            outcome["error"] = e
        finally:
            outcome["elapsed"] = time.monotonic() - started
            outcome["done"] = time.time()
            if close:
                try:
                    cur.close()
                except Error:
                    pass  # e.g. the server went away with the query

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t, outcome


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs encode their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(header: dict, claims: dict, key: bytes | None) -> str:
    """A JWT signed with HMAC-SHA256 under key (header["alg"] should say HS256), or unsigned
    (empty signature) when key is None."""
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if key is None:
        return head + "."
    sig = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return head + "." + b64url(sig)
