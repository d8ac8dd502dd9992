"""Drift: population stability index (PSI) of a model's features and of its predicted scores.

Reference = the champion's training window (a seeded sample stored in its artifact, so drift
can be measured even after the mart has moved on); current = the latest snapshot / scores.
PSI rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from python_models.common import registry
from python_models.common.spec import ModelSpec
from python_models.warehouse import Warehouse, connect, table_exists

_EPSILON = 1e-4


def population_stability_index(expected, actual, bins: int = 10) -> float:
    """PSI between two samples, with bins at the quantiles of `expected`.

    Missing values (None/NaN) get a bin of their own, so a change in missingness counts as
    drift. Bins with no rows get a small epsilon so the logarithm stays finite.
    """
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if expected.size == 0 or actual.size == 0:
        raise ValueError("PSI needs two non-empty samples")
    if bins < 2:
        raise ValueError("PSI needs at least 2 bins")
    expected_present = expected[~np.isnan(expected)]
    if expected_present.size:
        edges = np.unique(np.quantile(expected_present, np.linspace(0, 1, bins + 1)[1:-1]))
    else:
        edges = np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(
            np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1
        ).astype(float)
        counts = np.append(counts, missing.sum())
        return np.clip(counts / values.size, _EPSILON, None)

    e, a = shares(expected), shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"feature": pl.String, "psi": pl.Float64})


def feature_psi(reference: pl.DataFrame, current: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """PSI per feature present in both frames, worst first."""
    rows = []
    for feature in reference.columns:
        if feature not in current.columns:
            continue
        expected = reference[feature].cast(pl.Float64).to_numpy()
        actual = current[feature].cast(pl.Float64).to_numpy()
        if expected.size and actual.size:
            rows.append(
                {"feature": feature, "psi": population_stability_index(expected, actual, bins)}
            )
    if not rows:
        return _empty()
    return pl.DataFrame(rows).sort("psi", descending=True)


def feature_drift(con: Warehouse, spec: ModelSpec, bins: int = 10):
    """PSI per feature: champion's training window vs the latest inputs, worst first.

    Empty when the model has no champion yet.
    """
    champion = registry.get_champion(con, spec.name)
    if champion is None:
        return _empty()
    bundle = champion.load()
    return feature_psi(bundle["reference_features"], spec.latest_features(con, bundle), bins)


def prediction_drift(con: Warehouse, spec: ModelSpec, bins: int = 10):
    """PSI of the latest written scores vs the champion's scores at training time (None if
    there is no champion or no score table yet)."""
    champion = registry.get_champion(con, spec.name)
    if champion is None or not table_exists(con, spec.score_table):
        return None
    reference = np.asarray(champion.load()["reference_scores"], dtype=float)
    latest = con.execute(f"select score from {spec.score_table}").pl()["score"].to_numpy()
    if reference.size == 0 or latest.size == 0:
        return None
    return population_stability_index(reference, latest, bins)


@dataclass(frozen=True)
class DriftSummary:
    model_name: str
    max_feature_psi: float
    prediction_psi: float
    worst_features: dict[str, float] = field(default_factory=dict)  # up to 5, worst first

    def exceeds(self, threshold: float) -> bool:
        return max(self.max_feature_psi, self.prediction_psi) > threshold


def summarize(model_name: str, features: pl.DataFrame, prediction: float | None) -> DriftSummary:
    worst = features.sort("psi", descending=True).head(5)
    return DriftSummary(
        model_name=model_name,
        max_feature_psi=float(features["psi"].max() or 0.0) if features.height else 0.0,
        prediction_psi=float(prediction or 0.0),
        worst_features=dict(zip(worst["feature"], worst["psi"], strict=True)),
    )


def measure_drift(duckdb_path: str | Path, spec: ModelSpec) -> DriftSummary:
    """Feature and prediction drift of `spec`'s champion, read from a (published) warehouse
    opened read-only, so measuring never blocks a run that writes."""
    con = connect(duckdb_path, read_only=True)
    try:
        return summarize(spec.name, feature_drift(con, spec), prediction_drift(con, spec))
    finally:
        con.close()
