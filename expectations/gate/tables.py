"""The gate's tables (docs/CONTRACTS.md describes each column) and their migration.

No primary-key index on raw_id: each load batch is gated once (raw.gate_batches is keyed by
load_id) and every row of a batch lands in exactly one of events_validated / events_quarantine
(the verdict splits them), which the run checks per batch by counting. The index on the text key
cost more than the rest of the insert.
"""

from __future__ import annotations

import duckdb

from python_models.ingest.contract import CONTRACT_COLUMNS, text_type
from python_models.ingest.loaders import ensure_raw_tables
from python_models.ingest.migrate import columns_of
from python_models.warehouse import Warehouse, as_warehouse


def gate_ddl(engine: str) -> str:
    """The gate's tables' DDL on `engine` (a Warehouse.engine): the raw text columns typed as
    raw.events types them (on DuckDB with their storage method)."""

    def text(column: str) -> str:
        return text_type(column, engine)

    return f"""
create schema if not exists raw;
create table if not exists raw.events_validated (
    raw_id {text("raw_id")} not null,
    event_id {text("event_id")} not null,
    user_id varchar,
    anonymous_id varchar,
    event_name varchar not null,
    event_ts timestamp not null,
    received_at timestamp not null,
    session_id varchar,
    properties varchar not null,
    loaded_at timestamp not null,
    load_id bigint not null
);
create table if not exists raw.events_quarantine (
    raw_id {text("raw_id")} not null,
    load_id bigint not null,
    reason varchar not null,
    reasons varchar not null,
    source_file {text("source_file")} not null,
    row_number bigint not null,
    {", ".join(f"{column} {text(column)}" for column in CONTRACT_COLUMNS)},
    load_error varchar,
    raw_payload varchar,
    quarantined_at timestamp not null,
    detail varchar
);
create table if not exists raw.gate_runs (
    run_id varchar primary key,
    started_at timestamp not null,
    finished_at timestamp not null,
    batches bigint not null,
    batches_blocked bigint not null,
    rows_checked bigint not null,
    rows_valid bigint not null,
    rows_quarantined bigint not null,
    evaluated_expectations integer not null,
    success boolean not null
);
create table if not exists raw.gate_batches (
    load_id bigint primary key,
    run_id varchar not null,
    source_file varchar not null,
    status varchar not null,
    rows_checked bigint not null,
    rows_valid bigint not null,
    rows_quarantined bigint not null,
    rows_defective bigint not null,
    rows_unplanned bigint not null,
    defect_rate double precision not null,
    max_quarantine_rate double precision not null,
    warnings varchar,
    gated_at timestamp not null
);
create table if not exists raw.gate_late_releases (
    load_id bigint primary key,
    released_from bigint not null,
    rows_released bigint not null,
    released_at timestamp not null
);
"""


# Columns added since the tables were first declared (DuckDB and PostgreSQL take IF NOT EXISTS).
GATE_ADDED_COLUMNS = "alter table raw.events_quarantine add column if not exists detail varchar"


def ensure_gate_tables(con: duckdb.DuckDBPyConnection) -> None:
    w = as_warehouse(con)
    if not w.supports_constraints:
        _ensure_from_declarations(w)
        return
    ensure_raw_tables(con)
    _migrate(con)
    con.execute(gate_ddl(w.engine))
    con.execute(GATE_ADDED_COLUMNS)


def _ensure_from_declarations(w: Warehouse) -> None:
    """Engines without constraints or DuckDB's type names (Spark): each missing raw table is
    created from the empty table the declarations give in a scratch DuckDB (same columns,
    same types); the gate's own checks stand in for the constraints."""
    scratch = duckdb.connect()
    try:
        ensure_raw_tables(scratch)
        scratch.execute(gate_ddl("duckdb"))
        names = scratch.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()
        for (name,) in names:
            if not w.table_exists(f"raw.{name}"):
                empty = scratch.execute(f"select * from raw.{name}").fetch_arrow_table()
                w.replace_table(f"raw.{name}", empty)
        if "detail" not in w.table_columns("raw.events_quarantine"):  # GATE_ADDED_COLUMNS
            w.execute("alter table raw.events_quarantine add columns (detail string)")
    finally:
        scratch.close()


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Tables from before load batches: add load_id (from raw.events), drop the raw_id index,
    and record every load batch whose rows were all gated as passed."""
    validated = columns_of(con, "raw", "events_validated")
    if not validated or "load_id" in validated:
        return
    quarantine = columns_of(con, "raw", "events_quarantine")
    runs = columns_of(con, "raw", "gate_runs")
    con.execute("begin transaction")
    try:
        con.execute("alter table raw.events_validated rename to events_validated__old")
        con.execute("alter table raw.events_quarantine rename to events_quarantine__old")
        if runs:
            con.execute("alter table raw.gate_runs rename to gate_runs__old")
        con.execute(gate_ddl(as_warehouse(con).engine))
        old_validated = ", ".join(f"v.{c}" for c in validated)
        con.execute(
            f"""insert into raw.events_validated ({", ".join(validated)}, load_id)
            select {old_validated}, e.load_id
            from raw.events_validated__old as v join raw.events as e using (raw_id)"""
        )
        kept = [c for c in quarantine if c != "raw_id"]
        con.execute(
            f"""insert into raw.events_quarantine (raw_id, {", ".join(kept)}, load_id)
            select q.raw_id, {", ".join(f"q.{c}" for c in kept)}, e.load_id
            from raw.events_quarantine__old as q join raw.events as e using (raw_id)"""
        )
        if runs:
            con.execute(
                """insert into raw.gate_runs
                select run_id, started_at, finished_at, 0, 0, rows_checked, rows_valid,
                    rows_quarantined, evaluated_expectations, success
                from raw.gate_runs__old"""
            )
            con.execute("drop table raw.gate_runs__old")
        con.execute(
            """
            insert into raw.gate_batches
            select l.load_id, 'migrated', l.source_file, 'passed', l.row_count,
                coalesce(v.n, 0), coalesce(q.n, 0), coalesce(q.n, 0), 0,
                coalesce(q.n, 0) / greatest(l.row_count, 1), 1.0, null, l.loaded_at
            from raw.load_log as l
            left join (select load_id, count(*) as n from raw.events_validated group by 1) as v
                using (load_id)
            left join (select load_id, count(*) as n from raw.events_quarantine group by 1) as q
                using (load_id)
            where coalesce(v.n, 0) + coalesce(q.n, 0) = l.row_count
            """
        )
        con.execute("drop table raw.events_validated__old")
        con.execute("drop table raw.events_quarantine__old")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    print("uba: migrated the gate tables to load batches (load_id)", flush=True)
