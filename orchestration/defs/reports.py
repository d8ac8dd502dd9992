"""Report assets: pictures of dbt report tables, attached to the run as metadata."""

import dagster as dg

from orchestration.defs.dbt import uba_dbt_assets
from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings

RETENTION_WEEKLY = next(k for k in uba_dbt_assets.keys if k.path[-1] == "rpt_retention_weekly")
# The newest cohorts and first weeks are what a reader looks at; older ones make it unreadable.
HEATMAP_COHORTS = 26
HEATMAP_PERIODS = 26


@dg.asset(
    key=dg.AssetKey(["reports", "retention_weekly_heatmap"]),
    deps=[RETENTION_WEEKLY],
    group_name="reports",
    # It only reads, but DuckDB will not open a file for reading while another process writes.
    pool=WRITER_POOL,
    kinds={"python", "matplotlib"},
)
def retention_weekly_heatmap(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Weekly cohort retention (rpt_retention_weekly) as a heatmap PNG in data/reports/."""
    import numpy as np

    from python_models.common.plots import retention_heatmap

    with warehouse.connect(read_only=True) as con:
        frame = con.execute(
            f"""
            with recent as (
                select distinct cohort_week from reports.rpt_retention_weekly
                order by cohort_week desc limit {HEATMAP_COHORTS}
            )
            select strftime(cohort_week, '%Y-%m-%d') as cohort, period_week, cohort_users,
                retention_exact
            from reports.rpt_retention_weekly
            where cohort_week in (select cohort_week from recent)
                and period_week < {HEATMAP_PERIODS}
            order by cohort_week, period_week
            """
        ).pl()
    path = get_settings().reports_dir / "retention_weekly.png"
    if frame.is_empty():
        return dg.MaterializeResult(metadata={"cohorts": 0, "note": "no retention rows yet"})
    cohorts = frame["cohort"].unique(maintain_order=True).to_list()
    periods = list(range(int(frame["period_week"].max()) + 1))
    matrix = np.full((len(cohorts), len(periods)), np.nan)
    sizes = dict(zip(frame["cohort"], frame["cohort_users"], strict=True))
    row_of = {cohort: i for i, cohort in enumerate(cohorts)}
    for cohort, period, _, retention in frame.iter_rows():
        matrix[row_of[cohort], period] = retention
    retention_heatmap(cohorts, periods, matrix, [int(sizes[c]) for c in cohorts], path)
    week1 = frame.filter(frame["period_week"] == 1)
    return dg.MaterializeResult(
        metadata={
            "heatmap": image(path),
            "cohorts": len(cohorts),
            "mean_week1_retention": float(week1["retention_exact"].mean() or 0.0),
        }
    )
