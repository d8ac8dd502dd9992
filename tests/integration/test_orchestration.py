"""The Dagster graph end to end: materialize everything in-process on a small generated dataset,
and prove the quality gate blocks scoring when the input is corrupt."""

from __future__ import annotations

import csv
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import pipeline_env, run_full_pipeline, shifted_stamps

from python_models.ingest.contract import CONTRACT_COLUMNS

SCORE_TABLES = (
    "churn_scores",
    "ltv_scores",
    "user_segments",
    "anomaly_alerts",
    "next_action_scores",
)


@pytest.fixture
def isolated_pipeline(tmp_path):
    """Point the pipeline (settings, dbt's profile, published copy) at a fresh directory."""
    with pipeline_env(tmp_path / "data") as settings:
        yield settings


def _tables(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
    finally:
        con.close()


def test_definitions_hold_the_whole_graph():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {"/".join(k.path) for k in graph.get_all_asset_keys()}
    for expected in (
        "raw/events",
        "raw/events_validated",
        "marts/fct_sessions",
        "features/ftr_user_features",
        "ml/churn_model",
        "ml_scores/churn_scores",
        "ml_scores/anomaly_alerts",
        "ml_scores/value_at_risk",
        "ml_scores/churn_lapsed_users",
        "ml/realized_performance",
        "impact/score_lift_by_decile",
        "published/warehouse",
        "reports/retention_weekly_heatmap",
    ):
        assert expected in keys, f"{expected} missing from the asset graph"
    # dbt models hang off the gated table, not the raw one.
    staging = graph.get(
        next(k for k in graph.get_all_asset_keys() if k.path[-1] == "stg_app__events")
    )
    assert ["raw", "events_validated"] in [list(k.path) for k in staging.parent_keys]
    assert {s.name for s in defs.schedules} == {
        "daily_refresh_schedule",
        "weekly_retrain_schedule",
        "retention_schedule",
    }
    assert [s.name for s in defs.sensors] == ["drift_retrain_sensor"]
    # What the README promises: schedules off until turned on, the drift sensor on.
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert {s.default_status for s in defs.schedules} == {DefaultScheduleStatus.STOPPED}
    assert defs.sensors[0].default_status == DefaultSensorStatus.RUNNING


@pytest.mark.slow
def test_full_graph_materializes_sane_scores(full_pipeline, capsys):
    result = full_pipeline.result
    isolated_pipeline = full_pipeline.settings
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    # Every check ran and passed, but the schema-drift warning: the generator plants misspelled
    # event names, which are new to the tracking plan.
    checks = [
        c for c in result.get_asset_check_evaluations() if c.check_name != "check_schema_drift"
    ]
    assert checks and all(c.passed for c in checks), [
        (c.check_name, c.description) for c in checks if not c.passed
    ]

    con = duckdb.connect(str(isolated_pipeline.duckdb_path), read_only=True)
    try:
        users = con.execute("select count(*) from marts.dim_users").fetchone()[0]
        for table in SCORE_TABLES:
            rows, distinct_users, null_scores = con.execute(
                f"select count(*), count(distinct user_id), count(*) - count(score) "
                f"from ml_scores.{table}"
            ).fetchone()
            assert rows > 0 and null_scores == 0, table
            assert distinct_users <= users, table
        low, high = con.execute(
            "select min(score), max(score) from ml_scores.churn_scores"
        ).fetchone()
        assert 0.0 <= low < high <= 1.0
        champions = con.execute(
            "select count(distinct model_name) from ml.model_registry where status = 'champion'"
        ).fetchone()[0]
        assert champions >= 3
        # The load forecast holds no user ids: one row per metric and hour of the horizon.
        metrics, hours = con.execute(
            "select count(distinct metric), count(distinct hour_ts) from ml_scores.load_forecast"
        ).fetchone()
        assert (metrics, hours) == (2, 168)
    finally:
        con.close()

    # Evaluation plots and the retention heatmap ride along as inline images.
    materialized = {
        "/".join(event.asset_key.path): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    for key, plot in (
        ("ml/churn_model", "plot/roc"),
        ("ml/churn_model", "plot/calibration"),
        ("ml/churn_model", "plot/feature_importance"),
        ("ml/segmentation_model", "plot/segment_profiles"),
        ("ml/load_forecast_model", "plot/forecast"),
        ("reports/retention_weekly_heatmap", "heatmap"),
    ):
        assert "data:image/png;base64," in materialized[key][plot].value, (key, plot)
    assert materialized["reports/retention_weekly_heatmap"]["cohorts"].value > 0

    # Readers get the published copy and Parquet exports.
    published = isolated_pipeline.published_dir / "warehouse.duckdb"
    assert {f"ml_scores.{t}" for t in SCORE_TABLES} <= _tables(published)
    assert {f"ml_scores.{t}_history" for t in SCORE_TABLES} <= _tables(published)
    assert {
        "ml_scores.value_at_risk",
        "ml.drift_measurements",
        "ml.scoring_runs",
        "impact.score_lift_by_decile",
    } <= _tables(published)
    assert list(
        (isolated_pipeline.published_dir / "parquet" / "ml_scores.churn_scores").glob("*.parquet")
    )

    # The demo's closing summary reads the published copy.
    from python_models.commands.demo import print_summary

    capsys.readouterr()
    with pipeline_env(isolated_pipeline.data_dir):
        print_summary()
    summary = capsys.readouterr().out
    for expected in (
        "ml_scores.churn_scores",
        "Highest churn risk",
        "Act first",
        "Top anomaly alerts",
    ):
        assert expected in summary, summary
    assert "not published" not in summary, summary


@pytest.mark.slow
def test_corrupt_input_blocks_everything_downstream(isolated_pipeline, sample_data, tmp_path):
    # A batch whose timestamps are all garbage: the gate quarantines it and the blocking check
    # must stop dbt, training and scoring.
    corrupt = tmp_path / "corrupt.csv"
    fields = list(CONTRACT_COLUMNS)
    with corrupt.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for i in range(500):
            writer.writerow(
                {
                    "event_id": f"e{i}",
                    "user_id": f"u{i % 20}",
                    "anonymous_id": "",
                    "event_name": "page_view",
                    "event_ts": "yesterday-ish",
                    "received_at": "2025-03-01T00:00:00Z",
                    "session_id": "",
                    "properties": "{}",
                }
            )
    result = run_full_pipeline(corrupt)
    assert not result.success

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["check_raw_events_quality"].passed is False

    tables = _tables(isolated_pipeline.duckdb_path)
    assert "raw.events_quarantine" in tables
    assert not any(t.startswith("ml_scores.") for t in tables), tables
    assert not any(t.startswith(("marts.", "features.")) for t in tables), tables
    assert not (isolated_pipeline.published_dir / "warehouse.duckdb").exists()


def test_scoring_asset_scores_only_the_users_whose_features_changed(full_pipeline, tmp_path):
    """Materialized again on the same warehouse, churn's scoring asset scores nobody; after
    three users' latest features change, exactly those three are scored (the rest keep their
    rows from the pipeline's run)."""
    import shutil

    import dagster as dg
    from conftest import repoint_registry

    from orchestration.defs.ml import build_scoring_asset
    from orchestration.resources import WarehouseResource
    from python_models.common.features import catalogue_feature_columns
    from python_models.models import get_spec

    spec = get_spec("churn")
    data_dir = tmp_path / "data"
    shutil.copytree(full_pipeline.settings.data_dir, data_dir)
    repoint_registry(data_dir, full_pipeline.settings.data_dir)
    asset = build_scoring_asset(spec)
    feature = next(f for f in catalogue_feature_columns("churn") if f.startswith("count_events_"))

    def materialize() -> tuple[dict, dict]:
        result = dg.materialize([asset], resources={"warehouse": WarehouseResource()})
        assert result.success
        (event,) = result.get_asset_materialization_events()
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        try:
            rows = con.execute(f"select user_id, run_id from {spec.score_table}").fetchall()
        finally:
            con.close()
        return event.materialization.metadata, dict(rows)

    with pipeline_env(data_dir):
        before = materialize()[1]
        assert len(set(before.values())) == 1  # one run wrote them all: the pipeline's
        metadata, unchanged = materialize()
        assert metadata["scored"].value.startswith("nothing: no user's features changed")
        assert unchanged == before

        con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
        try:
            changed_users = [
                u for (u,) in con.execute(
                    f"select user_id from {spec.score_table} order by user_id limit 3"
                ).fetchall()
            ]  # fmt: skip
            con.execute(
                f"update features.ftr_user_features set {feature} = {feature} + 1000 "
                "where user_id in (select unnest(?)) and as_of_date = "
                "(select max(as_of_date) from features.ftr_user_features)",
                [changed_users],
            )
        finally:
            con.close()
        metadata, after = materialize()
    assert metadata["scored"].value == "3 rows (changed)"
    assert {u for u in after if after[u] != before[u]} == set(changed_users)
    assert len(after) == len(before)


def _day_after(events_dir: Path, days: int, out: Path) -> Path:
    """The sample's last day of events again, `days` later under new event ids: a new day file."""
    import uuid

    import polars as pl

    events = pl.read_parquet(str(events_dir / "*.parquet"))
    stamps = pl.col("event_ts").str.to_datetime(time_zone="UTC", strict=False)
    last = events.filter(stamps.dt.date() == events.select(stamps.dt.date().max()).item())
    ids = [  # a missing id stays missing (the gate quarantines it, as the sample's own)
        None if e is None else str(uuid.uuid5(uuid.NAMESPACE_URL, f"day-{days}-{e}"))
        for e in last["event_id"]
    ]
    out.mkdir()
    last.with_columns(pl.Series("event_id", ids), **shifted_stamps(f"{days}d")).write_parquet(
        out / "day.parquet"
    )
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")
def test_a_run_s_dbt_forks_from_a_process_the_run_warmed_as_it_started(tmp_path, monkeypatch):
    """Without the tests' dbt fork server, a Dagster run's dbt resource starts one of its own
    as the run starts; the dbt step runs dbt through it (the run's log counts the run forked
    from it), dbt's work is done (the time spine holds every day of the project's declared
    range), and the run's end stops the server and removes its folder."""
    import dagster as dg
    import yaml
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
    from processes import cmdline

    from orchestration.defs.dbt import dbt_resource, uba_dbt_assets
    from orchestration.resources import WarehouseResource
    from python_models import dbt_fork
    from python_models.config import DBT_PROJECT_DIR

    monkeypatch.delenv(dbt_fork.SERVER_ENV)
    executables = []  # the executable each dbt process the step starts runs
    start_dbt = DbtCliInvocation.run

    def recorded(*args, **kwargs):
        executables.append(Path(kwargs["args"][0]))
        return start_dbt(*args, **kwargs)

    monkeypatch.setattr(DbtCliInvocation, "run", recorded)
    (spine,) = [key for key in uba_dbt_assets.keys if key.path[-1] == "metricflow_time_spine"]
    instance = dg.DagsterInstance.ephemeral()
    with pipeline_env(tmp_path / "data") as settings:
        result = dg.materialize(
            [uba_dbt_assets],
            selection=[spine],
            resources={"dbt": dbt_resource(), "warehouse": WarehouseResource()},
            instance=instance,
        )  # fmt: skip
        assert result.success
        con = duckdb.connect(str(settings.duckdb_path), read_only=True)
        try:
            first, last, days = con.execute(
                "select min(date_day), max(date_day), count(distinct date_day) "
                "from marts.metricflow_time_spine"
            ).fetchone()
        finally:
            con.close()
    project_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert str(first) == str(project_vars["uba__time_spine_start"])
    assert last < date.fromisoformat(str(project_vars["uba__time_spine_end"])) + timedelta(days=1)
    assert days == (last - first).days + 1
    (executable,) = executables
    assert executable.name == dbt_fork.EXECUTABLE_NAME and executable.parent.name.startswith(
        "uba-dbt-"
    )
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert "1 dbt run(s) forked from this run's warmed dbt process" in "\n".join(messages)
    assert not executable.parent.exists()
    assert not [
        proc
        for proc in Path("/proc").glob("[0-9]*")
        if str(executable.parent) in cmdline(int(proc.name))
    ]


@pytest.mark.slow
def test_daily_dbt_assets_run_the_saved_data_tests(
    full_pipeline, sample_data, tmp_path, monkeypatch
):
    """Once a run saved the data tests' compiled SQL for this code, the dbt assets build the
    models alone (the seeds and views the saving build wrote are reported reused) and run
    every data test from that SQL, each reported as the asset check dagster-dbt reports; a
    planted duplicate in the (reused) seed fails its check and the step, naming the test.
    dagster-dbt's `dbt --version` subprocess is not run (the resource knows dbt's version).
    dbt runs as `uba refresh` starts it: on the settings' warehouse file, and without DuckDB's
    vacuum while the file's deleted rows are few, as the assets' own connections."""
    import shutil

    import dagster as dg
    from conftest import repoint_registry
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    from orchestration.defs.dbt import dbt_resource, uba_dbt_after_scoring, uba_dbt_assets
    from orchestration.defs.ingest import events_validated, raw_events, raw_files_run_config
    from orchestration.resources import WarehouseResource
    from python_models import dbt_daily_tests
    from python_models.dbt_runner import dbt_env
    from python_models.warehouse.duckdb_engine import (
        DAILY_CHECKPOINT_THRESHOLD,
        VACUUM_DEAD_SHARE,
        dead_row_share,
    )

    data_dir = tmp_path / "data"
    shutil.copytree(full_pipeline.settings.data_dir, data_dir)
    repoint_registry(data_dir, full_pipeline.settings.data_dir)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))  # the plan's folder

    def no_version_subprocess(*args, **kwargs):
        raise AssertionError(f"dagster-dbt ran {args}")

    monkeypatch.setattr("dagster_dbt.core.resource.check_output", no_version_subprocess)
    dbt_environments = []  # the environment of each dbt process the dbt assets start
    start_dbt = DbtCliInvocation.run

    def recorded(*args, **kwargs):
        dbt_environments.append(dict(kwargs["env"]))
        return start_dbt(*args, **kwargs)

    monkeypatch.setattr(DbtCliInvocation, "run", recorded)
    resources = {"warehouse": WarehouseResource(), "dbt": dbt_resource()}

    def materialize(assets, day: Path | None = None):
        config = raw_files_run_config(str(day)) if day else {}
        return dg.materialize(assets, resources=resources, run_config=config, raise_on_error=False)

    def replayed(check) -> bool:
        return "uba/ran" in check.metadata

    whole = [raw_events, events_validated, uba_dbt_assets, uba_dbt_after_scoring]
    with pipeline_env(data_dir):
        fingerprint = dbt_daily_tests.code_fingerprint(dbt_env())
        assert dbt_daily_tests.load_plan(fingerprint) is None
        # 1. no plan: dbt runs its test nodes; after the build (an incremental batch now)
        # the main asset saves the plan
        main = [raw_events, events_validated, uba_dbt_assets]
        first = materialize(main, _day_after(sample_data.events_dir, 1, tmp_path / "day1"))
        assert first.success
        checks = first.get_asset_check_evaluations()
        assert checks and not any(replayed(c) for c in checks)
        plan = dbt_daily_tests.load_plan(fingerprint)
        assert plan is not None

        # 2. the plan: every check of the main asset reported from the replay, all passing;
        # the static nodes (seed, views) reported reused, every other node built by dbt. The
        # warehouse given by UBA_DATA_DIR alone: dbt builds the file the other assets write.
        os.environ.pop("UBA_DUCKDB_PATH")  # pipeline_env puts it back
        second = materialize(whole, _day_after(sample_data.events_dir, 2, tmp_path / "day2"))
        assert second.success, [e.message for e in second.all_events if e.is_failure]
        # dbt ran with `uba refresh`'s DuckDB settings for a day (the profile's plugin applies
        # them: tests/unit/test_dbt_runner.py), the file's dead rows being few
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        try:
            assert dead_row_share(con) < VACUUM_DEAD_SHARE
        finally:
            con.close()
        (built,) = dbt_environments[-1:]
        assert built["UBA_DUCKDB_PATH"] == str(data_dir / "warehouse.duckdb")
        assert built["UBA_DUCKDB_CHECKPOINT_THRESHOLD"] == DAILY_CHECKPOINT_THRESHOLD
        assert built["UBA_DUCKDB_MAX_VACUUM_TASKS"] == "0"
        expected = set(uba_dbt_assets.check_keys) | set(uba_dbt_after_scoring.check_keys)
        checks = [c for c in second.get_asset_check_evaluations() if c.asset_check_key in expected]
        assert {c.asset_check_key for c in checks} == expected and len(checks) == len(expected)
        assert all(replayed(c) and c.passed for c in checks)
        statuses = {
            event.asset_key.path[-1]: event.materialization.metadata["status"].value
            for event in second.get_asset_materialization_events()
            if event.asset_key in uba_dbt_assets.keys | uba_dbt_after_scoring.keys
        }
        assert len(statuses) == len(uba_dbt_assets.keys | uba_dbt_after_scoring.keys)
        reused = {name for name, status in statuses.items() if status == "reused"}
        assert {"event_taxonomy", "fct_churn_scores", "metricflow_time_spine"} <= reused
        assert statuses["int_events_sessionized"] == "success"
        assert statuses["stg_app__events"] == "success"

        # 3. a duplicate planted in the seed's table (reused, so not rewritten): its unique
        # check fails, the other checks pass, and the step fails naming the test
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
        try:
            (schema,) = con.execute(
                "select table_schema from information_schema.tables "
                "where table_name = 'event_taxonomy'"
            ).fetchone()
            con.execute(
                f"insert into {schema}.event_taxonomy select * from {schema}.event_taxonomy limit 1"
            )
        finally:
            con.close()
        third = materialize([uba_dbt_assets])
    assert not third.success
    failed = [c for c in third.get_asset_check_evaluations() if not c.passed]
    assert [c.check_name for c in failed] == ["unique_event_taxonomy_event_name"]
    assert len(third.get_asset_check_evaluations()) == len(uba_dbt_assets.check_keys)
    (failure,) = [e for e in third.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("1 data test(s) failed: unique_event_taxonomy_event_name: 1 ")


def test_the_daily_publish_hashes_only_the_days_the_build_can_have_written(
    full_pipeline, sample_data, tmp_path, monkeypatch
):
    """The Dagster publish asset publishes a day as `uba refresh` does: of the big tables it
    hashes only the days the day's dbt build can have written (python_models.days_written),
    known from the basis and dbt code the publication before was made with, the tables only
    dbt writes are published beside the steps after the dbt step (started as a day's build
    from the saved data tests ends; the feature mart's read-only check runs meanwhile), and
    the publication still equals a full publish of the warehouse, row for row. A model scored
    when its inputs changed (LTV) takes their fingerprints from those figures, as `uba refresh`
    does, instead of hashing the event table whole in its step; they equal whole hashes."""
    import shutil

    import dagster as dg
    from conftest import assert_equals_a_full_publish, repoint_registry

    from orchestration.defs.dbt import dbt_resource, uba_dbt_assets
    from orchestration.defs.ingest import events_validated, raw_events, raw_files_run_config
    from orchestration.defs.ml import build_scoring_asset
    from orchestration.defs.publish import published_warehouse
    from orchestration.defs.quality import check_feature_mart_quality
    from orchestration.resources import WarehouseResource
    from python_models import days_written
    from python_models.common.scores import inputs_fingerprint, last_score_state
    from python_models.models import get_spec
    from python_models.warehouse.base import Warehouse

    data_dir = tmp_path / "data"
    shutil.copytree(full_pipeline.settings.data_dir, data_dir)
    repoint_registry(data_dir, full_pipeline.settings.data_dir)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    bounds = []
    known = days_written.unchanged_before
    monkeypatch.setattr(
        days_written, "unchanged_before", lambda *a: bounds.append(known(*a)) or bounds[-1]
    )
    ltv = get_spec("ltv")
    assert ltv.fingerprinted_inputs  # scored whole when one of them changed
    hashed_whole = []
    whole = Warehouse.fingerprint
    monkeypatch.setattr(
        Warehouse, "fingerprint", lambda w, t: hashed_whole.append(t) or whole(w, t)
    )
    assets = [
        raw_events,
        events_validated,
        uba_dbt_assets,
        check_feature_mart_quality,
        build_scoring_asset(ltv),
        published_warehouse,
    ]
    resources = {"warehouse": WarehouseResource(), "dbt": dbt_resource()}
    with pipeline_env(data_dir) as settings:
        for day in (1, 2):
            hashed_whole.clear()
            run_config = raw_files_run_config(
                str(_day_after(sample_data.events_dir, day, tmp_path / f"day{day}"))
            )
            result = dg.materialize(
                assets, resources=resources, run_config=run_config, raise_on_error=False
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
        (published,) = [
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["published", "warehouse"])
        ]
        (scored,) = [
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["ml_scores", "ltv_scores"])
        ]
        assert scored["scored"].value.endswith("(full)")  # the day's events changed its inputs
        assert not set(hashed_whole) & set(ltv.fingerprinted_inputs)
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        try:
            (history_from,) = con.execute("select min(event_date) from marts.fct_events").fetchone()
            recorded = last_score_state(con, ltv).inputs_fingerprint
            assert recorded == inputs_fingerprint(con, ltv)  # each input hashed whole now
        finally:
            con.close()
        # the second day's bounds: the event tables from the day's own events on, not the
        # whole history
        assert published["tables_hashed_by_day"].value == len(bounds[-1]) > 0
        assert history_from < bounds[-1]["marts.fct_events"]
        # the day changed the event marts, whose files were written beside
        assert 0 < published["tables_published_beside"].value < published["tables"].value
        assert published["tables_copied"].value >= published["tables_published_beside"].value
        assert_equals_a_full_publish(settings.published_dir, tmp_path / "fresh")


def test_a_run_failing_after_its_dbt_step_lets_the_warehouse_go_and_publishes_nothing(
    full_pipeline, sample_data, tmp_path, monkeypatch
):
    """The publish started as a day's dbt step ends holds the DuckDB file in the run's process
    (its thread reads dbt's tables beside the later steps): when a step before the publish
    fails, the run's end waits for the thread and closes the file, another process can write
    the warehouse at once, and the publication is the one before, untouched. A day whose
    publish cannot be bounded to the days its build wrote (the publication is not the day
    before's) publishes at the end instead."""
    import shutil
    import subprocess
    import threading

    import dagster as dg
    from conftest import repoint_registry

    from orchestration.defs.dbt import dbt_resource, uba_dbt_assets
    from orchestration.defs.ingest import events_validated, raw_events, raw_files_run_config
    from orchestration.defs.ml import build_scoring_asset
    from orchestration.defs.publish import published_warehouse
    from orchestration.resources import WarehouseResource
    from python_models import lifecycle
    from python_models.models import get_spec

    data_dir = tmp_path / "data"
    shutil.copytree(full_pipeline.settings.data_dir, data_dir)
    repoint_registry(data_dir, full_pipeline.settings.data_dir)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    resources = {"warehouse": WarehouseResource(), "dbt": dbt_resource()}
    published = data_dir / "published"
    instance = dg.DagsterInstance.ephemeral()

    def started(result) -> bool:
        return any(
            "publishing the tables only dbt writes" in e.user_message
            for e in instance.all_logs(result.run_id)
        )

    def fail(*args, **kwargs):
        raise RuntimeError("planted scoring failure")

    with pipeline_env(data_dir) as settings:

        def day(number: int, assets: list) -> dg.ExecuteInProcessResult:
            files = _day_after(sample_data.events_dir, number, tmp_path / f"d{number}")
            return dg.materialize(
                assets,
                resources=resources,
                run_config=raw_files_run_config(str(files)),
                instance=instance,
                raise_on_error=False,
            )

        ingest = [raw_events, events_validated, uba_dbt_assets]
        assert day(1, ingest).success  # saves the data tests' plan
        # from the plan, but the publication is the first build's: published at the end
        result = day(2, [*ingest, published_warehouse])
        assert result.success and not started(result)
        manifest = (published / "manifest.json").read_text()
        parquet = sorted(p.relative_to(published) for p in (published / "parquet").rglob("*"))

        monkeypatch.setattr(lifecycle, "score_changed", fail)
        result = day(3, [*ingest, build_scoring_asset(get_spec("churn")), published_warehouse])
        assert not result.success and started(result)
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert dg.AssetKey(["published", "warehouse"]) not in materialized
        assert not [t for t in threading.enumerate() if t.name == "uba-publish-beside"]
        writer = subprocess.run(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                "c.execute('create table ml.written_after as select 1 as x'); c.close()",
                str(settings.duckdb_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert writer.returncode == 0, writer.stderr
    assert (published / "manifest.json").read_text() == manifest
    assert sorted(p.relative_to(published) for p in (published / "parquet").rglob("*")) == parquet


def test_a_model_not_served_holds_back_no_publication(full_pipeline, tmp_path):
    """A model without a champion (it did not beat its baselines, as the load forecast at 10M
    events) is scored by nobody and says so, its score check passes with nothing to check, the
    table built from its scores is not built, and the publication goes on with the other
    models' tables, as `uba refresh` skips such a model."""
    import shutil

    import dagster as dg
    from conftest import repoint_registry

    from orchestration.defs.ml import build_derived_asset, build_scoring_asset
    from orchestration.defs.publish import published_warehouse
    from orchestration.defs.quality import build_score_check
    from orchestration.resources import WarehouseResource
    from python_models.models import DERIVED_TABLES, get_spec

    spec = get_spec("ltv")
    (at_risk,) = [d for d in DERIVED_TABLES if spec.score_table in d.reads]
    data_dir = tmp_path / "data"
    shutil.copytree(full_pipeline.settings.data_dir, data_dir)
    repoint_registry(data_dir, full_pipeline.settings.data_dir)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:  # LTV never served: no champion, never scored
        con.execute("update ml.model_registry set status = 'challenger' where model_name = 'ltv'")
        for table in (spec.score_table, spec.history_table, at_risk.name):
            con.execute(f"drop table {table}")
    finally:
        con.close()
    assets = [
        build_scoring_asset(spec),
        build_score_check(spec),
        build_derived_asset(at_risk),
        published_warehouse,
    ]
    with pipeline_env(data_dir) as settings:
        result = dg.materialize(
            assets, resources={"warehouse": WarehouseResource()}, raise_on_error=False
        )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = {
        "/".join(e.asset_key.path): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert metadata["ml_scores/ltv_scores"]["scored"].value.startswith("nothing: no champion")
    assert metadata[at_risk.name.replace(".", "/")]["built"].value == (
        f"nothing: needs {spec.score_table}"
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.description.startswith("ltv is not served")
    published = _tables(settings.published_dir / "warehouse.duckdb")
    assert "ml_scores.churn_scores" in published
    assert spec.score_table not in published and at_risk.name not in published
