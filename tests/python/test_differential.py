"""Differential test: the corpus in tests/differential, through Pond (Flight SQL, Python ADBC's
DB-API) and through in-process DuckDB of the same version (the `duckdb` wheel), compared exactly:
values (in order where the query orders, else as multisets) and Arrow types (names, types,
nesting, nullability).

Each corpus file runs on a fresh Pond user (its own empty `my_db`) and a fresh reference DuckDB
(`my_db` attached from a file and in use, configured like a duckling: see
differential.REFERENCE_CONFIG). Connections are autocommit, as DuckDB's own clients are; the
records run in order, on the file's `main` connection unless marked `-- @conn NAME`.

Outcomes: both answer alike, or both error (the error classes may differ: listed, counted as
matches) = match; a statement Pond refuses with PERMISSION_DENIED (the sandbox) = refusal,
reported apart; anything else = mismatch. Every mismatch must be listed, with its reason, in
tests/differential/known-mismatches-adbc.txt, and every listed record must still mismatch: the
test fails on a new mismatch and on a listed entry that now matches, so the list (and the match
rate it implies) stays true. The report is printed and written to
<pytest tmp>/differential/adbc-report.txt (also to $POND_DIFF_REPORT_DIR when set), with a
regenerated list (known-mismatches-adbc.suggested.txt) next to it.

Where DuckDB's Python `to_arrow_table()` and the C API's Arrow export (what Pond streams) differ
by design, see tests/differential/README.md.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import differential as d
from pond_helpers import Error, unique

KNOWN = d.CORPUS_DIR / "known-mismatches-adbc.txt"


class ReferenceSession:
    """One corpus file's in-process DuckDB: `my_db` attached from a file in `directory`."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(":memory:", config=dict(d.REFERENCE_CONFIG))
        self.db.execute(f"ATTACH '{directory / 'my_db.duckdb'}' AS my_db")
        self.db.execute("USE my_db")
        self.conns = {"main": self.db}

    def conn(self, name: str):
        if name not in self.conns:
            c = self.db.cursor()
            c.execute("USE my_db")
            self.conns[name] = c
        return self.conns[name]

    def run(self, name: str, sql: str) -> d.Outcome:
        con = self.conn(name)
        try:
            con.execute(sql)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = con.to_arrow_table()
            return d.Outcome("ok", table=table)
        except duckdb.Error as e:
            return d.Outcome("error", message=f"{type(e).__name__}: {e}")

    def close(self):
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass


def is_refusal(e: Error) -> bool:
    """PERMISSION_DENIED from Pond's sandbox (ADBC reports it as UNAUTHORIZED)."""
    msg = str(e)
    return "PermissionDenied" in msg or "PERMISSION_DENIED" in msg or (
        getattr(e, "status_code", None) is not None
        and getattr(e.status_code, "name", "") == "UNAUTHORIZED"
    )


class PondSession:
    """One corpus file's Pond user: one ADBC connection per connection name, autocommit."""

    def __init__(self, server, token: str):
        self.server = server
        self.token = token
        self.conns: dict = {}

    def conn(self, name: str):
        if name not in self.conns:
            self.conns[name] = self.server.connect(token=self.token, autocommit=True)
        return self.conns[name]

    def run(self, name: str, sql: str) -> d.Outcome:
        conn = self.conn(name)
        cur = conn.cursor()
        try:
            cur.execute(sql)
            return d.Outcome("ok", table=cur.fetch_arrow_table())
        except Error as e:
            kind = "refused" if is_refusal(e) else "error"
            return d.Outcome(kind, message=f"{type(e).__name__}: {e}")
        finally:
            try:
                cur.close()
            except Error:
                pass

    def close(self):
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass


def run_corpus(pond, workdir: Path) -> d.Report:
    corpus = d.load_corpus()
    report = d.Report("Pond (Flight SQL, Python ADBC) vs in-process DuckDB (Python)")
    probe = pond.connect(token=pond.new_user(unique("dv")), autocommit=True)
    try:
        cur = probe.cursor()
        cur.execute("SELECT version()")
        pond_version = cur.fetchone()[0]
        cur.close()
    finally:
        probe.close()
    ref_version = duckdb.execute("SELECT version()").fetchone()[0]
    report.notes.append(f"Pond's DuckDB: {pond_version}; reference: duckdb {duckdb.__version__} ({ref_version})")
    assert pond_version == ref_version, (
        f"the reference must be the DuckDB Pond runs: Pond {pond_version}, "
        f"reference {ref_version} (tests/python/requirements.txt pins duckdb)"
    )
    for name, records in corpus.items():
        ref = ReferenceSession(workdir / name.removesuffix(".sql"))
        ps = PondSession(pond, pond.new_user(unique("dv")))
        try:
            for rec in records:
                p = ps.run(rec.conn, rec.sql)
                r = ref.run(rec.conn, rec.sql)
                v = d.compare(rec, p, r)
                if v.status == "mismatch":
                    v.cause = d.guess_cause(v)
                report.verdicts.append(v)
        finally:
            ps.close()
            ref.close()
    return report


@pytest.mark.timeout(1800)
def test_differential_adbc(pond, tmp_path, capsys):
    out = tmp_path / "differential"
    out.mkdir()
    report = run_corpus(pond, tmp_path / "reference")
    known = d.load_known(KNOWN)
    text = report.text(known)
    (out / "adbc-report.txt").write_text(text)
    (out / "known-mismatches-adbc.suggested.txt").write_text(d.known_list_text(report.verdicts, known))
    extra = os.environ.get("POND_DIFF_REPORT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "adbc-report.txt", Path(extra) / "adbc-report.txt")
        shutil.copy(out / "known-mismatches-adbc.suggested.txt", Path(extra))
    print(text)
    print(f"(report written to {out / 'adbc-report.txt'})")
    with capsys.disabled():
        # The headline numbers even when the test passes (the full report is in the file).
        head = text.split("\n\n", 1)[0]
        print("\n" + head + f"\nreport: {out / 'adbc-report.txt'}")

    all_keys = {r.key for recs in d.load_corpus().values() for r in recs}
    assert report.records >= 1500, f"the corpus has only {report.records} records"
    problems = d.check_known(report, known, all_keys)
    listed = len(known)
    compared = report.records - report.count("refused")
    floor = (compared - listed) / compared if compared else 1.0
    assert not problems, (
        f"{len(problems)} differences from {KNOWN.name} (match rate "
        f"{report.match_rate * 100:.2f}%, the list allows {floor * 100:.2f}%):\n"
        + "\n".join(problems)
        + f"\nreport: {out / 'adbc-report.txt'}"
    )
    assert report.match_rate >= floor


def c_api_library() -> Path | None:
    """The libduckdb.so Pond links: next to the pond binary, or in ../lib (installed layout)."""
    from conftest import pond_bin

    b = Path(pond_bin()).resolve()
    for p in (b.parent / "libduckdb.so", b.parent.parent / "lib" / "libduckdb.so"):
        if p.exists():
            return p
    return None


def test_reference_export_matches_c_api(tmp_path):
    """The reference's Arrow (DuckDB's Python `to_arrow_table()`) is what DuckDB's C API exports
    (what Pond streams: duckdb_to_arrow_schema / duckdb_data_chunk_to_arrow with the result's
    Arrow options, each statement of a text extracted, prepared and executed in turn), on every
    record of the corpus: schemas (names, types, nesting, nullability) and values. So a type
    mismatch in test_differential_adbc is Pond's, not an artefact of the reference."""
    lib = c_api_library()
    if lib is None:
        pytest.skip("no libduckdb.so next to the pond binary (a bundled-duckdb build)")
    import duckdb_capi

    api = duckdb_capi.CApi(lib)
    assert api.version() == duckdb.execute("SELECT version()").fetchone()[0]
    config = {k: str(v).lower() for k, v in d.REFERENCE_CONFIG.items()}
    differences = []
    records = 0
    for name, recs in d.load_corpus().items():
        ref = ReferenceSession(tmp_path / "py" / name.removesuffix(".sql"))
        capi = api.open(config)
        try:
            (tmp_path / "c").mkdir(exist_ok=True)
            capi.query("main", f"ATTACH '{tmp_path / 'c' / name}.duckdb' AS my_db")
            capi.query("main", "USE my_db")
            for rec in recs:
                records += 1
                if rec.conn not in capi.conns:
                    capi.query(rec.conn, "USE my_db")
                try:
                    c = d.Outcome("ok", table=capi.query(rec.conn, rec.sql))
                except duckdb_capi.CApiError as e:
                    c = d.Outcome("error", message=str(e))
                r = ref.run(rec.conn, rec.sql)
                v = d.compare(rec, c, r)
                if v.status != "match":
                    differences.append(
                        f"{rec.key}: {d.one_line(rec.sql, 120)}\n  {v.detail}\n"
                        f"  C API:  {d.show_outcome(c)}\n  Python: {d.show_outcome(r)}"
                    )
        finally:
            capi.close()
            ref.close()
    print(f"{records} records, {len(differences)} differ between the C API and Python exports")
    assert not differences, "\n".join(differences)
