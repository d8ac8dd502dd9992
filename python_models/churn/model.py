"""Churn: will the user have no event in the next `churn_horizon_days` days?

LightGBM with class weighting, calibrated on the last training snapshot, compared on the
holdout snapshot with two baselines: a recency rule and a standardized logistic regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from python_models.churn.params import ChurnParams
from python_models.common.features import to_matrix
from python_models.common.metrics import classification_metrics
from python_models.common.reasons import column_medians, explain

VARIANTS = ("recency_rule", "logistic_regression", "lightgbm", "lightgbm_calibrated")


@dataclass
class ChurnModel:
    features: list[str]
    params: ChurnParams
    booster_text: str
    calibrator: Any
    logistic: Pipeline
    best_iteration: int
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
        state["_booster"] = None  # the model text is the stored form
        return state

    def raw_margin(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, raw_score=True, num_iteration=self.best_iteration)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self._calibrate(self.raw_margin(to_matrix(frame, self.features)))

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        if isinstance(self.calibrator, IsotonicRegression):
            return self.calibrator.predict(margin)
        return self.calibrator.predict_proba(margin.reshape(-1, 1))[:, 1]

    def uncalibrated(self, frame: pl.DataFrame) -> np.ndarray:
        return self.booster.predict(
            to_matrix(frame, self.features), num_iteration=self.best_iteration
        )

    def importance(self) -> np.ndarray:
        return self.booster.feature_importance(importance_type="gain")


def recency_scores(frame: pl.DataFrame, recency_feature: str) -> np.ndarray:
    if recency_feature not in frame.columns:
        raise LookupError(f"the recency baseline needs column {recency_feature!r}")
    # A user with no recorded event is as inactive as it gets.
    return frame[recency_feature].cast(pl.Float64).fill_null(1e9).fill_nan(1e9).to_numpy()


def _check_labels(frame: pl.DataFrame, where: str) -> np.ndarray:
    labels = frame["label"].cast(pl.Int8).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError(f"the {where} set has a single class; churn cannot be learned from it")
    return labels


def fit(
    fit_frame: pl.DataFrame,
    calibration_frame: pl.DataFrame,
    features: list[str],
    params: ChurnParams,
) -> ChurnModel:
    """Fit LightGBM (early stopping on the calibration snapshot), its calibrator, the baseline."""
    y_fit = _check_labels(fit_frame, "fit")
    y_cal = _check_labels(calibration_frame, "calibration")
    x_fit = to_matrix(fit_frame, features)
    x_cal = to_matrix(calibration_frame, features)

    positives = float(y_fit.sum())
    lgb_params = params.lightgbm() | {"scale_pos_weight": (len(y_fit) - positives) / positives}
    train_set = lgb.Dataset(x_fit, y_fit, feature_name=list(features), free_raw_data=True)
    valid_set = lgb.Dataset(x_cal, y_cal, reference=train_set)
    booster = lgb.train(
        lgb_params,
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    best_iteration = booster.best_iteration or params.num_boost_round
    margin = booster.predict(x_cal, raw_score=True, num_iteration=best_iteration)
    if params.calibration == "isotonic":
        calibrator: Any = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        calibrator.fit(margin, y_cal)
    else:
        calibrator = LogisticRegression(C=1e6, max_iter=1000)
        calibrator.fit(margin.reshape(-1, 1), y_cal)

    logistic = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=params.seed),
    )
    logistic.fit(x_fit, y_fit)
    return ChurnModel(
        features=list(features),
        params=params,
        booster_text=booster.model_to_string(num_iteration=best_iteration),
        calibrator=calibrator,
        logistic=logistic,
        best_iteration=best_iteration,
        feature_medians=column_medians(x_fit),
    )


def variant_scores(model: ChurnModel, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    matrix = to_matrix(frame, model.features)
    return {
        "recency_rule": recency_scores(frame, model.params.recency_feature),
        "logistic_regression": model.logistic.predict_proba(matrix)[:, 1],
        "lightgbm": model.booster.predict(matrix, num_iteration=model.best_iteration),
        "lightgbm_calibrated": model.predict_proba(frame),
    }


def evaluate(model: ChurnModel, holdout: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """One row per variant with ROC AUC, PR AUC, Brier, precision and lift in the top 10%."""
    y = _check_labels(holdout, "holdout")
    scores = variant_scores(model, holdout)
    rows = []
    for variant in VARIANTS:
        metrics = classification_metrics(
            y,
            scores[variant],
            top_fraction=model.params.top_fraction,
            is_probability=variant != "recency_rule",
        )
        rows.append({"variant": variant, "split": "holdout", **metrics})
    return pl.DataFrame(rows), scores


def beats_baselines(evaluation: pl.DataFrame, metric: str = "roc_auc") -> bool:
    values = dict(zip(evaluation["variant"], evaluation[metric], strict=True))
    served = values["lightgbm_calibrated"]
    return served > values["recency_rule"] and served > values["logistic_regression"]


def score(model: ChurnModel, snapshot: pl.DataFrame, with_reasons: bool = True) -> pl.DataFrame:
    """Calibrated churn probability, predicted label and top-3 reasons for each row."""
    matrix = to_matrix(snapshot, model.features)
    probability = model._calibrate(model.raw_margin(matrix))
    out = snapshot.select("user_id", "as_of_date").with_columns(
        pl.Series("score", probability, dtype=pl.Float64),
        pl.Series("predicted_label", probability >= model.params.threshold, dtype=pl.Boolean),
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
