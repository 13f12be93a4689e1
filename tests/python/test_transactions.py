"""Transactions: ADBC's DB-API runs with autocommit off, so commit/rollback must be solid."""

from pond_helpers import Error, assert_usable, expect_error, rows, run, scalar, unique


def count_in(conn, name):
    return scalar(conn, f"SELECT count(*) FROM {name}")


def make_table(user, name):
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE TABLE {name} (id INTEGER, note VARCHAR)")


def test_commit_is_visible_to_other_connections(user):
    name = unique("tx")
    make_table(user, name)
    with user.connect() as writer, user.connect(autocommit=True) as reader:
        run(writer, f"INSERT INTO {name} VALUES (1, 'a'), (2, 'b')")
        assert count_in(writer, name) == 2  # own writes are visible inside the transaction
        writer.commit()
        assert rows(reader, f"SELECT id, note FROM {name} ORDER BY id") == [(1, "a"), (2, "b")]


def test_rollback_discards_writes(user):
    name = unique("tx")
    make_table(user, name)
    with user.connect() as conn:
        run(conn, f"INSERT INTO {name} VALUES (1, 'keep')")
        conn.commit()
        run(conn, f"INSERT INTO {name} VALUES (2, 'drop'), (3, 'drop')")
        run(conn, f"UPDATE {name} SET note = 'changed' WHERE id = 1")
        assert count_in(conn, name) == 3
        conn.rollback()
        assert rows(conn, f"SELECT id, note FROM {name} ORDER BY id") == [(1, "keep")]
        conn.commit()
    with user.connect(autocommit=True) as other:
        assert rows(other, f"SELECT id, note FROM {name} ORDER BY id") == [(1, "keep")]


def test_uncommitted_rows_are_invisible_to_others(user):
    name = unique("iso")
    make_table(user, name)
    with user.connect() as writer, user.connect() as reader:
        run(writer, f"INSERT INTO {name} VALUES (10, 'pending')")
        assert count_in(writer, name) == 1
        assert count_in(reader, name) == 0, "another connection saw uncommitted rows"
        reader.commit()  # end the reader's snapshot so it can see the commit below
        writer.commit()
        assert count_in(reader, name) == 1
        reader.commit()


def test_snapshot_isolation_within_a_transaction(user):
    """A transaction keeps reading its snapshot while another connection commits."""
    name = unique("snap")
    make_table(user, name)
    with user.connect() as reader, user.connect(autocommit=True) as writer:
        assert count_in(reader, name) == 0
        run(writer, f"INSERT INTO {name} VALUES (1, 'x')")
        assert count_in(writer, name) == 1
        assert count_in(reader, name) == 0, "the open transaction's snapshot changed"
        reader.commit()
        assert count_in(reader, name) == 1


def test_autocommit_writes_are_immediately_visible(user):
    name = unique("ac")
    make_table(user, name)
    with user.connect(autocommit=True) as a, user.connect(autocommit=True) as b:
        run(a, f"INSERT INTO {name} VALUES (1, 'now')")
        assert count_in(b, name) == 1


def test_ddl_rolls_back(user):
    name = unique("ddl")
    with user.connect() as conn:
        run(conn, f"CREATE TABLE {name} (x INTEGER)")
        run(conn, f"INSERT INTO {name} VALUES (1)")
        conn.rollback()
        err = expect_error(conn, f"SELECT * FROM {name}")
        assert name in str(err)
        conn.rollback()
        assert_usable(conn)


def test_many_transactions_in_sequence(user):
    name = unique("seq")
    make_table(user, name)
    with user.connect() as conn:
        for i in range(20):
            run(conn, f"INSERT INTO {name} VALUES ({i}, 'v')")
            if i % 2 == 0:
                conn.commit()
            else:
                conn.rollback()
    with user.connect(autocommit=True) as other:
        assert rows(other, f"SELECT count(*), sum(id) FROM {name}") == [
            (10, sum(range(0, 20, 2)))
        ]


def test_error_inside_transaction_then_rollback(user):
    name = unique("err")
    make_table(user, name)
    with user.connect() as conn:
        run(conn, f"INSERT INTO {name} VALUES (1, 'lost')")
        err = expect_error(conn, "SELECT * FROM definitely_missing_tx_table")
        assert "definitely_missing_tx_table" in str(err)
        conn.rollback()
        assert_usable(conn)
        run(conn, f"INSERT INTO {name} VALUES (2, 'kept')")
        conn.commit()
    with user.connect(autocommit=True) as other:
        assert rows(other, f"SELECT id FROM {name}") == [(2,)]


def test_write_write_conflict_is_an_error_not_lost_update(user):
    name = unique("ww")
    with user.connect(autocommit=True) as setup:
        run(setup, f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, v INTEGER)")
        run(setup, f"INSERT INTO {name} VALUES (1, 0)")
    with user.connect() as a, user.connect() as b:
        run(a, f"UPDATE {name} SET v = v + 1 WHERE id = 1")
        conflict = None
        try:
            run(b, f"UPDATE {name} SET v = v + 10 WHERE id = 1")
            a.commit()
            b.commit()
        except Error as e:
            conflict = e
        for c in (a, b):
            try:
                c.rollback()
            except Error:
                pass
        assert conflict is not None, "two transactions updated the same row without a conflict"
    with user.connect(autocommit=True) as check:
        assert scalar(check, f"SELECT v FROM {name} WHERE id = 1") in (0, 1, 10)


def test_close_without_commit_discards(user):
    name = unique("close")
    make_table(user, name)
    conn = user.connect()
    run(conn, f"INSERT INTO {name} VALUES (1, 'never committed')")
    conn.close()
    with user.connect(autocommit=True) as other:
        assert count_in(other, name) == 0
