"""The LTV model, as the house sees it."""

from python_models.common.features import (
    FEATURES_TABLE,
    LABELS_TABLE,
    latest_snapshot_features,
    score_latest_snapshot,
)
from python_models.common.spec import ModelSpec
from python_models.ltv import on_warehouse
from python_models.ltv.examples import example
from python_models.ltv.model import LtvModel
from python_models.ltv.params import LtvParams

SPEC = ModelSpec(
    name="ltv",
    summary="revenue (USD) the user will bring over the LTV horizon (90 days), and its tier",
    estimator=LtvModel,
    params=LtvParams,
    train=on_warehouse.train,
    score=score_latest_snapshot,
    latest_features=latest_snapshot_features,
    inputs=(FEATURES_TABLE, LABELS_TABLE),
    score_table="ml_scores.ltv_scores",
    label_columns=("predicted_label",),
    score_bounds=(0.0, None),
    reasons="top-3 LightGBM contributions (TreeSHAP), in the catalogue's words",
    kinds=("lightgbm",),
    example=example,
    column_docs={
        "score": "Predicted revenue in USD over the next 90 days (the LTV horizon).",
        "predicted_label": "Value tier among the scored users: `high` (top 10% of predicted "
        "revenue), `medium` (next 40%), `low` (the rest).",
    },
)
