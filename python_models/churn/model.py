"""Churn: will the user have no event in the next `churn_horizon_days` days?

LightGBM with class weighting, calibrated on the last training snapshot, compared on the
holdout snapshot with two baselines: a recency rule and a standardized logistic regression.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import polars as pl

from python_models.churn.params import ChurnParams
from python_models.common.booster import BoostedEstimator, StoredBooster, train_booster
from python_models.common.features import to_matrix
from python_models.common.metrics import classification_metrics
from python_models.common.reasons import column_medians

VARIANTS = ("recency_rule", "logistic_regression", "lightgbm", "lightgbm_calibrated")
SERVED = "lightgbm_calibrated"
# The logistic baseline's solver: Newton steps on its 73 standardized features converge in
# ~5 iterations where lbfgs took ~270 gradient passes over the sample, to the same optimum (the
# loss is strictly convex; holdout ROC AUC 0.7732 lbfgs, 0.7734 Newton at 1M). The whole
# churn fit at 1M, one OpenBLAS thread as in `uba`, paired at load 12: 5.6 / 4.7 -> 2.9 / 2.7 s
# CPU (docs/performance.md).
BASELINE_SOLVER = "newton-cholesky"


def recency_scores(frame: pl.DataFrame, recency_feature: str) -> np.ndarray:
    if recency_feature not in frame.columns:
        raise LookupError(f"the recency baseline needs column {recency_feature!r}")
    # A user with no recorded event is as inactive as it gets.
    return frame[recency_feature].cast(pl.Float64).fill_null(1e9).fill_nan(1e9).to_numpy()


def _labels(frame: pl.DataFrame, where: str) -> np.ndarray:
    labels = frame["label"].cast(pl.Int8).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError(f"the {where} set has a single class; churn cannot be learned from it")
    return labels


def f1_threshold(labels: np.ndarray, probability: np.ndarray) -> float:
    """The probability at and above which predicting churn gives the best F1 on these rows
    (the highest such probability on ties)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, probability)
    # The curve's last point (recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = np.flatnonzero(f1 == f1.max())
    return float(thresholds[best[-1]])


def baseline_sample(rows: int, size: int, seed: int) -> np.ndarray:
    """Row positions of a seeded sample of `size` rows (every row when there are fewer), in
    their original order."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


class ChurnModel(BoostedEstimator):
    """Calibrated churn probability. `fit(frame, validation)`: `validation` (the last training
    snapshot) drives early stopping and the calibration; both frames hold a boolean `label`."""

    params_class = ChurnParams
    params: ChurnParams

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from python_models.common.imputation import MedianImputer

        if validation is None:
            raise ValueError("churn needs a validation frame (early stopping and calibration)")
        params = self.params
        y_fit = _labels(frame, "fit")
        y_cal = _labels(validation, "calibration")
        # The fit matrix in float32: the largest allocation of churn's training (4.5M
        # user-snapshots x 73 features at 100M events), halved; LightGBM bins the values
        # anyway, and a bin's edge lies midway between two float32 values, so a float64 value
        # at scoring falls on the side its float32 rounding did.
        x_fit = to_matrix(frame, self.features, dtype=np.float32)
        x_cal = to_matrix(validation, self.features)

        positives = float(y_fit.sum())
        settings = params.lightgbm() | {"scale_pos_weight": (len(y_fit) - positives) / positives}
        booster, best_iteration = train_booster(
            settings,
            x_fit,
            y_fit,
            x_cal,
            y_cal,
            self.features,
            params.num_boost_round,
            params.early_stopping_rounds,
        )
        margin = booster.predict(x_cal, raw_score=True, num_iteration=best_iteration)
        if params.calibration == "isotonic":
            calibrator: Any = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            calibrator.fit(margin, y_cal)
        else:
            calibrator = LogisticRegression(C=1e6, max_iter=1000)
            calibrator.fit(margin.reshape(-1, 1), y_cal)

        logistic = make_pipeline(
            MedianImputer(),
            StandardScaler(),
            LogisticRegression(
                max_iter=2000,
                class_weight="balanced",
                random_state=params.seed,
                solver=BASELINE_SOLVER,
            ),
        )
        sample = baseline_sample(len(y_fit), params.baseline_rows, params.seed)
        logistic.fit(x_fit[sample].astype(np.float64), y_fit[sample])
        self.booster_ = StoredBooster(booster, best_iteration)
        self.calibrator_ = calibrator
        self.threshold_ = (
            f1_threshold(y_cal, self._calibrate(margin))
            if params.threshold is None
            else params.threshold
        )
        self.logistic_ = logistic
        self.feature_medians_ = column_medians(x_fit).astype(np.float64)
        return self

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        from sklearn.isotonic import IsotonicRegression

        if isinstance(self.calibrator_, IsotonicRegression):
            return self.calibrator_.predict(margin)
        return self.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1]

    @property
    def decision_threshold(self) -> float:
        """The probability from which a user is predicted to churn (`threshold`, or learned)."""
        self.check_fitted()
        # Champions pickled before the threshold was learned used the fixed 0.5.
        return getattr(self, "threshold_", 0.5)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row."""
        self.check_fitted()
        return self._calibrate(self.booster_.predict(to_matrix(frame, self.features), True))

    def variant_scores(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The served model's and the baselines' scores per row, by variant."""
        self.check_fitted()
        matrix = to_matrix(frame, self.features)
        return {
            "recency_rule": recency_scores(frame, self.params.recency_feature),
            "logistic_regression": self.logistic_.predict_proba(matrix)[:, 1],
            "lightgbm": self.booster_.predict(matrix),
            "lightgbm_calibrated": self._calibrate(self.booster_.predict(matrix, True)),
        }

    def evaluate(
        self, frame: pl.DataFrame, scores: dict[str, np.ndarray] | None = None
    ) -> pl.DataFrame:
        """One row per variant with ROC AUC, PR AUC, Brier, precision and lift in the top 10%.
        `scores`: variant_scores(frame), when the caller has them already."""
        y = _labels(frame, "holdout")
        scores = self.variant_scores(frame) if scores is None else scores
        rows = []
        for variant in VARIANTS:
            metrics = classification_metrics(
                y,
                scores[variant],
                top_fraction=self.params.top_fraction,
                is_probability=variant != "recency_rule",
            )
            rows.append({"variant": variant, "split": "holdout", **metrics})
        return pl.DataFrame(rows)

    def predict_frame(self, frame: pl.DataFrame, with_reasons: bool = True) -> pl.DataFrame:
        """Calibrated churn probability, predicted label and top-3 reasons for each row."""
        self.check_fitted()
        matrix = to_matrix(frame, self.features)
        probability = self._calibrate(self.booster_.predict(matrix, raw_score=True))
        out = frame.select("user_id", "as_of_date").with_columns(
            pl.Series("score", probability, dtype=pl.Float64),
            pl.Series("predicted_label", probability >= self.decision_threshold, dtype=pl.Boolean),
        )
        return self.with_reasons(out, matrix) if with_reasons else out


def beats_baselines(evaluation: pl.DataFrame, metric: str = "roc_auc") -> bool:
    values = dict(zip(evaluation["variant"], evaluation[metric], strict=True))
    served = values[SERVED]
    return served > values["recency_rule"] and served > values["logistic_regression"]
