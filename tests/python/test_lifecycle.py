"""Server lifecycle: first start, graceful SIGTERM, token minting next to a running server."""

import os
import signal
import stat
import time

from pond_helpers import LONG_QUERY, rows, run, run_in_thread, scalar, unique


def test_first_start_writes_private_admin_token(pond_factory):
    server = pond_factory()
    path = server.data_dir / "admin.token"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o077 == 0, f"admin.token is readable by others: {oct(mode)}"
    with server.connect(autocommit=True) as conn:
        assert scalar(conn, "SELECT current_database()") == "my_db"


def test_sigterm_with_query_in_flight(pond_factory):
    # A query longer than the drain timeout is interrupted, and the server still stops.
    server = pond_factory(["--drain-timeout", "1s"])
    with server.connect(autocommit=True) as conn:
        run(conn, "CREATE TABLE durable AS SELECT i FROM range(100) t(i)")
    conn = server.connect(autocommit=True)
    t, outcome = run_in_thread(conn.cursor(), LONG_QUERY)
    time.sleep(1.5)
    assert t.is_alive()
    # SIGTERM directly, not through restart(): restart() first closes the fixture's client
    # connections, and a client that closes its own stream sees an empty result, not the
    # server's answer to the shutdown.
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0, server._stderr_tail()
    server.proc = None
    server.start()
    t.join(timeout=20)
    assert not t.is_alive(), "the client never learnt its query was stopped"
    assert "error" in outcome, f"interrupted query returned {outcome.get('rows')}"
    with server.connect(autocommit=True) as conn2:
        assert rows(conn2, "SELECT count(*), sum(i) FROM durable") == [(100, 4950)]


def test_token_minted_while_serving_survives_catalog_writes_and_restart(pond_factory):
    server = pond_factory()
    name = unique("late")
    token = server.new_user(name)  # minted by the CLI while the server runs
    with server.connect(token, autocommit=True) as conn:
        run(conn, "CREATE TABLE mine AS SELECT 'kept' AS s")
    # The server writes its catalog afterwards (admin creates a database)...
    with server.connect(autocommit=True) as admin:
        run(admin, f"CREATE DATABASE {unique('after')}")
    second = server.new_user(unique("later"))
    with server.connect(second, autocommit=True) as conn:
        assert scalar(conn, "SELECT 1") == 1
    server.restart()
    # ...and neither user nor their data was lost.
    with server.connect(token, autocommit=True) as conn:
        assert scalar(conn, "SELECT s FROM mine") == "kept"
    with server.connect(second, autocommit=True) as conn:
        assert scalar(conn, "SELECT 2") == 2


def test_sigterm_right_after_ready_is_graceful(pond_factory):
    """A supervisor may stop the server as soon as it says it is listening."""
    server = pond_factory()
    server.stop_clean()
    server.start()
    with server.connect(autocommit=True) as conn:
        assert scalar(conn, "SELECT 1") == 1
