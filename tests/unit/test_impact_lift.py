"""Lift by score decile against a planted contact effect (python_models.synthetic.impact_frames):
contacted high-risk treatment users churn less than high-risk holdout users, by the planted
amount; lower deciles, never contacted, show no lift."""

from __future__ import annotations

import polars as pl
import pytest

from python_models.impact.lift import ALL_DECILES, assign_deciles, lift_by_decile
from python_models.synthetic.impact_frames import scored_population

CONTACT_EFFECT = 0.15


@pytest.fixture(scope="module")
def planted():
    return scored_population(20_000, seed=3, contact_effect=CONTACT_EFFECT, contacted_deciles=3)


def test_lift_per_decile_matches_the_planted_effect(planted):
    table = lift_by_decile(planted.frame)
    deciles = {row["decile"]: row for row in table.iter_rows(named=True)}
    assert set(deciles) == {ALL_DECILES, *range(1, 11)}
    covered = 0
    for decile in range(1, 11):
        row, truth = deciles[decile], planted.lift_truth[decile]
        covered += row["ci_low"] <= truth <= row["ci_high"]
        if truth < 0:  # contacted deciles: a clear reduction in churn
            assert row["ci_high"] < 0 and row["p_value"] < 0.05, row
    # 95% intervals: all ten cover the truth here; at least 9 guards against a lucky seed.
    assert covered >= 9
    assert deciles[8]["n_treatment"] + deciles[8]["n_holdout"] == 2000
    # Deciles rise with the score; the holdout share is the configured 20% in each.
    assert deciles[10]["outcome_holdout"] > deciles[1]["outcome_holdout"]
    assert 0.15 < deciles[5]["n_holdout"] / deciles[5]["n_users"] < 0.25
    overall = deciles[ALL_DECILES]
    expected = sum(planted.lift_truth.values()) / 10
    assert overall["ci_low"] <= expected <= overall["ci_high"]


def test_no_contact_no_lift():
    """Nobody contacted: over 20 seeds x 10 deciles about 5% of the intervals miss 0 by
    chance; more than 8% (2 standard errors above) would mean the intervals are too narrow."""
    misses = 0
    for seed in range(20):
        table = lift_by_decile(scored_population(8_000, seed=100 + seed).frame)
        per_decile = table.filter(pl.col("decile") != ALL_DECILES)
        misses += per_decile.filter((pl.col("ci_low") > 0) | (pl.col("ci_high") < 0)).height
    print(f"no-contact deciles with an interval excluding 0: {misses} of 200")
    assert misses <= 16


def test_deciles_are_cut_per_snapshot_and_deterministic():
    frame = pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(20)],
            "as_of_date": ["2025-01-06"] * 10 + ["2025-01-13"] * 10,
            "score": [0.5] * 10 + list(range(10)),
        }
    )
    cut = assign_deciles(frame, 5, within=("as_of_date",))
    assert cut.filter(pl.col("as_of_date") == "2025-01-13").sort("score")["decile"].to_list() == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]
    # Ties are broken by user_id, so the same input always gives the same deciles.
    again = assign_deciles(frame.reverse(), 5, within=("as_of_date",))
    assert cut.sort("user_id")["decile"].equals(again.sort("user_id")["decile"])


def test_revenue_outcome_compares_means():
    frame = scored_population(5_000, seed=9).frame.with_columns(outcome=pl.col("score") * 100.0)
    table = lift_by_decile(frame, bins=5)
    assert (table["outcome_kind"] == "mean").all()


def test_missing_columns_and_unknown_groups():
    with pytest.raises(ValueError, match="needs columns"):
        lift_by_decile(pl.DataFrame({"user_id": ["a"], "score": [0.1]}))
    frame = scored_population(2_000, seed=1).frame
    frame = frame.with_columns(
        holdout_group=pl.when(pl.int_range(pl.len()) < 10).then(None).otherwise("holdout_group")
    )
    table = lift_by_decile(frame)
    assert "10 rows without a holdout group" in table.filter(pl.col("decile") == 0)["note"][0]
