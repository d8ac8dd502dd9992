"""The Dagster code location: assembles assets, checks, jobs, schedules, sensors, resources."""

import dagster as dg

from orchestration.defs.dbt import dbt_resource, uba_dbt_after_scoring, uba_dbt_assets
from orchestration.defs.impact import impact_assets
from orchestration.defs.ingest import check_raw_events_quality, events_validated, raw_events
from orchestration.defs.ml import after_scoring_assets, scoring_assets, training_assets
from orchestration.defs.privacy import privacy_defs
from orchestration.defs.publish import published_warehouse
from orchestration.defs.quality import check_feature_mart_quality, score_checks
from orchestration.defs.reports import retention_weekly_heatmap
from orchestration.jobs import daily_refresh_job, full_pipeline_job, retrain_job
from orchestration.resources import WarehouseResource
from orchestration.schedules import daily_refresh_schedule, weekly_retrain_schedule
from orchestration.sensors import drift_retrain_sensor

defs = dg.Definitions(
    assets=[
        raw_events,
        events_validated,
        uba_dbt_assets,
        uba_dbt_after_scoring,
        *training_assets,
        *scoring_assets,
        *after_scoring_assets,
        published_warehouse,
        retention_weekly_heatmap,
        *impact_assets,
    ],
    asset_checks=[check_raw_events_quality, check_feature_mart_quality, *score_checks],
    jobs=[full_pipeline_job, daily_refresh_job, retrain_job],
    schedules=[daily_refresh_schedule, weekly_retrain_schedule],
    sensors=[drift_retrain_sensor],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
    # One process: the multiprocess executor re-imports everything per step (~7 s each on
    # 2 cores) and would let two steps open the DuckDB file for writing at once.
    executor=dg.in_process_executor,
)
defs = dg.Definitions.merge(defs, privacy_defs)  # erase_people, apply_retention (+ schedule)
