"""CREATE/USE/SHOW/DROP DATABASE, isolation between users, persistence across restarts."""

from pond_helpers import assert_usable, expect_error, rows, run, scalar, unique


def databases(conn):
    return sorted(r[0] for r in rows(conn, "SHOW DATABASES"))


def test_new_user_has_only_my_db(user):
    with user.connect(autocommit=True) as conn:
        assert databases(conn) == ["my_db"]
        assert scalar(conn, "SELECT current_database()") == "my_db"
        assert scalar(conn, "SELECT current_schema()") == "main"


def test_create_use_show_drop(user):
    db = unique("db")
    with user.connect(autocommit=True, cookies=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        assert databases(conn) == sorted(["my_db", db])
        run(conn, f"USE {db}")
        assert scalar(conn, "SELECT current_database()") == db
        run(conn, "CREATE TABLE items (id INTEGER, label VARCHAR)")
        run(conn, "INSERT INTO items VALUES (1, 'one'), (2, 'two')")
        # Fully qualified from anywhere; unqualified resolves in the current database.
        assert rows(conn, f"SELECT label FROM {db}.main.items ORDER BY id") == [("one",), ("two",)]
        run(conn, "USE my_db")
        assert scalar(conn, "SELECT current_database()") == "my_db"
        err = expect_error(conn, "SELECT * FROM items")
        assert "items" in str(err)
        assert scalar(conn, f"SELECT count(*) FROM {db}.items") == 2

        run(conn, f"DROP DATABASE {db}")
        assert databases(conn) == ["my_db"]
        err = expect_error(conn, f"SELECT * FROM {db}.main.items")
        assert db in str(err) or "items" in str(err)
        assert_usable(conn)


def test_use_persists_in_session_across_statements(user):
    db = unique("sess")
    with user.connect(autocommit=True, cookies=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"USE {db}")
        for _ in range(3):
            assert scalar(conn, "SELECT current_database()") == db
        # A different session starts in my_db again.
        with user.connect(autocommit=True, cookies=True) as other:
            assert scalar(other, "SELECT current_database()") == "my_db"


def test_create_database_errors_and_if_not_exists(user):
    db = unique("dup")
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        err = expect_error(conn, f"CREATE DATABASE {db}")
        assert db in str(err) or "exist" in str(err).lower()
        run(conn, f"CREATE DATABASE IF NOT EXISTS {db}")
        assert databases(conn).count(db) == 1
        err = expect_error(conn, f"DROP DATABASE {unique('never_made')}")
        assert_usable(conn)
        err = expect_error(conn, f"USE {unique('nowhere')}")
        assert scalar(conn, "SELECT current_database()") == "my_db"


def test_database_ddl_on_a_transactional_connection(user):
    """The default ADBC connection (autocommit off) can create and use databases too."""
    db = unique("txdb")
    with user.connect(autocommit=False, cookies=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"CREATE TABLE {db}.main.t AS SELECT 42 AS answer")
        conn.commit()
    with user.connect(autocommit=True) as other:
        assert db in databases(other)
        assert scalar(other, f"SELECT answer FROM {db}.main.t") == 42


def test_users_are_isolated(pond):
    alice = pond.new_user(unique("alice"))
    bob = pond.new_user(unique("bob"))
    secret_db = unique("secret")
    with pond.connect(alice, autocommit=True) as a, pond.connect(bob, autocommit=True) as b:
        run(a, f"CREATE DATABASE {secret_db}")
        run(a, f"CREATE TABLE {secret_db}.main.vault AS SELECT 'alice-only' AS s")
        run(a, "CREATE TABLE my_db.main.notes AS SELECT 'alice note' AS s")

        assert secret_db not in databases(b)
        assert databases(b) == ["my_db"]
        err = expect_error(b, f"SELECT * FROM {secret_db}.main.vault")
        assert "alice-only" not in str(err)
        expect_error(b, f"USE {secret_db}")
        err = expect_error(b, "SELECT * FROM my_db.main.notes")
        assert "notes" in str(err)
        expect_error(b, f"DROP DATABASE {secret_db}")
        # Bob's catalogs through Flight SQL metadata do not include Alice's database either.
        catalogs = {c["catalog_name"] for c in b.adbc_get_objects(depth="catalogs").read_all().to_pylist()}
        assert secret_db not in catalogs

        # Bob may make a database of the same name; each sees their own.
        run(b, f"CREATE DATABASE {secret_db}")
        run(b, f"CREATE TABLE {secret_db}.main.vault AS SELECT 'bob-only' AS s")
        assert scalar(a, f"SELECT s FROM {secret_db}.main.vault") == "alice-only"
        assert scalar(b, f"SELECT s FROM {secret_db}.main.vault") == "bob-only"
        run(b, f"DROP DATABASE {secret_db}")
        assert scalar(a, f"SELECT s FROM {secret_db}.main.vault") == "alice-only"


def test_users_cannot_reach_each_other_by_attach_or_catalog_functions(pond):
    alice = pond.new_user(unique("alice"))
    bob = pond.new_user(unique("bob"))
    with pond.connect(alice, autocommit=True) as a, pond.connect(bob, autocommit=True) as b:
        hidden = unique("hidden")
        run(a, f"CREATE DATABASE {hidden}")
        run(a, f"CREATE TABLE {hidden}.main.tbl_{hidden} (x INTEGER)")
        names = [r[0] for r in rows(b, "SELECT database_name FROM duckdb_databases()")]
        assert hidden not in names
        tables = [r[0] for r in rows(b, "SELECT table_name FROM duckdb_tables()")]
        assert f"tbl_{hidden}" not in tables
        expect_error(b, f"ATTACH '{hidden}' AS stolen")
        assert hidden not in databases(b)


def test_data_persists_across_restart(pond_factory):
    server = pond_factory()
    bob = server.new_user("bob")
    db = unique("keep")
    with server.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"CREATE TABLE {db}.main.t AS SELECT i AS id, 'v' || i AS v FROM range(1000) t(i)")
        run(conn, "CREATE TABLE my_db.main.admin_table (x INTEGER)")
        run(conn, "INSERT INTO my_db.main.admin_table VALUES (7), (8)")
    with server.connect() as conn:  # a committed transaction, not autocommit
        run(conn, "INSERT INTO my_db.main.admin_table VALUES (9)")
        conn.commit()
    with server.connect(bob, autocommit=True) as conn:
        run(conn, "CREATE TABLE bobs (s VARCHAR)")
        run(conn, "INSERT INTO bobs VALUES ('bob was here')")

    admin_token = server.token
    server.restart()
    assert server.token == admin_token, "admin.token changed across a restart"

    with server.connect(autocommit=True) as conn:
        assert databases(conn) == sorted(["my_db", db])
        assert rows(conn, f"SELECT count(*), sum(id), max(v) FROM {db}.main.t") == [
            (1000, sum(range(1000)), "v999")
        ]
        assert rows(conn, "SELECT x FROM my_db.main.admin_table ORDER BY x") == [(7,), (8,), (9,)]
    # Tokens minted before the restart still work.
    with server.connect(bob, autocommit=True) as conn:
        assert rows(conn, "SELECT s FROM bobs") == [("bob was here",)]
        assert databases(conn) == ["my_db"]


def test_drop_persists_across_restart(pond_factory):
    server = pond_factory()
    gone, kept = unique("gone"), unique("kept")
    with server.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {gone}")
        run(conn, f"CREATE DATABASE {kept}")
        run(conn, f"CREATE TABLE {kept}.main.t AS SELECT 1 AS x")
        run(conn, f"DROP DATABASE {gone}")
    server.restart()
    with server.connect(autocommit=True) as conn:
        assert databases(conn) == sorted(["my_db", kept])
        assert scalar(conn, f"SELECT x FROM {kept}.main.t") == 1
