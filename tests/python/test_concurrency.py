"""Eight concurrent connections, each with its own thread, all getting correct answers."""

import threading
import time

import pyarrow as pa

from pond_helpers import rows, run, scalar, unique

THREADS = 8


def run_threads(target, n=THREADS, timeout=90):
    barrier = threading.Barrier(n)
    errors: list = [None] * n
    results: list = [None] * n

    def wrap(i):
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    stuck = [i for i, t in enumerate(threads) if t.is_alive()]
    assert not stuck, f"threads {stuck} still running after {timeout}s"
    failed = {i: repr(e) for i, e in enumerate(errors) if e is not None}
    assert not failed, f"threads failed: {failed}"
    return results


def test_eight_connections_query_concurrently(user):
    def work(i):
        with user.connect(autocommit=True) as conn:
            out = []
            for j in range(10):
                n = 100_000 * (i + 1) + j
                got = rows(conn, f"SELECT count(*), sum(x) FROM range({n}) t(x)")
                assert got == [(n, n * (n - 1) // 2)], (i, j, got)
                assert scalar(conn, "SELECT ?::INTEGER * 1000 + ?::INTEGER", (i, j)) == i * 1000 + j
                out.append(got[0][0])
            return out

    results = run_threads(work)
    for i, out in enumerate(results):
        assert out == [100_000 * (i + 1) + j for j in range(10)]


def test_eight_connections_write_their_own_tables(user):
    names = [unique(f"w{i}") for i in range(THREADS)]

    def work(i):
        # Default ADBC mode: each thread in its own transactions.
        with user.connect(autocommit=False) as conn:
            run(conn, f"CREATE TABLE {names[i]} (k INTEGER, v VARCHAR)")
            conn.commit()
            cur = conn.cursor()
            for batch in range(5):
                cur.executemany(
                    f"INSERT INTO {names[i]} VALUES (?, ?)",
                    [(batch * 100 + k, f"t{i}") for k in range(100)],
                )
                conn.commit()
            cur.adbc_ingest(
                names[i],
                pa.table({"k": pa.array([10_000 + i], pa.int32()), "v": [f"t{i}"]}),
                mode="append",
            )
            cur.close()
            conn.commit()
            return rows(conn, f"SELECT count(*), sum(k) FROM {names[i]}")[0]

    results = run_threads(work)
    expected = (501, sum(range(500)))
    for i, got in enumerate(results):
        assert got == (expected[0], expected[1] + 10_000 + i), (i, got)
    with user.connect(autocommit=True) as conn:
        for i, name in enumerate(names):
            assert rows(conn, f"SELECT DISTINCT v FROM {name}") == [(f"t{i}",)]


def test_eight_connections_append_to_one_table(user):
    name = unique("shared")
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE TABLE {name} (thread INTEGER, seq INTEGER)")

    def work(i):
        with user.connect(autocommit=True) as conn:
            for seq in range(25):
                run(conn, f"INSERT INTO {name} VALUES ({i}, {seq})")
        return True

    run_threads(work)
    with user.connect(autocommit=True) as conn:
        assert rows(conn, f"SELECT count(*), count(DISTINCT thread), sum(seq) FROM {name}") == [
            (THREADS * 25, THREADS, THREADS * sum(range(25)))
        ]


def test_eight_users_concurrently(pond):
    tokens = [pond.new_user(unique(f"cu{i}")) for i in range(THREADS)]

    def work(i):
        with pond.connect(tokens[i], autocommit=True, cookies=True) as conn:
            run(conn, f"CREATE TABLE mine AS SELECT {i} AS owner, x FROM range({1000 * (i + 1)}) t(x)")
            run(conn, f"CREATE DATABASE extra_{i}")
            run(conn, f"USE extra_{i}")
            run(conn, "CREATE TABLE t AS SELECT 1 AS one")
            run(conn, "USE my_db")
            return (
                rows(conn, "SELECT DISTINCT owner FROM mine"),
                scalar(conn, "SELECT count(*) FROM mine"),
                sorted(r[0] for r in rows(conn, "SHOW DATABASES")),
            )

    results = run_threads(work)
    for i, (owners, count, dbs) in enumerate(results):
        assert owners == [(i,)]
        assert count == 1000 * (i + 1)
        assert dbs == sorted(["my_db", f"extra_{i}"])
