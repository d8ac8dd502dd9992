"""`uba build`'s first build runs dbt's models (and unit tests) as nodes and the data tests from
their compiled SQL after them (python_models.dbt_daily_tests.build_and_test): a planted bad row
still fails the build, naming the test and its failing rows count, and a warning is still
reported."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import with_dbt_unit_tests

from python_models.warehouse import connect

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# A raw row loaded twice (the same raw_id): the source's unique test and the events'
# reconciliation with the source (severity error) fail.
FAILING_TESTS = [
    "assert_fct_events_reconcile_with_source",
    "source_unique_app_events_validated_raw_id",
]
# A device outside the accepted values: its test has severity warn.
DEVICE_TEST = "accepted_values_stg_app__events_device__desktop__mobile__tablet"


def _plant(path: Path) -> None:
    con = connect(path)
    try:
        con.execute(
            "insert into raw.events_validated select * from raw.events_validated "
            "where raw_id = (select min(raw_id) from raw.events_validated)"
        )
        con.execute(
            "update raw.events_validated set properties = json_merge_patch(properties, "
            """'{"device": "toaster"}') where raw_id = (select max(raw_id) from """
            "raw.events_validated)"
        )
    finally:
        con.close()


def _uba_build(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "python_models.cli", "build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_planted_bad_row_fails_the_first_build_naming_the_test(gated_warehouse, tmp_path):
    from python_models import dbt_daily_tests

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(gated_warehouse, path)
    _plant(path)
    target = tmp_path / "target"
    with with_dbt_unit_tests():  # `uba build`'s nodes as a deployment runs them
        env = {**os.environ, "UBA_DUCKDB_PATH": str(path), "DBT_TARGET_PATH": str(target)}
    done = _uba_build(env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"uba build: data test warning: {DEVICE_TEST}" in done.stderr
    assert "2 data test(s) failed: " in done.stderr, done.stderr
    assert re.findall(r"(\w+): 1 failing rows; first: \(", done.stderr) == FAILING_TESTS
    # dbt ran the models and the unit tests as nodes; of the data tests only the salt guard
    results = json.loads((target / "run_results.json").read_text())["results"]
    kinds = {result["unique_id"].split(".")[0] for result in results}
    assert {"model", "unit_test"} <= kinds
    tests = [r["unique_id"].split(".")[2] for r in results if r["unique_id"].startswith("test.")]
    assert tests == ["assert_one_pseudonym_salt"]
    # a small build keeps the profile's two threads (build_threads)
    assert len({r["thread_id"] for r in results if r["unique_id"].startswith("model.")}) == 2

    # The failures are those tests': the compiled tests without one fail on the other only,
    # without both on none.
    manifest = dbt_daily_tests.compiled_tests_dir(target) / "manifest.json"
    tests = dbt_daily_tests.compiled_tests(json.loads(manifest.read_text()))
    con = connect(path)
    try:
        for skipped in [*([name] for name in FAILING_TESTS), FAILING_TESTS]:
            outcome = dbt_daily_tests.run_plan(con, [t for t in tests if t["name"] not in skipped])
            assert [f.split(":")[0] for f in outcome.failed] == [
                name for name in FAILING_TESTS if name not in skipped
            ]
            assert [w.split(":")[0] for w in outcome.warned] == [DEVICE_TEST]
    finally:
        con.close()

    # A changed salt still stops the build before staging (its guard runs as a dbt node).
    staged = con_hash(path)
    env["UBA_PSEUDONYM_SALT"] = "another-salt"
    done = _uba_build(env)
    assert done.returncode == 1 and "assert_one_pseudonym_salt" in done.stderr, done.stderr
    assert con_hash(path) == staged


def con_hash(path: Path) -> int:
    con = connect(path)
    try:
        return con.execute(
            "select sum(hash(user_hash, event_id)) from staging.stg_app__events"
        ).fetchone()[0]
    finally:
        con.close()


def test_a_selected_build_runs_only_the_tests_of_its_nodes(gated_warehouse, tmp_path):
    """The bench's same-work row: build_and_test with a selection builds those nodes alone and
    runs only the tests whose every parent is among them (cautious), from their compiled SQL."""
    from python_models.dbt_daily_tests import DATA_BUILD, build_and_test
    from python_models.dbt_runner import DbtError

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(gated_warehouse, path)
    _plant(path)
    target = tmp_path / "target"
    warnings: list[str] = []
    with pytest.raises(DbtError) as failed:
        build_and_test(
            DATA_BUILD,
            warn=warnings.append,
            select=["+stg_app__events"],
            duckdb_path=str(path),
            target_path=str(target),
            quiet=True,
        )
    # Of the two planted failures only the source's is in the selection; fct_events' is not.
    assert re.findall(r"(\w+): 1 failing rows", str(failed.value)) == [FAILING_TESTS[1]]
    assert [line.split(": ")[1] for line in warnings] == [DEVICE_TEST]
    built = json.loads((target / "run_results.json").read_text())["results"]
    models = {r["unique_id"].split(".")[-1] for r in built if r["unique_id"].startswith("model.")}
    assert models == {"stg_app__events", "stg_app__pseudonym_salts"}  # and its salt
    con = connect(path)
    try:
        marts = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
    finally:
        con.close()
    assert marts == 0


def test_the_first_refresh_of_an_empty_warehouse_builds_it_with_dbt_started_before_the_load(
    sample_data, built_warehouse, tmp_path, monkeypatch
):
    """`uba refresh` on a warehouse it never built loads, gates and builds everything (as the
    bench's first build does), with dbt's start-up (import, parse) begun before the load, and
    ends with the same events and features as a plain `dbt build` of the same sample. Its
    events here outgrow the pool (build_threads, the pool read as none): dbt builds with one
    thread, to the same tables."""
    from python_models import dbt_runner
    from python_models.commands import refresh as refresh_module
    from python_models.config import reload_settings

    order: list[str] = []
    start_dbt, load = refresh_module._start_dbt, refresh_module._load

    def started(*args, **kwargs):
        order.append("dbt started")
        return start_dbt(*args, **kwargs)

    def loaded(*args, **kwargs):
        order.append("load")
        return load(*args, **kwargs)

    monkeypatch.setattr(refresh_module, "_start_dbt", started)
    monkeypatch.setattr(refresh_module, "_load", loaded)
    monkeypatch.setattr(dbt_runner, "_pool_gib", lambda memory_limit: 0.0)
    monkeypatch.delenv("UBA_DBT_THREADS", raising=False)
    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UBA_DUCKDB_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    (tmp_path / "data").mkdir()
    reload_settings()
    try:
        result = refresh_module.refresh(
            [str(sample_data.events_dir)], data_docs=False, say=lambda line: None
        )
    finally:
        reload_settings()
    assert order == ["dbt started", "load"]
    assert [name for name, *_ in result.steps][:3] == ["load", "gate", "dbt"]
    assert not result.nothing_new and not result.failed

    figures = (
        "select count(*), sum(hash(user_id, event_id, session_id)) from marts.fct_events",
        "select count(*), sum(hash(user_id, as_of_date, count_events_lifetime)) "
        "from features.ftr_user_features",
    )

    def read(path: Path) -> list[tuple]:
        con = connect(path)
        try:
            return [con.execute(sql).fetchone() for sql in figures]
        finally:
            con.close()

    built = read(tmp_path / "data" / "warehouse.duckdb")
    assert built == read(built_warehouse)
    assert built[0][0] > 0 and built[1][0] > 0
    results = json.loads((tmp_path / "dbt-target" / "run_results.json").read_text())["results"]
    models = [r for r in results if r["unique_id"].startswith("model.")]
    assert len(models) > 20 and len({r["thread_id"] for r in models}) == 1
