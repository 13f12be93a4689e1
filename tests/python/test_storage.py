"""Differential storage end to end: snapshots, time travel, clones, REFRESH, retention, a
server that rebuilds from the store alone, corruption reported by name, S3 against a real
S3-compatible server (moto) on loopback, and the kill -9 crash test."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time

import pytest

from pond_helpers import Error, rows, run, scalar, unique


def snapshots(conn, database):
    return rows(
        conn,
        "SELECT snapshot_id, snapshot_name, bytes_added, total_bytes "
        f"FROM pond_information_schema.database_snapshots WHERE database_name = '{database}' "
        "ORDER BY snapshot_id",
    )


def test_every_commit_is_a_snapshot_and_time_travel_reads_the_past(user):
    conn = user.connect(autocommit=True)
    db = unique("d")
    run(conn, f"CREATE DATABASE {db}")
    run(conn, f"USE {db}")
    run(conn, "CREATE TABLE t(i INTEGER)")
    run(conn, "INSERT INTO t VALUES (1)")
    before = snapshots(conn, db)
    assert before, "a committed database has snapshots"
    one_row = before[-1][0]
    named = scalar(conn, f"CREATE SNAPSHOT one_row OF {db}")
    run(conn, "INSERT INTO t VALUES (2), (3)")
    after = snapshots(conn, db)
    assert after[-1][0] > named > one_row
    assert any(name == "one_row" and sid == named for sid, name, _, _ in after)
    assert all(total > 0 for _, _, _, total in after)
    # A one-row commit stores bytes of WAL, not the database.
    assert after[-1][2] < 64 * 1024, after[-1]

    run(conn, f"ATTACH 'pond:{db}' AS by_id (SNAPSHOT_ID {one_row})")
    run(conn, f"ATTACH 'pond:{db}' AS by_name (SNAPSHOT_NAME 'one_row')")
    run(conn, f"ATTACH 'md:{db}' AS by_time (SNAPSHOT_TIME '2999-01-01 00:00:00')")
    assert scalar(conn, "SELECT count(*) FROM by_id.t") == 1
    assert scalar(conn, "SELECT count(*) FROM by_name.t") == 1
    assert scalar(conn, "SELECT count(*) FROM by_time.t") == 3
    assert scalar(conn, "SELECT count(*) FROM t") == 3
    with pytest.raises(Error, match="(?i)read.only"):
        run(conn, "INSERT INTO by_id.t VALUES (9)")
    with pytest.raises(Error, match="(?i)no snapshot"):
        run(conn, f"ATTACH 'pond:{db}' AS x (SNAPSHOT_TIME '1999-01-01')")
    with pytest.raises(Error, match="(?i)no snapshot .*named nope"):
        run(conn, f"ATTACH 'pond:{db}' AS x (SNAPSHOT_NAME 'nope')")
    with pytest.raises(Error, match="(?i)already attached|name of one of your"):
        run(conn, f"ATTACH 'pond:{db}' AS by_id")
    run(conn, "DETACH by_id")
    run(conn, "DETACH DATABASE IF EXISTS by_id")
    with pytest.raises(Error, match="(?i)not attached"):
        run(conn, "DETACH by_id")
    with pytest.raises(Error, match="(?i)DROP DATABASE"):
        run(conn, f"DETACH {db}")
    conn.close()


def test_a_clone_shares_then_diverges(user):
    conn = user.connect(autocommit=True)
    run(conn, "CREATE TABLE t AS SELECT range AS i FROM range(100000)")
    first = snapshots(conn, "my_db")[-1][0]
    run(conn, "DELETE FROM t WHERE i < 50000")
    run(conn, "CREATE DATABASE latest FROM my_db")
    run(conn, f"CREATE DATABASE past FROM my_db (SNAPSHOT_ID {first})")
    clone = snapshots(conn, "latest")
    assert clone[0][2] < 64 * 1024, f"a clone stores a small manifest, not data: {clone[0]}"
    assert scalar(conn, "SELECT count(*) FROM latest.t") == 50000
    assert scalar(conn, "SELECT count(*) FROM past.t") == 100000
    run(conn, "INSERT INTO latest.t VALUES (-1)")
    run(conn, "DELETE FROM my_db.t")
    assert scalar(conn, "SELECT count(*) FROM latest.t") == 50001
    assert scalar(conn, "SELECT count(*) FROM my_db.t") == 0
    assert scalar(conn, "SELECT count(*) FROM past.t") == 100000
    with pytest.raises(Error, match="(?i)local database|pond shell"):
        run(conn, "CREATE DATABASE up FROM 'local.duckdb'")
    with pytest.raises(Error, match="(?i)does not exist"):
        run(conn, "CREATE DATABASE c2 FROM nowhere")
    conn.close()


def test_refresh_moves_a_following_attachment_to_the_newest_snapshot(user):
    conn = user.connect(autocommit=True)
    run(conn, "CREATE TABLE t(i INTEGER)")
    run(conn, "INSERT INTO t VALUES (1)")
    run(conn, "ATTACH 'pond:my_db' AS follower")
    run(conn, f"ATTACH 'pond:my_db' AS pinned (SNAPSHOT_ID {snapshots(conn, 'my_db')[-1][0]})")
    run(conn, "INSERT INTO t VALUES (2)")
    assert scalar(conn, "SELECT count(*) FROM follower.t") == 1, "a reader never sees a file change under it"
    run(conn, "REFRESH DATABASE follower")
    assert scalar(conn, "SELECT count(*) FROM follower.t") == 2
    with pytest.raises(Error, match="(?i)fixed snapshot"):
        run(conn, "REFRESH DATABASE pinned")
    run(conn, "REFRESH DATABASE my_db")
    conn.close()


def test_retention_is_set_per_database_and_refused_to_readers(pond, user):
    conn = user.connect(autocommit=True)
    assert scalar(conn, "SELECT snapshot_retention_days FROM pond_information_schema.databases WHERE database_name = 'my_db'") == 7
    run(conn, "ALTER DATABASE my_db SET SNAPSHOT_RETENTION_DAYS = 2")
    assert scalar(conn, "SELECT snapshot_retention_days FROM pond_information_schema.databases WHERE database_name = 'my_db'") == 2
    with pytest.raises(Error, match="(?i)whole number"):
        run(conn, "ALTER DATABASE my_db SET SNAPSHOT_RETENTION_DAYS = soon")
    reader = pond.connect(token=pond.new_user(user.name, read_only=True), autocommit=True)
    with pytest.raises(Error, match="(?i)read-only"):
        run(reader, "CREATE SNAPSHOT OF my_db")
    with pytest.raises(Error, match="(?i)read-only"):
        run(reader, "ALTER DATABASE my_db SET SNAPSHOT_RETENTION_DAYS = 1")
    conn.close()


def test_a_server_rebuilds_every_database_from_the_store_alone(pond_factory):
    server = pond_factory()
    conn = server.connect(autocommit=True)
    run(conn, "CREATE TABLE t AS SELECT range AS i, 'row ' || range AS s FROM range(300000)")
    run(conn, "UPDATE t SET s = 'changed' WHERE i % 1000 = 0")
    run(conn, "CREATE DATABASE other")
    run(conn, "CREATE TABLE other.main.u AS SELECT 42 AS x")
    expected = scalar(conn, "SELECT sum(hash(i, s)) FROM t")
    server.stop_clean()
    # Local disk is a cache: remove the working copies and the object cache.
    shutil.rmtree(server.data_dir / "ducklings")
    shutil.rmtree(server.data_dir / "cache")
    server.start()
    conn = server.connect(autocommit=True)
    assert scalar(conn, "SELECT sum(hash(i, s)) FROM t") == expected
    assert scalar(conn, "SELECT x FROM other.main.u") == 42


def test_a_corrupt_manifest_is_an_error_naming_database_and_snapshot(pond_factory):
    server = pond_factory()
    conn = server.connect(autocommit=True)
    run(conn, "CREATE DATABASE victim")
    run(conn, "CREATE TABLE victim.main.t AS SELECT 1 AS x")
    server.stop_clean()
    manifests = sorted((server.data_dir / "storage" / "databases").glob("*/manifests/*"))
    assert manifests
    newest_of = {}
    for m in manifests:
        newest_of[m.parent.parent.name] = m
    for m in newest_of.values():
        data = bytearray(m.read_bytes())
        data[-1] ^= 0xFF
        m.write_bytes(bytes(data))
    shutil.rmtree(server.data_dir / "ducklings")
    server.start()
    with pytest.raises(Error) as err:
        c = server.connect(autocommit=True)
        scalar(c, "SELECT 1")
    msg = str(err.value)
    assert "snapshot" in msg and "checksum" in msg and "database db_" in msg, msg
    # Repair the damage so the fixture's clean stop holds.
    for m in newest_of.values():
        data = bytearray(m.read_bytes())
        data[-1] ^= 0xFF
        m.write_bytes(bytes(data))


# ---- S3 against moto ---------------------------------------------------------------------


def test_s3_storage_with_conditional_puts(pond_factory, s3_server):
    bucket = s3_server.new_bucket()
    server = pond_factory(["--storage", f"s3://{bucket}/deployment-1"], env=s3_server.pond_env())
    conn = server.connect(autocommit=True)
    run(conn, "CREATE TABLE t AS SELECT range AS i FROM range(100000)")
    run(conn, "INSERT INTO t VALUES (-1)")
    run(conn, "CREATE DATABASE copy FROM my_db")
    keys = [o["Key"] for o in s3_server.objects(bucket)]
    assert any(k.startswith("deployment-1/databases/") and "/manifests/" in k for k in keys), keys[:5]
    assert any(k.startswith("deployment-1/objects/") for k in keys), keys[:5]
    server.stop_clean()
    shutil.rmtree(server.data_dir / "ducklings")
    shutil.rmtree(server.data_dir / "cache")
    server.start()
    conn = server.connect(autocommit=True)
    assert scalar(conn, "SELECT count(*) FROM t") == 100001
    assert scalar(conn, "SELECT count(*) FROM copy.t") == 100001


# ---- crash test --------------------------------------------------------------------------


def test_kill_9_loses_no_acknowledged_commit(pond_factory):
    """Acknowledged single-row commits survive kill -9 at random moments, and every database
    opens afterwards. POND_CRASH_ITERATIONS makes it longer (default 20)."""
    iterations = int(os.environ.get("POND_CRASH_ITERATIONS", "20"))
    server = pond_factory()
    conn = server.connect(autocommit=True)
    run(conn, "CREATE TABLE acked(i BIGINT)")
    run(conn, "CREATE DATABASE side")
    run(conn, "CREATE TABLE side.main.s AS SELECT range AS i FROM range(50000)")
    conn.close()
    acked: list[int] = []
    rng = random.Random(int(os.environ.get("POND_CRASH_SEED", "7")))
    next_id = 0
    for round_no in range(iterations):
        stop = threading.Event()
        failures: list[str] = []

        def writer():
            nonlocal next_id
            try:
                c = server.connect(autocommit=True)
            except Exception as e:  # the kill may come before the connection
                failures.append(str(e))
                return
            cur = c.cursor()
            try:
                while not stop.is_set():
                    i = next_id
                    next_id += 1
                    try:
                        cur.execute(f"INSERT INTO acked VALUES ({i})")
                        if i % 7 == 0:
                            cur.execute(f"UPDATE side.main.s SET i = i + 1 WHERE i = {i % 50000}")
                    except Exception:
                        return  # not acknowledged: may or may not be there
                    acked.append(i)
            finally:
                for closable in (cur, c):
                    try:
                        closable.close()
                    except Exception:
                        pass

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        server.crash()  # mid-flight
        stop.set()
        t.join(timeout=30)
        server.start()
        c = server.connect(autocommit=True)
        present = {r[0] for r in rows(c, "SELECT i FROM acked")}
        missing = [i for i in acked if i not in present]
        assert not missing, f"round {round_no}: acknowledged commits lost: {missing[:10]}"
        assert scalar(c, "SELECT count(*) FROM side.main.s") == 50000
        c.close()
    assert len(acked) > iterations, "the writer made progress"


def test_a_flight_sql_commit_is_durable_when_acknowledged(pond_factory):
    """ADBC's default: every statement inside a Flight SQL transaction until commit(). The
    commit is acknowledged only once its snapshot is stored, so kill -9 right after loses
    nothing; the rolled-back and the never-committed work are gone."""
    server = pond_factory()
    conn = server.connect()  # autocommit off
    cur = conn.cursor()
    cur.execute("CREATE TABLE t(i INTEGER)")
    cur.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    cur.execute("INSERT INTO t VALUES (2)")
    conn.rollback()
    cur.execute("INSERT INTO t VALUES (3)")
    conn.commit()
    cur.execute("INSERT INTO t VALUES (4)")  # never committed
    server.crash()
    server.start()
    c = server.connect(autocommit=True)
    assert sorted(r[0] for r in rows(c, "SELECT i FROM t")) == [1, 3]


def test_a_second_writer_on_the_same_bucket_fences_the_first(pond_factory, s3_server):
    """Two servers on one S3 prefix and one catalog: the one that opens a database last fences
    the other, whose next commit fails instead of forking the database (conditional puts on a
    real S3-compatible server)."""
    args = ["--storage", f"s3://{s3_server.new_bucket()}/fencing"]
    env = s3_server.pond_env()
    a = pond_factory(args, env=env)
    ca = a.connect(autocommit=True)
    run(ca, "CREATE TABLE t(i INTEGER)")
    run(ca, "INSERT INTO t VALUES (1)")

    b = pond_factory(args, env=env)
    b.stop_clean()
    shutil.rmtree(b.data_dir)
    shutil.copytree(a.data_dir, b.data_dir, ignore=shutil.ignore_patterns("ducklings", "cache"))
    b.start()
    cb = b.connect(autocommit=True)
    assert scalar(cb, "SELECT count(*) FROM t") == 1  # b's duckling opened my_db: a is fenced

    with pytest.raises(Error, match="(?i)fenced"):
        run(ca, "INSERT INTO t VALUES (2)")
    run(cb, "INSERT INTO t VALUES (3)")
    assert sorted(r[0] for r in rows(cb, "SELECT i FROM t")) == [1, 3]
    # Both stop cleanly, the fenced one too (its shutdown sync fails fast).
    a.stop_clean()
    b.stop_clean()


def test_a_select_that_advances_a_sequence_is_stored(pond_factory):
    server = pond_factory()
    conn = server.connect(autocommit=True)
    run(conn, "CREATE SEQUENCE s")
    assert scalar(conn, "SELECT nextval('s')") == 1
    assert scalar(conn, "SELECT nextval('s')") == 2
    server.crash()  # no clean stop, no final sync: the SELECTs' commits were stored
    shutil.rmtree(server.data_dir / "ducklings")
    server.start()
    conn = server.connect(autocommit=True)
    assert scalar(conn, "SELECT nextval('s')") == 3
