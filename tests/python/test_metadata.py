"""Metadata: get_objects, get_table_schema, get_table_types, get_info, current catalog."""

import pyarrow as pa

from pond_helpers import run, scalar, unique


def setup_objects(conn):
    t, v = unique("mt"), unique("mv")
    run(
        conn,
        f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, amount DECIMAL(18,3), "
        "tags VARCHAR[], created TIMESTAMP)",
    )
    run(conn, f"CREATE VIEW {v} AS SELECT id, name FROM {t}")
    return t, v


def find_table(objects, catalog, schema, table):
    for cat in objects:
        if cat["catalog_name"] != catalog:
            continue
        for sch in cat["catalog_db_schemas"] or []:
            if sch["db_schema_name"] != schema:
                continue
            for tab in sch["db_schema_tables"] or []:
                if tab["table_name"] == table:
                    return tab
    return None


def test_table_types(user):
    with user.connect(autocommit=True) as conn:
        types = conn.adbc_get_table_types()
    assert isinstance(types, list)
    assert "VIEW" in types
    assert "TABLE" in types or "BASE TABLE" in types, types


def test_get_objects_lists_tables_views_and_columns(user):
    with user.connect(autocommit=True) as conn:
        t, v = setup_objects(conn)
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        tab = find_table(objects, "my_db", "main", t)
        assert tab is not None, f"{t} not in get_objects: {objects}"
        assert tab["table_type"] in ("TABLE", "BASE TABLE")
        cols = tab["table_columns"]
        assert [c["column_name"] for c in cols] == ["id", "name", "amount", "tags", "created"]
        assert [c["ordinal_position"] for c in cols] == [1, 2, 3, 4, 5]
        view = find_table(objects, "my_db", "main", v)
        assert view is not None and view["table_type"] == "VIEW"
        assert [c["column_name"] for c in view["table_columns"]] == ["id", "name"]


def test_get_objects_filters(user):
    with user.connect(autocommit=True) as conn:
        t, v = setup_objects(conn)
        only_views = conn.adbc_get_objects(
            depth="tables", catalog_filter="my_db", table_types_filter=["VIEW"]
        ).read_all().to_pylist()
        names = [
            tab["table_name"]
            for cat in only_views
            for sch in cat["catalog_db_schemas"] or []
            for tab in sch["db_schema_tables"] or []
        ]
        assert names == [v]

        by_name = conn.adbc_get_objects(
            depth="columns", table_name_filter=t, column_name_filter="am%"
        ).read_all().to_pylist()
        tab = find_table(by_name, "my_db", "main", t)
        assert tab is not None
        assert [c["column_name"] for c in tab["table_columns"]] == ["amount"]


def test_catalogs_are_the_users_databases(user):
    db = unique("catdb")
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"CREATE SCHEMA {db}.reporting")
        catalogs = conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()
        names = {c["catalog_name"] for c in catalogs}
        assert {"my_db", db} <= names
        # Only the user's databases: none of DuckDB's internals.
        assert not names & {"system", "temp", "memory"}, names
        schemas = conn.adbc_get_objects(depth="db_schemas", catalog_filter=db).read_all().to_pylist()
        assert [c["catalog_name"] for c in schemas] == [db]
        assert {s["db_schema_name"] for s in schemas[0]["catalog_db_schemas"]} >= {"main", "reporting"}


def test_get_table_schema(user):
    with user.connect(autocommit=True) as conn:
        t, v = setup_objects(conn)
        for schema in (
            conn.adbc_get_table_schema(t),
            conn.adbc_get_table_schema(t, catalog_filter="my_db", db_schema_filter="main"),
        ):
            assert schema.names == ["id", "name", "amount", "tags", "created"]
            assert schema.field("id").type == pa.int32()
            assert schema.field("amount").type == pa.decimal128(18, 3)
            assert pa.types.is_list(schema.field("tags").type) or pa.types.is_large_list(
                schema.field("tags").type
            )
            assert schema.field("created").type == pa.timestamp("us")
        assert conn.adbc_get_table_schema(v).names == ["id", "name"]


def test_get_table_schema_in_other_database(user):
    db = unique("tsdb")
    with user.connect(autocommit=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"CREATE TABLE {db}.main.elsewhere (x BIGINT, y DOUBLE)")
        schema = conn.adbc_get_table_schema("elsewhere", catalog_filter=db, db_schema_filter="main")
        assert schema.names == ["x", "y"]
        assert schema.field("x").type == pa.int64()


def test_get_info(user):
    with user.connect(autocommit=True) as conn:
        info = conn.adbc_get_info()
    assert isinstance(info.get("vendor_name"), str) and info["vendor_name"], info
    assert isinstance(info.get("vendor_version"), str) and info["vendor_version"], info
    assert info.get("driver_name"), info


def test_current_catalog_follows_use(user):
    db = unique("curdb")
    with user.connect(autocommit=True, cookies=True) as conn:
        assert conn.adbc_current_catalog == "my_db"
        assert conn.adbc_current_db_schema == "main"
        run(conn, f"CREATE DATABASE {db}")
        run(conn, f"USE {db}")
        assert conn.adbc_current_catalog == db
        assert scalar(conn, "SELECT current_database()") == db


def test_set_current_catalog(user):
    db = unique("setdb")
    with user.connect(autocommit=True, cookies=True) as conn:
        run(conn, f"CREATE DATABASE {db}")
        conn.adbc_current_catalog = db
        assert scalar(conn, "SELECT current_database()") == db
        run(conn, "CREATE TABLE made_here (x INTEGER)")
        assert scalar(
            conn,
            "SELECT database_name FROM duckdb_tables() WHERE table_name = 'made_here'",
        ) == db
