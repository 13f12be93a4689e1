"""Cancelling a running query from another thread."""

import os
import time

import pytest

from pond_helpers import LONG_QUERY, Error, assert_usable, run_in_thread, scalar


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
def test_cancel_long_query(pond, user, autocommit):
    with user.connect(autocommit=autocommit) as conn:
        cur = conn.cursor()
        t, outcome = run_in_thread(cur, LONG_QUERY)
        time.sleep(1.5)
        assert t.is_alive(), f"the long query ended on its own: {outcome}"
        cancelled_at = time.monotonic()
        cur.adbc_cancel()
        t.join(timeout=20)
        assert not t.is_alive(), "the query was still running 20 s after adbc_cancel()"
        assert "error" in outcome, f"cancelled query returned a result: {outcome.get('rows')}"
        assert isinstance(outcome["error"], Error), repr(outcome["error"])
        assert time.monotonic() - cancelled_at < 20

        # The server stops working on it: little CPU burnt once the cancel has settled.
        time.sleep(2)
        pid = pond.proc.pid
        before = cpu_seconds(pid)
        time.sleep(3)
        burnt = cpu_seconds(pid) - before
        assert burnt < 1.0, f"server used {burnt:.2f} CPU-s in 3 s after the cancel: query still running"

        # The connection is still usable (a fresh transaction if autocommit is off).
        cur.close()
        if not autocommit:
            try:
                conn.rollback()
            except Error:
                pass
        assert_usable(conn)


def test_cancel_does_not_affect_other_connections(user):
    with user.connect(autocommit=True) as victim, user.connect(autocommit=True) as bystander:
        cur = victim.cursor()
        t, outcome = run_in_thread(cur, LONG_QUERY)
        time.sleep(1.0)
        assert scalar(bystander, "SELECT count(*) FROM range(1000)") == 1000
        cur.adbc_cancel()
        t.join(timeout=20)
        assert not t.is_alive()
        assert "error" in outcome
        assert scalar(bystander, "SELECT 'still here'") == "still here"
        cur.close()
