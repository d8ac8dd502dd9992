"""The warehouse: one interface for every Python step, whatever the engine.

    con = connect()                      # the engine of UBA_WAREHOUSE (duckdb by default)
    frame = con.execute("select ... where as_of_date = ?", [day]).pl()
    replace_table(con, "ml_scores.churn_scores", scores)    # atomic where the engine allows

Engines: `duckdb` (a local file; default), `postgres` (UBA_PG_*), `spark` (a local Spark
session over UBA_SPARK_DIR). The interface is `base.Warehouse`; see docs/scale.md for which
engine suits which data size. DuckDB's writers' queue (`writer`, `writer_lock`) lives in
`locks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from python_models.config import WAREHOUSE_ENGINES, get_settings
from python_models.warehouse.base import (
    ArrowResult,
    Warehouse,
    WarehouseError,
    content_fingerprint,
    split_name,
    to_arrow,
)
from python_models.warehouse.locks import WarehouseBusyError, lock_path, writer_lock

ENGINES = WAREHOUSE_ENGINES

__all__ = [
    "ENGINES",
    "ArrowResult",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "append_table",
    "as_warehouse",
    "connect",
    "content_fingerprint",
    "lock_path",
    "replace_table",
    "split_name",
    "table_exists",
    "table_fingerprint",
    "to_arrow",
    "transaction",
    "writer",
    "writer_lock",
]


def connect(
    path: str | Path | None = None,
    read_only: bool = False,
    timeout: float | None = None,
    engine: str | None = None,
) -> Warehouse:
    """Open the configured warehouse. `path` (a DuckDB file) implies the DuckDB engine;
    otherwise `engine` or UBA_WAREHOUSE picks it. DuckDB waits up to `timeout` seconds for a
    file held by another process (UBA_LOCK_TIMEOUT_SECONDS)."""
    engine = "duckdb" if path is not None else (engine or get_settings().warehouse)
    if engine == "duckdb":
        from python_models.warehouse.duckdb_engine import connect_duckdb

        return connect_duckdb(path, read_only=read_only, timeout=timeout)
    if engine == "postgres":
        from python_models.warehouse.postgres import connect_postgres

        return connect_postgres(read_only=read_only)
    if engine == "spark":
        from python_models.warehouse.spark import connect_spark

        return connect_spark()
    raise WarehouseError(f"unknown warehouse engine {engine!r}; choose one of {ENGINES}")


@contextlib.contextmanager
def writer(path: str | Path | None = None, purpose: str | None = None) -> Iterator[Warehouse]:
    """A write connection; closed on exit. On DuckDB it is held under the writer lock (one
    writing process per file); server engines handle concurrent writers themselves."""
    engine = "duckdb" if path is not None else get_settings().warehouse
    lock = writer_lock(path, purpose) if engine == "duckdb" else contextlib.nullcontext(path)
    with lock as db_path:
        con = connect(db_path) if engine == "duckdb" else connect()
        try:
            yield con
        finally:
            con.close()


def as_warehouse(con: Any) -> Warehouse:
    """The interface over `con`: a Warehouse as is, anything else taken as a DuckDB
    connection (tests and DuckDB-only helpers pass raw ones)."""
    if isinstance(con, Warehouse):
        return con
    from python_models.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(con)


def replace_table(con: Any, qualified: str, frame: Any) -> int:
    """Replace `schema.table` with `frame` (Arrow table, polars or pandas DataFrame); atomic on
    DuckDB and PostgreSQL (a failure or a kill leaves the previous table). Returns the rows."""
    return as_warehouse(con).replace_table(qualified, frame)


def append_table(con: Any, qualified: str, frame: Any) -> int:
    return as_warehouse(con).append_table(qualified, frame)


def table_exists(con: Any, qualified: str) -> bool:
    return as_warehouse(con).table_exists(qualified)


def table_fingerprint(con: Any, qualified: str) -> str:
    """Content fingerprint of a table (Warehouse.fingerprint): equal for equal contents."""
    return as_warehouse(con).fingerprint(qualified)


def transaction(con: Any):
    """`with transaction(con):` commits at the end, rolls back on an exception."""
    return as_warehouse(con).transaction()
