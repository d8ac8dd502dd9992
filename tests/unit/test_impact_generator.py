"""The generator's planted experiment and acquisition channels: off by default (output
unchanged), additive when on, and the truth agrees with the events written."""

from __future__ import annotations

import json

import polars as pl
import pytest

from python_models.synthetic import ExperimentPlan, generate

EVENTS = 6_000


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("plain"), n_events=EVENTS, seed=21, days=90)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    plan = ExperimentPlan(extra_conversion_probability=0.5, multi_variant_share=0.05)
    return generate(
        tmp_path_factory.mktemp("planted"),
        n_events=EVENTS,
        seed=21,
        days=90,
        experiment=plan,
        acquisition_channels=True,
    )


def _events(result) -> pl.DataFrame:
    return pl.read_parquet(result.events_dir / "*.parquet")


def test_planting_only_adds_rows(plain, planted):
    # Defect rows may lack an event_id; they are the same in both runs and cannot be joined.
    before, after = (_events(r).filter(pl.col("event_id") != "") for r in (plain, planted))
    extra = after.join(before, on="event_id", how="anti")
    assert set(extra["event_name"].unique()) == {"experiment_exposure", "purchase"}
    # Every original event is still there, the same apart from the channel property.
    kept = after.join(before.select("event_id"), on="event_id", how="semi").sort("event_id")
    original = before.sort("event_id")
    assert kept.height == original.height
    for column in ("user_id", "anonymous_id", "event_name", "event_ts", "received_at"):
        assert kept[column].equals(original[column]), column
    # Defect rows (session_id `defect-...`) may have cut properties; every other row of an
    # identified user carries the channel.
    identified = kept.filter(
        pl.col("user_id").is_not_null() & ~pl.col("session_id").str.starts_with("defect-")
    )
    assert identified["properties"].str.contains('"channel":"').all()
    assert _events(planted).height == planted.manifest["n_rows"]
    assert _events(plain).height + extra.height == planted.manifest["n_rows"]


def test_truth_matches_the_events(planted):
    truth = pl.read_parquet(planted.truth_dir / "experiment_exposures.parquet")
    manifest = json.loads((planted.truth_dir / "manifest.json").read_text())["experiment"]
    events = _events(planted)
    exposures = events.filter(pl.col("event_name") == "experiment_exposure").with_columns(
        variant=pl.col("properties").str.json_path_match("$.variant"),
        key=pl.col("properties").str.json_path_match("$.experiment_key"),
    )
    assert (exposures["key"] == "checkout_nudge").all()
    multi = truth.filter(pl.col("is_multi_variant"))
    assert exposures.height == truth.height + multi.height
    assert manifest["n_exposed"] == truth.height and manifest["n_multi_variant"] == multi.height
    assert multi.height > 0
    # Only treated users got the planted conversion, about half of them (p = 0.5).
    planted_rows = truth.filter(pl.col("has_planted_conversion"))
    assert (planted_rows["variant"] == "treatment").all()
    share = planted_rows.height / truth.filter(pl.col("variant") == "treatment").height
    assert 0.3 < share < 0.7
    lift = manifest["planted_conversion_lift"]
    assert lift == pytest.approx(0.5 * (1 - manifest["natural_conversion_rate"]), abs=1e-6)
    channels = pl.read_parquet(planted.truth_dir / "acquisition_channels.parquet")
    assert channels.height == planted.manifest["n_users"]


def test_bad_plans_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no room to observe"):
        generate(tmp_path, n_events=1000, days=60, experiment=ExperimentPlan(end_day=58))
    with pytest.raises(ValueError, match="treated_variant"):
        ExperimentPlan(treated_variant="B").validate(182)
    with pytest.raises(ValueError, match="extra_conversion_probability"):
        ExperimentPlan(extra_conversion_probability=2).validate(182)
