"""What runs show people, as plain functions: the weekly retention heatmap (a PNG from
reports.rpt_retention_weekly) and markdown tables for run metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

RETENTION_WEEKLY_TABLE = "reports.rpt_retention_weekly"
# The newest cohorts and first weeks are what a reader looks at; older ones make it unreadable.
HEATMAP_COHORTS = 26
HEATMAP_PERIODS = 26


@dataclass(frozen=True)
class Heatmap:
    path: Path | None  # None when there was nothing to draw
    cohorts: int
    mean_week1_retention: float


def read_weekly_retention(
    con: duckdb.DuckDBPyConnection, cohorts: int = HEATMAP_COHORTS, periods: int = HEATMAP_PERIODS
) -> pl.DataFrame:
    """The newest `cohorts` cohorts' first `periods` weeks: cohort, period_week, cohort_users,
    retention_exact."""
    return con.execute(
        f"""
        with recent as (
            select distinct cohort_week from {RETENTION_WEEKLY_TABLE}
            order by cohort_week desc limit {int(cohorts)}
        )
        select strftime(cohort_week, '%Y-%m-%d') as cohort, period_week, cohort_users,
            retention_exact
        from {RETENTION_WEEKLY_TABLE}
        where cohort_week in (select cohort_week from recent)
            and period_week < {int(periods)}
        order by cohort_week, period_week
        """
    ).pl()


def retention_matrix(frame: pl.DataFrame) -> tuple[list[str], list[int], np.ndarray, list[int]]:
    """(cohorts, periods, cohort x period retention with NaN where not observed, sizes)."""
    cohorts = frame["cohort"].unique(maintain_order=True).to_list()
    periods = list(range(int(frame["period_week"].max()) + 1))
    matrix = np.full((len(cohorts), len(periods)), np.nan)
    row_of = {cohort: i for i, cohort in enumerate(cohorts)}
    rows = [row_of[c] for c in frame["cohort"]]
    matrix[rows, frame["period_week"].to_numpy()] = frame["retention_exact"].to_numpy()
    sizes = dict(zip(frame["cohort"], frame["cohort_users"], strict=True))
    return cohorts, periods, matrix, [int(sizes[c]) for c in cohorts]


def draw_weekly_retention(con: duckdb.DuckDBPyConnection, path: Path) -> Heatmap:
    """Weekly cohort retention as a heatmap PNG at `path` (nothing drawn without rows)."""
    from python_models.common.plots import retention_heatmap

    frame = read_weekly_retention(con)
    if frame.is_empty():
        return Heatmap(path=None, cohorts=0, mean_week1_retention=0.0)
    cohorts, periods, matrix, sizes = retention_matrix(frame)
    retention_heatmap(cohorts, periods, matrix, sizes, path)
    week1 = frame.filter(pl.col("period_week") == 1)
    return Heatmap(
        path=path,
        cohorts=len(cohorts),
        mean_week1_retention=float(week1["retention_exact"].mean() or 0.0),
    )


def markdown_table(
    frame: pl.DataFrame, float_format: str = ".4f", max_rows: int | None = None
) -> str:
    """A polars frame as a markdown table: floats in `float_format`, nulls empty, at most
    `max_rows` rows."""

    def cell(value) -> str:
        if value is None:
            return ""
        return format(value, float_format) if isinstance(value, float) else str(value)

    rows = frame.iter_rows() if max_rows is None else frame.head(max_rows).iter_rows()
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_counts(counts: Mapping[str, int], key: str, value: str, empty: str = "(none)") -> str:
    """A two-column markdown table of counts, sorted by key; one `empty` row when none."""
    rows = sorted(counts.items()) or [(empty, 0)]
    return "\n".join([f"| {key} | {value} |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
