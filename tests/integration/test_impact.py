"""Measuring impact end to end on a real DuckDB file through dbt: a generated sample with a
planted A/B test and acquisition channels -> load -> gate -> dbt build -> exposures mart,
per-user metrics, holdout groups, audit attributes -> results table, lift, fairness (Dagster).

Checked against the generator's truth (truth/experiment_exposures.parquet, manifest.json,
truth/acquisition_channels.parquet), never against the code's own output.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import duckdb
import polars as pl
import pytest
from test_postgres_portability import (  # the same throwaway cluster and helpers
    _load_postgres,
    _normalise,
    _pg_frame,
    postgres_server,  # noqa: F401 - a fixture
)

from python_models.impact.config import load_impact_config
from python_models.impact.holdout import holdout_bucket, holdout_group
from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow

TEST_SALT = "test-salt"  # tests/conftest.py sets UBA_PSEUDONYM_SALT to this
ROTATED_SALT = "rotated-salt"
LIFT = 0.5  # chance a treated user gets an extra purchase within 7 days of exposure


@pytest.fixture(scope="module")
def impact_sample(tmp_path_factory):
    from python_models.synthetic import ExperimentPlan, generate

    return generate(
        tmp_path_factory.mktemp("impact_sample"),
        n_events=40_000,
        seed=16,
        days=90,
        experiment=ExperimentPlan(extra_conversion_probability=LIFT),
        acquisition_channels=True,
    )


@pytest.fixture(scope="module")
def impact_warehouse(impact_sample, tmp_path_factory):
    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.warehouse import connect

    path = tmp_path_factory.mktemp("impact_wh") / "warehouse.duckdb"
    con = connect(path)
    try:
        load_path(con, impact_sample.events_dir)
        assert run_gate(con).success
    finally:
        con.close()
    run_dbt(["build"], duckdb_path=path, quiet=True)
    return path


def _read(path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).pl()
    finally:
        con.close()


def _truth(sample) -> pl.DataFrame:
    truth = pl.read_parquet(sample.truth_dir / "experiment_exposures.parquet")
    return truth.with_columns(
        person=pl.col("user_id").map_elements(
            lambda raw: pseudonymize(raw, "user", TEST_SALT), return_dtype=pl.String
        )
    )


def test_exposures_mart_matches_planted_exposures(impact_sample, impact_warehouse):
    truth = _truth(impact_sample)
    mart = _read(impact_warehouse, "select * from marts.fct_experiment_exposures")
    assert mart.height == truth.height
    joined = truth.join(mart, left_on="person", right_on="user_id", how="inner")
    assert joined.height == truth.height
    assert joined["variant"].equals(joined["variant_right"])
    assert joined["is_multi_variant"].equals(joined["is_multi_variant_right"])
    # First exposure time to the millisecond.
    assert (joined["exposed_at"] == joined["first_exposed_at"]).all()
    multi = joined.filter(pl.col("is_multi_variant"))
    assert multi.height > 0 and (multi["count_variants"] == 2).all()


def test_user_metrics_match_planted_conversions(impact_sample, impact_warehouse):
    truth = _truth(impact_sample).filter(~pl.col("is_multi_variant"))
    metrics = _read(
        impact_warehouse,
        "select * from marts.fct_experiment_user_metrics "
        "where metric_name = 'purchase_conversion_7d'",
    )
    assert metrics.height == truth.height and metrics["is_mature"].all()
    joined = truth.join(metrics, left_on="person", right_on="user_id")
    expected = (joined["naturally_converted"] | joined["has_planted_conversion"]).cast(pl.Float64)
    assert joined["metric_value"].equals(expected)
    # People who saw two variants are not measured.
    excluded = _read(
        impact_warehouse,
        "select count(*) as n from marts.fct_experiment_user_metrics m "
        "join marts.fct_experiment_exposures e using (experiment_key, user_id) "
        "where e.is_multi_variant",
    )
    assert excluded["n"][0] == 0


def test_results_table_finds_the_planted_effect(impact_sample, impact_warehouse, tmp_path):
    from python_models.impact.experiments import run_experiment_analysis
    from python_models.warehouse import connect

    manifest = json.loads((impact_sample.truth_dir / "manifest.json").read_text())["experiment"]
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(impact_warehouse, path)
    con = connect(path)
    try:
        analysis = run_experiment_analysis(con)
        stored = con.execute("select * from impact.experiment_results").pl()
    finally:
        con.close()
    assert stored.height == analysis.results.height == len(load_impact_config().metrics)
    row = stored.filter(pl.col("metric_name") == "purchase_conversion_7d").row(0, named=True)
    planted = manifest["planted_conversion_lift"]
    print(
        f"planted conversion lift {planted:+.4f}; estimated {row['difference']:+.4f} "
        f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}], p = {row['p_value']:.2g}, "
        f"MDE {row['minimum_detectable_effect']:.4f}, CUPED {row['cuped_difference']:+.4f} "
        f"[{row['cuped_ci_low']:+.4f}, {row['cuped_ci_high']:+.4f}]; "
        f"n = {row['n_control']} + {row['n_variant']}"
    )
    assert row["ci_low"] <= planted <= row["ci_high"]
    assert row["p_value"] < 0.05
    assert row["n_multi_variant_excluded"] == manifest["n_multi_variant"]
    assert row["n_control"] == manifest["n_by_variant"]["control"]
    assert row["n_variant"] == manifest["n_by_variant"]["treatment"]
    assert not analysis.sample_ratio["is_sample_ratio_mismatch"].any()
    revenue = stored.filter(pl.col("metric_name") == "revenue_usd_14d").row(0, named=True)
    assert revenue["ci_low"] <= manifest["planted_revenue_lift_usd"] <= revenue["ci_high"]


def _raw_users(sample) -> list[str]:
    return pl.read_parquet(sample.truth_dir / "users.parquet")["user_id"].to_list()


def test_holdout_groups_follow_the_documented_assignment(impact_sample, impact_warehouse):
    config = load_impact_config()
    groups = _read(impact_warehouse, "select * from marts.dim_user_holdout_groups")
    users = _read(impact_warehouse, "select user_id from marts.dim_users")
    assert groups.height == users.height and groups["holdout_group"].null_count() == 0
    by_key = {row["user_id"]: row for row in groups.iter_rows(named=True)}
    raw_users = _raw_users(impact_sample)
    seen = 0
    for raw in raw_users:
        row = by_key.get(pseudonymize(raw, "user", TEST_SALT))
        if row is None:
            continue  # a user whose only events were quarantined
        seen += 1
        assert row["holdout_bucket"] == holdout_bucket(raw, "user", config.holdout_key)
        assert row["holdout_group"] == holdout_group(
            raw, "user", config.holdout_key, config.holdout_share
        )
        assert row["is_identified"]
        assert row["holdout_key_version"] == config.holdout_key_version
        assert row["assigned_at"] >= datetime.combine(
            config.holdout_key_effective_from, datetime.min.time()
        )
    assert seen >= 0.95 * len(raw_users)
    share = (groups["holdout_group"] == "holdout").mean()
    assert 0.12 < share < 0.28  # ~450 people: the binomial spread around 20%


def test_a_new_holdout_key_rebuckets_everyone_in_a_daily_run(
    impact_sample, impact_warehouse, tmp_path
):
    """The buckets are stored incrementally (new ids only): a run under another
    uba__holdout_key, without --full-refresh, still gives every id its bucket under that key."""
    from python_models.dbt_runner import run_dbt

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(impact_warehouse, path)
    key = "another-holdout-key"
    run_dbt(
        ["run", "--select", "stg_app__user_holdout_buckets dim_user_holdout_groups"],
        duckdb_path=path,
        quiet=True,
        dbt_vars={"uba__holdout_key": key},
    )
    buckets = _read(
        path, "select person_key, holdout_bucket from staging.stg_app__user_holdout_buckets"
    )
    by_key = dict(buckets.iter_rows())
    assert len(by_key) == buckets.height
    compared = 0
    for raw in _raw_users(impact_sample):
        person_key = pseudonymize(raw, "user", TEST_SALT)
        if person_key in by_key:
            assert by_key[person_key] == holdout_bucket(raw, "user", key)
            compared += 1
    assert compared > 300


def test_salt_rotation_keeps_every_group(impact_sample, impact_warehouse, tmp_path, monkeypatch):
    from python_models.dbt_runner import run_dbt

    before = _read(
        impact_warehouse, "select user_id, holdout_group from marts.dim_user_holdout_groups"
    )
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(impact_warehouse, path)
    monkeypatch.setenv("UBA_PSEUDONYM_SALT", ROTATED_SALT)
    run_dbt(
        [
            "build",
            "--full-refresh",
            "--select",
            "+dim_user_holdout_groups",
            "--indirect-selection",
            "cautious",  # tests that also read unselected models (fct_events) stay out
        ],
        duckdb_path=path,
        quiet=True,
    )
    after = _read(path, "select user_id, holdout_group from marts.dim_user_holdout_groups")
    old = dict(before.iter_rows())
    new = dict(after.iter_rows())
    compared = 0
    for raw in _raw_users(impact_sample):
        old_key, new_key = (pseudonymize(raw, "user", s) for s in (TEST_SALT, ROTATED_SALT))
        if old_key in old:
            assert new_key in new and old_key not in new  # every key changed ...
            assert new[new_key] == old[old_key]  # ... and no group did
            compared += 1
    assert compared > 300


def test_audit_attributes_carry_the_planted_channel(impact_sample, impact_warehouse):
    channels = pl.read_parquet(impact_sample.truth_dir / "acquisition_channels.parquet")
    users = pl.read_parquet(impact_sample.truth_dir / "users.parquet")
    attributes = _read(impact_warehouse, "select * from marts.dim_user_audit_attributes")
    truth = channels.join(users.select("user_id", "home_country"), on="user_id").with_columns(
        person=pl.col("user_id").map_elements(
            lambda raw: pseudonymize(raw, "user", TEST_SALT), return_dtype=pl.String
        )
    )
    joined = truth.join(attributes, left_on="person", right_on="user_id")
    assert joined.height >= 0.95 * truth.height
    assert joined["acquisition_channel"].equals(joined["acquisition_channel_right"])
    assert (joined["country"] == joined["home_country"]).mean() > 0.97


def test_audit_properties_appended_by_load_batch_equal_one_build(
    impact_sample, impact_warehouse, tmp_path
):
    """stg_app__event_audit_properties reads only the load batches it has not consumed: the
    sample loaded in two batches, each gated and built in turn, gives the same audit rows and
    attributes as one build of the whole sample (and the planted channels through it); a run
    under other declared attributes re-reads every load, without --full-refresh."""
    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.warehouse import connect

    events = pl.concat(
        [pl.read_parquet(f) for f in sorted(impact_sample.events_dir.glob("*.parquet"))]
    ).sort("event_ts", nulls_last=True)  # the second batch later: none too late for the gate
    halves = tmp_path / "first", tmp_path / "second"
    for folder, part in zip(
        halves, (events.head(events.height // 2), events.tail(-(events.height // 2))), strict=True
    ):
        folder.mkdir()
        part.write_parquet(folder / "events.parquet")
    path = tmp_path / "warehouse.duckdb"
    for folder in halves:
        con = connect(path)
        try:
            load_path(con, folder)
            assert run_gate(con).success
        finally:
            con.close()
        run_dbt(
            ["build", "--select", "+dim_user_audit_attributes", "--exclude-resource-type", "test"],
            duckdb_path=path,
            quiet=True,
        )
    rows = (
        "select event_id, attribute_name, attribute_value"
        " from staging.stg_app__event_audit_properties order by all"
    )
    attributes = "select * from marts.dim_user_audit_attributes order by user_id"
    appended = _read(path, rows)
    assert appended.height > 300  # the planted channels, each on its user's events
    assert appended.equals(_read(impact_warehouse, rows))
    assert _read(path, attributes).equals(_read(impact_warehouse, attributes))
    # a run with no new load reads nothing: a row deleted since stays deleted ...
    con = connect(path)
    try:
        con.execute(
            "delete from staging.stg_app__event_audit_properties where event_id = ?",
            [appended["event_id"][0]],
        )
    finally:
        con.close()
    run_dbt(["run", "--select", "stg_app__event_audit_properties"], duckdb_path=path, quiet=True)
    assert _read(path, rows).equals(appended.slice(1))
    # ... and under another declaration every load is read again (the old rows dropped)
    run_dbt(
        ["run", "--select", "stg_app__event_audit_properties"],
        duckdb_path=path,
        quiet=True,
        dbt_vars={"uba__audit_property_attributes": {"channel_again": "channel"}},
    )
    again = _read(path, rows)
    assert set(again["attribute_name"]) == {"channel_again"}
    assert again.drop("attribute_name").equals(appended.drop("attribute_name"))


def test_dagster_assets_write_results_lift_and_fairness(impact_warehouse, tmp_path):
    """The three impact assets materialize through Dagster. A recency baseline stands in for
    a churn score history (scores on a matured snapshot), so lift and fairness have input."""
    import dagster as dg

    from orchestration.defs.impact import impact_assets
    from orchestration.resources import WarehouseResource
    from python_models.models import get_spec

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(impact_warehouse, path)
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists ml_scores")
    con.execute(
        f"""
        create table {get_spec("churn").history_table} as
        select features.user_id, features.as_of_date, 'churn' as model_name,
            'recency-baseline' as model_version,
            1 - exp(-features.days_since_last_event / 14.0) as score
        from features.ftr_user_features as features
        inner join features.ftr_user_labels as labels using (user_id, as_of_date)
        where labels.label_churned is not null
        """
    )
    scored = con.execute(f"select count(*) from {get_spec('churn').history_table}").fetchone()[0]
    con.close()
    assert scored > 0

    result = dg.materialize(
        impact_assets, resources={"warehouse": WarehouseResource(duckdb_path=str(path))}
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["sample_ratio_matches_plan"]
    assert checks[0].passed
    metadata = {
        "/".join(e.asset_key.path): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert "data:image/png;base64," in metadata["impact/experiment_results"]["plot"].value
    assert "data:image/png;base64," in metadata["impact/score_lift_by_decile"]["plot"].value
    fairness_plots = [k for k in metadata["impact/fairness_report"] if k.startswith("plot_")]
    assert len(fairness_plots) == len(load_impact_config().fairness_attributes)

    lift = _read(path, "select * from impact.score_lift_by_decile")
    overall = lift.filter(pl.col("decile") == 0).row(0, named=True)
    assert overall["n_treatment"] + overall["n_holdout"] == scored
    assert lift.filter(pl.col("decile") > 0)["n_users"].sum() == scored
    fairness = _read(path, "select * from ml.model_fairness")
    assert set(fairness["attribute"]) == {"overall", *load_impact_config().fairness_attributes}
    assert set(fairness["model_version"]) == {"recency-baseline"}
    assert (fairness["evaluated_on"] == "matured_scores").all()


IMPACT_MARTS = {
    "marts.dim_user_holdout_groups": (
        "user_id, holdout_group, holdout_bucket, holdout_key_version, is_identified, assigned_at"
    ),
    "marts.fct_experiment_exposures": (
        "experiment_key, user_id, variant, count_exposures, is_multi_variant, first_exposed_at"
    ),
    "marts.fct_experiment_user_metrics": (
        "experiment_key, user_id, metric_name, variant, metric_value, pre_period_value, is_mature"
    ),
    "marts.dim_user_audit_attributes": "user_id, country, device, acquisition_channel",
}


@pytest.mark.postgres
def test_impact_marts_match_duckdb_on_postgres(
    impact_warehouse,
    postgres_server,  # noqa: F811 - the fixture imported above
    tmp_path,
    monkeypatch,
):
    from python_models.dbt_runner import run_dbt

    for name, value in (
        ("HOST", "127.0.0.1"),
        ("PORT", str(postgres_server)),
        ("USER", "uba"),
        ("DATABASE", "uba"),
    ):
        monkeypatch.setenv(f"UBA_PG_{name}", value)
    validated = _read(
        impact_warehouse,
        "select raw_id, event_id, user_id, anonymous_id, event_name, event_ts, received_at, "
        "session_id, properties, loaded_at from raw.events_validated",
    )
    _load_postgres(postgres_server, validated, replace=True)
    run_dbt(
        [
            "build",
            "--select",
            "event_taxonomy",
            *(f"+{t.split('.')[1]}" for t in IMPACT_MARTS),
            "--indirect-selection",
            "cautious",
        ],
        target="postgres",
        quiet=True,
        target_path=tmp_path / "dbt-target-postgres",
    )
    for table, columns in IMPACT_MARTS.items():
        expected = _read(impact_warehouse, f"select {columns} from {table}")
        actual = _pg_frame(postgres_server, f"select {columns} from {table}")
        assert expected.height > 0 and actual.height == expected.height, table
        assert _normalise(actual) == _normalise(expected), table
