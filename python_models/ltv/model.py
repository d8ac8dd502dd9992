"""LTV: customer lifetime value in the buy-till-you-die setting, as the house's estimator.

`LtvForecaster` reads purchases (user_id, purchased_at, revenue_usd; one row per purchase) and
wraps python_models.ltv.forecast:

- `fit(frame)` evaluates every forecaster on a time split of `frame` (calibration before the
  latest cut whose holdout has matured, holdout the next `horizon_days`) and learns which one
  is served (`served_model_`): the learned candidate only if it beats every baseline on
  per-customer MAE of purchases and revenue, otherwise the best baseline. The evaluation
  table is `evaluation_`, the reason `decision_`.
  Then it fits the served forecaster once on every purchase before `as_of` (training's end;
  default the day after the frame's last purchase): BG/NBD + Gamma-Gamma with their bootstrap
  sets, and the candidate's boosters when it is served (`served_fit_`, pickled with the model).
- `predict_frame(frame, as_of)` forecasts the next `horizon_days` from `as_of` (default the
  day after the frame's last purchase) for every customer, applying `served_fit_` to their RFM
  state at `as_of`: scoring fits nothing, as in the lifetimes/BTYD practice (fit once, then
  score the customers' current frequency, recency and age). A model pickled before
  `served_fit_` existed still scores by refitting at every call, with a warning to retrain.
- `predict(frame)` gives each purchase row its customer's forecast revenue (the estimator
  contract is one value per input row).

It replaced a LightGBM regressor on weekly feature snapshots (docs/models_ml.md, "LTV"): on a
clean time split at the 90-day horizon that model had no snapshot to learn from on the demo.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Self

import numpy as np
import polars as pl

from python_models.common.estimator import Estimator
from python_models.ltv.forecast import (
    FORECAST_COLUMNS,
    HISTORY_COLUMNS,
    TARGETS,
    evaluate_transactions,
    fit_served,
    forecast_transactions,
)
from python_models.ltv.params import LtvParams

# The score table's forecast columns (the spec declares them), after score and the tier.
DETAIL_COLUMNS = (
    "horizon_days",
    "predicted_purchases",
    "predicted_purchases_low",
    "predicted_purchases_high",
    "predicted_revenue_usd_low",
    "predicted_revenue_usd_high",
    "p_alive",
    "p_alive_low",
    "p_alive_high",
    "expected_purchases",
    "expected_revenue_usd",
)
TRANSACTION_COLUMNS = ["purchased_at", "revenue_usd"]
_METRICS = ("mae", "rmse", "mean_predicted", "mean_actual", "interval_coverage", "mae_vs_zero")


class LtvForecaster(Estimator):
    """Forecast purchases, spend and P(alive) over `horizon_days` per customer."""

    params_class = LtvParams
    params: LtvParams

    def __init__(
        self,
        features: list[str] | None = None,
        params: LtvParams | None = None,
        horizon_days: int = 90,
        calibration_end: date | None = None,
        as_of: date | None = None,
    ):
        super().__init__(features or TRANSACTION_COLUMNS, params)
        if horizon_days <= 0:
            raise ValueError("horizon_days must be positive")
        self.horizon_days = int(horizon_days)
        # First holdout day of the evaluation; None: the latest cut whose holdout has matured.
        self.calibration_end = calibration_end
        # Where the served fit ends (purchases before it); None: the day after the last one.
        self.as_of = as_of

    def _evaluate(self, frame: pl.DataFrame):
        return evaluate_transactions(
            frame, self.calibration_end, self.horizon_days, params=self.params.as_dict()
        )

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        """Choose the served forecaster on a time split of `frame` (`validation` unused: the
        holdout is the `horizon_days` after the calibration end, inside `frame`)."""
        result = self._evaluate(frame)
        self.served_model_ = result.served_model
        self.decision_ = result.decision
        self.calibration_end_: date = result.calibration_end
        self.evaluation_ = result.evaluation
        self.customers_ = result.customers
        self.split_ = result.describe()
        # Per customer and forecaster, with the holdout actuals (not pickled with the model).
        self._holdout_predictions = result.predictions
        self.served_fit_ = fit_served(
            frame, self.horizon_days, self.served_model_, self.as_of, self.params.as_dict()
        )
        return self

    def holdout_predictions(self) -> pl.DataFrame:
        """The last fit's holdout forecasts per customer and forecaster, with the actuals."""
        self.check_fitted()
        predictions = getattr(self, "_holdout_predictions", None)
        return pl.DataFrame() if predictions is None else predictions

    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "_holdout_predictions"}

    def forecast(self, frame: pl.DataFrame, as_of: date | None = None) -> pl.DataFrame:
        """forecast_transactions with the served forecaster as fitted at training (one row
        per customer)."""
        self.check_fitted()
        fitted = getattr(self, "served_fit_", None)
        if fitted is None:
            print(
                "[ltv] this model was trained before its fit was stored: refitting at this "
                "scoring; retrain it (`uba train --model ltv`) to score with a stored fit",
                file=sys.stderr,
            )
        return forecast_transactions(
            frame, self.horizon_days, self.served_model_, as_of, self.params.as_dict(), fitted
        )

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Each row's customer's point forecast of revenue (USD) over the horizon."""
        forecast = self.forecast(frame).select("user_id", "predicted_revenue_usd")
        rows = frame.select(pl.col("user_id").cast(pl.String))
        joined = rows.join(forecast, on="user_id", how="left", maintain_order="left")
        return joined["predicted_revenue_usd"].fill_null(0.0).to_numpy()

    def predict_frame(self, frame: pl.DataFrame, as_of: date | None = None) -> pl.DataFrame:
        """Score-table rows: score = the served point forecast of revenue, predicted_label =
        value tier by expected revenue, the forecast columns and reasons in words."""
        return forecast_rows(self.forecast(frame, as_of))

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per forecaster on a time split of `frame`: per target, MAE, RMSE, mean
        predicted / actual, interval coverage and MAE relative to `zero`; served = 1 for
        the one that would be served."""
        return wide_evaluation(self._evaluate(frame).evaluation)


def wide_evaluation(evaluation: pl.DataFrame) -> pl.DataFrame:
    """forecast's long table (model x target) as one row per variant, a column per metric and
    target (`mae_purchases`, `mae_revenue_usd`, ...), plus `served` (0/1)."""
    out = None
    for target in TARGETS:
        part = evaluation.filter(pl.col("target") == target).select(
            pl.col("model").alias("variant"),
            *[pl.col(m).cast(pl.Float64).alias(f"{m}_{target}") for m in _METRICS],
            pl.col("served").cast(pl.Float64),
        )
        out = part if out is None else out.join(part.drop("served"), on="variant")
    return out.select(
        "variant",
        pl.lit("holdout").alias("split"),
        *[c for c in out.columns if c not in ("variant", "served")],
        "served",
    )


def forecast_rows(forecast: pl.DataFrame) -> pl.DataFrame:
    """forecast_transactions' rows in the score table's shape."""
    expected = forecast["expected_revenue_usd"].to_numpy()
    return forecast.select(
        pl.col("user_id").cast(pl.String),
        pl.col("as_of_date").cast(pl.Date),
        pl.col("predicted_revenue_usd").alias("score"),
        pl.Series("predicted_label", value_tier(expected), dtype=pl.String),
        *[
            pl.col(c).cast(pl.Float64) if c != "horizon_days" else pl.col(c).cast(pl.Int32)
            for c in DETAIL_COLUMNS
        ],
        reasons_in_words(forecast).alias("reasons"),
    )


def reasons_in_words(forecast: pl.DataFrame) -> pl.Expr:
    """'5 purchase days, the last 12 days ago; $38 per purchase day; 91% likely still a
    customer': what the forecast rests on (BG/NBD reads frequency, recency and spend)."""
    for column in HISTORY_COLUMNS:
        if column not in forecast.columns:
            raise ValueError(f"the forecast lacks {column}")
    days = pl.col("purchase_days").cast(pl.Int64)
    return pl.concat_str(
        days.cast(pl.String),
        pl.when(days == 1).then(pl.lit(" purchase day")).otherwise(pl.lit(" purchase days")),
        pl.lit(", the last "),
        pl.col("days_since_last_purchase").cast(pl.Int64).cast(pl.String),
        pl.lit(" days ago; $"),
        pl.col("mean_purchase_usd").round(0).cast(pl.Int64).cast(pl.String),
        pl.lit(" per purchase day; "),
        (pl.col("p_alive") * 100).round(0).cast(pl.Int64).cast(pl.String),
        pl.lit("% likely still a customer"),
    )


def value_tier(expected: np.ndarray) -> np.ndarray:
    """'high' = top 10% of expected revenue, 'medium' = next 40%, 'low' = the rest (ties by
    position, so the shares are exact)."""
    if expected.size == 0:
        return np.array([], dtype=object)
    rank = np.argsort(np.argsort(-expected, kind="stable"), kind="stable") / expected.size
    return np.where(rank < 0.10, "high", np.where(rank < 0.50, "medium", "low"))


__all__ = ["DETAIL_COLUMNS", "FORECAST_COLUMNS", "LtvForecaster", "forecast_rows"]
