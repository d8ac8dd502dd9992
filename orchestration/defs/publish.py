"""Publishing for readers: BI tools read a copy, never the file the pipeline writes."""

import dagster as dg

from orchestration.defs.dbt import uba_dbt_after_scoring, uba_dbt_assets
from orchestration.defs.impact import impact_assets
from orchestration.defs.ml import after_scoring_assets, score_key
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings
from python_models.models import MODELS

PUBLISHED_KEY = dg.AssetKey(["published", "warehouse"])


@dg.asset(
    key=PUBLISHED_KEY,
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
    from python_models.publish import DayPublication

    # Tables whose content is unchanged since the last publication are carried over, and of
    # the big ones only the days the day's build can have written are hashed, as `uba refresh`
    # publishes (python_models.days_written); the run's dbt step may have started it, its
    # tables only dbt writes published beside the steps since (WarehouseResource).
    publication = warehouse.started_publication()
    try:
        if publication is not None:
            result = publication.publish()
        else:
            with warehouse.connect() as con:
                publication = DayPublication(con, get_settings().published_dir, bounded=True)
                result = publication.publish()
    finally:
        warehouse.release_publication()
    return dg.MaterializeResult(
        metadata={
            "published_duckdb": dg.MetadataValue.path(str(result.duckdb_path)),
            "parquet_dir": dg.MetadataValue.path(str(result.parquet_dir)),
            "tables": len(result.tables),
            "tables_copied": len(result.copied),
            "tables_hashed_by_day": len(publication.unchanged_before or {}),
            "tables_published_beside": len(result.beside),
            **(
                {"beside_seconds": round(seconds, 1)}
                if (seconds := publication.beside_seconds()) is not None
                else {}
            ),
        }
    )


def publish_beside_later_steps(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """As a run's dbt step ends after a day's build: when this process goes on to run the
    publish asset (the in-process executor; a multiprocess executor's step process runs only
    its own step), the publish of the tables only dbt writes starts in a thread beside the
    steps between (the feature mart's checks, scoring), as `uba refresh` publishes beside its
    scoring."""
    if get_settings().warehouse != "duckdb":
        return
    plan = context.get_step_execution_context().execution_plan
    if PUBLISHED_KEY.to_python_identifier() not in plan.step_keys_to_execute:
        return
    if warehouse.start_publication():
        context.log.info("publishing the tables only dbt writes beside the next steps")
    else:
        context.log.info("the publish hashes the big tables whole today: published at the end")
