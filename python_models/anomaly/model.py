"""Account anomalies per user-day: IsolationForest on daily activity + a deviation score from
the user's own baseline, combined; alerts carry their top reasons in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest

from python_models.anomaly.daily import MODEL_COLUMNS

_LOG_COLUMNS = {"count_events", "count_logins", "max_events_10m"}


@dataclass(frozen=True)
class AnomalyParams:
    n_estimators: int = 200
    max_samples: int = 4096
    # Share of user-days (at training time) whose combined score becomes an alert.
    alert_fraction: float = 0.01
    # Weight of the user-baseline deviation score vs the IsolationForest score.
    deviation_weight: float = 0.5
    baseline_days: int = 28
    # Score only activity dates within this many days of the latest one (0 = all history).
    score_lookback_days: int = 0
    seed: int = 42
    n_jobs: int = 1

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> AnomalyParams:
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown anomaly parameters {unknown}; known: {sorted(known)}")
        params = replace(cls(), **overrides)
        if not 0 < params.alert_fraction < 0.5:
            raise ValueError("alert_fraction must be in (0, 0.5)")
        if not 0 <= params.deviation_weight <= 1:
            raise ValueError("deviation_weight must be in [0, 1]")
        return params

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_matrix(daily: pl.DataFrame) -> np.ndarray:
    exprs = []
    for column in MODEL_COLUMNS:
        expr = pl.col(column).cast(pl.Float64).fill_null(0.0)
        if column in _LOG_COLUMNS:
            expr = expr.log1p()
        exprs.append(expr.alias(column))
    return daily.select(exprs).to_numpy()


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


@dataclass
class AnomalyModel:
    params: AnomalyParams
    forest: IsolationForest
    # Robust scaling of each part (median, IQR) from training, so the parts are comparable.
    forest_center: float
    forest_scale: float
    deviation_center: float
    deviation_scale: float
    threshold: float
    features: list[str] = field(default_factory=lambda: list(MODEL_COLUMNS))
    reference_scores: np.ndarray = field(default_factory=lambda: np.empty(0))

    def parts(self, daily: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        forest = -self.forest.score_samples(model_matrix(daily))
        return forest, deviation_score(daily)

    def score(self, daily: pl.DataFrame) -> np.ndarray:
        forest, deviation = self.parts(daily)
        w = self.params.deviation_weight
        return (1 - w) * (forest - self.forest_center) / self.forest_scale + w * (
            deviation - self.deviation_center
        ) / self.deviation_scale


def _robust(values: np.ndarray) -> tuple[float, float]:
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    spread = float(q75 - q25)
    if spread <= 0:
        spread = float(np.std(values)) or 1.0
    return float(q50), spread


def fit(daily: pl.DataFrame, params: AnomalyParams) -> AnomalyModel:
    if daily.height < 50:
        raise ValueError(f"only {daily.height} user-days of activity: too few to learn from")
    matrix = model_matrix(daily)
    forest = IsolationForest(
        n_estimators=params.n_estimators,
        max_samples=min(params.max_samples, daily.height),
        random_state=params.seed,
        n_jobs=params.n_jobs,
    ).fit(matrix)
    forest_raw = -forest.score_samples(matrix)
    deviation = deviation_score(daily)
    fc, fs = _robust(forest_raw)
    dc, ds = _robust(deviation)
    model = AnomalyModel(params, forest, fc, fs, dc, ds, threshold=0.0)
    scores = model.score(daily)
    model.threshold = float(np.quantile(scores, 1 - params.alert_fraction))
    model.reference_scores = scores
    return model


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


def score(model: AnomalyModel, daily: pl.DataFrame, alerts_only: bool = True) -> pl.DataFrame:
    """Scored user-days (alerts only by default), in the anomaly_alerts shape."""
    scored = daily.with_columns(pl.Series("score", model.score(daily), dtype=pl.Float64))
    if alerts_only:
        scored = scored.filter(pl.col("score") >= model.threshold)
    scored = scored.sort(["score", "user_id", "activity_date"], descending=[True, False, False])
    return scored.select(
        "user_id",
        pl.col("activity_date").alias("as_of_date"),
        "score",
        pl.lit("anomalous").alias("predicted_label"),
        pl.Series("reasons", reasons(scored), dtype=pl.String),
    )
