"""Session state carried by the cookie: temporary tables, USE, variables."""

from pond_helpers import expect_error, rows, run, scalar, table, unique


def test_temp_table_lives_in_its_session(user):
    name = unique("temp")
    with user.connect(autocommit=True, cookies=True) as conn:
        run(conn, f"CREATE TEMP TABLE {name} AS SELECT i FROM range(5) t(i)")
        run(conn, f"INSERT INTO {name} VALUES (100)")
        assert rows(conn, f"SELECT count(*), sum(i) FROM {name}") == [(6, 110)]
        assert scalar(
            conn, "SELECT temporary FROM duckdb_tables() WHERE table_name = ?", (name,)
        ) is True
        with user.connect(autocommit=True, cookies=True) as other:
            err = expect_error(other, f"SELECT * FROM {name}")
            assert name in str(err)
        # Still there after the other session came and went.
        assert scalar(conn, f"SELECT count(*) FROM {name}") == 6
    with user.connect(autocommit=True, cookies=True) as later:
        err = expect_error(later, f"SELECT * FROM {name}")
        assert name in str(err)


def test_temp_table_in_transactional_session(user):
    name = unique("ttx")
    with user.connect(autocommit=False, cookies=True) as conn:
        run(conn, f"CREATE TEMP TABLE {name} (x INTEGER)")
        run(conn, f"INSERT INTO {name} VALUES (1), (2)")
        conn.commit()
        run(conn, f"INSERT INTO {name} VALUES (3)")
        conn.rollback()
        assert rows(conn, f"SELECT x FROM {name} ORDER BY x") == [(1,), (2,)]
        conn.commit()


def test_variables_persist_in_session(user):
    with user.connect(autocommit=True, cookies=True) as conn:
        run(conn, "SET VARIABLE pond_answer = 42")
        assert scalar(conn, "SELECT getvariable('pond_answer')") == 42
        with user.connect(autocommit=True, cookies=True) as other:
            assert scalar(other, "SELECT getvariable('pond_answer')") is None


def test_sessions_of_different_users_do_not_mix(pond):
    a = pond.new_user(unique("sa"))
    b = pond.new_user(unique("sb"))
    with pond.connect(a, autocommit=True) as ca, pond.connect(b, autocommit=True) as cb:
        run(ca, "CREATE TEMP TABLE only_a AS SELECT 'a' AS who")
        run(cb, "CREATE TEMP TABLE only_b AS SELECT 'b' AS who")
        assert scalar(ca, "SELECT who FROM only_a") == "a"
        assert scalar(cb, "SELECT who FROM only_b") == "b"
        assert "only_a" in str(expect_error(cb, "SELECT * FROM only_a"))
        assert "only_b" in str(expect_error(ca, "SELECT * FROM only_b"))


def test_harmless_setting_applies_to_its_session(user):
    # Only locked settings (files, extensions, resources) are refused; a session-local
    # setting that changes how queries read is the user's own, as in any DuckDB session.
    with user.connect(autocommit=True, cookies=True) as conn:
        assert table(conn, "SELECT 1 AS MixedCase").column_names == ["MixedCase"]
        run(conn, "SET preserve_identifier_case = false")
        assert table(conn, "SELECT 1 AS MixedCase").column_names == ["mixedcase"]
        with user.connect(autocommit=True, cookies=True) as other:
            assert table(other, "SELECT 1 AS MixedCase").column_names == ["MixedCase"]


def test_a_client_without_cookies_gets_a_clean_session_for_every_statement(user):
    # ADBC without its cookie middleware opens a session per statement. Pond hands the next
    # such session a connection another one left warm, only when nothing of that one is in it.
    name = unique("temp")
    with user.connect(autocommit=True, cookies=False) as conn:
        for _ in range(3):
            assert scalar(conn, "SELECT 41 + 1") == 42
        run(conn, f"CREATE TEMP TABLE {name} AS SELECT 1 AS i")
        run(conn, "SET default_null_order = 'nulls_first'")
        run(conn, "SET VARIABLE pond_cookieless = 7")
        run(conn, "CREATE TEMP MACRO pond_cookieless_macro() AS 1")
        for _ in range(5):
            err = expect_error(conn, f"SELECT * FROM {name}")
            assert name in str(err)
            assert scalar(conn, "SELECT lower(current_setting('default_null_order'))") == "nulls_last"
            assert scalar(conn, "SELECT getvariable('pond_cookieless')") is None
            assert "pond_cookieless_macro" in str(expect_error(conn, "SELECT pond_cookieless_macro()"))
            assert scalar(conn, "SELECT current_database()") == "my_db"
