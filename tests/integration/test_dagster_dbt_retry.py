"""The Dagster dbt asset retries nodes that ran out of DuckDB memory once, as `uba build` does
(tests/unit/test_dbt_runner.py, which also covers a retry that fails again), and fails as dbt
failed otherwise. Real dbt, real Dagster materializations of a two-model project
(tests/dbt_memory_project.py)."""

import json

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource, dbt_assets
from dbt_memory_project import heavy_rows_in, memory_project

from python_models.config import REPO_ROOT
from python_models.dbt_runner import dbt_executable, run_dbt


@pytest.fixture(autouse=True)
def _settings_back():
    """Each test points the settings at its own warehouse and memory limit (monkeypatch);
    reloaded here once monkeypatch has put the environment back, so later tests in the worker
    read the session's settings."""
    yield
    from python_models.config import reload_settings

    reload_settings()


def _materialize(tmp_path, monkeypatch, failing_test: bool = False, **project_vars):
    from orchestration.defs.dbt import build_with_memory_retry  # reads settings: after conftest's
    from python_models.config import reload_settings

    project = memory_project(
        tmp_path, monkeypatch, failing_test=failing_test, project_vars=project_vars
    )
    warehouse = tmp_path / "w.duckdb"
    # the asset starts dbt on the settings' warehouse (dbt_runner.dbt_env)
    monkeypatch.setenv("UBA_DUCKDB_PATH", str(warehouse))
    reload_settings()
    parsed = tmp_path / "parse"
    run_dbt(["parse"], duckdb_path=warehouse, quiet=True, target_path=parsed, project_dir=project)
    target = tmp_path / "target"

    # As a dict: dagster-dbt caches a manifest read from a path for the process's life, and
    # each test's tmp_path is the same folder (tests/conftest.py).
    @dbt_assets(manifest=json.loads((parsed / "manifest.json").read_text()))
    def memory_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from build_with_memory_retry(context, dbt, target)

    # dbt_executable(): the worker's fork server (tests/conftest.py), as the product's resource
    dbt = DbtCliResource(
        project_dir=str(project), profiles_dir=str(REPO_ROOT), dbt_executable=dbt_executable()
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [memory_assets], resources={"dbt": dbt}, instance=instance, raise_on_error=False
    )
    said = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, said, warehouse, target


def _materialized(result) -> set[str]:
    return {
        event.asset_key.path[-1]
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }


def test_a_node_out_of_memory_is_retried_and_materialized(tmp_path, monkeypatch):
    result, said, warehouse, target = _materialize(
        tmp_path, monkeypatch, ballast_rows=5_000_000, heavy_rows=2_000_000
    )
    assert result.success
    # the first build materialized ballast, the retry heavy: both, each once
    assert _materialized(result) == {"ballast", "heavy"}
    assert heavy_rows_in(warehouse) == (1000, 2_000_000)
    assert sum("(heavy): retrying them once" in line for line in said) == 1
    retried = json.loads((target / "run_results.json").read_text())
    assert retried["args"]["threads"] == 1
    nodes = [r["unique_id"] for r in retried["results"] if not r["unique_id"].startswith("op")]
    assert nodes == ["model.memory_retry.heavy"]


def test_a_retry_that_runs_out_of_memory_again_fails_with_the_uba_build_headline(
    tmp_path, monkeypatch
):
    """20M rows never fit the pool: one retry, then a Failure saying so and naming the node."""
    result, said, warehouse, target = _materialize(
        tmp_path, monkeypatch, ballast_rows=0, heavy_rows=20_000_000
    )
    assert not result.success
    assert sum("(heavy): retrying them once" in line for line in said) == 1
    failure = next(
        event.step_failure_data.error
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    said_first = "dbt ran out of DuckDB memory, and again in a fresh process with one thread: "
    assert said_first + "heavy: Out of Memory Error" in failure.message, failure.message
    assert heavy_rows_in(warehouse) is None


def test_no_retry_when_a_node_failed_for_another_reason(tmp_path, monkeypatch):
    result, said, warehouse, target = _materialize(
        tmp_path, monkeypatch, failing_test=True, ballast_rows=5_000_000, heavy_rows=2_000_000
    )
    assert not result.success
    assert not any("retrying them once" in line for line in said)
    assert heavy_rows_in(warehouse) is None
    statuses = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in json.loads((target / "run_results.json").read_text())["results"]
    }
    assert statuses["heavy"] == "error" and statuses["always_fails"] == "fail"
