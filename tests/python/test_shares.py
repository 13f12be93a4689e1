"""Shares end to end through ADBC, in every duckling mode: three users, CREATE SHARE, GRANT and
REVOKE, ATTACH of the URL, MANUAL and AUTOMATIC updates, the views, a share of a clone, the
source database dropped and restored, and DROP SHARE.

Readers follow their shares within a second (the coordinator checks every 250 ms), so the
tests wait for a change with `eventually`, never a fixed sleep, except where they check that
something has *not* happened yet."""

from __future__ import annotations

import re
import time

import pytest

from pond_helpers import Error, assert_refused, assert_usable, expect_error, rows, run, scalar, unique

FOLLOW_TIMEOUT_S = 15.0


def eventually(check, what: str, timeout: float = FOLLOW_TIMEOUT_S):
    """Retries `check` (a callable that raises AssertionError or an ADBC Error until its
    condition holds) until it passes; fails with its last error after `timeout`."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except (AssertionError, Error) as e:
            if time.time() > deadline:
                pytest.fail(f"timed out waiting for {what}: {e}")
        time.sleep(0.1)


def users(server, n=3):
    """n fresh users, each connected once (a user exists once they have connected)."""
    out = []
    for prefix in ("owner", "reader", "other")[:n]:
        name = unique(prefix)
        token = server.new_user(name)
        conn = server.connect(token=token, autocommit=True)
        assert_usable(conn)
        out.append((name, token, conn))
    return out


def catalogs(conn):
    return conn.adbc_get_objects(depth="catalogs").read_all().column(0).to_pylist()


def view(conn, name, where="true"):
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT * FROM pond_information_schema.{name} WHERE {where} ORDER BY ALL")
        return cur.fetch_arrow_table().to_pylist()
    finally:
        cur.close()


@pytest.fixture(params=["in-process", "process-with-replicas"])
def server(request, pond, pond_factory):
    if request.param == "in-process":
        return pond
    return pond_factory(["--ducklings", "process", "--read-replicas", "1"])


def test_a_share_is_read_by_whom_its_access_allows_and_follows_its_owner(server):
    (owner_name, _, owner), (reader_name, reader_token, reader), (other_name, _, other) = users(server)
    db = unique("sales")
    run(owner, f"CREATE DATABASE {db}")
    run(owner, f"CREATE TABLE {db}.t AS SELECT range AS i FROM range(10)")
    url = scalar(owner, f"CREATE SHARE s FROM {db} (ACCESS RESTRICTED, VISIBILITY HIDDEN, UPDATE MANUAL)")
    assert re.fullmatch(rf"pond:_share/{db}/[0-9a-f]{{32}}", url), url

    # RESTRICTED: nobody but the owner until granted.
    assert_refused(expect_error(reader, f"ATTACH '{url}' AS theirs"), "an ungranted reader")
    run(owner, f"GRANT READ ON SHARE s TO {reader_name}")
    run(reader, f"ATTACH '{url}' AS theirs")
    assert scalar(reader, "SELECT count(*) FROM theirs.t") == 10
    assert_refused(expect_error(reader, "INSERT INTO theirs.t VALUES (1)"), "a write to a share")
    assert_refused(expect_error(reader, "CREATE TABLE theirs.main.x (i INTEGER)"), "DDL on a share")
    assert_refused(expect_error(other, f"ATTACH '{url}' AS x"), "a user never granted")
    assert "theirs" in catalogs(reader) and "my_db" in catalogs(reader)
    # The reader sees the share's database and nothing else of the owner's.
    listed = {r[0] for r in rows(reader, "SELECT database_name FROM duckdb_databases() WHERE NOT internal")}
    assert listed - {"memory", "pond_information_schema"} == {"my_db", "theirs"}, listed

    [owned] = view(owner, "owned_shares")
    assert (owned["name"], owned["url"], owned["source_db_name"]) == ("s", url, db)
    assert (owned["access"], owned["visibility"], owned["update"]) == ("RESTRICTED", "HIDDEN", "MANUAL")
    assert owned["granted_to"] == [reader_name] and owned["published_snapshot_id"] is not None
    [mine] = view(reader, "shared_with_me")
    assert (mine["name"], mine["owner"], mine["url"], mine["attached_as"], mine["error"]) == (
        "s", owner_name, url, "theirs", None,
    )
    assert view(other, "shared_with_me") == []

    # MANUAL: a commit reaches the reader only once published.
    run(owner, f"INSERT INTO {db}.t SELECT range FROM range(5)")
    time.sleep(2.5)
    assert scalar(reader, "SELECT count(*) FROM theirs.t") == 10, "MANUAL shares wait for UPDATE SHARE"
    run(owner, "UPDATE SHARE s")

    def published():
        assert scalar(reader, "SELECT count(*) FROM theirs.t") == 15

    eventually(published, "the reader to see the update")

    # The attachment outlives the session, and a read-only token reads it too (on a read
    # replica when there is one).
    with server.connect(token=reader_token, autocommit=True) as again:
        assert scalar(again, "SELECT count(*) FROM theirs.t") == 15
    with server.connect(token=server.new_user(reader_name, read_only=True), autocommit=True) as ro:
        eventually(lambda: _count_is(ro, "theirs.t", 15), "a read-only session to see the share")
        assert_refused(expect_error(ro, f"CREATE SHARE nope FROM my_db"), "a read-only token creating a share")

    # Revoked: refused within seconds, and a session that selected it goes back to its
    # default database; granted again: back.
    using = server.connect(token=reader_token, autocommit=True)
    run(using, "USE theirs")
    assert scalar(using, "SELECT count(*) FROM t") == 15
    run(owner, f"REVOKE READ ON SHARE s FROM {reader_name}")
    eventually(lambda: _fails(reader, "SELECT count(*) FROM theirs.t"), "the revoke to take effect")
    eventually(lambda: _current_is(using, "my_db"), "the session using the share to move back")
    using.close()
    [revoked] = view(reader, "shared_with_me")
    assert revoked["attached_as"] == "theirs" and "not granted" in revoked["error"], revoked
    assert "theirs" not in catalogs(reader)
    run(owner, f"GRANT READ ON SHARE s TO {reader_name}")
    eventually(lambda: _count_is(reader, "theirs.t", 15), "the grant to take effect again")

    # The source database dropped: the share cannot be attached, with a clear error; UNDROP
    # brings it back.
    run(owner, f"DROP DATABASE {db}")
    eventually(lambda: _fails(reader, "SELECT count(*) FROM theirs.t"), "the drop to reach the reader")
    run(reader, "DETACH theirs")
    err = expect_error(reader, f"ATTACH '{url}' AS theirs")
    assert "dropped" in str(err) and "UNDROP" in str(err), err
    run(owner, f"UNDROP DATABASE {db}")
    run(reader, f"ATTACH '{url}' AS theirs")
    assert scalar(reader, "SELECT count(*) FROM theirs.t") == 15

    # Dropped: its URL leads nowhere.
    run(owner, "DROP SHARE s")
    eventually(lambda: _fails(reader, "SELECT count(*) FROM theirs.t"), "the drop of the share")
    run(reader, "DETACH theirs")
    err = expect_error(reader, f"ATTACH '{url}' AS theirs")
    assert "no share at that URL" in str(err), err
    assert view(owner, "owned_shares") == []


def test_automatic_shares_follow_commits_and_organization_shares_are_discoverable(server):
    (owner_name, _, owner), (reader_name, _, reader), (other_name, other_token, other) = users(server)
    db = unique("events")
    run(owner, f"CREATE DATABASE {db}")
    run(owner, f"CREATE TABLE {db}.e AS SELECT range AS i FROM range(3)")
    url = scalar(owner, f"CREATE SHARE live FROM {db} (UPDATE AUTOMATIC)")
    # ORGANIZATION (the default): every user of the server sees it listed, and may attach it.
    [listed] = view(other, "shared_with_me")
    assert (listed["name"], listed["owner"], listed["url"], listed["attached_as"]) == ("live", owner_name, url, None)
    assert (listed["access"], listed["update"]) == ("ORGANIZATION", "AUTOMATIC")
    # Without AS, the share is attached under its database's name.
    ro = server.connect(token=server.new_user(other_name, read_only=True), autocommit=True)
    run(ro, f"ATTACH '{url}'")
    assert scalar(ro, f"SELECT count(*) FROM {db}.e") == 3
    run(owner, f"INSERT INTO {db}.e VALUES (3), (4)")
    eventually(lambda: _count_is(ro, f"{db}.e", 5), "an AUTOMATIC share to follow a commit")
    eventually(lambda: _count_is(other, f"{db}.e", 5), "the read-write session to see it too")

    # A share of a clone, UNRESTRICTED: hidden from every listing, read by whoever has the URL.
    run(owner, f"CREATE DATABASE {db}_branch FROM {db}")
    run(owner, f"INSERT INTO {db}_branch.e VALUES (100)")
    clone_url = scalar(owner, f"CREATE SHARE branch FROM {db}_branch (ACCESS UNRESTRICTED)")
    assert [r["name"] for r in view(reader, "shared_with_me")] == ["live"]
    run(reader, f"ATTACH '{clone_url}' AS br")
    assert scalar(reader, "SELECT max(i) FROM br.e") == 100
    err = expect_error(owner, f"CREATE SHARE b2 FROM {db} (ACCESS UNRESTRICTED, VISIBILITY DISCOVERABLE)")
    assert "HIDDEN" in str(err), err
    err = expect_error(owner, f"CREATE SHARE live FROM {db}")
    assert "already exists" in str(err), err
    assert scalar(owner, f"CREATE SHARE IF NOT EXISTS live FROM {db}") == url
    ro.close()


def _current_is(conn, database):
    assert scalar(conn, "SELECT current_database()") == database


def _count_is(conn, table, n):
    assert scalar(conn, f"SELECT count(*) FROM {table}") == n


def _fails(conn, sql):
    try:
        rows(conn, sql)
    except Error:
        return True
    raise AssertionError(f"{sql!r} still answers")
