"""The LTV model, as the house sees it."""

from python_models.common.features import LABELS_TABLE
from python_models.common.spec import ModelSpec
from python_models.ltv import on_warehouse
from python_models.ltv.examples import example
from python_models.ltv.model import DETAIL_COLUMNS, LtvForecaster
from python_models.ltv.params import LtvParams

SPEC = ModelSpec(
    name="ltv",
    summary="purchases, revenue (USD) and P(alive) of each customer over the LTV horizon "
    "(90 days), with intervals, and a value tier",
    estimator=LtvForecaster,
    params=LtvParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=on_warehouse.latest_features,
    score_with_features=on_warehouse.score_with_state,
    # Purchases from the events mart; the horizon as the labels mart records it.
    inputs=(on_warehouse.EVENTS_TABLE, LABELS_TABLE),
    score_table="ml_scores.ltv_scores",
    label_columns=("predicted_label",),
    detail_columns=DETAIL_COLUMNS,
    score_bounds=(0.0, None),
    reasons="purchase days, days since the last, spend per purchase day and P(alive)",
    kinds=("scipy", "lightgbm"),
    example=example,
    column_docs={
        "as_of_date": "The forecast's first day.",
        "score": "Served point forecast of revenue (USD) over horizon_days.",
        "predicted_label": "Value tier among the scored customers by expected revenue: `high`, "
        "`medium` or `low`.",
        "horizon_days": "The forecast horizon, in days.",
        "predicted_purchases": "Point forecast of purchase days over the horizon.",
        "predicted_purchases_low": "Purchase days, 80% interval low end.",
        "predicted_purchases_high": "Purchase days, 80% interval high end.",
        "predicted_revenue_usd_low": "Revenue (USD), 80% interval low end.",
        "predicted_revenue_usd_high": "Revenue (USD), 80% interval high end.",
        "p_alive": "Probability the customer is still active.",
        "p_alive_low": "P(alive), 80% interval low end.",
        "p_alive_high": "P(alive), 80% interval high end.",
        "expected_purchases": "Mean forecast of purchase days (add these up for totals).",
        "expected_revenue_usd": "Mean forecast of revenue in USD (add these up for totals).",
    },
    feature_mart=None,
    outcomes=on_warehouse.outcomes,
    train_file=on_warehouse.train_from_file,
    score_file=on_warehouse.score_from_file,
)
