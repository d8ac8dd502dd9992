"""Per-user reasons: the top features pushing a LightGBM score up, in plain words.

pred_contrib (TreeSHAP) costs far more than predict, so it runs only on the rows being scored
and in chunks that bound memory (rows x features float64 per chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REASON_SEPARATOR = "; "


def default_phrase(feature: str, value: float, direction: str) -> str:
    if np.isnan(value):
        return f"{feature.replace('_', ' ')} unknown"
    return f"{direction} {feature.replace('_', ' ')} ({value:g})"


def catalogue_phrase(feature: str, value: float, direction: str) -> str:
    """Words from the feature catalogue's reason templates (describe())."""
    from python_models.common import catalogue

    if np.isnan(value):
        return f"{catalogue.get_feature(feature).description.rstrip('.')}: unknown"
    return catalogue.describe(feature, value, direction)


def top_contributions(
    booster, matrix: np.ndarray, k: int = 3, chunk_size: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest positive contributions per row.

    Returns (feature_index [n, k], contribution [n, k]); a slot with no positive contribution
    has index -1.
    """
    n_rows, n_features = matrix.shape
    k = min(k, n_features)
    indices = np.full((n_rows, k), -1, dtype=np.int64)
    values = np.zeros((n_rows, k), dtype=np.float64)
    for start in range(0, n_rows, chunk_size):
        chunk = matrix[start : start + chunk_size]
        contrib = booster.predict(chunk, pred_contrib=True)[:, :n_features]  # drop bias column
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(contrib, order, axis=1)
        order = np.where(top > 0, order, -1)
        indices[start : start + len(chunk)] = order
        values[start : start + len(chunk)] = np.where(top > 0, top, 0.0)
    return indices, values


def reasons_text(
    indices: np.ndarray,
    matrix: np.ndarray,
    features: list[str],
    medians: np.ndarray,
    phrase: Callable[[str, float, str], str] = catalogue_phrase,
) -> list[str]:
    """`; `-joined phrases for each row's top features (empty string when none).

    A value at or above the training median is said as "high" (e.g. "no activity in the last
    40 days"), below it as "low" (e.g. "only 2 events since first seen").
    """
    cache: dict[tuple[int, float], str] = {}
    out: list[str] = []
    for row_index, row in enumerate(indices):
        words = []
        for feature_index in row:
            if feature_index < 0:
                continue
            value = float(matrix[row_index, feature_index])
            key = (int(feature_index), value)
            text = cache.get(key)
            if text is None:
                direction = "high" if value >= medians[feature_index] else "low"
                text = phrase(features[feature_index], value, direction)
                cache[key] = text
            words.append(text)
        out.append(REASON_SEPARATOR.join(words))
    return out


def explain(
    booster,
    matrix: np.ndarray,
    features: list[str],
    medians: np.ndarray,
    k: int = 3,
    chunk_size: int = 20_000,
    phrase: Callable[[str, float, str], str] = catalogue_phrase,
) -> list[str]:
    """Top-k reasons in words for each row of `matrix` (pred_contrib, chunked)."""
    indices, _ = top_contributions(booster, matrix, k=k, chunk_size=chunk_size)
    return reasons_text(indices, matrix, features, medians, phrase)


def column_medians(matrix: np.ndarray) -> np.ndarray:
    """Per-feature medians of the training rows (NaN-aware), the high/low cut for words."""
    with np.errstate(all="ignore"):
        medians = np.nanmedian(matrix, axis=0) if matrix.size else np.zeros(matrix.shape[1])
    return np.nan_to_num(medians, nan=0.0)
