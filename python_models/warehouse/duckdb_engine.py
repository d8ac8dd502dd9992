"""The DuckDB implementation: the local file warehouse (the default engine).

`DuckDBWarehouse` wraps a DuckDB connection and passes every other attribute on to it, so the
DuckDB-only steps (the file loaders read CSV / Parquet / JSON with DuckDB's readers) use the
same object. Frames move in and out as Arrow without a copy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from python_models.config import get_settings
from python_models.warehouse.base import Types, Warehouse, split_name, to_arrow
from python_models.warehouse.locks import POLL_SECONDS, busy_error, duckdb_holder, wait_notice
from python_models.warehouse.sql_text import standard_string

# DuckDB's checkpoint "vacuums": it rewrites runs of row groups holding deleted rows into fewer
# ones, and that rewrite is most of a checkpoint after a day's deletes (publish's file: commit
# 6.3-7.7 -> 1.6-2.5 s at 1M, paired at load 8-10; the warehouse after a 10M day's dbt build:
# 6-7 -> 1-3 s, docs/performance.md). So the daily writers (`uba refresh`'s dbt build,
# publish's update in place) skip it while the file's deleted-but-stored rows are under
# VACUUM_DEAD_SHARE of its stored rows, and let a checkpoint compact once they reach it:
# readers scan past at most that share of dead rows (DuckDB skips them, but reads their row
# groups).
VACUUM_DEAD_SHARE = 0.2
# What release_memory lowers the pool to for a moment (what stays pinned may exceed it).
RELEASED_POOL = "64MB"
# The session settings a cursor for another thread copies (cursor_like): a timestamp with a
# time zone is cut into days and months in the session's zone (the publish's figures and
# Parquet files, the models' snapshot days).
SESSION_SETTINGS = ("TimeZone", "Calendar")


def size_bytes(text: str) -> float:
    """Bytes of a size as DuckDB shows a setting ('1.3 GiB', '512.0 MiB', '100 bytes'):
    current_setting('memory_limit') reads back this way, to a tenth of its unit."""
    number, unit = text.split()
    scale = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    return float(number) * scale[unit]


def cursor_like(con: Any) -> duckdb.DuckDBPyConnection:
    """A cursor of `con`'s database for another thread, with `con`'s SESSION_SETTINGS (a
    DuckDB cursor starts from the defaults, not from its connection's session)."""
    cursor = con.cursor()
    for name in SESSION_SETTINGS:
        value = con.execute(f"select current_setting('{name}')").fetchone()[0]
        cursor.execute(f"set {name} = {standard_string(str(value))}")
    return cursor


def dead_row_share(con: Any, catalog: str | None = None) -> float:
    """The share of the stored rows of `catalog`'s tables (the connection's own database when
    None) that are deleted but still stored: DuckDB's estimated_size counts the rows of a
    table's row groups until a vacuum rewrites them, count(*) the live ones (both from
    metadata and deletion masks: 66 tables of a 10M-event warehouse in 0.03 s). 0 when the
    catalog holds no rows."""
    database = f"'{catalog}'" if catalog else "current_database()"
    tables = con.execute(
        "select database_name, schema_name, table_name, estimated_size from duckdb_tables() "
        f"where database_name = {database}"
    ).fetchall()
    stored = live = 0
    for database_name, schema, name, size in tables:
        stored += int(size)
        live += con.execute(
            f'select count(*) from "{database_name}"."{schema}"."{name}"'
        ).fetchone()[0]
    return (stored - live) / stored if stored else 0.0


# DuckDB's automatic checkpoint threshold for a day's dbt build (applied by the profile's
# plugin, python_models/dbt_salt_plugin.py). At DuckDB's 16MiB, one node's COMMIT after another
# checkpointed (11-22 s of COMMIT in a 10M day at load 3.5-7.7); above the build's WAL (~145 MB
# at 10M) dbt checkpoints once, as it closes the file (5-14 s). Each table is checkpointed once
# either way, so this saves ~6 s a day under load and nothing quiet (docs/performance-log.md,
# wt-node15). Committed nodes wait in the WAL until then, which a crash replays. Bounded, so a
# day far larger than usual still checkpoints on the way. `uba build` keeps DuckDB's: its
# COMMITs are small, and a full rebuild frees whole tables, whose blocks only a checkpoint lets
# it reuse.
DAILY_CHECKPOINT_THRESHOLD = "1GB"


def daily_duckdb_settings(con: Any) -> dict[str, str]:
    """DuckDB settings for a day's dbt build (`uba refresh`'s, and the Dagster dbt assets'; the
    profile's plugin applies them: dbt_salt_plugin.RUN_SETTINGS): the checkpoint threshold
    above, and no vacuum in that checkpoint while the warehouse's deleted-but-stored rows are
    under VACUUM_DEAD_SHARE of its rows (most of the checkpoint's time is the vacuum's rewrite
    of the row groups the day's re-cuts deleted from); the first day past it compacts. {} on
    other engines."""
    if getattr(con, "engine", None) != "duckdb":
        return {}
    settings = {"checkpoint_threshold": DAILY_CHECKPOINT_THRESHOLD}
    if dead_row_share(con) < VACUUM_DEAD_SHARE:
        settings["max_vacuum_tasks"] = "0"
    return settings


def skip_vacuum_as(con: Any, duckdb_settings: dict[str, str]) -> None:
    """A daily writer's own connection skips the vacuum as the day's dbt build does: else its
    checkpoint rewrites the row groups dbt's deletes left (10M: 3.6 s at the first close after
    the build; 3.2 s in the next day's load)."""
    if "max_vacuum_tasks" in duckdb_settings:
        con.execute(f"set max_vacuum_tasks = {int(duckdb_settings['max_vacuum_tasks'])}")


class DuckDBTypes(Types):
    double = "double"


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"
    types = DuckDBTypes()

    def __init__(self, con: Any, memory_limit: str | None = None):
        # `con` is a DuckDB connection, or anything that behaves as one (tests wrap it).
        # `memory_limit`: the limit it was opened with (release_memory puts it back).
        self.con = con
        self.memory_limit = memory_limit
        # True while another cursor's queries run on the same database (DuckDB's pool is the
        # database's): release_memory then keeps the pool, since lowering the limit for a
        # moment could fail them.
        self.pool_shared = False

    def __getattr__(self, name: str) -> Any:
        # register, read_csv, from_arrow ...: the DuckDB-only steps use the connection as is.
        return getattr(self.con, name)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def sql(self, sql: str) -> Any:
        return self.con.sql(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.con.executemany(sql, rows)

    def sample_sql(self, table: str, rows: int) -> str:
        # A seeded reservoir: the same rows on every run. Of a table, drawn over its row ids
        # alone and those rows read: the rows a reservoir of whole rows draws (it sees the same
        # stream), without every column of every row passing through it (a 10M day's feature
        # mart, 200k of 829k rows of 75 columns: 1.73 -> 0.57 s). A view has no row ids.
        reservoir = f"using sample reservoir({int(rows)} rows) repeatable (42)"
        schema, name = table.split(".", 1) if "." in table else ("main", table)
        is_table = self.scalar(
            "select count(*) from duckdb_tables() "
            "where database_name = current_database() and schema_name = ? and table_name = ?",
            [schema, name],
        )
        if is_table:
            return f"select * from {table} where rowid in (select rowid from {table} {reservoir})"
        return f"select * from {table} {reservoir}"

    def replace_table(self, qualified: str, frame: Any) -> int:
        """Everything happens in one transaction (DuckDB's DDL is transactional): the new table
        replaces the old one at commit, so a failure, or the process being killed at any point,
        leaves the previous table as it was and no stray table behind."""
        schema, table = split_name(qualified)
        self.con.register("__uba_frame", frame)
        try:
            # joins a transaction already open on this wrapper (score history + table)
            with self.transaction():
                self.con.execute(f'create schema if not exists "{schema}"')
                self._drop_leftovers(schema, table)
                self.con.execute(
                    f'create or replace table "{schema}"."{table}" as select * from __uba_frame'
                )
                rows = self.con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
        finally:
            self.con.unregister("__uba_frame")
        return int(rows)

    def _drop_leftovers(self, schema: str, table: str) -> None:
        """Drop `<table>__new_*` tables an earlier version of replace_table could leave behind
        when killed between writing the new table and swapping it in."""
        leftovers = self.con.execute(
            "select table_name from information_schema.tables where table_schema = ? "
            "and starts_with(table_name, ?)",
            [schema, f"{table}__new_"],
        ).fetchall()
        for (name,) in leftovers:
            self.con.execute(f'drop table if exists "{schema}"."{name}"')

    def append_table(self, qualified: str, frame: Any) -> int:
        schema, table = split_name(qualified)
        data = to_arrow(frame)
        self.con.register("__uba_append", data)
        try:
            self.con.execute(f'insert into "{schema}"."{table}" by name select * from __uba_append')
        finally:
            self.con.unregister("__uba_append")
        return data.num_rows

    def release_memory(self) -> None:
        """Evict the buffer pool's unpinned pages. DuckDB keeps every page a query read until
        the memory limit forces it out, so a process running step after step (a first build
        trains and scores six models) holds a pool near the whole limit beside each later
        step's own Python memory: at 10M events 1.3 of the 1.5 GB while next action scored,
        the process's peak (docs/performance-log.md, "The pool given back between models").
        Lowering the limit evicts down to it (temp tables' pages go to the temp directory);
        the next read of an evicted page comes from the OS's file cache."""
        if self.pool_shared:
            return
        # current_setting() rounds to a tenth of a GiB: the configured text when known
        limit = (
            self.memory_limit
            or self.con.execute("select current_setting('memory_limit')").fetchone()[0]
        )
        try:
            self.con.execute(f"set memory_limit = '{RELEASED_POOL}'")
        except duckdb.OutOfMemoryException:
            pass  # more is pinned (an open result, a transaction's rows): the rest was evicted
        self.con.execute(f"set memory_limit = '{limit}'")

    def pool_share(self) -> float:
        """DuckDB's buffer pool in use (what its queries hold and the pages it keeps cached
        until the limit needs them), as a share of memory_limit."""
        used = self.con.execute("select sum(memory_usage_bytes) from duckdb_memory()").fetchone()
        limit = self.con.execute("select current_setting('memory_limit')").fetchone()[0]
        return float(used[0] or 0) / size_bytes(limit)

    def for_another_thread(self) -> DuckDBWarehouse:
        """The same database on a cursor of its own (cursor_like), for work beside this
        connection's; its release_memory keeps the pool, which the two share."""
        other = DuckDBWarehouse(cursor_like(self.con), self.memory_limit)
        other.pool_shared = True
        return other

    def close(self) -> None:
        self.con.close()


def connect_duckdb(
    path: str | Path | None = None, read_only: bool = False, timeout: float | None = None
) -> DuckDBWarehouse:
    """Open the DuckDB file with the configured memory limit and thread count, waiting up to
    `timeout` seconds (default: the lock timeout setting) while another process holds it.

    Fetch results with `.pl()`, `.df()` or `.fetch_arrow_table()`, never `.arrow()`: in DuckDB 1.5
    `.arrow()` returns a lazy RecordBatchReader, and while an unconsumed one is alive (say, held
    by an exception's traceback) any new connection to the same file in this process spins
    forever. tests/unit/test_warehouse.py guards the codebase against it.
    """
    settings = get_settings()
    db_path = Path(path) if path is not None else settings.duckdb_path
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = settings.lock_timeout_seconds if timeout is None else timeout
    started = time.monotonic()
    noticed = False
    while True:
        try:
            con = duckdb.connect(
                str(db_path),
                read_only=read_only,
                config={
                    "memory_limit": settings.duckdb_memory_limit,
                    "threads": settings.duckdb_threads,
                },
            )
            return DuckDBWarehouse(con, settings.duckdb_memory_limit)
        except duckdb.Error as exc:
            holder = duckdb_holder(exc)
            if holder is None:
                raise
            waited = time.monotonic() - started
            if waited >= timeout:
                raise busy_error(db_path, holder, waited) from None
            if not noticed:
                wait_notice(db_path, holder, timeout)
                noticed = True
            time.sleep(POLL_SECONDS)
