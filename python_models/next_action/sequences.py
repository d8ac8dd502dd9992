"""Reading the next-action inputs: the dbt feature mart features.ftr_user_event_sequences
(dbt_project/models/features/ftr_user_event_sequences.sql, where the SQL lives) and the
transition mart marts.fct_event_transitions (the Markov baseline). The model's feature columns
come from the mart's column meta (`used_by: [next_action]`)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from python_models.common import catalogue
from python_models.warehouse import as_warehouse

SEQUENCE_MART = "ftr_user_event_sequences"
SEQUENCE_TABLE = f"features.{SEQUENCE_MART}"
# Each user's newest row of the mart without the label (dbt_project/models/features/
# int_newest_sequence_rows.sql): what a scoring reads.
NEWEST_ROWS_TABLE = "features.int_newest_sequence_rows"
TRANSITIONS_TABLE = "marts.fct_event_transitions"
EVENTS_TABLE = "marts.fct_events"
LABEL = "next_event_name"
# Label of the last event of a session (the mart's and the Markov chain's "next event").
SESSION_END = "session_end"
# Categorical features with no such earlier event.
NO_EVENT = "none"
# Context columns read beside the features (keys, time, label).
CONTEXT_COLUMNS = ("user_id", "event_id", "event_ts", "event_date")

MODEL_COLUMNS = catalogue.feature_columns("next_action", mart=SEQUENCE_MART)


def _select(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _read(
    con: duckdb.DuckDBPyConnection, sql: str, args: list | None = None, table: str = SEQUENCE_TABLE
) -> pl.DataFrame:
    try:
        return con.execute(sql, args or []).pl()
    except duckdb.CatalogException as err:
        raise LookupError(f"{table} not found: run `uba build` first ({err})") from None


TimeWindow = tuple[datetime | None, datetime | None]  # start <= event_ts < end; None: open


def _within(window: TimeWindow) -> tuple[str, list]:
    start, end = window
    parts, args = [f"{LABEL} is not null"], []
    if start is not None:
        parts.append("event_ts >= ?")
        args.append(start)
    if end is not None:
        parts.append("event_ts < ?")
        args.append(end)
    return " and ".join(parts), args


def labelled_span(con: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None]:
    """How many rows have a known next event, and the newest one's event time."""
    sql = f"select count(*), max(event_ts) from {SEQUENCE_TABLE} where {LABEL} is not null"
    try:
        count, newest = con.execute(sql).fetchone()
    except duckdb.CatalogException as err:
        raise LookupError(f"{SEQUENCE_TABLE} not found: run `uba build` first ({err})") from None
    return int(count), newest


def count_labelled(con: duckdb.DuckDBPyConnection, window: TimeWindow) -> int:
    where, args = _within(window)
    return int(
        con.execute(f"select count(*) from {SEQUENCE_TABLE} where {where}", args).fetchone()[0]
    )


def load_labelled(
    con: duckdb.DuckDBPyConnection,
    features: list[str],
    window: TimeWindow = (None, None),
    rows: int = 0,
    seed: int = 0,
) -> pl.DataFrame:
    """The window's rows whose next event is known, with the label as `label`, in time order:
    all of them, or (rows > 0) a seeded sample of `rows`. The sample is drawn in the warehouse
    (the first rows in a seeded hash order of their event ids: Warehouse.seeded_order_sql), so
    only the sample is read into memory: at 10M events reading every labelled row first
    peaked at 6 GB. The same rows and seed give the same sample."""
    columns = [*CONTEXT_COLUMNS, *features]
    where, args = _within(window)
    sample = ""
    if rows:
        # The ids drawn first, then their rows: ordering the whole window with every column
        # carried cost a third more CPU at 1M (the same rows).
        order = as_warehouse(con).seeded_order_sql("event_id", seed)
        sample = f"""and event_id in (
            select event_id from {SEQUENCE_TABLE}
            where {where} order by {order}, event_id limit {int(rows)}
        )"""
        args = args + args
    return _read(
        con,
        f"""select {_select(columns)}, {LABEL} as label from {SEQUENCE_TABLE}
        where {where} {sample}
        order by event_ts, event_id""",
        args,
    )


def load_latest(con: duckdb.DuckDBPyConnection, features: list[str]) -> pl.DataFrame:
    """Each user's newest row: the state the next-action scores start from. dbt keeps them
    (NEWEST_ROWS_TABLE, incremental on the people whose events changed): finding them here
    read every column of every row of the mart, ~1.2-1.9 s a day at 10M events."""
    columns = [*CONTEXT_COLUMNS, *features]
    sql = f"select {_select(columns)} from {NEWEST_ROWS_TABLE} order by user_id"
    return _read(con, sql, table=NEWEST_ROWS_TABLE)


def transition_counts(con: duckdb.DuckDBPyConnection, before: datetime) -> pl.DataFrame:
    """(event_name, next_event_name, transitions) from the transition mart for events before
    `before`; the end of a session counts as the next event 'session_end'.

    The mart's event_date is its event's day (event_ts's date), so the days before `before`'s
    are counted from the mart alone, and only that day's transitions are joined to their
    events' times: joining every transition to its event hashed every event id (at 10M events
    1.7 s and ~170 MB beside the samples next action's training has just read)."""
    day = before.date()
    return con.execute(
        f"""with before_cut as (
            select event_name, next_event_name
            from {TRANSITIONS_TABLE}
            where event_date < ?
            union all
            select transitions.event_name, transitions.next_event_name
            from {TRANSITIONS_TABLE} as transitions
            inner join {EVENTS_TABLE} as events using (event_id)
            where transitions.event_date = ? and events.event_ts >= ? and events.event_ts < ?
        )
        select event_name, coalesce(next_event_name, '{SESSION_END}') as next_event_name,
            count(*) as transitions
        from before_cut
        group by 1, 2
        order by 1, 2""",
        [day, day, datetime.combine(day, datetime.min.time()), before],
    ).pl()
