"""Per-user reasons: the top features pushing a LightGBM score up, in plain words.

Contributions are exact TreeSHAP values (LightGBM's pred_contrib), computed once per distinct
path pattern instead of once per row. A tree's SHAP values for a row depend only on which way
the row goes at each of the tree's splits (TreeSHAP follows the row's branch and weighs the
other by cover), so rows that agree at every split of a tree share that tree's contributions.
A 7-leaf tree has 6 splits, hence at most 64 patterns, however many rows are scored: LightGBM
computes the contributions of one row per pattern and the rest is numpy gathers. Measured in
benchmarks/bench_reasons.py; checked against pred_contrib row by row in tests/unit/test_reasons.py.

Words are built per distinct (feature, direction, value), never per row, and joined in polars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

REASON_SEPARATOR = "; "
# LightGBM's kZeroThreshold (1e-35f, a float): its predictor reads |x| at or below it as 0.
_LIGHTGBM_ZERO = float(np.float32(1e-35))
# Patterns are encoded in an int64, one bit per split; larger trees fall back to pred_contrib.
_MAX_SPLITS = 62
# Up to 2**16 patterns are counted with a lookup table (one pass); beyond, np.unique.
_TABLE_BITS = 16
# Below this many rows one pred_contrib call is cheaper than the patterns' fixed cost (the
# model dump, one call per tree): next-action champion at 1M, 1 row 0.2 vs 29 ms, 128 rows 21
# vs 42 ms, 512 rows 74 vs 92 ms. The scoring service explains one row per request.
_PATTERNS_FROM_ROWS = 256


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


# --- contributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float
    default_left: bool
    missing_type: str  # "None" | "Zero" | "NaN"
    # A categorical split ("=="): the category codes that go left; None for "<=".
    categories: tuple[int, ...] | None = None


class _Unsupported(Exception):
    """A model shape the pattern cache does not cover; plain pred_contrib is used instead."""


def _splits(node: dict) -> list[_Split]:
    """Every split of a dumped tree (order is irrelevant: it only numbers the bits)."""
    out: list[_Split] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if "split_feature" not in current:
            continue
        decision = current.get("decision_type", "<=")
        if decision not in ("<=", "=="):
            raise _Unsupported
        categorical = decision == "=="
        threshold = current["threshold"]  # "==": the left categories, as "1||4||7"
        out.append(
            _Split(
                int(current["split_feature"]),
                0.0 if categorical else float(threshold),
                bool(current["default_left"]),
                str(current["missing_type"]),
                tuple(int(c) for c in str(threshold).split("||")) if categorical else None,
            )
        )
        stack += [current["left_child"], current["right_child"]]
    return out


def _tree_splits(booster) -> list[list[_Split]] | None:
    """Splits per tree, or None when the model is not one tree per iteration (e.g. multiclass:
    python_models/next_action takes one class's trees) or has a split of another kind."""
    model = booster.dump_model()
    if model.get("num_tree_per_iteration", 1) != 1 or model.get("average_output"):
        return None
    try:
        return [_splits(tree["tree_structure"]) for tree in model["tree_info"]]
    except _Unsupported:
        return None


class _Columns:
    """A chunk's feature columns as LightGBM's predictor reads them (|x| <= kZeroThreshold is
    exactly 0), column-major so each split reads one contiguous column."""

    def __init__(self, chunk: np.ndarray):
        self.values = np.asfortranarray(np.where(np.abs(chunk) <= _LIGHTGBM_ZERO, 0.0, chunk))
        self.nan = np.asfortranarray(np.isnan(chunk))
        self.has_nan = self.nan.any(axis=0)
        self.row_numbers = np.arange(len(chunk), dtype=np.intp)

    def goes_left(self, split: _Split) -> np.ndarray:
        """LightGBM's decision (tree.h NumericalDecision / CategoricalDecision) for every row."""
        column = self.values[:, split.feature]
        if split.categories is not None:
            # The value cast to int goes left when its category is in the set; NaN and
            # negative codes go right (np.isin of NaN is False, and the set has no negatives).
            with np.errstate(invalid="ignore"):
                return np.isin(np.trunc(column), split.categories)
        left = column <= split.threshold  # NaN compares False
        if split.missing_type == "Zero":  # zero, and NaN read as zero, take the default way
            missing = column == 0.0
            if self.has_nan[split.feature]:
                missing |= self.nan[:, split.feature]
            return np.where(missing, split.default_left, left)
        if self.has_nan[split.feature]:
            # NaN takes the default way when it is "missing", else it is read as 0.
            nan_left = split.default_left if split.missing_type == "NaN" else 0.0 <= split.threshold
            return np.where(self.nan[:, split.feature], nan_left, left)
        return left


def _patterns(columns: _Columns, splits: list[_Split]) -> tuple[np.ndarray, np.ndarray, int]:
    """(representative row per distinct pattern, pattern of every row, number of slots): a
    row's pattern is the bit string of its decisions at the tree's splits."""
    width = len(splits)
    code = np.zeros(len(columns.values), dtype=_code_type(width))
    for bit, split in enumerate(splits):
        code += columns.goes_left(split).view(np.uint8).astype(code.dtype, copy=False) << bit
    if width <= _TABLE_BITS:
        code = code.astype(np.intp)  # np.take is fastest with native indices
        representative = np.full(1 << width, -1, dtype=np.intp)
        representative[code] = columns.row_numbers  # any row of a pattern will do
        present = np.flatnonzero(representative >= 0)
        return representative[present], code, len(representative)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return first, inverse.ravel().astype(np.intp), len(first)


def _code_type(width: int) -> type:
    return np.uint8 if width <= 8 else np.uint16 if width <= 16 else np.int64


def tree_contributions(
    booster, matrix: np.ndarray, chunk_size: int = 200_000, num_threads: int = 1
) -> np.ndarray:
    """TreeSHAP contribution of every feature for every row of `matrix` (bias dropped), equal
    to `booster.predict(matrix, pred_contrib=True)[:, :-1]` up to float rounding.

    The per-pattern calls are tiny, so they run on one thread (a parallel region per call
    costs more than the work when the cores are shared); `num_threads` is for the fallback."""
    n_rows, n_features = matrix.shape
    matrix = np.asarray(matrix, dtype=np.float64)
    trees = _tree_splits(booster)
    out = np.zeros((n_rows, n_features), dtype=np.float64)
    for start in range(0, n_rows, chunk_size):
        chunk = np.ascontiguousarray(matrix[start : start + chunk_size])
        if trees is None:
            contrib = booster.predict(chunk, pred_contrib=True, num_threads=num_threads)
            out[start : start + len(chunk)] = contrib[:, :n_features]
            continue
        columns = _Columns(chunk)
        target = np.zeros((len(chunk), n_features), dtype=np.float64, order="F")
        for index, splits in enumerate(trees):
            if not splits:  # a single leaf only moves the bias
                continue
            one_tree = {"pred_contrib": True, "start_iteration": index, "num_iteration": 1}
            if len(splits) > _MAX_SPLITS:
                contrib = booster.predict(chunk, num_threads=num_threads, **one_tree)
                target += contrib[:, :n_features]
                continue
            representative, pattern, slots = _patterns(columns, splits)
            shared = booster.predict(chunk[representative], num_threads=1, **one_tree)
            used = sorted({split.feature for split in splits})  # other features get 0
            table = np.zeros((len(used), slots))  # per used feature, its value per pattern
            table[:, pattern[representative]] = shared[:, used].T
            for row, feature in enumerate(used):
                column = target[:, feature]  # contiguous: target is column-major
                column += np.take(table[row], pattern)
        out[start : start + len(chunk)] = target
    return out


def top_contributions(
    booster, matrix: np.ndarray, k: int = 3, chunk_size: int = 200_000, num_threads: int = 1
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
        if len(chunk) < _PATTERNS_FROM_ROWS:
            contrib = booster.predict(chunk, pred_contrib=True, num_threads=num_threads)
            contrib = contrib[:, :n_features]
        else:
            contrib = tree_contributions(booster, chunk, chunk_size, num_threads)
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(contrib, order, axis=1)
        indices[start : start + len(contrib)] = np.where(top > 0, order, -1)
        values[start : start + len(contrib)] = np.where(top > 0, top, 0.0)
    return indices, values


# --- words -----------------------------------------------------------------------------------
def reasons_text(
    indices: np.ndarray,
    matrix: np.ndarray,
    features: Sequence[str],
    medians: np.ndarray,
    phrase: Callable[[str, float, str], str] = catalogue_phrase,
) -> list[str]:
    """`; `-joined phrases for each row's top features (empty string when none).

    A value at or above the training median is said as "high" (e.g. "no activity in the last
    40 days"), below it as "low" (e.g. "only 2 events since first seen"). `phrase` runs once
    per distinct (feature, direction, value) among the cells shown.
    """
    n_rows, k = indices.shape
    if n_rows == 0:
        return []
    shown = indices >= 0
    feature_of = np.where(shown, indices, 0)
    values = matrix[np.arange(n_rows)[:, None], feature_of]
    medians = np.asarray(medians, dtype=np.float64)
    high = values >= medians[feature_of]  # NaN compares False: said as "unknown" anyway
    group = np.where(shown, feature_of * 2 + high, -1)  # (feature, direction) per cell
    words = np.full((n_rows, k), None, dtype=object)
    for key in np.unique(group[shown]):
        cells = group == key
        distinct, where = np.unique(values[cells], return_inverse=True)  # NaNs fold into one
        feature, direction = features[key // 2], "high" if key % 2 else "low"
        said = np.array([phrase(feature, float(v), direction) for v in distinct], dtype=object)
        words[cells] = said[where.ravel()]
    columns = {f"r{slot}": pl.Series(words[:, slot].tolist(), dtype=pl.String) for slot in range(k)}
    joined = pl.DataFrame(columns).select(
        pl.concat_str(pl.all(), separator=REASON_SEPARATOR, ignore_nulls=True)
    )
    return joined.to_series().fill_null("").to_list()


def explain(
    booster,
    matrix: np.ndarray,
    features: list[str],
    medians: np.ndarray,
    k: int = 3,
    chunk_size: int = 200_000,
    phrase: Callable[[str, float, str], str] = catalogue_phrase,
    num_threads: int = 1,
) -> list[str]:
    """Top-k reasons in words for each row of `matrix` (exact TreeSHAP, chunked)."""
    indices, _ = top_contributions(booster, matrix, k, chunk_size, num_threads)
    return reasons_text(indices, matrix, features, medians, phrase)


def column_medians(matrix: np.ndarray) -> np.ndarray:
    """Per-feature medians of the training rows (NaN-aware), the high/low cut for words."""
    with np.errstate(all="ignore"):
        medians = np.nanmedian(matrix, axis=0) if matrix.size else np.zeros(matrix.shape[1])
    return np.nan_to_num(medians, nan=0.0)
