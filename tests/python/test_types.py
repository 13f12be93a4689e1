"""Every DuckDB type arrives as the matching Arrow type with the right Python value."""

import datetime
import decimal
import json
import uuid

import pyarrow as pa
import pytest

from pond_helpers import rows, run, table, unique

UUID = uuid.UUID("a1b2c3d4-0000-4000-8000-00000000abcd")
UTC = datetime.timezone.utc


def is_stringish(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.string_view()


def is_binaryish(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or t == pa.binary_view()


def storage(t: pa.DataType) -> pa.DataType:
    return t.storage_type if isinstance(t, pa.ExtensionType) else t


# (DuckDB type, SQL literal, check of the Arrow type, expected Python value)
CASES = [
    ("BOOLEAN", "true", lambda t: t == pa.bool_(), True),
    ("TINYINT", "-128", lambda t: t == pa.int8(), -128),
    ("SMALLINT", "-32768", lambda t: t == pa.int16(), -32768),
    ("INTEGER", "2147483647", lambda t: t == pa.int32(), 2147483647),
    ("BIGINT", "-9223372036854775808", lambda t: t == pa.int64(), -(2**63)),
    ("UTINYINT", "255", lambda t: t == pa.uint8(), 255),
    ("USMALLINT", "65535", lambda t: t == pa.uint16(), 65535),
    ("UINTEGER", "4294967295", lambda t: t == pa.uint32(), 4294967295),
    ("UBIGINT", "18446744073709551615", lambda t: t == pa.uint64(), 2**64 - 1),
    (
        "HUGEINT",
        "-12345678901234567890123456789",
        lambda t: t == pa.decimal128(38, 0),
        decimal.Decimal("-12345678901234567890123456789"),
    ),
    ("FLOAT", "1.5", lambda t: t == pa.float32(), 1.5),
    ("DOUBLE", "-2.25e100", lambda t: t == pa.float64(), -2.25e100),
    (
        "DECIMAL(18,3)",
        "'-123456789012345.678'",
        lambda t: t == pa.decimal128(18, 3),
        decimal.Decimal("-123456789012345.678"),
    ),
    (
        "DECIMAL(38,10)",
        "'1234567890123456789012345678.0123456789'",
        lambda t: t == pa.decimal128(38, 10),
        decimal.Decimal("1234567890123456789012345678.0123456789"),
    ),
    ("VARCHAR", "'héllo, 世界 🦆'", is_stringish, "héllo, 世界 🦆"),
    ("BLOB", "'\\x00\\x01\\xFFabc'", is_binaryish, b"\x00\x01\xffabc"),
    ("DATE", "'2024-02-29'", lambda t: t == pa.date32(), datetime.date(2024, 2, 29)),
    (
        "TIME",
        "'12:34:56.789012'",
        lambda t: t == pa.time64("us"),
        datetime.time(12, 34, 56, 789012),
    ),
    (
        "TIMESTAMP",
        "'2024-01-02 03:04:05.123456'",
        lambda t: t == pa.timestamp("us"),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
    ),
    (
        "TIMESTAMPTZ",
        "'2024-01-02 03:04:05.123456+00'",
        lambda t: pa.types.is_timestamp(t) and t.unit == "us" and t.tz is not None,
        datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    ),
    (
        "INTERVAL",
        "INTERVAL '1 year 2 months 3 days 04:05:06.789'",
        lambda t: t == pa.month_day_nano_interval(),
        (14, 3, ((4 * 60 + 5) * 60 + 6) * 1_000_000_000 + 789_000_000),
    ),
    (
        "UUID",
        f"'{UUID}'",
        lambda t: is_stringish(t) or storage(t) == pa.binary(16),
        UUID,
    ),
    (
        "INTEGER[]",
        "[1, 2, NULL, 3]",
        lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
        and t.value_type == pa.int32(),
        [1, 2, None, 3],
    ),
    (
        "VARCHAR[]",
        "['a', 'ß', '']",
        lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
        and is_stringish(t.value_type),
        ["a", "ß", ""],
    ),
    (
        "STRUCT(a INTEGER, b VARCHAR, c DOUBLE[])",
        "{'a': 7, 'b': 'x', 'c': [0.5, 1.5]}",
        lambda t: pa.types.is_struct(t)
        and [t.field(i).name for i in range(t.num_fields)] == ["a", "b", "c"]
        and t.field(0).type == pa.int32(),
        {"a": 7, "b": "x", "c": [0.5, 1.5]},
    ),
    (
        "MAP(VARCHAR, INTEGER)",
        "MAP {'k1': 1, 'k2': 2}",
        lambda t: pa.types.is_map(t)
        and is_stringish(t.key_type)
        and t.item_type == pa.int32(),
        [("k1", 1), ("k2", 2)],
    ),
    (
        "ENUM('sad', 'ok', 'happy')",
        "'happy'",
        lambda t: is_stringish(t)
        or (pa.types.is_dictionary(t) and is_stringish(t.value_type)),
        "happy",
    ),
    ("JSON", "'{\"k\": [1, 2], \"s\": \"ü\"}'", lambda t: is_stringish(storage(t)), {"k": [1, 2], "s": "ü"}),
]


def normalize(duck_type, value):
    if value is None:
        return None
    if duck_type == "UUID":
        if isinstance(value, (bytes, bytearray)):
            return uuid.UUID(bytes=bytes(value))
        return uuid.UUID(str(value))
    if duck_type == "JSON":
        return json.loads(value)
    if duck_type == "INTERVAL":
        return (value.months, value.days, value.nanoseconds)
    if duck_type == "TIMESTAMPTZ":
        assert value.tzinfo is not None, f"TIMESTAMPTZ came back naive: {value!r}"
        return value.astimezone(UTC)
    return value


@pytest.mark.parametrize("duck_type,literal,type_ok,expected", CASES, ids=[c[0] for c in CASES])
def test_type_round_trip(admin_conn, duck_type, literal, type_ok, expected):
    """A table column of the type: value row and NULL row, Arrow type and Python values."""
    name = unique("ty")
    run(admin_conn, f"CREATE TABLE {name} (k INTEGER, v {duck_type})")
    run(admin_conn, f"INSERT INTO {name} VALUES (1, ({literal})::{duck_type}), (2, NULL)")
    t = table(admin_conn, f"SELECT v FROM {name} ORDER BY k")
    arrow_type = t.schema.field("v").type
    assert type_ok(arrow_type), f"{duck_type} arrived as Arrow {arrow_type}"
    values = t.column("v").to_pylist()
    assert len(values) == 2
    got = normalize(duck_type, values[0])
    assert got == expected, f"{duck_type}: got {values[0]!r}"
    if duck_type in ("FLOAT", "DOUBLE"):
        assert type(values[0]) is float
    assert values[1] is None, f"{duck_type}: NULL came back as {values[1]!r}"


def test_all_types_in_one_result(admin_conn):
    """All the types side by side in one result set, the schema matching column by column."""
    select = ", ".join(
        f"({literal})::{duck_type} AS c{i}" for i, (duck_type, literal, _, _) in enumerate(CASES)
    )
    t = table(admin_conn, f"SELECT {select}")
    assert t.num_rows == 1
    assert t.schema.names == [f"c{i}" for i in range(len(CASES))]
    for i, (duck_type, _, type_ok, expected) in enumerate(CASES):
        f = t.schema.field(f"c{i}")
        assert type_ok(f.type), f"{duck_type} arrived as Arrow {f.type}"
        assert normalize(duck_type, t.column(f"c{i}")[0].as_py()) == expected, duck_type


def test_float_special_values(admin_conn):
    got = rows(
        admin_conn,
        "SELECT 'nan'::DOUBLE, 'inf'::DOUBLE, '-inf'::FLOAT, -0.0::DOUBLE, 1e-300::DOUBLE",
    )[0]
    assert got[0] != got[0]  # NaN
    assert got[1] == float("inf")
    assert got[2] == float("-inf")
    assert got[3] == 0.0
    assert got[4] == 1e-300


def test_nested_nulls_and_empties(admin_conn):
    t = table(
        admin_conn,
        "SELECT [] :: INTEGER[] AS empty_list, [NULL]::INTEGER[] AS null_elem, "
        "{'a': NULL, 'b': [[1], [], NULL]}::STRUCT(a INTEGER, b INTEGER[][]) AS s, "
        "MAP {}::MAP(VARCHAR, INTEGER) AS empty_map",
    )
    row = t.to_pylist()[0]
    assert row["empty_list"] == []
    assert row["null_elem"] == [None]
    assert row["s"] == {"a": None, "b": [[1], [], None]}
    assert row["empty_map"] == []


def test_unicode_strings_round_trip(admin_conn):
    samples = ["", "ascii", "éèê", "日本語テキスト", "🦆🦆🦆", "mixed ñ 中 🚀", "a\u0000b", "x" * 100_000]
    name = unique("uni")
    run(admin_conn, f"CREATE TABLE {name} (k INTEGER, s VARCHAR)")
    cur = admin_conn.cursor()
    cur.executemany(f"INSERT INTO {name} VALUES (?, ?)", list(enumerate(samples)))
    cur.close()
    got = rows(admin_conn, f"SELECT s, length(s) FROM {name} ORDER BY k")
    assert [g[0] for g in got] == samples
    assert [g[1] for g in got] == [len(s) for s in samples]


def test_bound_parameter_types(admin_conn):
    """Python values bound as parameters keep their type and value through DuckDB."""
    params = (
        7,
        2.5,
        "ünïcode",
        b"\x00\xfe",
        True,
        datetime.date(1999, 12, 31),
        datetime.datetime(2001, 2, 3, 4, 5, 6, 7),
        None,
    )
    got = rows(
        admin_conn,
        "SELECT ? + 1, ? * 2, upper(?), octet_length(?), NOT ?, ? + INTERVAL 1 DAY, "
        "extract('microsecond' FROM ?::TIMESTAMP), ? IS NULL",
        params,
    )[0]
    assert got[0] == 8
    assert got[1] == 5.0
    assert got[2] == "ÜNÏCODE"
    assert got[3] == 2
    assert got[4] is False
    assert got[5] == datetime.datetime(2000, 1, 1, 0, 0)
    assert got[6] == 6_000_007
    assert got[7] is True
