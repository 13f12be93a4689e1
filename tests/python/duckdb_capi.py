"""DuckDB's C API Arrow export, through ctypes: what Pond streams (duckdb/src/engine/ takes a
result's Arrow options with duckdb_result_get_arrow_options, its schema from
duckdb_to_arrow_schema and its batches from duckdb_data_chunk_to_arrow), without Pond.

The differential test uses it to show exactly where DuckDB's Python `to_arrow_table()` (the
reference) and the C API's export differ on the corpus. It loads the libduckdb.so that Pond links
(next to the pond binary).
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import pyarrow as pa


class _ArrowSchema(C.Structure):
    pass


class _ArrowArray(C.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", C.c_char_p),
    ("name", C.c_char_p),
    ("metadata", C.c_char_p),
    ("flags", C.c_int64),
    ("n_children", C.c_int64),
    ("children", C.c_void_p),
    ("dictionary", C.c_void_p),
    ("release", C.c_void_p),
    ("private_data", C.c_void_p),
]
_ArrowArray._fields_ = [
    ("length", C.c_int64),
    ("null_count", C.c_int64),
    ("offset", C.c_int64),
    ("n_buffers", C.c_int64),
    ("n_children", C.c_int64),
    ("buffers", C.c_void_p),
    ("children", C.c_void_p),
    ("dictionary", C.c_void_p),
    ("release", C.c_void_p),
    ("private_data", C.c_void_p),
]


class _Result(C.Structure):
    _fields_ = [
        ("deprecated_column_count", C.c_uint64),
        ("deprecated_row_count", C.c_uint64),
        ("deprecated_rows_changed", C.c_uint64),
        ("deprecated_columns", C.c_void_p),
        ("deprecated_error_message", C.c_char_p),
        ("internal_data", C.c_void_p),
    ]


class CApiError(Exception):
    pass


class CApi:
    def __init__(self, lib_path: Path):
        lib = C.CDLL(str(lib_path))
        self.lib = lib
        vp = C.c_void_p
        lib.duckdb_create_config.argtypes = [C.POINTER(vp)]
        lib.duckdb_set_config.argtypes = [vp, C.c_char_p, C.c_char_p]
        lib.duckdb_open_ext.argtypes = [C.c_char_p, C.POINTER(vp), vp, C.POINTER(C.c_char_p)]
        lib.duckdb_destroy_config.argtypes = [C.POINTER(vp)]
        lib.duckdb_connect.argtypes = [vp, C.POINTER(vp)]
        lib.duckdb_disconnect.argtypes = [C.POINTER(vp)]
        lib.duckdb_close.argtypes = [C.POINTER(vp)]
        lib.duckdb_query.argtypes = [vp, C.c_char_p, C.POINTER(_Result)]
        lib.duckdb_result_error.argtypes = [C.POINTER(_Result)]
        lib.duckdb_result_error.restype = C.c_char_p
        lib.duckdb_destroy_result.argtypes = [C.POINTER(_Result)]
        lib.duckdb_column_count.argtypes = [C.POINTER(_Result)]
        lib.duckdb_column_count.restype = C.c_uint64
        lib.duckdb_column_name.argtypes = [C.POINTER(_Result), C.c_uint64]
        lib.duckdb_column_name.restype = C.c_char_p
        lib.duckdb_column_logical_type.argtypes = [C.POINTER(_Result), C.c_uint64]
        lib.duckdb_column_logical_type.restype = vp
        lib.duckdb_destroy_logical_type.argtypes = [C.POINTER(vp)]
        lib.duckdb_result_get_arrow_options.argtypes = [C.POINTER(_Result)]
        lib.duckdb_result_get_arrow_options.restype = vp
        lib.duckdb_destroy_arrow_options.argtypes = [C.POINTER(vp)]
        lib.duckdb_to_arrow_schema.argtypes = [vp, C.POINTER(vp), C.POINTER(C.c_char_p), C.c_uint64, C.POINTER(_ArrowSchema)]
        lib.duckdb_to_arrow_schema.restype = vp
        lib.duckdb_data_chunk_to_arrow.argtypes = [vp, vp, C.POINTER(_ArrowArray)]
        lib.duckdb_data_chunk_to_arrow.restype = vp
        lib.duckdb_fetch_chunk.argtypes = [_Result]
        lib.duckdb_fetch_chunk.restype = vp
        lib.duckdb_destroy_data_chunk.argtypes = [C.POINTER(vp)]
        lib.duckdb_error_data_has_error.argtypes = [vp]
        lib.duckdb_error_data_has_error.restype = C.c_bool
        lib.duckdb_error_data_message.argtypes = [vp]
        lib.duckdb_error_data_message.restype = C.c_char_p
        lib.duckdb_destroy_error_data.argtypes = [C.POINTER(vp)]
        lib.duckdb_library_version.restype = C.c_char_p
        lib.duckdb_extract_statements.argtypes = [vp, C.c_char_p, C.POINTER(vp)]
        lib.duckdb_extract_statements.restype = C.c_uint64
        lib.duckdb_extract_statements_error.argtypes = [vp]
        lib.duckdb_extract_statements_error.restype = C.c_char_p
        lib.duckdb_destroy_extracted.argtypes = [C.POINTER(vp)]
        lib.duckdb_prepare_extracted_statement.argtypes = [vp, vp, C.c_uint64, C.POINTER(vp)]
        lib.duckdb_prepare_error.argtypes = [vp]
        lib.duckdb_prepare_error.restype = C.c_char_p
        lib.duckdb_destroy_prepare.argtypes = [C.POINTER(vp)]
        lib.duckdb_execute_prepared.argtypes = [vp, C.POINTER(_Result)]

    def version(self) -> str:
        return self.lib.duckdb_library_version().decode()

    def open(self, config: dict[str, str]) -> "CApiDatabase":
        return CApiDatabase(self, config)


class CApiDatabase:
    def __init__(self, api: CApi, config: dict[str, str]):
        self.api = api
        lib = api.lib
        cfg = C.c_void_p()
        lib.duckdb_create_config(C.byref(cfg))
        for k, v in config.items():
            if lib.duckdb_set_config(cfg, k.encode(), str(v).encode()) != 0:
                raise CApiError(f"config {k}={v} refused")
        self.db = C.c_void_p()
        err = C.c_char_p()
        state = lib.duckdb_open_ext(None, C.byref(self.db), cfg, C.byref(err))
        lib.duckdb_destroy_config(C.byref(cfg))
        if state != 0:
            raise CApiError(err.value.decode() if err.value else "open failed")
        self.conns: dict[str, C.c_void_p] = {}

    def conn(self, name: str) -> C.c_void_p:
        if name not in self.conns:
            c = C.c_void_p()
            if self.api.lib.duckdb_connect(self.db, C.byref(c)) != 0:
                raise CApiError("connect failed")
            self.conns[name] = c
        return self.conns[name]

    def query(self, name: str, sql: str) -> pa.Table:
        """The result of the text's last statement as Arrow, exported as Pond exports it.

        The text is split with duckdb_extract_statements and each statement is prepared and
        executed in turn (duckdb_query would return the first statement's result, and DuckDB's
        parser itself expands some statements into several, e.g. PIVOT and ALTER … ADD COLUMN …
        DEFAULT)."""
        lib = self.api.lib
        conn = self.conn(name)
        ext = C.c_void_p()
        count = lib.duckdb_extract_statements(conn, sql.encode(), C.byref(ext))
        try:
            if count == 0:
                msg = lib.duckdb_extract_statements_error(ext)
                raise CApiError(msg.decode() if msg else "no statement")
            table = None
            for i in range(count):
                table = self._run_extracted(conn, ext, i)
            return table
        finally:
            lib.duckdb_destroy_extracted(C.byref(ext))

    def _run_extracted(self, conn, ext, i) -> pa.Table:
        lib = self.api.lib
        stmt = C.c_void_p()
        res = _Result()
        try:
            if lib.duckdb_prepare_extracted_statement(conn, ext, i, C.byref(stmt)) != 0:
                msg = lib.duckdb_prepare_error(stmt)
                raise CApiError(msg.decode() if msg else "prepare failed")
            if lib.duckdb_execute_prepared(stmt, C.byref(res)) != 0:
                msg = lib.duckdb_result_error(C.byref(res))
                lib.duckdb_destroy_result(C.byref(res))
                raise CApiError(msg.decode() if msg else "execute failed")
        finally:
            lib.duckdb_destroy_prepare(C.byref(stmt))
        opts = C.c_void_p(lib.duckdb_result_get_arrow_options(C.byref(res)))
        try:
            n = lib.duckdb_column_count(C.byref(res))
            types = (C.c_void_p * n)(*[lib.duckdb_column_logical_type(C.byref(res), i) for i in range(n)])
            names = (C.c_char_p * n)(*[lib.duckdb_column_name(C.byref(res), i) for i in range(n)])
            c_schema = _ArrowSchema()
            self._check(lib.duckdb_to_arrow_schema(opts, types, names, n, C.byref(c_schema)))
            for i in range(n):
                t = C.c_void_p(types[i])
                lib.duckdb_destroy_logical_type(C.byref(t))
            schema = pa.Schema._import_from_c(C.addressof(c_schema))
            batches = []
            while True:
                chunk = C.c_void_p(lib.duckdb_fetch_chunk(res))
                if not chunk.value:
                    break
                arr = _ArrowArray()
                try:
                    self._check(lib.duckdb_data_chunk_to_arrow(opts, chunk, C.byref(arr)))
                finally:
                    lib.duckdb_destroy_data_chunk(C.byref(chunk))
                batches.append(pa.RecordBatch._import_from_c(C.addressof(arr), schema))
            return pa.Table.from_batches(batches, schema=schema)
        finally:
            lib.duckdb_destroy_arrow_options(C.byref(opts))
            lib.duckdb_destroy_result(C.byref(res))

    def _check(self, err) -> None:
        lib = self.api.lib
        if not err:
            return
        e = C.c_void_p(err)
        try:
            if lib.duckdb_error_data_has_error(e):
                raise CApiError(lib.duckdb_error_data_message(e).decode())
        finally:
            lib.duckdb_destroy_error_data(C.byref(e))

    def close(self) -> None:
        lib = self.api.lib
        for c in self.conns.values():
            lib.duckdb_disconnect(C.byref(c))
        self.conns.clear()
        lib.duckdb_close(C.byref(self.db))
