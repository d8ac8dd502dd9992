"""Bring raw tables made by an earlier uba up to the current layout, in one transaction.

Earlier layouts had no load_id (the gate found new rows by matching raw_id against every
gated row) and a primary-key index on raw_id. Each loaded file becomes a load batch, numbered
in load order; the rows keep their raw_id.
"""

from __future__ import annotations

import duckdb


def columns_of(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def migrate_raw_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Migrate raw.load_log and raw.events when they predate load batches; True if it did."""
    columns = columns_of(con, "raw", "events")
    if not columns or "load_id" in columns:
        return False
    from python_models.ingest.contract import CONTRACT_COLUMNS, raw_ddl
    from python_models.warehouse import as_warehouse

    con.execute("begin transaction")
    try:
        con.execute(
            """
            create temp table __uba_old_loads as
            select *, row_number() over (order by loaded_at, source_file) as load_id
            from raw.load_log
            """
        )
        con.execute("alter table raw.events rename to events__old")
        con.execute("alter table raw.load_log rename to load_log__old")
        con.execute(raw_ddl(as_warehouse(con).engine))
        con.execute(
            """
            insert into raw.load_log
            select file_sha256, load_id, source_file, format, row_count, 0, loaded_at
            from __uba_old_loads
            """
        )
        fields = ", ".join(f"e.{c}" for c in CONTRACT_COLUMNS)
        con.execute(
            f"""
            insert into raw.events
            select e.raw_id, l.load_id, e.source_file, e.file_sha256, e.row_number, e.loaded_at,
                {fields}, e.load_error, e.raw_payload
            from raw.events__old as e
            join __uba_old_loads as l using (file_sha256)
            order by l.load_id, e.row_number
            """
        )
        con.execute("drop table raw.events__old")
        con.execute("drop table raw.load_log__old")
        con.execute("drop table __uba_old_loads")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    print("uba: migrated raw.events and raw.load_log to load batches (load_id)", flush=True)
    return True
