"""Report assets: pictures of dbt report tables (drawn by python_models.reports)."""

import dagster as dg

from orchestration.defs.dbt import uba_dbt_assets
from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings

RETENTION_WEEKLY = next(k for k in uba_dbt_assets.keys if k.path[-1] == "rpt_retention_weekly")


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
    from python_models.reports import draw_weekly_retention

    with warehouse.connect(read_only=True) as con:
        heatmap = draw_weekly_retention(con, get_settings().reports_dir / "retention_weekly.png")
    if heatmap.path is None:
        return dg.MaterializeResult(metadata={"cohorts": 0, "note": "no retention rows yet"})
    return dg.MaterializeResult(
        metadata={
            "heatmap": image(heatmap.path),
            "cohorts": heatmap.cohorts,
            "mean_week1_retention": heatmap.mean_week1_retention,
        }
    )
