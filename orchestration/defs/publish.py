"""Publishing for readers: BI tools read a copy, never the file the pipeline writes."""

import dagster as dg

from orchestration.defs.dbt import uba_dbt_after_scoring, uba_dbt_assets
from orchestration.defs.impact import impact_assets
from orchestration.defs.ml import after_scoring_assets, score_key
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings
from python_models.models import MODELS


@dg.asset(
    key=dg.AssetKey(["published", "warehouse"]),
    # Published last: after the scores, the tables built from them (Python and dbt: the
    # semantic layer's views over the scores), every dbt report and the impact tables.
    deps=[
        *(score_key(spec) for spec in MODELS),
        uba_dbt_assets,
        uba_dbt_after_scoring,
        *(asset.key for asset in after_scoring_assets),
        *(asset.key for asset in impact_assets),
    ],
    group_name="publish",
    pool=WRITER_POOL,
    kinds={"duckdb", "parquet"},
)
def published_warehouse(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """A read-only snapshot of the warehouse (DuckDB file) plus Parquet exports of the marts,
    features, reports and score tables, swapped in atomically so readers never see a half copy
    and never hold a lock on the pipeline's file."""
    from python_models import days_written
    from python_models.publish import publish_warehouse

    out_dir = get_settings().published_dir
    with warehouse.connect() as con:
        # Tables whose content is unchanged since the last publication are carried over, and
        # of the big ones only the days the day's build can have written are hashed, as
        # `uba refresh` publishes (python_models.days_written).
        bounds, basis = days_written.publish_bounds(con, out_dir)
        result = publish_warehouse(
            con, out_dir, only_changed=True, unchanged_before=bounds, basis=basis
        )
    return dg.MaterializeResult(
        metadata={
            "published_duckdb": dg.MetadataValue.path(str(result.duckdb_path)),
            "parquet_dir": dg.MetadataValue.path(str(result.parquet_dir)),
            "tables": len(result.tables),
            "tables_copied": len(result.copied),
            "tables_hashed_by_day": len(bounds),
        }
    )
