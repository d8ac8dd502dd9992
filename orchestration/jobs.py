"""Dagster jobs: what the schedules, the sensor and `uba demo` run."""

import dagster as dg

from orchestration.defs.ml import model_key
from python_models.models import MODELS

TRAINING = dg.AssetSelection.assets(*(model_key(spec) for spec in MODELS))

# Everything from raw files to the published copy, training included (the demo, first runs).
full_pipeline_job = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Load, gate, dbt build, train, score and publish.",
)

# Daily: new events in, incremental dbt build, score with the current champions, publish.
daily_refresh_job = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all() - TRAINING,
    description="Load new files, gate, incremental dbt build, batch scoring, publish.",
)

# Weekly (or on drift): retrain every model, re-score, publish.
retrain_job = dg.define_asset_job(
    "retrain_models",
    selection=TRAINING.downstream(),
    description="Retrain all models (champion/challenger), re-score and publish.",
)
