"""Drift helpers: population stability index (PSI) of features and of predicted scores.

Reference = the champion's training window (a seeded sample stored in its artifact, so drift
can be measured even after the mart has moved on); current = the latest snapshot / scores.
PSI rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift.
"""

from __future__ import annotations

import importlib

import duckdb
import numpy as np
import polars as pl

from python_models.common import registry
from python_models.common.scores import SCORE_TABLES
from python_models.warehouse import table_exists

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


def feature_drift(con: duckdb.DuckDBPyConnection, model_name: str, bins: int = 10):
    """PSI per feature: champion's training window vs the latest snapshot, worst first.

    Empty when the model has no champion yet.
    """
    champion = registry.get_champion(con, model_name)
    if champion is None:
        return _empty()
    bundle = champion.load()
    job = importlib.import_module(f"python_models.{model_name}.job")
    reference: pl.DataFrame = bundle["reference_features"]
    current: pl.DataFrame = job.latest_features(con, bundle)
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


def prediction_drift(con: duckdb.DuckDBPyConnection, model_name: str, bins: int = 10):
    """PSI of the latest written scores vs the champion's scores at training time (None if
    there is no champion or no score table yet)."""
    champion = registry.get_champion(con, model_name)
    table = SCORE_TABLES[model_name]
    if champion is None or not table_exists(con, table):
        return None
    reference = np.asarray(champion.load()["reference_scores"], dtype=float)
    latest = con.sql(f"select score from {table}").pl()["score"].to_numpy()
    if reference.size == 0 or latest.size == 0:
        return None
    return population_stability_index(reference, latest, bins)
