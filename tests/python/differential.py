"""The differential test's machinery: the corpus, both sides' runners, the comparison, the report.

The corpus (tests/differential/*.sql, shared with the Java harness) is a set of files, each
self-contained: it runs in a fresh database (on Pond: a fresh user, whose `my_db` is empty; on
the reference: a fresh in-process DuckDB with `my_db` attached and in use). A file is split into
records by lines that are exactly `----`; a record is one text sent as it is (it may hold several
statements: DuckDB's clients run them all and return the last one's result). Lines at the start
of a record of the form `-- @directive [arg]` are directives, removed before the text is sent:

  -- @conn NAME    run on the file's connection NAME (default `main`), opened on first use: a
                   second session of the same user and database (on the reference, a second
                   connection to the same instance)
  -- @ordered      compare rows in order (default: only when the last statement has an ORDER BY
  -- @unordered    at its top level; otherwise rows compare as multisets)

Records are named `FILE:HASH` (the first 10 hex digits of the SHA-1 of the text with runs of
whitespace collapsed), with `#N` appended for the N-th repeat of the same text in a file. The
known-mismatch lists (tests/differential/known-mismatches-*.txt) name records that way.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

CORPUS_DIR = Path(__file__).resolve().parent.parent / "differential"
SEPARATOR = re.compile(r"^----\s*$")
DIRECTIVE = re.compile(r"^--\s*@(\w+)\s*(.*?)\s*$")

# How a Pond duckling configures DuckDB where the answers depend on it
# (duckling/src/sandbox.rs, open_options): Arrow strings as Utf8, UUIDs as text.
REFERENCE_CONFIG = {
    "produce_arrow_string_view": False,
    "arrow_lossless_conversion": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}


# ---- corpus --------------------------------------------------------------------------------


@dataclass
class Record:
    file: str
    index: int  # 1-based position among the file's records
    line: int  # line of the record's first text line in the file
    sql: str
    conn: str = "main"
    ordered: bool | None = None  # None: decided from the text
    key: str = ""

    def is_ordered(self) -> bool:
        return self.ordered if self.ordered is not None else has_top_level_order_by(self.sql)


def _only_comments(text: str) -> bool:
    return all(not l.strip() or l.strip().startswith("--") for l in text.splitlines())


def load_file(path: Path) -> list[Record]:
    records: list[Record] = []
    chunk: list[tuple[int, str]] = []
    seen: dict[str, int] = {}

    def flush():
        lines = list(chunk)
        chunk.clear()
        conn, ordered = "main", None
        body: list[tuple[int, str]] = []
        head = True
        for no, l in lines:
            if head:
                m = DIRECTIVE.match(l.strip())
                if m:
                    name, arg = m.group(1).lower(), m.group(2)
                    if name == "conn":
                        conn = arg or "main"
                    elif name == "ordered":
                        ordered = True
                    elif name == "unordered":
                        ordered = False
                    else:
                        raise ValueError(f"{path.name}:{no}: unknown directive @{name}")
                    continue
                if l.strip():
                    head = False
            body.append((no, l))
        text = "\n".join(l for _, l in body).strip()
        if not text or _only_comments(text):
            return
        first = next(no for no, l in body if l.strip())
        digest = hashlib.sha1(" ".join(text.split()).encode()).hexdigest()[:10]
        key = f"{path.name}:{digest}"
        n = seen.get(key, 0) + 1
        seen[key] = n
        if n > 1:
            key += f"#{n}"
        records.append(
            Record(path.name, len(records) + 1, first, text, conn, ordered, key)
        )

    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if SEPARATOR.match(line):
            flush()
        else:
            chunk.append((no, line))
    flush()
    return records


def load_corpus(directory: Path = CORPUS_DIR) -> dict[str, list[Record]]:
    return {p.name: load_file(p) for p in sorted(directory.glob("*.sql"))}


def _strip_literals_and_comments(sql: str) -> str:
    """The text with comments removed and string/identifier literals blanked."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(" x ")
            i = j + 1
        elif sql.startswith("$$", i):
            j = sql.find("$$", i + 2)
            out.append(" x ")
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def last_statement(sql: str) -> str:
    parts = [p for p in _strip_literals_and_comments(sql).split(";") if p.strip()]
    return parts[-1] if parts else ""


def has_top_level_order_by(sql: str) -> bool:
    """Whether the last statement of the text orders its result (ORDER BY outside parentheses)."""
    text = last_statement(sql)
    depth = 0
    for m in re.finditer(r"[()]|\border\s+by\b", text, re.I):
        t = m.group(0)
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif depth == 0:
            return True
    return False


# ---- outcomes ------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "ok" | "error" | "refused"
    table: pa.Table | None = None
    message: str = ""

    @property
    def error_class(self) -> str:
        return error_class(self.message)


ERROR_CLASS = re.compile(r"\b((?:[A-Z][a-z]+ )*?[A-Z][a-z]+) Error:")


def error_class(message: str) -> str:
    """DuckDB's error class ("Catalog", "Binder", ...) as its message states it, or ""."""
    m = ERROR_CLASS.search(message or "")
    return m.group(1) if m else ""


# ---- comparison ----------------------------------------------------------------------------


def _temporal_free(t: pa.DataType) -> pa.DataType:
    """t with every temporal type replaced by its integer storage (for values Python's datetime
    cannot hold, such as `infinity` or years before 1)."""
    if pa.types.is_timestamp(t) or pa.types.is_date64(t) or pa.types.is_duration(t):
        return pa.int64()
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return pa.int32()
    if pa.types.is_time64(t):
        return pa.int64()
    if pa.types.is_dictionary(t):
        return _temporal_free(t.value_type)
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, _temporal_free(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(pa.field(t.value_field.name, _temporal_free(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field(t.value_field.name, _temporal_free(t.value_type)), t.list_size)
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _temporal_free(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_temporal_free(t.key_type), _temporal_free(t.item_type))
    return t


def column_values(col: pa.ChunkedArray) -> list:
    try:
        return col.to_pylist()
    except Exception:
        pass
    try:
        return [("raw", v) for v in col.cast(_temporal_free(col.type)).to_pylist()]
    except Exception:
        # e.g. structs with duplicate field names, which pyarrow cannot turn into dicts
        return [("text", col.slice(i, 1).to_string(window=10**6)) for i in range(len(col))]


def canon(v):
    """A value normalised for comparison: NaN equal to NaN, tz-aware times in UTC, maps (lists
    of pairs) as they come."""
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        return v
    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
        return ("tz", v.astimezone(datetime.timezone.utc).replace(tzinfo=None))
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(canon(x) for x in v)
    return v


def rows_of(table: pa.Table) -> list[tuple]:
    cols = [column_values(table.column(i)) for i in range(table.num_columns)]
    return [tuple(canon(c[r]) for c in cols) for r in range(table.num_rows)]


def _sort_key(row) -> str:
    return repr(row)


def show_schema(schema: pa.Schema) -> str:
    return ", ".join(
        f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema
    )


def show_rows(rows: list, limit: int = 8) -> str:
    shown = [repr(r) for r in rows[:limit]]
    more = f" … (+{len(rows) - limit} rows)" if len(rows) > limit else ""
    return "[" + ", ".join(shown) + "]" + more


def show_outcome(o: Outcome) -> str:
    if o.kind == "ok":
        assert o.table is not None
        return f"schema ({show_schema(o.table.schema)}) rows {show_rows(rows_of(o.table))}"
    return f"{o.kind.upper()}: {one_line(o.message)}"


def one_line(s: str, limit: int = 300) -> str:
    s = " ".join((s or "").split())
    return s if len(s) <= limit else s[:limit] + "…"


@dataclass
class Verdict:
    record: Record
    status: str  # "match" | "mismatch" | "refused"
    detail: str = ""
    cause: str = ""
    pond: Outcome | None = None
    ref: Outcome | None = None
    note: str = ""  # for matches: e.g. both errored with different classes


def schema_difference(p: pa.Schema, r: pa.Schema) -> str:
    if len(p) != len(r):
        return f"{len(p)} columns vs {len(r)}"
    diffs = []
    for i, (fp, fr) in enumerate(zip(p, r)):
        if fp.name != fr.name:
            diffs.append(f"column {i + 1} named {fp.name!r} vs {fr.name!r}")
        if not fp.type.equals(fr.type):
            diffs.append(f"column {i + 1} ({fr.name}) type {fp.type} vs {fr.type}")
        elif fp.nullable != fr.nullable:
            diffs.append(f"column {i + 1} ({fr.name}) nullable {fp.nullable} vs {fr.nullable}")
    return "; ".join(diffs)


def compare(record: Record, pond: Outcome, ref: Outcome, check_types: bool = True) -> Verdict:
    if pond.kind == "refused":
        return Verdict(record, "refused", one_line(pond.message), pond=pond, ref=ref)
    if pond.kind == "error" and ref.kind == "error":
        note = ""
        if pond.error_class != ref.error_class:
            note = f"error class {pond.error_class or '?'} vs {ref.error_class or '?'}"
        return Verdict(record, "match", pond=pond, ref=ref, note=note)
    if pond.kind != ref.kind:
        return Verdict(
            record,
            "mismatch",
            f"Pond {pond.kind}, DuckDB {ref.kind}",
            pond=pond,
            ref=ref,
        )
    assert pond.table is not None and ref.table is not None
    details = []
    if check_types:
        sd = schema_difference(pond.table.schema, ref.table.schema)
        if sd:
            details.append("types: " + sd)
    else:
        if pond.table.schema.names != ref.table.schema.names:
            details.append(f"names {pond.table.schema.names} vs {ref.table.schema.names}")
    prow, rrow = rows_of(pond.table), rows_of(ref.table)
    if len(prow) != len(rrow):
        details.append(f"{len(prow)} rows vs {len(rrow)}")
    elif record.is_ordered():
        if prow != rrow:
            if sorted(prow, key=_sort_key) == sorted(rrow, key=_sort_key):
                details.append("row order differs")
            else:
                details.append("values differ")
    else:
        if sorted(prow, key=_sort_key) != sorted(rrow, key=_sort_key):
            details.append("values differ")
    if details:
        return Verdict(record, "mismatch", "; ".join(details), pond=pond, ref=ref)
    return Verdict(record, "match", pond=pond, ref=ref)


# ---- causes --------------------------------------------------------------------------------


def guess_cause(v: Verdict) -> str:
    """A short label grouping mismatches that look alike (the report groups by it)."""
    p, r = v.pond, v.ref
    assert p is not None and r is not None
    if p.kind == "error":
        m = p.message
        if "prepare multiple statements" in m:
            return "multi-statement text refused by prepare"
        if "inconsistent schema" in m:
            return "FlightInfo schema differs from the stream's"
        return "Pond errors where DuckDB answers"
    if r.kind == "error":
        return "DuckDB errors where Pond answers"
    d = v.detail
    pt, rt = p.table, r.table
    assert pt is not None and rt is not None
    if rt.schema.names in (["Count"], ["Success"]) and rt.num_rows == 0 and pt.num_rows > 0:
        return "statement without result rows answers a row"
    if "types:" in d:
        if all("nullable" in part for part in d.removeprefix("types: ").split("; ")):
            return "nullability differs"
        if any(pa.types.is_dictionary(f.type) or "dictionary" in str(f.type) for f in rt.schema):
            return "ENUM not sent as a dictionary"
        if "tz=" in d:
            return "TIMESTAMPTZ time zone label"
        if "union" in d:
            return "UNION type differs"
        return "Arrow types differ"
    if "row order" in d:
        return "row order differs"
    return "values differ"


# ---- known mismatches ----------------------------------------------------------------------


def load_known(path: Path) -> dict[str, str]:
    """KEY reason… per line; blank lines and lines starting with # are ignored."""
    known: dict[str, str] = {}
    if not path.exists():
        return known
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key, _, reason = s.partition(" ")
        if not reason.strip():
            raise ValueError(f"{path.name}:{no}: entry {key} has no reason")
        if key in known:
            raise ValueError(f"{path.name}:{no}: {key} listed twice")
        known[key] = reason.strip()
    return known


def known_list_text(verdicts: list[Verdict], reasons: dict[str, str]) -> str:
    """A known-mismatch list for the current mismatches (reasons kept where listed)."""
    out = [
        "# Known mismatches: KEY REASON, one a line (generated by the differential test;",
        "# keep a reason for every entry). The SQL is shown in a comment above each entry.",
    ]
    by_cause: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.status == "mismatch":
            by_cause.setdefault(reasons.get(v.record.key) or v.cause, []).append(v)
    for cause in sorted(by_cause):
        out.append("")
        for v in by_cause[cause]:
            out.append("# " + one_line(v.record.sql, 200))
            out.append(f"{v.record.key} {cause}")
    return "\n".join(out) + "\n"


# ---- report --------------------------------------------------------------------------------


@dataclass
class Report:
    title: str
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.verdicts)

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    @property
    def match_rate(self) -> float:
        compared = self.records - self.count("refused")
        return self.count("match") / compared if compared else 1.0

    def text(self, known: dict[str, str]) -> str:
        mism = [v for v in self.verdicts if v.status == "mismatch"]
        refused = [v for v in self.verdicts if v.status == "refused"]
        both_err = [v for v in self.verdicts if v.status == "match" and v.pond and v.pond.kind == "error"]
        class_diff = [v for v in both_err if v.note]
        lines = [
            f"== {self.title} ==",
            *self.notes,
            f"records: {self.records}",
            f"matches: {self.count('match')} (of which both sides errored: {len(both_err)}, "
            f"with different error classes: {len(class_diff)})",
            f"mismatches: {len(mism)} (known: {sum(1 for v in mism if v.record.key in known)})",
            f"refusals (sandbox, reported apart): {len(refused)}",
            f"match rate: {self.match_rate * 100:.2f}% "
            f"({self.count('match')} of {self.records - len(refused)} compared)",
        ]
        if mism:
            lines.append("")
            lines.append("-- mismatches, grouped by cause --")
            groups: dict[str, list[Verdict]] = {}
            for v in mism:
                groups.setdefault(known.get(v.record.key) or v.cause, []).append(v)
            for cause, vs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                lines.append(f"[{len(vs)}] {cause}")
                for v in vs:
                    flag = "" if v.record.key in known else "  (NEW)"
                    lines.append(f"  {v.record.key} (line {v.record.line}){flag}")
                    lines.append(f"    sql:    {one_line(v.record.sql, 400)}")
                    lines.append(f"    why:    {v.detail}")
                    lines.append(f"    pond:   {show_outcome(v.pond)}")
                    lines.append(f"    duckdb: {show_outcome(v.ref)}")
        if refused:
            lines.append("")
            lines.append("-- refusals (sandbox) --")
            for v in refused:
                lines.append(f"  {v.record.key}: {one_line(v.record.sql, 120)}")
                lines.append(f"    pond:   {one_line(v.pond.message, 200)}")
                lines.append(f"    duckdb: {show_outcome(v.ref)[:200]}")
        if class_diff:
            lines.append("")
            lines.append("-- both errored, different error classes (counted as matches) --")
            for v in class_diff:
                lines.append(f"  {v.record.key}: {one_line(v.record.sql, 120)}")
                lines.append(f"    {v.note}")
                lines.append(f"    pond:   {one_line(v.pond.message, 200)}")
                lines.append(f"    duckdb: {one_line(v.ref.message, 200)}")
        return "\n".join(lines) + "\n"


def check_known(report: Report, known: dict[str, str], all_keys: set[str]) -> list[str]:
    """Problems that fail the test: new mismatches, listed entries that now match (or are
    refused), and listed entries that name no record."""
    problems = []
    for v in report.verdicts:
        if v.status == "mismatch" and v.record.key not in known:
            problems.append(f"new mismatch {v.record.key}: {one_line(v.record.sql, 120)} — {v.detail}")
        if v.status != "mismatch" and v.record.key in known:
            problems.append(
                f"listed as a known mismatch but is a {v.status} now: {v.record.key} "
                f"({known[v.record.key]}); remove it from the list"
            )
    for key in known:
        if key not in all_keys:
            problems.append(f"known-mismatch entry {key} names no record of the corpus")
    return problems
