"""Anomaly detection on tiny seeded user-days (python_models/anomaly/examples.py)."""

from __future__ import annotations

import numpy as np
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


def test_a_full_scoring_read_in_date_slices_finds_the_planted_takeovers(tmp_path, monkeypatch):
    """The warehouse scoring reads the mart a slice of dates at a time (memory); with slices
    of a few days the planted takeovers still top the alerts, every user-day is scored once,
    and the alerts are the same as scoring the whole frame at once."""
    from datetime import timedelta

    from python_models.anomaly import on_warehouse
    from python_models.anomaly.daily import activity_date_slices
    from python_models.warehouse import connect

    model, frame = _fit()
    con = connect(tmp_path / "w.duckdb")
    con.execute("create schema features")
    stored = frame.with_columns(pl.lit(model.params.baseline_days).alias("baseline_window_days"))
    con.replace_table("features.ftr_user_day_activity", stored)
    per_day = frame.group_by("activity_date").len().sort("activity_date")
    monkeypatch.setattr(on_warehouse, "SCORE_SLICE_ROWS", int(per_day["len"].max()) * 3)

    slices = activity_date_slices(con, None, on_warehouse.SCORE_SLICE_ROWS)
    assert len(slices) > 3
    assert slices[0][0] == frame["activity_date"].min()
    assert slices[-1][1] == frame["activity_date"].max() + timedelta(days=1)
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))  # no gap, no overlap

    alerts = on_warehouse.score(con, {"model": model})
    assert set(alerts["user_id"].head(3)) == set(PLANTED)
    assert alerts.equals(model.predict_frame(frame))
    con.close()


def test_date_slices_hold_about_the_row_budget_each(tmp_path):
    from datetime import date, timedelta

    from python_models.anomaly.daily import activity_date_slices
    from python_models.warehouse import connect

    counts = [3, 3, 3, 10, 1]  # rows per day; a budget of 6 rows a slice
    day0 = date(2025, 1, 1)
    con = connect(tmp_path / "w.duckdb")
    con.execute("create schema features")
    con.execute("create table features.ftr_user_day_activity (activity_date date)")
    for i, n in enumerate(counts):
        con.execute(
            "insert into features.ftr_user_day_activity select ? from range(?)",
            [day0 + timedelta(days=i), n],
        )
    d = [day0 + timedelta(days=i) for i in range(6)]
    expected = [(d[0], d[2]), (d[2], d[3]), (d[3], d[4]), (d[4], d[5])]
    assert activity_date_slices(con, None, 6) == expected
    assert activity_date_slices(con, d[3], 6) == [(d[3], d[4]), (d[4], d[5])]
    con.close()


def test_forest_scores_in_row_blocks_equal_scikit_learn_s_own_bit_for_bit():
    """anomaly.model.forest_scores scores row blocks in threads: each row's score is still
    IsolationForest.score_samples' own (not only close: equal), and a small matrix stays on
    one thread."""
    from sklearn.ensemble import IsolationForest

    from python_models.anomaly.model import forest_scores

    rng = np.random.default_rng(7)
    train = rng.normal(size=(5_000, 6))
    forest = IsolationForest(n_estimators=30, max_samples=256, random_state=0).fit(train)
    matrix = np.vstack([rng.normal(size=(45_001, 6)), rng.normal(5, 1, size=(10, 6))])
    expected = forest.score_samples(matrix)
    for threads in (2, 3):
        np.testing.assert_array_equal(forest_scores(forest, matrix, threads), expected)
    np.testing.assert_array_equal(forest_scores(forest, matrix[:100], 2), expected[:100])
