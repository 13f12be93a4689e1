#!/usr/bin/env python3
"""Validate the dual-execution differential corpus with the DuckDB Python wheel.

    python check.py            # uses local.sql, cloud.sql, corpus.sql next to this file

Steps:
  * parse corpus.sql (strict format: `-- name: <snake_case>` line, the query,
    `;` at the end of its last line, blank line between queries);
  * build an in-memory DB: local.sql in the default catalog (`memory`),
    `ATTACH ':memory:' AS cloud; USE cloud;` + cloud.sql, then `USE memory;`;
  * run every query, failing loudly on any error, and print its row count;
  * build a second DB whose tables hold the same rows in a shuffled physical
    order (and a different thread count) and check every query returns the
    same multiset of rows (the same sequence when the query has a top-level
    ORDER BY) -- this catches non-total orderings and float-summation noise;
  * enforce: <= 3 queries returning 0 rows, < ~5,000 rows per query, unique
    names, >= 150 queries, and that the local filter of every `selective_*`
    query keeps < 2% of customers.
"""

import collections
import os
import re
import sys

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_ROWS = 5000
MAX_EMPTY = 3
MIN_QUERIES = 150

# Local-side predicate of each selective mixed query (must keep < 2% of customers).
SELECTIVE_FILTERS = {
    "selective_customer_range_items": "id BETWEEN 500 AND 520",
    "selective_customer_name": "name LIKE 'Alice Smith #1%'",
    "selective_vip_region_signup": "vip AND region = 'LATAM' AND signup >= DATE '2024-06-01'",
    "selective_single_customer_orders": "id = 1234",
    "mixed_lag_lead_order_gaps": "id IN (7, 77, 777, 1777)",
    "mixed_decimal_rounding": "id BETWEEN 1000 AND 1003",
    "mixed_string_agg_ordered": "id <= 12",
}

FORBIDDEN = re.compile(r"\b(random|now|current_date|current_timestamp|today|uuid|gen_random_uuid)\b", re.I)
NAME_RE = re.compile(r"^-- name: ([a-z][a-z0-9_]*)$")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def parse_corpus(text):
    """Return [(name, sql)], enforcing the corpus file format strictly."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    queries = []
    i = 0
    while i < len(lines):
        m = NAME_RE.match(lines[i])
        if not m:
            fail(f"corpus.sql line {i + 1}: expected '-- name: <snake_case>', got {lines[i]!r}")
        name = m.group(1)
        i += 1
        body = []
        while i < len(lines) and lines[i] != "":
            if NAME_RE.match(lines[i]):
                fail(f"corpus.sql line {i + 1}: query {name!r} has no blank line before the next name")
            body.append(lines[i])
            i += 1
        if not body:
            fail(f"query {name!r} is empty")
        if not body[-1].endswith(";"):
            fail(f"query {name!r}: last line must end with ';'")
        if any(l.rstrip().endswith(";") for l in body[:-1]):
            fail(f"query {name!r}: ';' before the last line")
        sql = "\n".join(body)
        queries.append((name, sql))
        if i < len(lines):  # the blank separator
            i += 1
            if i < len(lines) and lines[i] == "":
                fail(f"corpus.sql line {i + 1}: more than one blank line between queries")
    names = [n for n, _ in queries]
    dups = [n for n, c in collections.Counter(names).items() if c > 1]
    if dups:
        fail(f"duplicate query names: {dups}")
    return queries


def setup(shuffle=False, threads=None):
    con = duckdb.connect(":memory:")
    if threads is not None:
        con.execute(f"SET threads = {threads}")
    con.execute(read("local.sql"))
    con.execute("ATTACH ':memory:' AS cloud; USE cloud;")
    con.execute(read("cloud.sql"))
    if shuffle:
        # Same rows, different physical order: exposes queries whose results
        # depend on scan order.
        for t in ("orders", "products", "order_items"):
            con.execute(f"CREATE OR REPLACE TABLE {t} AS SELECT * FROM {t} ORDER BY md5(CAST({t} AS VARCHAR))")
    con.execute("USE memory;")
    if shuffle:
        for t in ("customers", "regions", "targets"):
            con.execute(f"CREATE OR REPLACE TABLE {t} AS SELECT * FROM {t} ORDER BY md5(CAST({t} AS VARCHAR)) DESC")
    return con


def top_level_order_by(sql):
    """True if the statement ends with an ORDER BY outside any parentheses."""
    depth = 0
    flat = []
    for ch in sql:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            flat.append(ch)
            continue
        flat.append(" ")
    return re.search(r"\border\s+by\b", "".join(flat), re.I) is not None


def hashable(row):
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)


def run(con, name, sql):
    try:
        cur = con.execute(sql)
        rows = cur.fetchall()
        types = [str(d[1]) for d in cur.description]
        cols = [d[0] for d in cur.description]
    except Exception as e:  # noqa: BLE001
        fail(f"query {name!r} raised {type(e).__name__}: {e}\n---\n{sql}")
    return rows, cols, types


def main():
    queries = parse_corpus(read("corpus.sql"))

    for name, sql in queries:
        if FORBIDDEN.search(sql):
            fail(f"query {name!r} uses a non-deterministic function")
        stmts = duckdb.extract_statements(sql)
        if len(stmts) != 1:
            fail(f"query {name!r} contains {len(stmts)} statements")
        if str(stmts[0].type) != "StatementType.SELECT":
            fail(f"query {name!r} is not a SELECT ({stmts[0].type})")
        low = sql.lower()
        if re.search(r"\b(limit|offset)\b", low) or " over " in low or " over(" in low or "qualify" in low:
            if "order by" not in low:
                fail(f"query {name!r} uses LIMIT/OFFSET/windows without ORDER BY")
        if "string_agg" in low and not re.search(r"string_agg\([^)]*order by", low):
            fail(f"query {name!r}: string_agg without ORDER BY")

    con = setup()
    n_customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
    for name, pred in SELECTIVE_FILTERS.items():
        if name not in dict(queries):
            fail(f"SELECTIVE_FILTERS names unknown query {name!r}")
        if pred not in re.sub(r"\bc\.", "", dict(queries)[name]):
            fail(f"selective predicate for {name!r} not found in its text: {pred}")
        kept = con.execute(f"SELECT count(*) FROM customers WHERE {pred}").fetchone()[0]
        if not (0 < kept < 0.02 * n_customers):
            fail(f"{name!r}: local filter keeps {kept}/{n_customers} customers (need 0 < n < 2%)")
        print(f"selective {name}: local filter keeps {kept}/{n_customers} customers "
              f"({100.0 * kept / n_customers:.2f}%)")
    for name, _ in queries:
        if name.startswith("selective_") and name not in SELECTIVE_FILTERS:
            fail(f"selective query {name!r} has no entry in SELECTIVE_FILTERS")

    con2 = setup(shuffle=True, threads=3)

    empty = []
    double_cols = []
    print()
    for name, sql in queries:
        rows, cols, types = run(con, name, sql)
        rows2, _, _ = run(con2, name, sql)
        ordered = top_level_order_by(sql)
        if ordered:
            same = [hashable(r) for r in rows] == [hashable(r) for r in rows2]
        else:
            same = collections.Counter(map(hashable, rows)) == collections.Counter(map(hashable, rows2))
        if not same:
            fail(f"query {name!r} is not deterministic (results differ on shuffled data, ordered={ordered})")
        if len(rows) > MAX_ROWS:
            fail(f"query {name!r} returns {len(rows)} rows (> {MAX_ROWS})")
        if not rows:
            empty.append(name)
        for c, t in zip(cols, types):
            if t in ("DOUBLE", "FLOAT"):
                double_cols.append(f"{name}.{c}")
        print(f"{len(rows):6d} rows{' (ordered)' if ordered else '          '}  {name}")

    print()
    print(f"queries: {len(queries)}")
    print(f"queries with 0 rows: {len(empty)} {empty}")
    print(f"DOUBLE result columns (must all be round()ed or non-aggregate): {double_cols}")
    if len(queries) < MIN_QUERIES:
        fail(f"only {len(queries)} queries (need >= {MIN_QUERIES})")
    if len(empty) > MAX_EMPTY:
        fail(f"{len(empty)} queries return 0 rows (max {MAX_EMPTY}): {empty}")
    print("OK")


if __name__ == "__main__":
    main()
