"""The churn model, as the house sees it."""

from python_models.churn import on_warehouse
from python_models.churn.examples import example
from python_models.churn.model import ChurnModel
from python_models.churn.params import ChurnParams
from python_models.common.features import FEATURES_TABLE, LABELS_TABLE
from python_models.common.spec import ModelSpec

SPEC = ModelSpec(
    name="churn",
    summary="probability that a user active in the last 7 days has no event in the churn "
    "horizon (30 days)",
    estimator=ChurnModel,
    params=ChurnParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=on_warehouse.latest_features,
    inputs=(FEATURES_TABLE, LABELS_TABLE),
    score_table="ml_scores.churn_scores",
    label_columns=("predicted_label",),
    score_bounds=(0.0, 1.0),
    reasons="top-3 LightGBM contributions (TreeSHAP), in the catalogue's words",
    kinds=("lightgbm",),
    example=example,
    column_docs={
        "score": "Probability (0 to 1, calibrated) that the user has no event in the next 30 "
        "days (the churn horizon).",
        "predicted_label": "True when score reaches the model version's decision threshold "
        "(learned at training: the probability with the best F1 on the calibration snapshot; "
        "the registry's metrics hold it as decision_threshold): the user is predicted to churn.",
    },
    watch_drift=True,
    outcomes=on_warehouse.outcomes,
    rowwise_scoring=True,
)
