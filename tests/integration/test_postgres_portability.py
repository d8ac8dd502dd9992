"""The core dbt models run unchanged on PostgreSQL and agree with DuckDB.

Starts a throwaway PostgreSQL cluster (tests/pg_server.py), loads the same planted
raw.events_validated into both databases, builds the core models on each (full refresh, then
an incremental run) and compares the marts. Skips when the PostgreSQL server binaries or the
dbt-postgres adapter are absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from pg_server import NoPostgres, throwaway_postgres
from test_dbt_core import make_planted_events, write_validated  # same planted data

from expectations.gate.sql import VALIDATED_COLUMNS
from python_models.dbt_runner import run_dbt
from python_models.warehouse import connect

pytestmark = pytest.mark.postgres

CORE_SELECT = [
    "event_taxonomy",
    "+fct_events",
    "+fct_sessions",
    "+dim_users",
    "+int_identity_stitched",
    # incremental with literal bounds read before the SQL runs (macros/feature_helpers.sql,
    # mart_spine.sql)
    "+int_feature_user_days",
    "+int_feature_user_day_items",
    "+rpt_load_hourly",
    # incremental per-person state: the earlier of the stored and the new first day
    "+int_user_first_seen",
    # incremental replay from each changed person's restart, with windows per person and
    # per session (and the transitions its labels are tested against)
    "+ftr_user_event_sequences",
    "+fct_event_transitions",
]
COMPARED = {
    "marts.fct_events": "event_id, user_id, session_id, event_name, event_ts, revenue_usd",
    "marts.fct_sessions": (
        "session_id, user_id, session_index, session_started_at, session_ended_at, "
        "count_events, count_purchases, device, country, entry_event_name, exit_event_name"
    ),
    "marts.dim_users": (
        "user_id, is_identified, first_seen_at, acquisition_week, device_mode, country_mode, "
        "count_events, count_sessions, count_anonymous_ids"
    ),
    "intermediate.int_identity_stitched": "anonymous_hash, user_hash, is_shared_device",
    "features.int_feature_user_days": (
        "user_id, event_date, available_date, count_events, count_purchases, first_event_at"
    ),
    "features.int_feature_user_day_items": (
        "user_id, event_date, available_date, event_name, feature, count_events"
    ),
    "reports.rpt_load_hourly": "hour_ts, count_events, count_active_users, is_complete",
    "intermediate.int_user_first_seen": "user_id, attribute, value, first_date",
    "features.ftr_user_event_sequences": (
        "user_id, event_id, previous_event_name_1, seconds_since_previous_event_1, "
        "session_event_number, seconds_since_session_start, seconds_since_previous_session, "
        "count_previous_sessions, count_events_so_far, session_count_page_view, "
        "share_page_view_so_far, next_event_name"
    ),
}


@pytest.fixture(scope="module")
def postgres_server():
    try:
        import dbt.adapters.postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as err:
        pytest.skip(f"dbt-postgres / psycopg2 not installed: {err}")
    server = throwaway_postgres()
    try:
        port = server.__enter__()
    except NoPostgres as err:
        pytest.skip(str(err))
    try:
        yield port
    finally:
        server.__exit__(None, None, None)


def _pg_connect(port: int):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=port, user="uba", dbname="uba")


def _load_postgres(port: int, events: pl.DataFrame, replace: bool) -> None:
    """Copy `events` into PostgreSQL's raw.events_validated as one new load batch (load_id),
    as the gate appends a batch."""
    buffer = io.StringIO()
    # The validated columns but load_id, which the update below fills in.
    columns = [c for c in VALIDATED_COLUMNS if c != "load_id"]
    events.select(columns).write_csv(buffer, null_value="")
    buffer.seek(0)
    pg = _pg_connect(port)
    try:
        cur = pg.cursor()
        if replace:
            cur.execute(
                "create schema if not exists raw; drop table if exists raw.events_validated; "
                "create table raw.events_validated (raw_id text, event_id text, user_id text, "
                "anonymous_id text, event_name text, event_ts timestamp, received_at timestamp, "
                "session_id text, properties text, loaded_at timestamp, load_id bigint)"
            )
        cur.copy_expert(
            f"copy raw.events_validated ({', '.join(columns)}) from stdin with "
            "(format csv, header true)",
            buffer,
        )
        cur.execute(
            "update raw.events_validated set load_id = (select coalesce(max(load_id), 0) + 1 "
            "from raw.events_validated) where load_id is null"
        )
        pg.commit()
    finally:
        pg.close()


def _pg_frame(port: int, sql: str) -> pl.DataFrame:
    pg = _pg_connect(port)
    try:
        cur = pg.cursor()
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)
    finally:
        pg.close()


def _normalise(frame: pl.DataFrame) -> set[tuple]:
    # floats compared to 6 decimals: the engines print/parse doubles independently
    frame = frame.with_columns(pl.col(pl.Float64).round(6))
    return set(frame.iter_rows())


def _build(tmp_path: Path, target: str, *extra: str, duckdb_path: Path | None = None) -> None:
    run_dbt(
        ["build", "--select", *CORE_SELECT, *extra],
        duckdb_path=duckdb_path,
        target=target,
        quiet=True,
        target_path=tmp_path / f"dbt-target-{target}",
    )


def test_core_models_match_duckdb_on_postgres(postgres_server, tmp_path, monkeypatch):
    port = postgres_server
    monkeypatch.setenv("UBA_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("UBA_PG_PORT", str(port))
    monkeypatch.setenv("UBA_PG_USER", "uba")
    monkeypatch.setenv("UBA_PG_DATABASE", "uba")

    events = make_planted_events().events
    cut = events["received_at"].sort()[int(events.height * 0.6)]
    first = events.filter(pl.col("received_at") < cut)
    rest = events.filter(pl.col("received_at") >= cut)

    duck = tmp_path / "warehouse.duckdb"
    write_validated(duck, events)
    _build(tmp_path, "duckdb", "--full-refresh", duckdb_path=duck)

    # PostgreSQL: full refresh on the first part, then an incremental run with the rest
    _load_postgres(port, first, replace=True)
    _build(tmp_path, "postgres", "--full-refresh")
    _load_postgres(port, rest, replace=False)
    _build(tmp_path, "postgres")

    con = connect(duck, read_only=True)
    try:
        for table, columns in COMPARED.items():
            expected = con.execute(f"select {columns} from {table}").pl()
            actual = _pg_frame(port, f"select {columns} from {table}")
            assert expected.height > 0 and actual.height == expected.height, table
            assert _normalise(actual) == _normalise(expected), table
    finally:
        con.close()

    # Column descriptions are PostgreSQL comments too (dbt persist_docs), as on DuckDB.
    comments = _pg_frame(
        port,
        "select attname, col_description(attrelid, attnum) as comment from pg_attribute "
        "where attrelid = 'marts.fct_events'::regclass and attnum > 0 and not attisdropped",
    )
    assert comments.height > 5 and comments["comment"].null_count() == 0, comments
