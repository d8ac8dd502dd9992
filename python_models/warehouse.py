"""DuckDB connections and atomic table writes."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import duckdb

from python_models.config import get_settings

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the configured memory limit and thread count.

    Fetch results with `.pl()`, `.df()` or `.fetch_arrow_table()`, never `.arrow()`: in DuckDB 1.5
    `.arrow()` returns a lazy RecordBatchReader, and while an unconsumed one is alive (say, held
    by an exception's traceback) any new connection to the same file in this process spins
    forever. tests/unit/test_warehouse.py guards the codebase against it.
    """
    settings = get_settings()
    db_path = Path(path) if path is not None else settings.duckdb_path
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(db_path),
        read_only=read_only,
        config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        },
    )
    return con


def split_name(qualified: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table), refusing anything that is not a plain identifier."""
    parts = qualified.split(".")
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"expected 'schema.table' with plain identifiers, got {qualified!r}")
    return parts[0], parts[1]


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = split_name(qualified)
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def replace_table(con: duckdb.DuckDBPyConnection, qualified: str, frame: Any) -> int:
    """Replace `schema.table` with `frame` (Arrow table, polars or pandas DataFrame) atomically.

    The new data is written under a temporary name first; the swap (drop old, rename new) runs
    in one transaction, so a failure at any point leaves the previous table as it was.
    Returns the number of rows written.
    """
    schema, table = split_name(qualified)
    tmp = f"{table}__new_{uuid.uuid4().hex[:8]}"
    con.execute(f'create schema if not exists "{schema}"')
    con.register("__uba_frame", frame)
    try:
        con.execute(f'create table "{schema}"."{tmp}" as select * from __uba_frame')
    finally:
        con.unregister("__uba_frame")
    try:
        con.execute("begin transaction")
        con.execute(f'drop table if exists "{schema}"."{table}"')
        con.execute(f'alter table "{schema}"."{tmp}" rename to "{table}"')
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        con.execute(f'drop table if exists "{schema}"."{tmp}"')
        raise
    return con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
