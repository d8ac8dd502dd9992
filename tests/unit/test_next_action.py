"""Next action on tiny seeded sequences (python_models/next_action/examples.py): personas with
different event mixes and a cart always followed by a checkout."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from python_models.common.reasons import _tree_splits, tree_contributions
from python_models.next_action.examples import example
from python_models.next_action.model import (
    MarkovChain,
    NextActionModel,
    beats_baselines,
    one_class_model,
    top_k_accuracy,
)
from python_models.next_action.on_warehouse import event_time_split, load_windows
from python_models.next_action.params import NextActionParams
from python_models.next_action.sequences import (
    SESSION_END,
    count_labelled,
    labelled_span,
    load_labelled,
)


def _fit():
    data = example(0)
    params = NextActionParams.from_overrides(data.params)
    model = NextActionModel(data.features, params).fit(data.frame, data.validation)
    return model, data


def test_the_planted_personas_let_the_model_beat_both_baselines():
    model, data = _fit()
    evaluation = model.evaluate(data.validation)
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    print("\n", evaluation)
    assert beats_baselines(evaluation)
    # The user's mix decides about half the next events: a clear margin, not a tie.
    assert (
        by_variant["lightgbm"]["top1_accuracy"] > by_variant["markov_chain"]["top1_accuracy"] + 0.03
    )


def test_a_cart_is_followed_by_a_checkout():
    """Planted: a cart is followed by a checkout unless the session ends there."""
    model, data = _fit()
    carts = data.validation.filter(pl.col("event_name") == "add_to_cart")
    proba = model.predict_proba(carts)
    checkout = model.classes_.index("checkout_started")
    top2 = np.argsort(-proba, axis=1)[:, :2]
    assert carts.height > 0 and (top2 == checkout).any(axis=1).all()
    assert proba[:, checkout].mean() > 0.5


def test_markov_chain_is_the_transition_share_with_smoothing():
    counts = pl.DataFrame(
        {
            "event_name": ["a", "a", "b"],
            "next_event_name": ["b", SESSION_END, "a"],
            "transitions": [3, 1, 2],
        }
    )
    classes = sorted(["a", "b", SESSION_END])
    exact = MarkovChain(counts, classes, alpha=0.0).predict_proba(["a", "b", "unseen"])
    assert exact[0].tolist() == [0.0, 0.75, 0.25]  # a -> b 3 of 4, a -> end 1 of 4
    assert exact[1].tolist() == [1.0, 0.0, 0.0]
    # an event never seen as current gets the overall next-event distribution
    assert np.allclose(exact[2], [2 / 6, 3 / 6, 1 / 6])
    smoothed = MarkovChain(counts, classes, alpha=1.0).predict_proba(["a"])
    assert np.isclose(smoothed.sum(), 1.0) and smoothed[0, 0] > 0


def test_top_k_accuracy_counts_unseen_labels_as_misses():
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    assert top_k_accuracy(proba, np.array([0, 0]), 1) == 0.5
    assert top_k_accuracy(proba, np.array([0, 0]), 2) == 0.5
    assert top_k_accuracy(proba, np.array([-1, 2]), 3) == 0.5


def test_scores_are_the_top_three_actions_of_each_users_latest_event():
    model, data = _fit()
    scores = model.predict_frame(data.validation)
    assert scores["user_id"].n_unique() == scores.height == data.validation["user_id"].n_unique()
    row = scores.row(0, named=True)
    assert row["probability_1"] >= row["probability_2"] >= row["probability_3"] > 0
    assert row["score"] == row["probability_1"]
    assert len({row["next_action_1"], row["next_action_2"], row["next_action_3"]}) == 3
    assert scores["reasons"].str.len_chars().min() > 0
    latest = data.validation.sort("event_ts").group_by("user_id").agg(pl.col("event_date").last())
    joined = scores.join(latest, on="user_id")
    assert (joined["as_of_date"] == joined["event_date"]).all()


def test_fit_needs_a_validation_frame_and_enough_rows():
    data = example(0)
    model = NextActionModel(data.features, NextActionParams())
    with pytest.raises(ValueError, match="validation"):
        model.fit(data.frame)
    with pytest.raises(ValueError, match="too few"):
        model.fit(data.frame.head(20), data.validation)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"holdout_days": 0}, "holdout_days"), ({"markov_smoothing": -1.0}, "markov_smoothing")],
)
def test_bad_next_action_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        NextActionParams.from_overrides(overrides)


def test_one_class_models_give_exactly_that_class_s_contributions():
    """Reasons read TreeSHAP from one class's trees: the same numbers as the multiclass
    model's pred_contrib for that class (which computes every class's)."""
    model, data = _fit()
    matrix = model.matrix(data.validation)
    n_classes = len(model.classes_)
    full = model.booster_.booster.predict(matrix, pred_contrib=True)
    full = full.reshape(len(matrix), n_classes, len(model.features) + 1)
    for label in range(n_classes):
        booster = model.class_booster(label)
        mine = booster.predict(matrix, pred_contrib=True)
        assert np.array_equal(mine, full[:, label, :])
        # Reasons take the per-path-pattern route, categorical splits included: same numbers.
        assert _tree_splits(booster) is not None
        per_pattern = tree_contributions(booster, matrix)
        np.testing.assert_allclose(per_pattern, full[:, label, :-1], rtol=1e-9, atol=1e-12)
    # A class count that does not divide the trees (n_classes + 1 can, by the round count).
    trees = model.booster_.text.count("\nTree=")
    wrong = next(m for m in range(n_classes + 1, trees + 2) if trees % m)
    with pytest.raises(ValueError, match="whole iterations"):
        one_class_model(model.booster_.text, 0, wrong)


def _planted_sequences() -> duckdb.DuckDBPyConnection:
    """A sequence mart of 1,000 labelled rows, one every 10 minutes from 2025-03-01, and 50
    unlabelled ones (a session's last event) among them."""
    con = duckdb.connect()
    con.execute("create schema features")
    con.execute(
        """create table features.ftr_user_event_sequences as
        select 'u' || (i % 7) as user_id, 'e' || lpad(i::varchar, 5, '0') as event_id,
            timestamp '2025-03-01' + to_minutes(10 * i) as event_ts,
            (timestamp '2025-03-01' + to_minutes(10 * i))::date as event_date,
            i::double as f1,
            case when i % 21 = 20 then null else 'page_view' end as next_event_name
        from range(1050) as t(i)"""
    )
    return con


def test_samples_of_the_windows_are_drawn_in_the_warehouse_seeded_and_bounded():
    con = _planted_sequences()
    window = (datetime(2025, 3, 2), datetime(2025, 3, 6))  # 576 rows, 548 labelled
    labelled, newest = labelled_span(con)
    assert labelled == 1000 and newest == datetime(2025, 3, 8, 6, 40)
    assert count_labelled(con, window) == 548
    whole = load_labelled(con, ["f1"], window)
    assert whole.height == 548 and whole["label"].null_count() == 0
    assert whole["event_ts"].min() >= window[0] and whole["event_ts"].max() < window[1]
    assert whole["event_ts"].is_sorted()
    first = load_labelled(con, ["f1"], window, rows=100, seed=3)
    assert first.height == 100 and first.equals(load_labelled(con, ["f1"], window, 100, seed=3))
    assert not first.equals(load_labelled(con, ["f1"], window, 100, seed=4))
    assert first["event_ts"].is_sorted()
    assert set(first["event_id"]) <= set(whole["event_id"])
    # Uniform over the window, not its first or last rows: each quarter holds some.
    quarters = (first["f1"] - whole["f1"].min()) * 4 // (whole["f1"].max() - whole["f1"].min() + 1)
    assert set(quarters.cast(int)) == {0, 1, 2, 3}
    # The windows of a split: sampled to their caps, counted whole; an empty one is an error.
    split = event_time_split(newest, NextActionParams(holdout_days=2, validation_days=1))
    (fit, validation, holdout), sizes = load_windows(con, ["f1"], split, (50, 0, 10_000), 7)
    assert fit.height == 50 and validation.height == sizes[1] and holdout.height == sizes[2]
    assert sizes[0] > 50 and fit["event_ts"].max() < split.fit_end
    assert holdout["event_ts"].min() >= split.holdout_start
    with pytest.raises(ValueError, match="fit window of the next-action split is empty"):
        too_long = NextActionParams(holdout_days=30, validation_days=1)
        load_windows(con, ["f1"], event_time_split(newest, too_long), (0, 0, 0), 7)
