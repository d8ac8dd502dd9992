"""Holdout assignment and impact settings: deterministic, salt-independent, the configured
share, the documented column, clear errors for bad settings."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import polars as pl
import pytest
from scipy import stats

from python_models.impact import holdout
from python_models.impact.config import ImpactConfigError, load_impact_config, parse_impact_config
from python_models.privacy import pseudonymize

KEY = "test-holdout-key"


def test_bucket_is_the_documented_hash():
    digest = hashlib.sha256(f"{KEY}|holdout|user|u000000042".encode()).hexdigest()
    assert holdout.holdout_bucket("u000000042", "user", KEY) == int(digest[:8], 16) % 10_000
    with pytest.raises(ValueError, match="namespace"):
        holdout.holdout_bucket("x", "email", KEY)


def test_groups_have_the_configured_share_and_ignore_the_pseudonym_salt():
    ids = [f"u{i:09d}" for i in range(40_000)]
    groups = [holdout.holdout_group(i, "user", KEY, 0.2) for i in ids]
    n_holdout = groups.count("holdout")
    # Two-sided binomial test against the configured 20%.
    assert stats.binomtest(n_holdout, len(ids), 0.2).pvalue > 0.001, n_holdout / len(ids)
    # The group depends on the raw id and the holdout key only: the same person under two
    # pseudonymization salts (two different user_ids downstream) keeps the group.
    for raw in ids[:200]:
        assert pseudonymize(raw, "user", "salt-a") != pseudonymize(raw, "user", "salt-b")
        assert holdout.holdout_group(raw, "user", KEY, 0.2) == groups[ids.index(raw)]
    # A different key reshuffles (about 68% keep their group at 20%: 0.8^2 + 0.2^2).
    other = [holdout.holdout_group(i, "user", "another-key", 0.2) for i in ids[:5000]]
    kept = sum(a == b for a, b in zip(groups[:5000], other, strict=True)) / 5000
    assert 0.64 < kept < 0.72


def test_share_bounds():
    assert holdout.holdout_threshold(0.0) == 0
    assert holdout.holdout_threshold(0.2) == 2000
    with pytest.raises(ValueError, match="holdout share"):
        holdout.holdout_threshold(1.0)


def test_with_holdout_group_joins_without_dropping_rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    scores = pl.DataFrame({"user_id": ["b", "a", "zzz"], "score": [0.2, 0.9, 0.5]})
    with pytest.raises(LookupError, match="run `uba build`"):
        holdout.with_holdout_group(con, scores)
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_user_holdout_groups as select * from (values "
        "('a', 'holdout', 1), ('b', 'treatment', 1)) as t(user_id, holdout_group, "
        "holdout_key_version)"
    )
    joined = holdout.with_holdout_group(con, scores)
    assert joined["user_id"].to_list() == ["b", "a", "zzz"]
    assert joined[holdout.HOLDOUT_GROUP_COLUMN].to_list() == ["treatment", "holdout", None]
    con.register("scores", scores.to_arrow())
    via_sql = con.execute(holdout.holdout_join_sql("scores") + " order by scores.user_id").pl()
    assert via_sql["holdout_group"].to_list() == ["holdout", "treatment", None]
    con.close()


def test_project_settings_parse():
    config = load_impact_config()
    assert config.holdout_share == 0.2
    assert config.holdout_key_effective_from <= date.today()
    assert {m.kind for m in config.metrics} == {"conversion", "retention", "revenue"}
    assert config.disparity_threshold == 0.8
    assert "acquisition_channel" in config.fairness_attributes
    assert config.property_attributes["acquisition_channel"] == "channel"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uba__holdout_share": 1.5}, "uba__holdout_share must be in"),
        ({"uba__experiment_metrics": []}, "uba__experiment_metrics is empty"),
        ({"uba__experiment_metrics": [{"name": "x", "kind": "clicks"}]}, "kind must be one of"),
        (
            {"uba__experiment_metrics": [{"name": "x", "kind": "conversion", "window_days": 7}]},
            "needs event_name",
        ),
        ({"uba__holdout_key_effective_from": "soon"}, "YYYY-MM-DD"),
        (
            {"uba__impact_models": {"churn": {"scores_table": "churn", "outcome": "x"}}},
            "schema.table",
        ),
        ({"uba__experiments": {"t": {"control": "A", "split": {"B": 1}}}}, "not in split"),
    ],
)
def test_bad_settings_are_named(change, message):
    vars_ = {
        "uba__holdout_share": 0.2,
        "uba__holdout_key": "k",
        "uba__holdout_key_version": 1,
        "uba__holdout_key_effective_from": "2025-01-01",
        "uba__experiment_metrics": [{"name": "r", "kind": "retention", "day": 7}],
        "uba__impact_models": {},
    }
    with pytest.raises(ImpactConfigError, match=message):
        parse_impact_config(vars_ | change)
