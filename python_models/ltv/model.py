"""LTV: revenue over the label horizon, LightGBM with a tweedie objective (many zeros, a long
tail) against a historical-average baseline (past spend rate x horizon)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl

from python_models.common.features import to_matrix
from python_models.common.metrics import regression_metrics
from python_models.common.reasons import column_medians, explain
from python_models.ltv.params import LtvParams

VARIANTS = ("historical_average", "lightgbm")
_WINDOW = re.compile(r"_(\d+)d$")


@dataclass
class LtvModel:
    features: list[str]
    params: LtvParams
    booster_text: str
    best_iteration: int
    horizon_days: int
    baseline_feature: str
    baseline_window_days: float
    feature_medians: np.ndarray = field(default_factory=lambda: np.empty(0))
    reference_scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    _booster: lgb.Booster | None = field(default=None, repr=False)

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.booster_text)
        return self._booster

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_booster"] = None
        return state

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        return self.booster.predict(to_matrix(frame, self.features))

    def baseline(self, frame: pl.DataFrame) -> np.ndarray:
        spend = frame[self.baseline_feature].cast(pl.Float64).fill_null(0.0).to_numpy()
        return spend / self.baseline_window_days * self.horizon_days

    def importance(self) -> np.ndarray:
        return self.booster.feature_importance(importance_type="gain")


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
    if np.any(y_fit < 0) or np.any(y_valid < 0):
        raise ValueError("future revenue must be >= 0 for the tweedie objective")
    train_set = lgb.Dataset(x_fit, y_fit, feature_name=list(features))
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set)
    booster = lgb.train(
        params.lightgbm(),
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    return booster, booster.best_iteration or params.num_boost_round


def fit(
    fit_frame: pl.DataFrame,
    valid_frame: pl.DataFrame,
    features: list[str],
    params: LtvParams,
    horizon_days: int,
    baseline: tuple[str, float],
) -> LtvModel:
    x_fit = to_matrix(fit_frame, features)
    booster, best = fit_booster(
        x_fit,
        fit_frame["label"].cast(pl.Float64).to_numpy(),
        to_matrix(valid_frame, features),
        valid_frame["label"].cast(pl.Float64).to_numpy(),
        features,
        params,
    )
    return LtvModel(
        features=list(features),
        params=params,
        booster_text=booster.model_to_string(num_iteration=best),
        best_iteration=best,
        horizon_days=horizon_days,
        baseline_feature=baseline[0],
        baseline_window_days=baseline[1],
        feature_medians=column_medians(x_fit),
    )


def evaluate(model: LtvModel, holdout: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    actual = holdout["label"].cast(pl.Float64).to_numpy()
    predictions = {
        "historical_average": model.baseline(holdout),
        "lightgbm": model.predict(holdout),
    }
    rows = [
        {"variant": v, "split": "holdout", **regression_metrics(actual, predictions[v])}
        for v in VARIANTS
    ]
    return pl.DataFrame(rows), predictions


def beats_baseline(evaluation: pl.DataFrame) -> bool:
    spearman = dict(zip(evaluation["variant"], evaluation["spearman"], strict=True))
    return spearman["lightgbm"] > spearman["historical_average"]


def value_tier(predicted: np.ndarray) -> np.ndarray:
    """'high' = top 10% of predicted revenue, 'medium' = next 40%, 'low' = the rest."""
    if predicted.size == 0:
        return np.array([], dtype=object)
    rank = np.argsort(np.argsort(-predicted, kind="stable"), kind="stable") / predicted.size
    return np.where(rank < 0.10, "high", np.where(rank < 0.50, "medium", "low"))


def score(model: LtvModel, snapshot: pl.DataFrame, with_reasons: bool = True) -> pl.DataFrame:
    matrix = to_matrix(snapshot, model.features)
    predicted = model.booster.predict(matrix)
    out = snapshot.select("user_id", "as_of_date").with_columns(
        pl.Series("score", predicted, dtype=pl.Float64),
        pl.Series("predicted_label", value_tier(predicted), dtype=pl.String),
    )
    if with_reasons:
        reasons = explain(
            model.booster,
            matrix,
            model.features,
            model.feature_medians,
            chunk_size=model.params.reason_chunk_size,
        )
        out = out.with_columns(pl.Series("reasons", reasons, dtype=pl.String))
    return out
