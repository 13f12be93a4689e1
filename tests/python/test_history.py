"""The query history (`pond_information_schema.query_history`), what runs now
(`recent_queries`), and the admin's hold on sessions (`pond_kill_session`, `--max-sessions`,
`--max-sessions-per-user`), through the ADBC driver a user runs them with."""

from __future__ import annotations

import time

import pytest

from pond_helpers import LONG_QUERY, Error, expect_error, rows, run_in_thread, scalar, unique

HISTORY = (
    "SELECT query_text, kind, rows, bytes, status, error, user_name, database_name, "
    "duration_ms, start_time, end_time, session_id, query_id, duckling_id "
    "FROM pond_information_schema.query_history ORDER BY start_time"
)


def history(conn) -> list[dict]:
    names = [
        "query_text", "kind", "rows", "bytes", "status", "error", "user_name", "database_name",
        "duration_ms", "start_time", "end_time", "session_id", "query_id", "duckling_id",
    ]
    return [dict(zip(names, r)) for r in rows(conn, HISTORY)]


def only(records: list[dict], text: str) -> dict:
    found = [r for r in records if r["query_text"] == text]
    assert len(found) == 1, f"{text!r} is in the history {len(found)} times: {records}"
    return found[0]


@pytest.mark.parametrize("mode", [[], ["--ducklings", "process"]], ids=["in-process", "process"])
def test_the_history_keeps_each_users_statements_durably_and_the_admin_sees_everyones(pond_factory, mode):
    server = pond_factory(mode)
    alice_name, bob_name = unique("alice"), unique("bob")
    alice_token, bob_token = server.new_user(alice_name), server.new_user(bob_name)

    alice = server.connect(token=alice_token, autocommit=True)
    alice.cursor().execute("CREATE TABLE t AS SELECT range AS i FROM range(100)")
    assert len(rows(alice, "SELECT * FROM t")) == 100
    expect_error(alice, "SELECT * FROM missing_table")
    alice.cursor().execute(
        "CREATE SECRET hush IN POND (TYPE s3, KEY_ID 'AKIAHIDDENKEY', SECRET 'shh-hidden-value', REGION 'eu-west-1')"
    )
    # Option values may be written as names too.
    alice.cursor().execute(
        'CREATE SECRET quiet IN POND (TYPE s3, KEY_ID "AKIANAMEDKEY", SECRET "shh-named-value", REGION "eu-west-1")'
    )
    with server.connect(token=bob_token, autocommit=True) as bob:
        assert scalar(bob, "SELECT 4242") == 4242

    mine = history(alice)
    assert {r["user_name"] for r in mine} == {alice_name}, mine
    assert not any("4242" in r["query_text"] for r in mine), "alice sees bob's statement"
    read = only(mine, "SELECT * FROM t")
    assert (read["kind"], read["rows"], read["status"], read["error"]) == ("SELECT", 100, "ok", None)
    assert read["bytes"] >= 100 * 8 and read["database_name"] == "my_db"
    assert read["end_time"] >= read["start_time"] and read["duration_ms"] >= 0
    assert read["query_id"].startswith(read["session_id"] + ".")
    assert read["duckling_id"]
    created = only(mine, "CREATE TABLE t AS SELECT range AS i FROM range(100)")
    assert created["status"] == "ok" and created["kind"] == "CREATE"
    failed = only(mine, "SELECT * FROM missing_table")
    assert failed["status"] == "error" and "missing_table" in failed["error"], failed
    secret = [r for r in mine if r["kind"] == "CREATE" and "SECRET" in r["query_text"]]
    assert [r["query_text"] for r in secret] == ["CREATE SECRET hush IN POND (…)", "CREATE SECRET quiet IN POND (…)"], secret

    admin = server.connect(autocommit=True)
    everyone = history(admin)
    users = {r["user_name"] for r in everyone}
    assert {alice_name, bob_name} <= users, users
    assert any(r["query_text"] == "SELECT 4242" and r["user_name"] == bob_name for r in everyone)

    # Kept durably, and never a secret on disk.
    alice.close()
    admin.close()
    server.restart()
    with server.connect(token=alice_token, autocommit=True) as again:
        kept = history(again)
        assert only(kept, "SELECT * FROM t")["rows"] == 100
    on_disk = b"".join(p.read_bytes() for p in (server.data_dir / "query_history").glob("*.jsonl"))
    assert b"SELECT * FROM t" in on_disk
    for value in (b"AKIAHIDDENKEY", b"shh-hidden", b"AKIANAMEDKEY", b"shh-named"):
        assert value not in on_disk


def test_recent_queries_show_what_runs_and_the_admin_ends_a_session_in_the_history(pond_factory):
    server = pond_factory()
    alice_name, bob_name = unique("alice"), unique("bob")
    alice_token, bob_token = server.new_user(alice_name), server.new_user(bob_name)
    runner = server.connect(token=alice_token, autocommit=True)
    thread, outcome = run_in_thread(runner.cursor(), LONG_QUERY)

    watcher = server.connect(token=alice_token, autocommit=True)
    deadline = time.time() + 30
    running = []
    while not running:
        assert time.time() < deadline, "the long query never showed in recent_queries"
        running = rows(
            watcher,
            "SELECT session_id, status, user_name, duration_ms FROM pond_information_schema.recent_queries "
            f"WHERE query_text = '{LONG_QUERY}'",
        )
        time.sleep(0.05)
    session_id, status, user_name, _ = running[0]
    assert (status, user_name) == ("running", alice_name)

    with server.connect(token=bob_token, autocommit=True) as bob:
        assert scalar(bob, "SELECT count(*) FROM pond_information_schema.recent_queries WHERE user_name <> "
                      f"'{bob_name}'") == 0
        # Another user's session is not bob's to end, nor to learn about.
        err = expect_error(bob, f"SELECT pond_kill_session('{session_id}')")
        assert "no connection" in str(err), err

    admin = server.connect(autocommit=True)
    listed = rows(admin, "SELECT connection_id, user_name FROM pond_active_connections()")
    assert (session_id, alice_name) in listed, listed
    assert scalar(admin, f"SELECT pond_kill_session('{session_id}')") is True
    thread.join(30)
    assert "error" in outcome, outcome
    assert (session_id, alice_name) not in rows(admin, "SELECT connection_id, user_name FROM pond_active_connections()")

    # The killed statement and the kill itself are both in the history.
    everyone = history(admin)
    killed = [r for r in everyone if r["query_text"] == LONG_QUERY]
    assert len(killed) == 1 and killed[0]["status"] == "cancelled", killed
    kill = [r for r in everyone if "pond_kill_session" in r["query_text"]]
    assert {r["user_name"] for r in kill} == {bob_name, "admin"}, kill
    assert [r["status"] for r in kill if r["user_name"] == "admin"] == ["ok"]
    for c in (runner, watcher, admin):
        try:
            c.close()
        except Error:
            pass  # runner's session is gone


def test_session_limits_refuse_with_resource_exhausted_once_spent_sessions_made_room(pond_factory):
    server = pond_factory(["--max-sessions", "3", "--max-sessions-per-user", "2"])
    alice_token, bob_token = server.new_user(unique("alice")), server.new_user(unique("bob"))

    # A client without cookies opens a session per statement: once spent (a tenth of a second
    # after its last call), those make room for the next.
    with server.connect(token=alice_token, autocommit=True, cookies=False) as cookieless:
        for i in range(6):
            assert scalar(cookieless, f"SELECT {i}") == i
            time.sleep(0.2)

    held = []
    for _ in range(2):
        c = server.connect(token=alice_token, autocommit=True)
        assert scalar(c, "SELECT 1") == 1
        held.append(c)
    with pytest.raises(Error) as refused:
        with server.connect(token=alice_token, autocommit=True) as third:
            scalar(third, "SELECT 1")
    assert "RESOURCE_EXHAUSTED" in str(refused.value) or "resource" in str(refused.value).lower(), refused.value
    assert "--max-sessions-per-user" in str(refused.value), refused.value

    bob = server.connect(token=bob_token, autocommit=True)
    assert scalar(bob, "SELECT 2") == 2
    with pytest.raises(Error) as full:
        with server.connect(token=bob_token, autocommit=True) as another:
            scalar(another, "SELECT 1")
    assert "--max-sessions" in str(full.value) and "per-user" not in str(full.value), full.value
    # The sessions held go on working.
    for c in held + [bob]:
        assert scalar(c, "SELECT 3") == 3
        c.close()
