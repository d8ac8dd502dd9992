"""Anomaly detection on tiny seeded user-days (python_models/anomaly/examples.py)."""

from __future__ import annotations

import polars as pl
import pytest

from python_models.anomaly.examples import PLANTED, example
from python_models.anomaly.model import AnomalyModel
from python_models.anomaly.params import AnomalyParams


def _fit(**overrides):
    data = example(0)
    params = AnomalyParams.from_overrides({**data.params, **overrides})
    return AnomalyModel(data.features, params).fit(data.frame), data.frame


def test_planted_takeovers_top_the_alerts_with_reasons():
    model, frame = _fit()
    alerts = model.predict_frame(frame)
    assert set(alerts["user_id"].head(3)) == set(PLANTED)
    assert alerts["reasons"].head(3).str.contains("new country").all()
    assert (alerts["predicted_label"] == "anomalous").all()
    # The threshold keeps about alert_fraction of the training days.
    assert alerts.height == (model.training_scores_ >= model.threshold_).sum()
    assert alerts.height <= 0.02 * frame.height + 1


def test_all_days_are_scored_when_asked():
    model, frame = _fit()
    everything = model.predict_frame(frame, alerts_only=False)
    assert everything.height == frame.height
    assert everything["score"].is_sorted(descending=True)


def test_evaluation_summarises_the_training_days():
    model, frame = _fit()
    evaluation = model.evaluate(frame)
    row = evaluation.row(0, named=True)
    assert row["user_days"] == frame.height
    assert row["alerts"] == pl.Series(model.training_scores_ >= model.threshold_).sum()


def test_too_little_activity_is_a_clear_error():
    data = example(0)
    with pytest.raises(ValueError, match="too few to learn from"):
        AnomalyModel(data.features).fit(data.frame.head(10))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alert_fraction": 0.7}, "alert_fraction"),
        ({"deviation_weight": 2}, "deviation_weight"),
        ({"baseline_days": 0}, "baseline_days"),
        ({"n_estimators": 1.5}, "n_estimators must be int"),
    ],
)
def test_bad_anomaly_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        AnomalyParams.from_overrides(overrides)
