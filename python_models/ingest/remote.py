"""Loading files into a server warehouse (PostgreSQL, ...): DuckDB reads, the warehouse stores.

The file readers are DuckDB's (CSV with rejected-row capture, Parquet, JSON Lines) and run in
this process, wherever the warehouse is. For a server engine they read into a scratch in-memory
DuckDB that first receives the warehouse's `raw.load_log` and `raw.schema_drift` (so content
already loaded is skipped, load ids continue and accepted drift stays quiet); the new rows of
`raw.events`, `raw.load_log` and `raw.schema_drift` then go to the warehouse as Arrow in one
transaction. Same tables, same rows, as loading into DuckDB directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from python_models.ingest.loaders import LoadResult, ensure_raw_tables, load_path
from python_models.warehouse import Warehouse, as_warehouse, transaction

# Load-batch bookkeeping the scratch database needs to continue where the warehouse is.
_CARRIED = ("raw.load_log", "raw.schema_drift")
_SHIPPED = ("raw.events", "raw.load_log", "raw.schema_drift")


def load_into(
    con: Warehouse,
    path: str | Path | list[str | Path],
    fmt: str | None = None,
    progress: bool = True,
    on_new_file: Callable[[], object] | None = None,
) -> LoadResult:
    """`load_path` for any engine: directly on DuckDB, through a scratch DuckDB elsewhere
    (`on_new_file`: as load_path's)."""
    w = as_warehouse(con)
    if w.engine == "duckdb":
        return load_path(w, path, fmt=fmt, progress=progress, on_new_file=on_new_file)
    scratch = duckdb.connect()
    try:
        ensure_raw_tables(scratch)
        _ensure_remote_tables(w, scratch)
        for table in _CARRIED:
            carried = w.execute(f"select * from {table}").fetch_arrow_table()
            scratch.register("__uba_carried", carried)
            scratch.execute(f"insert into {table} by name select * from __uba_carried")
            scratch.unregister("__uba_carried")
        before = scratch.execute("select coalesce(max(load_id), 0) from raw.load_log").fetchone()[0]
        result = load_path(scratch, path, fmt=fmt, progress=progress, on_new_file=on_new_file)
        with transaction(w):
            for table in _SHIPPED:
                new = scratch.execute(
                    f"select * from {table} where load_id > ?", [before]
                ).fetch_arrow_table()
                if new.num_rows:
                    w.append_table(table, new)
        return result
    finally:
        scratch.close()


def _ensure_remote_tables(w: Warehouse, scratch: duckdb.DuckDBPyConnection) -> None:
    """The raw tables on the warehouse, with the scratch tables' columns and types."""
    for table in _SHIPPED:
        if not w.table_exists(table):
            empty = scratch.execute(f"select * from {table} limit 0").fetch_arrow_table()
            w.replace_table(table, empty)
