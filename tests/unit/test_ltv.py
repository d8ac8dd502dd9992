"""LTV on tiny seeded frames (python_models/ltv/examples.py): what only LTV promises."""

from __future__ import annotations

import numpy as np
import pytest

from python_models.ltv.examples import example
from python_models.ltv.model import LtvModel, pick_baseline_feature, value_tier
from python_models.ltv.params import LtvParams


def _fit(seed=0, **overrides) -> tuple[LtvModel, object]:
    data = example(seed)
    params = LtvParams.from_overrides({**data.params, **overrides})
    model = LtvModel(data.features, params, horizon_days=60).fit(data.frame, data.validation)
    return model, data.validation


def test_ltv_ranks_planted_spenders_and_sizes_them_better_than_the_spend_rate():
    model, validation = _fit()
    evaluation = model.evaluate(validation)
    spearman = dict(zip(evaluation["variant"], evaluation["spearman"], strict=True))
    mae = dict(zip(evaluation["variant"], evaluation["mae"], strict=True))
    assert spearman["lightgbm"] > 0.7, evaluation
    assert mae["lightgbm"] < mae["historical_average"], evaluation
    assert model.baseline_feature_ == "sum_revenue_usd_90d"
    # The baseline is the past spend rate over the horizon.
    expected = validation["sum_revenue_usd_90d"].to_numpy() / 90 * 60
    assert np.allclose(model.baseline(validation), expected)


def test_ltv_scores_are_revenue_with_a_value_tier():
    model, validation = _fit()
    out = model.predict_frame(validation)
    assert (out["score"] >= 0).all()
    tiers = out["predicted_label"].value_counts().sort("predicted_label")
    counts = dict(zip(tiers["predicted_label"], tiers["count"], strict=True))
    assert counts["high"] == round(0.1 * out.height)
    assert out.sort("score", descending=True)["predicted_label"][0] == "high"


def test_value_tiers_split_10_40_50():
    tiers = value_tier(np.arange(100, dtype=float))
    assert (tiers == "high").sum() == 10 and (tiers == "medium").sum() == 40
    assert value_tier(np.array([])).size == 0


def test_negative_revenue_is_refused():
    data = example(0)
    frame = data.frame.with_columns(-data.frame["label"])
    with pytest.raises(ValueError, match=">= 0"):
        LtvModel(data.features, LtvParams(num_threads=1)).fit(frame, data.validation)


def test_baseline_feature_choice():
    features = ["sum_revenue_usd_30d", "sum_revenue_usd_90d", "avg_revenue_usd_90d"]
    assert pick_baseline_feature(features, None) == ("sum_revenue_usd_90d", 90.0)
    assert pick_baseline_feature(features, "sum_revenue_usd_30d") == ("sum_revenue_usd_30d", 30.0)
    with pytest.raises(ValueError, match="_<days>d"):
        pick_baseline_feature(features, "sum_revenue_usd")
    with pytest.raises(LookupError, match="baseline_feature"):
        pick_baseline_feature(["count_events_30d"], None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tweedie_variance_power": 2.5}, "tweedie_variance_power"),
        ({"holdout_fraction": 1.0}, "holdout_fraction"),
        ({"purge": "sometimes"}, "purge must be"),
        ({"baseline_feature": 90}, "baseline_feature must be str or None"),
    ],
)
def test_bad_ltv_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        LtvParams.from_overrides(overrides)


def test_purge_accepts_auto_and_booleans():
    assert LtvParams().purge_split() == "auto"
    assert LtvParams(purge=True).purge_split() is True
    assert LtvParams(purge="false").purge_split() is False
