"""Per-user-day activity for the anomaly model: read from the dbt model
features.ftr_user_day_activity (dbt_project/models/features/ftr_user_day_activity.sql), where the
SQL lives. The model's feature columns come from that mart's column meta (`used_by: [anomaly]`).

"New" country / device means not seen on any earlier day of the same user, so the first day a
user is seen never counts as new. Deviation columns compare a day with the user's own trailing
baseline (up to dbt var uba__anomaly_baseline_days previous active days):
z = (x - mean) / max(std, floor).
"""

from __future__ import annotations

from datetime import date

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
    until: date | None = None,
) -> pl.DataFrame:
    """One row per (user_id, activity_date) with activity and deviation columns, ordered by
    (activity_date, user_id).

    Baselines always use the full history; `since` and `until` (exclusive) only filter the
    rows returned. The
    baselines were computed by dbt with uba__anomaly_baseline_days: asking for another
    `baseline_days` is an error that says how to rebuild, never silently different features.
    """
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
    bounds = [("activity_date >= ?", since), ("activity_date < ?", until)]
    bounds = [(condition, day) for condition, day in bounds if day is not None]
    where = ("where " + " and ".join(c for c, _ in bounds)) if bounds else ""
    frame = con.execute(
        f"select * from {table} {where} order by activity_date, user_id",
        [day for _, day in bounds] or None,
    ).pl()
    return frame.drop(_BUILT_BASELINE_COLUMN)
