"""The anomaly model, as the house sees it."""

from python_models.anomaly import on_warehouse
from python_models.anomaly.daily import ACTIVITY_MART, ACTIVITY_TABLE
from python_models.anomaly.examples import example
from python_models.anomaly.model import AnomalyModel
from python_models.anomaly.params import AnomalyParams
from python_models.common.spec import ModelSpec

SPEC = ModelSpec(
    name="anomaly",
    summary="user-days whose activity departs from the user's habits (possible takeovers)",
    estimator=AnomalyModel,
    params=AnomalyParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=on_warehouse.latest_features,
    inputs=(ACTIVITY_TABLE, "marts.fct_events"),
    score_table="ml_scores.anomaly_alerts",
    label_columns=("predicted_label",),
    score_bounds=(None, None),
    reasons="rules on the day's signals (new country, odd hours, bursts, account changes)",
    kinds=("scikitlearn",),
    example=example,
    column_docs={
        "as_of_date": "The activity day (UTC) that was flagged; a user can have several.",
        "score": "How far the day departs from the user's habits (isolation forest and "
        "deviation from the user's baseline, standardized; higher = more unusual). Only days "
        "at or above the model's alert threshold are kept.",
        "predicted_label": "Always `anomalous` (the table holds alerts only).",
    },
    feature_mart=ACTIVITY_MART,
    rowwise_scoring=True,
    score_population=on_warehouse.scored_user_days,
)
