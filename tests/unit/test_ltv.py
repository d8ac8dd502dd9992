"""LTV (python_models/ltv/model.py) on the tiny seeded purchase log of ltv/examples.py: what only
the forecaster promises. BG/NBD itself is tested against the published CDNOW figures in
test_ltv_btyd.py."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, time, timedelta

import numpy as np
import polars as pl
import pytest

from python_models.ltv.examples import example
from python_models.ltv.model import DETAIL_COLUMNS, LtvForecaster
from python_models.ltv.params import LtvParams


@pytest.fixture(scope="module")
def fitted():
    data = example(0)
    model = LtvForecaster(data.features, LtvParams.from_overrides(data.params)).fit(data.frame)
    return model, data.frame, model.predict_frame(data.frame)


def test_the_served_forecaster_beats_predicting_nothing(fitted):
    model, _, _ = fitted
    served = model.evaluation_.filter(pl.col("served"))
    assert served["model"].unique().to_list() == [model.served_model_]
    assert sorted(served["target"]) == ["purchases", "revenue_usd"]
    assert (served["mae_vs_zero"] < 1.0).all(), model.evaluation_
    assert model.served_model_ in model.decision_


def test_forecasts_rank_the_planted_customers(fitted):
    _, frame, rows = fitted
    truth = frame.group_by("user_id").agg(
        (pl.col("truth_rate") * pl.col("truth_spend")).first().alias("planted_value"),
        pl.col("purchased_at").max().alias("last"),
    )
    # Customers who bought in the last 60 days: still around, so their planted value shows.
    recent = truth.filter(pl.col("last") >= truth["last"].max() - pl.duration(days=60))
    joined = rows.join(recent, on="user_id")
    rho = joined.select(pl.corr("expected_revenue_usd", "planted_value", method="spearman"))
    assert rho.item() > 0.5, rho


def test_score_rows_hold_forecasts_intervals_and_reasons(fitted):
    _, frame, rows = fitted
    assert rows.height == frame["user_id"].n_unique()
    assert set(DETAIL_COLUMNS) <= set(rows.columns)
    # Forecasts start the day after the last purchase.
    assert rows["as_of_date"].unique().to_list() == [
        frame["purchased_at"].max().date() + timedelta(days=1)
    ]
    for target in ("purchases", "revenue_usd"):
        low, high = rows[f"predicted_{target}_low"], rows[f"predicted_{target}_high"]
        point = rows["score"] if target == "revenue_usd" else rows["predicted_purchases"]
        assert ((low <= point) & (point <= high)).all()
    assert rows["p_alive"].is_between(0, 1).all()
    assert (
        (rows["p_alive_low"] <= rows["p_alive"]) & (rows["p_alive"] <= rows["p_alive_high"])
    ).all()
    tiers = dict(rows["predicted_label"].value_counts().iter_rows())
    assert tiers["high"] == round(0.1 * rows.height)
    top = rows.sort("expected_revenue_usd", descending=True)["predicted_label"][0]
    assert top == "high"
    # Reasons say the customer's own history: purchase days counted from the raw log.
    days = frame.group_by("user_id").agg(pl.col("purchased_at").dt.date().n_unique().alias("n"))
    said = rows.select(
        "user_id", pl.col("reasons").str.extract(r"^(\d+) purchase day").cast(pl.UInt32).alias("n")
    )
    assert said.join(days, on="user_id").filter(pl.col("n") != pl.col("n_right")).height == 0


def test_the_pickled_model_leaves_the_holdout_rows_behind(fitted):
    model, frame, _ = fitted
    assert model.holdout_predictions().height > 0
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.holdout_predictions().height == 0
    assert np.array_equal(loaded.predict(frame), model.predict(frame))


def test_scoring_a_later_as_of_fits_nothing(fitted, monkeypatch):
    """predict_frame 60 days after training, on a log grown by 100 newcomers who buy every
    other day: every customer is scored with the fit stored at training, which no call
    changes, and the fitters never run (a refit would see the newcomers' rate)."""
    import lightgbm

    from python_models.ltv import btyd

    model, frame, _ = fitted
    stored = copy.deepcopy(model.served_fit_)
    trained_to = stored.as_of
    later = trained_to + timedelta(days=60)
    newcomers = pl.DataFrame(
        [
            (f"new{i}", datetime.combine(trained_to, time()) + timedelta(days=2 * k), 300.0)
            for i in range(100)
            for k in range(30)
        ],
        schema=["user_id", "purchased_at", "revenue_usd"],
        orient="row",
    )
    grown = pl.concat([frame.select(newcomers.columns), newcomers])

    def refuse(*args, **kwargs):
        raise AssertionError("scoring fitted a model")

    for module, name in ((btyd, "fit_bgnbd"), (btyd, "fit_gamma_gamma"), (lightgbm, "train")):
        monkeypatch.setattr(module, name, refuse)
    rows = model.predict_frame(grown, as_of=later)
    assert model.served_fit_ == stored
    assert rows.height == frame["user_id"].n_unique() + 100
    assert rows["as_of_date"].unique().to_list() == [later]
    # Each newcomer: 29 repeat days, the last 58 days after the first, 59 days of age.
    new = rows.filter(pl.col("user_id").str.starts_with("new"))
    assert np.allclose(new["p_alive"], btyd.probability_alive(stored.btyd.bgnbd, 29, 58, 59))
    expected = btyd.expected_purchases(stored.btyd.bgnbd, 29, 58, 59, model.horizon_days)
    assert np.allclose(new["expected_purchases"], expected) and expected > 1.0


def test_a_model_pickled_before_the_stored_fit_refits_and_says_so(fitted, capsys):
    """Bundles from before `served_fit_` still score (by refitting, as they did), with a
    line telling to retrain; at the training as-of that is what the stored fit gives."""
    model, frame, rows = fitted
    assert model.served_fit_.as_of == frame["purchased_at"].max().date() + timedelta(days=1)
    old = pickle.loads(pickle.dumps(model))
    del old.served_fit_
    capsys.readouterr()
    assert old.predict_frame(frame).equals(rows)
    assert "retrain it (`uba train --model ltv`)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"interval": 1.5}, "interval"),
        ({"champion_margin": -0.1}, "champion_margin"),
        ({"draws": 2}, "draws"),
        ({"purchase_event": 3}, "purchase_event"),
    ],
)
def test_bad_ltv_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        LtvParams.from_overrides(overrides)


def test_a_log_shorter_than_the_horizon_is_refused_in_words():
    data = example(1)
    short = data.frame.filter(pl.col("purchased_at") < pl.datetime(2025, 2, 20))
    with pytest.raises(ValueError, match="not matured|no transactions before"):
        LtvForecaster(data.features, LtvParams.from_overrides(data.params)).fit(short)
