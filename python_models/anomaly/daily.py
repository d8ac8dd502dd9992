"""Per-user-day activity for the anomaly model: read from the dbt model
features.ftr_user_day_activity (dbt_project/models/features/ftr_user_day_activity.sql), where the
SQL lives. The model's feature columns come from that mart's column meta (`used_by: [anomaly]`).

"New" country / device means not seen on any earlier day of the same user, so the first day a
user is seen never counts as new. Deviation columns compare a day with the user's own trailing
baseline (up to dbt var uba__anomaly_baseline_days previous active days):
z = (x - mean) / max(std, floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl

from python_models.common import catalogue
from python_models.warehouse import Warehouse, table_exists

ACTIVITY_MART = "ftr_user_day_activity"
ACTIVITY_TABLE = f"features.{ACTIVITY_MART}"
# The dbt var the table was built with, stored per row; not a model input.
_BUILT_BASELINE_COLUMN = "baseline_window_days"

MODEL_COLUMNS = catalogue.feature_columns("anomaly", mart=ACTIVITY_MART)


def user_day_activity(
    con: Warehouse,
    since: date | None = None,
    baseline_days: int = 28,
    table: str = ACTIVITY_TABLE,
) -> pl.DataFrame:
    """One row per (user_id, activity_date) with activity and deviation columns, ordered by
    (activity_date, user_id).

    Baselines always use the full history; `since` only filters the rows returned. The
    baselines were computed by dbt with uba__anomaly_baseline_days: asking for another
    `baseline_days` is an error that says how to rebuild, never silently different features.
    """
    _check_built(con, baseline_days, table)
    return _read(con, table, since, None)


def user_day_activity_slices(
    con: Warehouse, since: date | None, baseline_days: int, rows: int
) -> Iterator[pl.DataFrame]:
    """user_day_activity's rows a range of activity dates at a time (activity_date_slices),
    one frame in memory at a time; one empty frame when there is none."""
    _check_built(con, baseline_days, ACTIVITY_TABLE)
    for start, end in activity_date_slices(con, since, rows) or [(since, None)]:
        yield _read(con, ACTIVITY_TABLE, start, end)


def activity_date_slices(con: Warehouse, since: date | None, rows: int) -> list[tuple[date, date]]:
    """[start, end) activity-date ranges of about `rows` user-days each, from `since` (a
    single date holding more is a slice of its own)."""
    where, args = _date_bounds(since, None)
    days = con.execute(
        f"select activity_date, count(*) from {ACTIVITY_TABLE} {where} group by 1 order by 1",
        args,
    ).fetchall()
    slices: list[tuple[date, date]] = []
    start, held = None, 0
    for day, count in days:
        if start is not None and held + count > rows:
            slices.append((start, day))
            start, held = None, 0
        start, held = start or day, held + count
    if start is not None:
        slices.append((start, days[-1][0] + timedelta(days=1)))
    return slices


def _check_built(con: Warehouse, baseline_days: int, table: str) -> None:
    if baseline_days < 1:
        raise ValueError("baseline_days must be >= 1")
    if not table_exists(con, table):
        raise LookupError(f"{table} not found: run `uba build` first")
    built = con.execute(f"select distinct {_BUILT_BASELINE_COLUMN} from {table}").fetchall()
    built_days = sorted(row[0] for row in built)
    if built_days and built_days != [baseline_days]:
        raise ValueError(
            f"{table} was built with uba__anomaly_baseline_days={built_days[0]}, the model asks"
            f" for baseline_days={baseline_days}: rebuild with dbt build --select"
            f" {ACTIVITY_MART} --vars '{{uba__anomaly_baseline_days: {baseline_days}}}'"
            f" or train with baseline_days={built_days[0]}"
        )


def _date_bounds(since: date | None, until: date | None) -> tuple[str, list | None]:
    """The where clause and parameters of activity dates in [since, until) (None: open)."""
    bounds = [("activity_date >= ?", since), ("activity_date < ?", until)]
    bounds = [(condition, day) for condition, day in bounds if day is not None]
    where = ("where " + " and ".join(c for c, _ in bounds)) if bounds else ""
    return where, [day for _, day in bounds] or None


def _read(con: Warehouse, table: str, since: date | None, until: date | None) -> pl.DataFrame:
    where, args = _date_bounds(since, until)
    frame = con.execute(f"select * from {table} {where} order by activity_date, user_id", args).pl()
    return frame.drop(_BUILT_BASELINE_COLUMN)
