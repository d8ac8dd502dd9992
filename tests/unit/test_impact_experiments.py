"""Experiment statistics against planted truth (python_models.synthetic.impact_frames):
the planted lift is found, an A/A split shows no effect, a skewed split trips the sample-ratio
check, people who saw two variants are excluded and counted."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from python_models.impact.config import ExperimentSpec, load_impact_config
from python_models.impact.experiments import experiment_results, sample_ratio_check
from python_models.impact.stats import compare_proportions, proportion_mde
from python_models.synthetic.impact_frames import planted_experiment

CONFIG = load_impact_config()
A_A_SEEDS = 100
PLANTED = {"conversion_lift": 0.04, "retention_lift": 0.05, "revenue_lift": 3.0}


def _by_metric(results: pl.DataFrame) -> dict[str, dict]:
    return {row["metric_name"]: row for row in results.iter_rows(named=True)}


def test_planted_lift_is_found_on_every_metric():
    planted = planted_experiment(6000, seed=11, n_multi_variant=25, **PLANTED)
    results, ratio = experiment_results(planted.user_metrics, planted.exposures, CONFIG)
    rows = _by_metric(results)
    assert set(rows) == {m.name for m in CONFIG.metrics}
    for name, truth in planted.truth.items():
        row = rows[name]
        assert row["control_variant"] == "control" and row["variant"] == "treatment"
        assert row["ci_low"] <= truth <= row["ci_high"], (name, truth, row)
        assert row["p_value"] < 0.05, (name, row["p_value"])
        assert row["is_significant"]
        assert row["cuped_ci_low"] <= truth <= row["cuped_ci_high"], name
        # The sample was sized to detect the planted lifts: the MDE is below each of them.
        assert 0 < row["minimum_detectable_effect"] < truth, name
        assert row["n_multi_variant_excluded"] == 25
        assert row["n_control"] + row["n_variant"] == 6000
    assert not ratio["is_sample_ratio_mismatch"].any()
    assert ratio["n_multi_variant_excluded"].to_list() == [25, 25]


def test_interval_covers_planted_lift_at_the_nominal_rate():
    """Over 40 seeds the 95% interval should cover the truth about 95% of the time; 34 or
    fewer covered would happen by chance with probability < 0.2% for a correct interval."""
    covered = {name: 0 for name in PLANTED}
    for seed in range(40):
        planted = planted_experiment(3000, seed, **PLANTED)
        results, _ = experiment_results(planted.user_metrics, planted.exposures, CONFIG)
        for name, row in _by_metric(results).items():
            covered_now = row["ci_low"] <= planted.truth[name] <= row["ci_high"]
            covered[
                {
                    "purchase_conversion_7d": "conversion_lift",
                    "retention_day_7": "retention_lift",
                    "revenue_usd_14d": "revenue_lift",
                }[name]
            ] += covered_now
    print(f"coverage of the planted lift over 40 seeds: {covered}")
    assert all(count >= 35 for count in covered.values()), covered


def test_a_a_split_reports_no_effect():
    """A/A: no planted difference. A calibrated 5% test reports an effect on about 5% of
    seeds (binomial: at most 9 of 100 with probability 97%); at least one false positive in
    100 shows the test is not so conservative that it could never find anything."""
    no_effect = {m.name: 0 for m in CONFIG.metrics}
    srm_flags = 0
    for seed in range(A_A_SEEDS):
        planted = planted_experiment(1500, seed=1000 + seed)
        results, ratio = experiment_results(planted.user_metrics, planted.exposures, CONFIG)
        for name, row in _by_metric(results).items():
            no_effect[name] += row["ci_low"] <= 0 <= row["ci_high"]
            assert (row["ci_low"] <= 0 <= row["ci_high"]) == (row["p_value"] >= 0.05), row
        srm_flags += bool(ratio["is_sample_ratio_mismatch"].any())
    rates = {name: count / A_A_SEEDS for name, count in no_effect.items()}
    pooled = sum(no_effect.values()) / (A_A_SEEDS * len(no_effect))
    print(f"A/A: share of seeds with no effect per metric {rates}, pooled {pooled:.3f}")
    assert all(0.91 <= rate < 1.0 for rate in rates.values()), rates
    assert pooled >= 0.93
    assert srm_flags == 0  # SRM alpha is 0.001: 100 balanced splits should not trip it


def test_sample_ratio_mismatch_is_flagged():
    skewed = planted_experiment(4000, seed=5, split=(0.55, 0.45))
    _, ratio = experiment_results(skewed.user_metrics, skewed.exposures, CONFIG)
    assert ratio["is_sample_ratio_mismatch"].all()
    assert ratio["p_value"][0] < 1e-6
    results, _ = experiment_results(skewed.user_metrics, skewed.exposures, CONFIG)
    assert results["note"].str.contains("sample ratio mismatch").all()
    # Declaring the plan removes the false alarm: 55/45 was intended.
    planned = sample_ratio_check(
        {"control": 2200, "treatment": 1800}, {"control": 0.55, "treatment": 0.45}
    )
    assert not planned.is_mismatch
    unplanned = sample_ratio_check(
        {"control": 10, "treatment": 10, "other": 3},
        ExperimentSpec(split={"control": 0.5, "treatment": 0.5}).split,
    )
    assert unplanned.is_mismatch and "other" in unplanned.note


def test_immature_rows_are_left_out_and_counted():
    planted = planted_experiment(2000, seed=3, conversion_lift=0.05)
    metrics = planted.user_metrics.with_columns(
        is_mature=pl.int_range(pl.len()) % 10 != 0  # every tenth row not yet observable
    )
    results, _ = experiment_results(metrics, planted.exposures, CONFIG)
    for row in results.iter_rows(named=True):
        assert row["n_immature_excluded"] == 200
        assert row["n_control"] + row["n_variant"] == 1800


def test_cuped_narrows_the_interval_when_the_pre_period_predicts_the_outcome():
    planted = planted_experiment(4000, seed=8, revenue_lift=3.0)
    results, _ = experiment_results(planted.user_metrics, planted.exposures, CONFIG)
    revenue = _by_metric(results)["revenue_usd_14d"]
    assert revenue["cuped_variance_reduction"] > 0.05
    assert (revenue["cuped_ci_high"] - revenue["cuped_ci_low"]) < (
        revenue["ci_high"] - revenue["ci_low"]
    )


def test_degenerate_groups_give_notes_not_errors():
    nobody = compare_proportions(np.zeros(50), np.zeros(50))
    assert nobody.note == "no variation" and nobody.difference == 0.0
    tiny = compare_proportions(np.ones(1), np.zeros(40))
    assert tiny.note == "too few users to compare"
    assert np.isnan(proportion_mde(0.1, 1, 1.0, 0.05, 0.8))
    # More users detect smaller effects.
    assert proportion_mde(0.1, 10_000, 1.0, 0.05, 0.8) < proportion_mde(0.1, 1_000, 1.0, 0.05, 0.8)


def test_declared_control_that_saw_nobody_is_a_clear_error():
    from python_models.impact.experiments import control_for

    with pytest.raises(ValueError, match="control variant 'A' has no exposed users"):
        control_for(["control", "treatment"], "A")
    assert control_for(["b", "a"]) == "a"
