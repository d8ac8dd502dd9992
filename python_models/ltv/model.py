"""LTV: revenue over the label horizon, LightGBM with a tweedie objective (many zeros, a long
tail) against a historical-average baseline (past spend rate x horizon)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Self

import numpy as np
import polars as pl

from python_models.common.booster import BoostedEstimator, StoredBooster, train_booster
from python_models.common.features import to_matrix
from python_models.common.metrics import regression_metrics
from python_models.common.reasons import column_medians
from python_models.ltv.params import LtvParams

if TYPE_CHECKING:  # lightgbm imports scikit-learn (seconds): loaded where it is used
    import lightgbm as lgb

VARIANTS = ("historical_average", "lightgbm")
SERVED = "lightgbm"
_WINDOW = re.compile(r"_(\d+)d$")


def pick_baseline_feature(features: list[str], chosen: str | None) -> tuple[str, float]:
    """(feature, window days) for the spend-rate baseline: a `*revenue*_<N>d` sum."""
    if chosen:
        match = _WINDOW.search(chosen)
        if not match:
            raise ValueError(f"baseline_feature {chosen!r} must end in _<days>d")
        return chosen, float(match.group(1))
    candidates = [
        (float(m.group(1)), f)
        for f in features
        if "revenue" in f and not f.startswith("avg") and (m := _WINDOW.search(f))
    ]
    if not candidates:
        raise LookupError(
            "no revenue sum feature (…revenue…_<N>d) among the LTV features for the baseline; "
            "set params baseline_feature"
        )
    window, feature = max(candidates)
    return feature, window


def fit_booster(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    features: list[str],
    params: LtvParams,
) -> tuple[lgb.Booster, int]:
    """Tweedie LightGBM with early stopping on (x_valid, y_valid): (booster, best iteration)."""
    if np.any(y_fit < 0) or np.any(y_valid < 0):
        raise ValueError("future revenue must be >= 0 for the tweedie objective")
    return train_booster(
        params.lightgbm(),
        x_fit,
        y_fit,
        x_valid,
        y_valid,
        features,
        params.num_boost_round,
        params.early_stopping_rounds,
    )


class LtvModel(BoostedEstimator):
    """Predicted revenue over `horizon_days`. `fit(frame, validation)`: `validation` drives
    early stopping; both frames hold the revenue `label`."""

    params_class = LtvParams
    params: LtvParams

    def __init__(self, features: list[str], params: LtvParams | None = None, horizon_days=90):
        super().__init__(features, params)
        self.horizon_days = int(horizon_days)

    def baseline_feature(self) -> tuple[str, float]:
        """(column, window days) the historical-average baseline reads."""
        return pick_baseline_feature(self.features, self.params.baseline_feature)

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        if validation is None:
            raise ValueError("ltv needs a validation frame (early stopping)")
        baseline = self.baseline_feature()
        x_fit = to_matrix(frame, self.features)
        booster, best = fit_booster(
            x_fit,
            frame["label"].cast(pl.Float64).to_numpy(),
            to_matrix(validation, self.features),
            validation["label"].cast(pl.Float64).to_numpy(),
            self.features,
            self.params,
        )
        self.booster_ = StoredBooster(booster, best)
        self.baseline_feature_, self.baseline_window_days_ = baseline
        self.feature_medians_ = column_medians(x_fit)
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Predicted revenue (USD) over the horizon, per row."""
        self.check_fitted()
        return self.booster_.predict(to_matrix(frame, self.features))

    def baseline(self, frame: pl.DataFrame) -> np.ndarray:
        """Past spend rate x horizon."""
        self.check_fitted()
        spend = frame[self.baseline_feature_].cast(pl.Float64).fill_null(0.0).to_numpy()
        return spend / self.baseline_window_days_ * self.horizon_days

    def variant_scores(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        return {"historical_average": self.baseline(frame), "lightgbm": self.predict(frame)}

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        actual = frame["label"].cast(pl.Float64).to_numpy()
        predictions = self.variant_scores(frame)
        return pl.DataFrame(
            [
                {"variant": v, "split": "holdout", **regression_metrics(actual, predictions[v])}
                for v in VARIANTS
            ]
        )

    def predict_frame(self, frame: pl.DataFrame, with_reasons: bool = True) -> pl.DataFrame:
        """Predicted revenue, value tier and top-3 reasons for each row."""
        self.check_fitted()
        matrix = to_matrix(frame, self.features)
        predicted = self.booster_.predict(matrix)
        out = frame.select("user_id", "as_of_date").with_columns(
            pl.Series("score", predicted, dtype=pl.Float64),
            pl.Series("predicted_label", value_tier(predicted), dtype=pl.String),
        )
        return self.with_reasons(out, matrix) if with_reasons else out


def beats_baseline(evaluation: pl.DataFrame) -> bool:
    spearman = dict(zip(evaluation["variant"], evaluation["spearman"], strict=True))
    return spearman[SERVED] > spearman["historical_average"]


def value_tier(predicted: np.ndarray) -> np.ndarray:
    """'high' = top 10% of predicted revenue, 'medium' = next 40%, 'low' = the rest."""
    if predicted.size == 0:
        return np.array([], dtype=object)
    rank = np.argsort(np.argsort(-predicted, kind="stable"), kind="stable") / predicted.size
    return np.where(rank < 0.10, "high", np.where(rank < 0.50, "medium", "low"))
