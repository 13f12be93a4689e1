"""Authentication: bearer tokens, the Basic handshake, read-only tokens."""

import base64
import json
import secrets
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from pond_helpers import (
    AdbcStatusCode,
    Error,
    assert_usable,
    b64url,
    expect_error,
    jwt,
    rows,
    run,
    scalar,
    unique,
)


def assert_unauthenticated(err: Error):
    msg = str(err)
    assert (
        getattr(err, "status_code", None) == AdbcStatusCode.UNAUTHENTICATED
        or "UNAUTHENTICATED" in msg.upper()
    ), f"expected UNAUTHENTICATED, got {type(err).__name__}: {msg}"


def try_query(pond, **connect_kw):
    """Connect and run a query; returns the error, or fails the test if it succeeded."""
    conn = None
    try:
        conn = pond.connect(autocommit=True, **connect_kw)
        cur = conn.cursor()
        cur.execute("SELECT 'leaked' AS s")
        got = cur.fetchall()
    except Error as e:
        return e
    finally:
        if conn is not None:
            try:
                conn.close()
            except Error:
                pass
    raise AssertionError(f"query without valid credentials succeeded: {got}")


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))



def basic_handshake_error(pond, username: str, password: str) -> Error:
    """The error of a first query over a Basic-handshake connection; fails if it succeeds."""
    with pytest.raises(Error) as info:
        conn = flight_sql.connect(
            pond.url, db_kwargs={"username": username, "password": password}, autocommit=True
        )
        try:
            rows(conn, "SELECT 1")
        finally:
            conn.close()
    return info.value

def test_valid_admin_token(pond):
    with pond.connect(autocommit=True) as conn:
        assert scalar(conn, "SELECT 'in'") == "in"


def test_no_token_is_rejected(pond):
    assert_unauthenticated(try_query(pond, token=""))


def test_garbage_token_is_rejected(pond):
    assert_unauthenticated(try_query(pond, token="garbage-" + secrets.token_hex(16)))


def test_wrong_scheme_is_rejected(pond):
    assert_unauthenticated(
        try_query(pond, token="", db_kwargs={"adbc.flight.sql.authorization_header": "Basic Zm9vOmJhcg=="})
    )


def test_token_signed_with_another_key_is_rejected(pond):
    real = claims_of(pond.token)
    forged = jwt({"typ": "JWT", "alg": "HS256"}, real, secrets.token_bytes(32))
    assert_unauthenticated(try_query(pond, token=forged))


def test_unsigned_token_is_rejected(pond):
    real = claims_of(pond.token)
    forged = jwt({"typ": "JWT", "alg": "none"}, real, None)
    assert_unauthenticated(try_query(pond, token=forged))


def test_tampered_token_is_rejected(pond):
    """The real signature over changed claims (another user) must not verify."""
    head, payload, sig = pond.token.split(".")
    claims = claims_of(pond.token)
    claims["sub"] = unique("someone_else")
    tampered = head + "." + b64url(json.dumps(claims).encode()) + "." + sig
    assert_unauthenticated(try_query(pond, token=tampered))


def test_expired_token_is_rejected(pond):
    claims = claims_of(pond.token)
    claims["exp"] = int(time.time()) - 3600
    head = pond.token.split(".")[0]
    # Unsigned change of exp: rejected whether for the signature or the expiry.
    expired = head + "." + b64url(json.dumps(claims).encode()) + "." + pond.token.split(".")[2]
    assert_unauthenticated(try_query(pond, token=expired))


def test_token_expires(pond):
    token = pond.new_user(unique("short"), ttl="2s")
    exp = claims_of(token).get("exp")
    with pond.connect(token, autocommit=True) as conn:
        assert scalar(conn, "SELECT 'fresh'") == "fresh"
    # Past the expiry plus a clock-skew leeway of a few seconds (the server allows 5 s).
    time.sleep(max(0.0, (exp or time.time() + 2) - time.time()) + 7)
    assert_unauthenticated(try_query(pond, token=token))


def test_revoked_token_is_refused_within_seconds(pond):
    name = unique("rev")
    doomed, other = pond.new_user(name), pond.new_user(name)
    conn = pond.connect(doomed, autocommit=True)
    assert scalar(conn, "SELECT 1") == 1
    pond.revoke(claims_of(doomed)["jti"])
    deadline = time.monotonic() + 5
    refused = None
    while time.monotonic() < deadline:
        try:
            rows(conn, "SELECT 1")  # the already-open connection must be refused too
        except Error as e:
            refused = e
            break
        time.sleep(0.25)
    conn.close()
    assert refused is not None, "a revoked token still worked 5 s after `pond token revoke`"
    assert_unauthenticated(refused)
    assert_unauthenticated(try_query(pond, token=doomed))
    # Another token of the same user is unaffected.
    with pond.connect(other, autocommit=True) as ok:
        assert scalar(ok, "SELECT 2") == 2


def test_rejected_client_then_valid_client(pond):
    try_query(pond, token="nope")
    with pond.connect(autocommit=True) as conn:
        assert_usable(conn)


def basic_connect(pond, username, password):
    return flight_sql.connect(
        pond.url, db_kwargs={"username": username, "password": password}, autocommit=True
    )


def test_basic_handshake_with_token_as_password(pond):
    # Several name lengths, so that base64("user:token") needs 0, 1 and 2 padding characters
    # (Go clients such as the ADBC driver send it unpadded).
    failures = []
    for prefix in ("b", "bb", "bbb", "bbbb", "bbbbb", "bbbbbb"):
        name = unique(prefix)
        token = pond.new_user(name)
        try:
            conn = basic_connect(pond, name, token)
            try:
                run(conn, "CREATE TABLE mine AS SELECT 5 AS x")
            finally:
                conn.close()
        except Error as e:
            failures.append(f"{name} (len(user:token) % 3 = {(len(name) + 1 + len(token)) % 3}): {e}")
            continue
        # It was that user's my_db.
        with pond.connect(token, autocommit=True) as check:
            assert scalar(check, "SELECT x FROM mine") == 5
    assert not failures, "Basic handshake refused valid tokens:\n" + "\n".join(failures)


def test_basic_handshake_with_wrong_password_fails(pond):
    name = unique("basic")
    pond.new_user(name)
    assert_unauthenticated(basic_handshake_error(pond, name, "wrong-" + secrets.token_hex(8)))


def test_basic_handshake_user_must_match_token(pond):
    alice = unique("alice")
    alice_token = pond.new_user(alice)
    assert_unauthenticated(basic_handshake_error(pond, unique("mallory"), alice_token))


def test_token_create_prints_distinct_tokens(pond):
    name = unique("multi")
    t1, t2 = pond.new_user(name), pond.new_user(name)
    assert t1 != t2
    # Both name the same user: same my_db.
    with pond.connect(t1, autocommit=True) as a:
        run(a, "CREATE TABLE shared_by_tokens AS SELECT 'same user' AS s")
    with pond.connect(t2, autocommit=True) as b:
        assert scalar(b, "SELECT s FROM shared_by_tokens") == "same user"


def test_read_only_token(pond):
    name = unique("ro")
    rw = pond.new_user(name)
    with pond.connect(rw, autocommit=True) as conn:
        run(conn, "CREATE TABLE facts AS SELECT i AS id FROM range(10) t(i)")
    ro = pond.new_user(name, read_only=True)
    with pond.connect(ro, autocommit=True) as conn:
        assert scalar(conn, "SELECT sum(id) FROM facts") == 45
        for sql in (
            "INSERT INTO facts VALUES (100)",
            "CREATE TABLE nope (x INTEGER)",
            "DELETE FROM facts",
            "DROP TABLE facts",
            f"CREATE DATABASE {unique('rodb')}",
        ):
            err = expect_error(conn, sql)
            assert str(err), sql
        cur = conn.cursor()
        with pytest.raises(Error):
            cur.adbc_ingest("ingested_by_ro", __import__("pyarrow").table({"x": [1]}))
        cur.close()
        assert scalar(conn, "SELECT count(*) FROM facts") == 10
    with pond.connect(rw, autocommit=True) as conn:
        assert rows(conn, "SELECT count(*), sum(id) FROM facts") == [(10, 45)]
        assert scalar(
            conn, "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('nope', 'ingested_by_ro')"
        ) == 0
