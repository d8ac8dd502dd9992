"""Account anomalies per user-day: IsolationForest on daily activity + a deviation score from
the user's own baseline, combined; alerts carry their top reasons in words."""

from __future__ import annotations

from typing import Self

import numpy as np
import polars as pl

from python_models.anomaly.daily import MODEL_COLUMNS
from python_models.anomaly.params import AnomalyParams
from python_models.common.estimator import Estimator

_LOG_COLUMNS = {"count_events", "count_logins", "max_events_10m"}
VARIANT = "isolation_forest+deviation"


def model_matrix(daily: pl.DataFrame, columns: list[str]) -> np.ndarray:
    exprs = []
    for column in columns:
        expr = pl.col(column).cast(pl.Float64).fill_null(0.0)
        if column in _LOG_COLUMNS:
            expr = expr.log1p()
        exprs.append(expr.alias(column))
    return daily.select(exprs).to_numpy()


# Fewer rows than this per thread are scored on one: a thread's start costs more than it saves.
_MIN_ROWS_PER_THREAD = 10_000


def forest_scores(forest, matrix: np.ndarray, threads: int) -> np.ndarray:
    """IsolationForest.score_samples of `matrix`, its rows split into `threads` blocks scored at
    once: the trees' apply releases the GIL, and each row's score is the same sum over the trees
    in the same order whatever block it is in, so the scores equal a one-thread call's, bit for
    bit (scikit-learn's own n_jobs splits the trees and adds their depths in the threads' order,
    which is not)."""
    threads = min(threads, len(matrix) // _MIN_ROWS_PER_THREAD)
    if threads < 2:
        return forest.score_samples(matrix)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="uba-anomaly") as pool:
        return np.concatenate(list(pool.map(forest.score_samples, np.array_split(matrix, threads))))


def deviation_score(daily: pl.DataFrame) -> np.ndarray:
    """How far a day departs from the user's own habits (0 = as usual), additive evidence."""
    frame = daily.select(
        pl.col("z_events").clip(lower_bound=0).fill_null(0.0),
        pl.col("z_burst").clip(lower_bound=0).fill_null(0.0),
        (pl.col("odd_share_increase").clip(lower_bound=0) * 4).fill_null(0.0),
        (pl.col("account_changes_increase").clip(lower_bound=0)).fill_null(0.0),
        (pl.col("count_new_countries") * 3).cast(pl.Float64),
        (pl.col("count_new_devices") * 1).cast(pl.Float64),
    )
    return frame.to_numpy().sum(axis=1)


def _robust(values: np.ndarray) -> tuple[float, float]:
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    spread = float(q75 - q25)
    if spread <= 0:
        spread = float(np.std(values)) or 1.0
    return float(q50), spread


def evaluation_table(
    scores: np.ndarray, threshold: float, user_days: int | None = None
) -> pl.DataFrame:
    """Alert count and score quantiles of a set of scored user-days (`scores`, a sample of
    `user_days` training days when given)."""
    alerts = int((scores >= threshold).sum())
    return pl.DataFrame(
        [
            {
                "variant": VARIANT,
                "split": "training",
                "user_days": float(len(scores) if user_days is None else user_days),
                "sampled_user_days": float(len(scores)),
                "alerts": float(alerts),
                "alert_rate": alerts / len(scores),
                "threshold": threshold,
                "score_p50": float(pl.Series(scores).quantile(0.5)),
                "score_p99": float(pl.Series(scores).quantile(0.99)),
            }
        ]
    )


class AnomalyModel(Estimator):
    """Combined anomaly score per user-day (frame: one row per user_id, activity_date with the
    daily activity and deviation columns of `python_models.anomaly.daily`)."""

    params_class = AnomalyParams
    params: AnomalyParams

    def __init__(self, features: list[str] | None = None, params: AnomalyParams | None = None):
        super().__init__(MODEL_COLUMNS if features is None else features, params)

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        """`validation` is unused (unsupervised: the threshold is a share of training days)."""
        from sklearn.ensemble import IsolationForest

        params = self.params
        if frame.height < 50:
            raise ValueError(f"only {frame.height} user-days of activity: too few to learn from")
        self.forest_ = IsolationForest(
            n_estimators=params.n_estimators,
            max_samples=min(params.max_samples, frame.height),
            random_state=params.seed,
            n_jobs=params.n_jobs,
        ).fit(model_matrix(frame, self.features))
        # Robust scaling of each part (median, IQR) and the threshold from a seeded sample of
        # the training days (all of them when few), so the parts are comparable.
        sample = frame
        if frame.height > params.calibration_rows:
            sample = frame.sample(n=params.calibration_rows, seed=params.seed)
        forest, deviation = self.parts(sample)
        self.forest_center_, self.forest_scale_ = _robust(forest)
        self.deviation_center_, self.deviation_scale_ = _robust(deviation)
        scores = self._combine(forest, deviation)
        self.threshold_ = float(np.quantile(scores, 1 - params.alert_fraction))
        self.training_scores_ = scores
        self.training_user_days_ = frame.height
        return self

    def parts(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        matrix = model_matrix(frame, self.features)
        forest = -forest_scores(self.forest_, matrix, self.params.score_threads)
        return forest, deviation_score(frame)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Combined score per user-day (higher = more unusual)."""
        self.check_fitted()
        return self._combine(*self.parts(frame))

    def _combine(self, forest: np.ndarray, deviation: np.ndarray) -> np.ndarray:
        w = self.params.deviation_weight
        return (1 - w) * (forest - self.forest_center_) / self.forest_scale_ + w * (
            deviation - self.deviation_center_
        ) / self.deviation_scale_

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        return evaluation_table(self.predict(frame), self.threshold_)

    def predict_frame(self, frame: pl.DataFrame, alerts_only: bool = True) -> pl.DataFrame:
        """Scored user-days (alerts only by default), in the anomaly_alerts shape."""
        scored = frame.with_columns(pl.Series("score", self.predict(frame), dtype=pl.Float64))
        if alerts_only:
            scored = scored.filter(pl.col("score") >= self.threshold_)
        scored = scored.sort(["score", "user_id", "activity_date"], descending=[True, False, False])
        return scored.select(
            "user_id",
            pl.col("activity_date").alias("as_of_date"),
            "score",
            pl.lit("anomalous").alias("predicted_label"),
            pl.Series("reasons", reasons(scored), dtype=pl.String),
        )


def reasons(daily: pl.DataFrame, k: int = 3) -> list[str]:
    """Top-k reasons in words per row, strongest first (only call on the alerted rows)."""
    out = []
    for row in daily.iter_rows(named=True):
        found: list[tuple[float, str]] = []
        if row["count_new_countries"]:
            # Security signals first (new country, odd hour), then sizes of departures.
            found.append((20.0, f"login from a new country ({row['new_countries']})"))
        if row["odd_share_increase"] and row["odd_share_increase"] > 0.3:
            found.append(
                (
                    2 + 4 * row["odd_share_increase"],
                    f"activity at {row['first_odd_hour']:02d}:00 UTC",
                )
            )
        if row["z_burst"] and row["z_burst"] > 1.5:
            found.append((row["z_burst"], f"{row['max_events_10m']} events in 10 minutes"))
        if row["count_settings_changed"] and row["account_changes_increase"] > 0.5:
            n = row["count_settings_changed"]
            found.append((1.5 + n, f"{n} settings change{'s' if n != 1 else ''}"))
        if row["count_password_resets"]:
            n = row["count_password_resets"]
            found.append((2.0 + n, f"{n} password reset{'s' if n != 1 else ''}"))
        if row["count_new_devices"]:
            found.append((1.5, f"activity on a new device type ({row['new_devices']})"))
        if row["z_events"] and row["z_events"] > 2:
            ratio = row["count_events"] / max(row["baseline_events"], 1.0)
            found.append(
                (row["z_events"], f"{row['count_events']} events, {ratio:.1f}x the usual day")
            )
        if not found:
            found.append((0.0, "unusual combination of daily activity"))
        found.sort(key=lambda item: -item[0])
        out.append("; ".join(text for _, text in found[:k]))
    return out
