"""Reasons: contributions computed once per path pattern equal LightGBM's own TreeSHAP
(pred_contrib) row by row, whatever the tree shapes and missing-value rules; words are the
catalogue's, built per distinct value."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from python_models.common.reasons import (
    default_phrase,
    explain,
    reasons_text,
    top_contributions,
    tree_contributions,
)


def _data(seed: int, rows: int = 3_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    x[:, 2] = rng.poisson(1.0, rows)  # many exact zeros and repeated values
    x[:, 3] = np.round(x[:, 3], 1)
    x[rng.random(x.shape) < 0.08] = np.nan  # missing everywhere
    signal = np.nan_to_num(x[:, 0]) + 0.8 * np.nan_to_num(x[:, 1]) - 0.5 * np.nan_to_num(x[:, 2])
    y = (signal + rng.normal(scale=0.7, size=rows) > 0).astype(int)
    return x, y


def _booster(x, y, rounds: int = 60, categorical=(), **params) -> lgb.Booster:
    settings = {
        "objective": "binary",
        "num_leaves": 7,
        "min_child_samples": 5,
        "seed": 1,
        "deterministic": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    data = lgb.Dataset(x, y, categorical_feature=list(categorical) or "auto")
    return lgb.train(settings | params, data, num_boost_round=rounds)


@pytest.mark.parametrize(
    "params",
    [
        {},  # missing values as NaN, the default
        {"use_missing": False},  # missing_type None: NaN read as 0
        {"zero_as_missing": True},  # missing_type Zero
        {"num_leaves": 40, "rounds": 8},  # 39 splits: patterns beyond the lookup table
        {"num_leaves": 80, "min_child_samples": 2, "rounds": 4},  # over 62: pred_contrib
        {"objective": "regression"},
    ],
    ids=["nan", "none", "zero", "large", "huge", "regression"],
)
def test_contributions_equal_lightgbm_pred_contrib(params):
    x, y = _data(3)
    booster = _booster(x, y, **params)
    probe, _ = _data(4, rows=600)
    probe[:50, 0] = 0.0  # exactly zero
    expected = booster.predict(probe, pred_contrib=True)[:, :-1]
    got = tree_contributions(booster, probe, chunk_size=250)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_categorical_splits_equal_lightgbm_pred_contrib():
    """Category codes as LightGBM reads them: the code cast to int looks up the left set;
    NaN, negative codes and codes never seen in training go right."""
    x, y = _data(6)
    rng = np.random.default_rng(6)
    x[:, 4] = rng.integers(0, 12, len(x))
    x[rng.random(len(x)) < 0.05, 4] = np.nan
    y = (y + (np.nan_to_num(x[:, 4]) % 3 == 0)) % 2  # a signal the categories carry
    booster = _booster(x, y, categorical=[4], min_data_per_group=5, cat_smooth=1)
    decisions = {
        node["decision_type"]
        for tree in booster.dump_model()["tree_info"]
        for node in _nodes(tree["tree_structure"])
    }
    assert decisions == {"<=", "=="}  # the model has categorical splits to take
    probe, _ = _data(7, rows=600)
    probe[:, 4] = rng.integers(0, 12, len(probe))
    probe[:40, 4] = [np.nan, -1.0, -0.5, 2.7, 3.2, 40.0, 12.0, 0.0] * 5  # odd codes
    expected = booster.predict(probe, pred_contrib=True)[:, :-1]
    got = tree_contributions(booster, probe, chunk_size=250)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def _nodes(node: dict) -> list[dict]:
    if "split_feature" not in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]


def test_values_on_a_threshold_go_the_way_lightgbm_sends_them():
    x, y = _data(5)
    booster = _booster(x, y)
    thresholds = [
        (node["split_feature"], node["threshold"])
        for tree in booster.dump_model()["tree_info"]
        for node in [tree["tree_structure"]]
        if "split_feature" in node
    ]
    probe = np.tile(np.nanmedian(x, axis=0), (len(thresholds), 1))
    for row, (feature, threshold) in enumerate(thresholds):
        probe[row, feature] = threshold
    expected = booster.predict(probe, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(tree_contributions(booster, probe), expected, rtol=1e-9, atol=1e-12)


def test_top_contributions_keep_only_positive_pushes():
    x, y = _data(6)
    booster = _booster(x, y)
    indices, values = top_contributions(booster, x[:500], k=3)
    contrib = booster.predict(x[:500], pred_contrib=True)[:, :-1]
    best = np.argmax(contrib, axis=1)
    has_push = contrib.max(axis=1) > 0
    assert (indices[has_push, 0] == best[has_push]).all()
    assert (indices[~has_push] == -1).all()
    assert (values[indices >= 0] > 0).all()


def test_words_per_row_match_a_plain_loop():
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, size=(400, 4)).astype(float)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    indices = rng.integers(-1, 4, size=(400, 3))
    indices[:, 2] = -1  # a slot no row fills
    medians = np.array([2.0, 1.0, 3.0, 0.0])
    features = ["count_a", "count_b", "days_c", "sum_d"]
    got = reasons_text(indices, matrix, features, medians, default_phrase)
    for row in range(400):
        words = []
        for feature in indices[row]:
            if feature < 0:
                continue
            value = matrix[row, feature]
            direction = "high" if value >= medians[feature] else "low"
            words.append(default_phrase(features[feature], value, direction))
        assert got[row] == "; ".join(words)


def test_explain_speaks_in_catalogue_words():
    from python_models.common import catalogue

    features = catalogue.feature_columns("churn")[:6]
    x, y = _data(7)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbosity": -1, "num_threads": 1},
        lgb.Dataset(np.abs(x), y, feature_name=features),
        num_boost_round=20,
    )
    medians = np.nanmedian(np.abs(x), axis=0)
    texts = explain(booster, np.abs(x[:200]), features, medians)
    assert len(texts) == 200
    assert any(texts) and not any("_" in text for text in texts)
