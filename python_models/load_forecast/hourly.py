"""Reading the load forecast's input: the dbt report reports.rpt_load_hourly
(dbt_project/models/reports/rpt_load_hourly.sql, where the SQL lives), one row per UTC hour,
as a long frame (metric, hour_ts, value) of the complete hours."""

from __future__ import annotations

import duckdb
import polars as pl

HOURLY_TABLE = "reports.rpt_load_hourly"
# The series forecast: columns of the report; their names are the score table's `metric`.
METRICS = ("count_events", "count_active_users")


def load_hourly(con: duckdb.DuckDBPyConnection, metrics: list[str] | None = None) -> pl.DataFrame:
    """(metric, hour_ts, value) for every complete hour, ordered by metric and hour."""
    metrics = list(metrics or METRICS)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown load metrics {unknown}; known: {list(METRICS)}")
    try:
        wide = con.execute(
            f"select hour_ts, {', '.join(metrics)} from {HOURLY_TABLE} "
            "where is_complete order by hour_ts"
        ).pl()
    except duckdb.CatalogException as err:
        raise LookupError(f"{HOURLY_TABLE} not found: run `uba build` first ({err})") from None
    return to_long(wide, metrics)


def to_long(wide: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    return (
        wide.unpivot(index="hour_ts", on=metrics, variable_name="metric", value_name="value")
        .with_columns(pl.col("value").cast(pl.Float64))
        .sort("metric", "hour_ts")
    )


def to_wide(long: pl.DataFrame) -> pl.DataFrame:
    """One row per hour, one column per metric (drift references)."""
    return long.pivot(on="metric", index="hour_ts", values="value").sort("hour_ts")
