"""Fairness report against a planted disparity (python_models.synthetic.impact_frames): the
model over-predicts churn for users in Brazil; the report flags that group and no other
attribute, flags nothing when nothing is planted, and is recorded with the model version."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import polars as pl
import pytest

from python_models.impact.config import load_impact_config
from python_models.impact.fairness import (
    FAIRNESS_TABLE,
    fairness_report,
    flagged_groups,
    record_fairness_report,
    report_for_version,
)
from python_models.impact.plots import fairness_plot
from python_models.synthetic.impact_frames import scored_population

ATTRIBUTES = ("country", "device", "acquisition_channel")
SEEDS = range(5)


def _report(frame: pl.DataFrame, **kwargs) -> pl.DataFrame:
    return fairness_report(frame, ATTRIBUTES, label_column="outcome", **kwargs)


@pytest.fixture(scope="module")
def biased():
    return scored_population(
        20_000, seed=0, biased_attribute="country", biased_group="BR", bias_logit=1.0
    ).frame


def test_planted_disparity_is_flagged_and_no_other_attribute():
    for seed in SEEDS:
        frame = scored_population(
            20_000, seed=seed, biased_attribute="country", biased_group="BR", bias_logit=1.0
        ).frame
        report = _report(frame)
        flags = flagged_groups(report)
        assert {attribute for attribute, _, _ in flags} == {"country"}, (seed, flags)
        brazil = report.filter(pl.col("group_value") == "BR").row(0, named=True)
        assert brazil["is_flagged"]
        # Over-prediction: more selected, more false alarms, fewer misses, scores above the
        # observed rate (calibration = observed / predicted well below 1).
        for metric in (
            "selection_rate",
            "false_positive_rate",
            "false_negative_rate",
            "calibration",
        ):
            assert metric in brazil["flagged_metrics"], (seed, brazil["flagged_metrics"])
        assert brazil["false_positive_rate_ratio"] > 1.25
        assert brazil["false_negative_rate_ratio"] < 0.8
        assert brazil["calibration"] < 0.8
        # The model ranks Brazilians as well as anyone: the bias shifts, it does not scramble.
        assert "auc" not in brazil["flagged_metrics"]
        # Brazil is the group with the most flagged metrics (a strong bias shifts the
        # population figures, so a large peer may cross the line on one metric).
        counts = {group: len(m.split(",")) for _, group, m in flags}
        assert max(counts, key=counts.get) == "BR"


def test_nothing_planted_nothing_flagged():
    for seed in SEEDS:
        report = _report(scored_population(20_000, seed=50 + seed).frame)
        assert flagged_groups(report) == [], seed


def test_report_shape_and_overall_row(biased):
    report = _report(biased)
    overall = report.filter(pl.col("attribute") == "overall").row(0, named=True)
    assert overall["n_users"] == biased.height
    assert 0.6 < overall["auc"] < 0.95
    assert overall["selection_rate_ratio"] is None  # the population is not compared to itself
    per_attribute = report.filter(pl.col("attribute") == "device")
    assert per_attribute["n_users"].sum() == biased.height
    assert report.filter(pl.col("attribute") == "country").height == 10


def test_small_groups_are_reported_not_flagged(biased):
    small = biased.head(3_000)
    report = _report(small, min_group_size=10_000)
    assert not report["is_flagged"].any()
    assert report.filter(pl.col("group_value") == "BR").height == 1


def test_unknown_attribute_values_form_their_own_group(biased):
    frame = biased.with_columns(
        device=pl.when(pl.int_range(pl.len()) < 100).then(None).otherwise("device")
    )
    report = _report(frame)
    unknown = report.filter(
        (pl.col("attribute") == "device") & (pl.col("group_value") == "(unknown)")
    )
    assert unknown["n_users"].to_list() == [100]


def test_bad_input_is_a_clear_error(biased):
    with pytest.raises(ValueError, match="lacks columns"):
        fairness_report(biased, ["plan"], label_column="outcome")
    with pytest.raises(ValueError, match="must be boolean or 0/1"):
        fairness_report(biased.with_columns(outcome=pl.lit(2)), ATTRIBUTES, label_column="outcome")


def test_plot_and_record_with_model_version(biased, tmp_path):
    report = _report(biased)
    path = fairness_plot(biased, report, "country", tmp_path / "country.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    written = record_fairness_report(con, "churn", "v1", report, "training_holdout")
    assert written == report.height
    # Recording again replaces that version's report; other versions stay.
    record_fairness_report(con, "churn", "v1", report, "training_holdout")
    record_fairness_report(con, "churn", "v2", report.head(3), "training_holdout")
    counts = dict(
        con.execute(f"select model_version, count(*) from {FAIRNESS_TABLE} group by 1").fetchall()
    )
    assert counts == {"v1": report.height, "v2": 3}
    flagged = con.execute(
        f"select attribute, group_value from {FAIRNESS_TABLE} "
        "where model_version = 'v1' and is_flagged"
    ).fetchall()
    assert ("country", "BR") in flagged

    # The registry's entry point joins attributes from the audit mart when they are missing.
    con.execute("create schema marts")
    attributes = biased.select("user_id", *ATTRIBUTES)
    con.register("attrs", attributes.to_arrow())
    con.execute("create table marts.dim_user_audit_attributes as select * from attrs")
    config = load_impact_config()
    scored = biased.select("user_id", "score", label="outcome")
    version_report = report_for_version(con, "churn", "v3", scored, config=config)
    assert ("country", "BR") in [(a, g) for a, g, _ in flagged_groups(version_report)]
    settings = con.execute(
        f"select distinct settings from {FAIRNESS_TABLE} where model_version = 'v3'"
    ).fetchone()[0]
    assert '"disparity_threshold": 0.8' in settings
    con.close()


def test_the_decision_threshold_is_the_model_versions_own_unless_configured(biased, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    scored = biased.select("user_id", *ATTRIBUTES, "score", label="outcome")
    unset = replace(load_impact_config(), decision_threshold=None)
    learned = float(scored["score"].quantile(0.9))  # e.g. churn's learned threshold
    for config, metrics, expected in [
        (unset, {"decision_threshold": learned}, learned),
        (unset, {}, 0.5),  # a version without one
        (replace(unset, decision_threshold=0.3), {"decision_threshold": learned}, 0.3),
    ]:
        report = report_for_version(
            con, "churn", "v1", scored, config=config, version_metrics=metrics
        )
        overall = report.filter(pl.col("attribute") == "overall")["selection_rate"][0]
        assert overall == pytest.approx((scored["score"] >= expected).mean())
        settings = con.execute(f"select distinct settings from {FAIRNESS_TABLE}").fetchone()[0]
        assert f'"decision_threshold": {expected}' in settings
    con.close()
