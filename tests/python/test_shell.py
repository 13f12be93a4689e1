"""`pond shell` in a real pseudo-terminal, where its spinner, prompt and line editor are live.

The Rust end-to-end test pipes the shell's stdin, so it never sees what only a terminal
triggers; these drive the binary through a pty as a user at a keyboard would.
"""

from __future__ import annotations

import os
import re

import pexpect
import pytest

from pond_helpers import LONG_QUERY

PROMPT = "pond> "
# Everything the shell prints goes through the terminal; its line editor may add escapes.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture
def shell(user, tmp_path):
    """An interactive `pond shell` for a fresh user, in a pty 200 columns wide."""
    env = dict(os.environ)
    env.update(
        POND_SERVER=user.server.url,
        POND_TOKEN=user.token,
        HOME=str(tmp_path),
        TERM="xterm",
        POND_LOG="warn",
    )
    child = pexpect.spawn(
        user.server.bin,
        ["shell"],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        timeout=60,
        dimensions=(50, 200),
    )
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.sendline(".quit")
        child.expect(pexpect.EOF, timeout=10)
    child.close()
    assert child.exitstatus == 0, f"pond shell exited with {child.exitstatus}: {child.before}"


def run(child, statement: str) -> str:
    """Types `statement` and returns what the shell printed before its next prompt."""
    child.sendline(statement)
    child.expect_exact(PROMPT)
    out = plain(child.before)
    # The terminal echoes the typed line first.
    return out.split("\n", 1)[1] if "\n" in out else ""


def test_a_local_statement_answers_without_the_spinners_delay(shell):
    run(shell, "CREATE TABLE five AS SELECT * FROM range(5) r(i);")
    run(shell, ".timer on")
    out = run(shell, "SELECT count(*) AS n FROM five;")
    assert re.search(r"│\s*5\s*│|\|\s*5\s*\|", out), out
    m = re.search(r"Run Time: ([0-9.]+) s \(local", out)
    assert m, f"no local Run Time line in {out!r}"
    # The spinner shows only after a second; the answer must never wait for it.
    assert float(m.group(1)) < 0.5, out
    assert "moved…" not in out, f"a quick statement drew the spinner: {out!r}"


def test_a_long_statement_shows_the_spinner_and_ctrl_c_stops_it(shell):
    shell.sendline(LONG_QUERY + ";")
    shell.expect_exact("moved…", timeout=10)
    shell.sendintr()
    shell.expect_exact(PROMPT, timeout=30)
    # The spinner's line is cleared before the error is printed on it.
    assert "\x1b[KError" in shell.before, repr(shell.before)
    assert "Interrupted" in plain(shell.before), repr(shell.before)
    assert "42" in run(shell, "SELECT 42 AS answer;")


def test_errors_quote_what_the_user_typed(shell):
    run(shell, "CREATE TABLE my_db.t AS SELECT 1 AS x;")
    # A cloud table is read under the server's name with an alias spliced in.
    out = run(shell, "SELECT nope FROM my_db.t;")
    assert "nope" in out and "Error" in out, out
    assert "LINE 1: SELECT nope FROM my_db.t\n" in out, out
    assert 'AS "t"' not in out and '"main"' not in out, out
    out = run(shell, "SELECT * FROM nope;")
    assert "LINE 1: SELECT * FROM nope\n" in out, out
    assert 'AS "nope"' not in out, out
    # The shell goes on after an error.
    assert "still here" in run(shell, "SELECT 'still here' AS ok;")


def test_explain_prints_the_plan_as_lines(shell):
    run(shell, "CREATE TABLE five AS SELECT * FROM range(5) r(i);")
    # DuckDB's own EXPLAIN: its physical plan drawn as boxes, one box row per line.
    out = run(shell, "EXPLAIN INSERT INTO five VALUES (6);")
    assert "explain_key" not in out and "physical_plan" not in out, out
    assert "\\n" not in out, f"escaped newlines: {out!r}"
    lines = out.splitlines()
    assert any("INSERT" in l for l in lines), out
    boxes = [l for l in lines if l.startswith("┌")]
    assert boxes and all(l.rstrip().endswith("┐") for l in boxes), out
    # Pond's plan of a query: its own lines, not rows of a table.
    out = run(shell, "EXPLAIN SELECT count(*) FROM five;")
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines and not any(l.startswith(("+", "|")) for l in lines), out


def test_a_share_is_attached_joined_with_local_data_and_detached_for_good(shell, user, pond):
    from pond_helpers import run as run_sql, scalar, unique

    owner = pond.connect(pond.new_user(unique("owner")), autocommit=True)
    db = unique("shared")
    run_sql(owner, f"CREATE DATABASE {db}")
    run_sql(owner, f"CREATE TABLE {db}.t AS SELECT range AS k, range * 2 AS v FROM range(100)")
    url = scalar(owner, f"CREATE SHARE s FROM {db}")
    out = run(shell, f"ATTACH '{url}' AS theirs;")
    assert "Error" not in out, out
    run(shell, "CREATE TABLE loc AS SELECT range AS k FROM range(10);")
    out = run(shell, "SELECT sum(v) AS total FROM loc JOIN theirs.t USING (k);")
    assert re.search(r"│\s*90\s*│|\|\s*90\s*\|", out), out
    out = run(shell, "EXPLAIN SELECT sum(v) FROM loc JOIN theirs.t USING (k);")
    assert "theirs" in out and "(R)" in out, out
    out = run(shell, "INSERT INTO theirs.t VALUES (1, 1);")
    assert "read-only" in out, out
    # Detached in the shell: gone for the user's next session too.
    run(shell, "DETACH theirs;")
    with user.connect(autocommit=True) as conn:
        listed = conn.adbc_get_objects(depth="catalogs").read_all().column(0).to_pylist()
        assert "theirs" not in listed, listed
    owner.close()
