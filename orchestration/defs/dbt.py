"""The dbt project as Dagster assets; dbt tests become asset checks."""

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.defs.ml import model_libraries_for_run
from orchestration.manifest import ensure_manifest
from orchestration.resources import WRITER_POOL
from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, get_settings
from python_models.dbt_runner import (
    RETRY_FAILED_TOO,
    dbt_executable,
    failed_node_messages,
    finished_nodes,
    memory_retry_notice,
    out_of_memory_nodes,
    seed_target_folder,
    warehouse_build_threads,
)

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=REPO_ROOT,
    target=get_settings().dbt_target,
)
MANIFEST_PATH = ensure_manifest()
DAGSTER_DBT_TARGET = DBT_PROJECT_DIR / "target" / "dagster"


class UbaDbtTranslator(DagsterDbtTranslator):
    """Sources are tables Python assets write, keyed `<schema>/<table>` like those assets
    (`raw/events_validated` from the gate, `ml_scores/churn_scores` from scoring), so lineage
    joins up; models are grouped by their layer folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return fqn[1] if len(fqn) > 2 else "dbt"


# dbt models over the score tables (tag after_scoring in dbt_project.yml, e.g. the semantic
# layer's marts.fct_churn_scores): their own asset definition, downstream of scoring. In the
# main one they would make a cycle (dbt -> features -> models -> scores -> dbt).
AFTER_SCORING = "tag:after_scoring"


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=UbaDbtTranslator(),
    pool=WRITER_POOL,
    exclude=AFTER_SCORING,
)
def uba_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build`: seeds, models (incremental where they grow) and their tests."""
    # One artifacts folder, overwritten per run: dagster-dbt's default is a new folder per run
    # (~7 MB each, never cleaned). Runs that write are serialized by the pool, so no clash.
    libraries = model_libraries_for_run(context)  # imported while this process waits on dbt
    try:
        yield from build_with_memory_retry(context, dbt, DAGSTER_DBT_TARGET)
    finally:
        if libraries is not None:
            libraries.join()  # before a model step, so no module is imported by two threads


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=UbaDbtTranslator(),
    pool=WRITER_POOL,
    select=AFTER_SCORING,
    name="uba_dbt_after_scoring",
)
def uba_dbt_after_scoring(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the models that read the score tables, once they are written."""
    yield from build_with_memory_retry(context, dbt, DAGSTER_DBT_TARGET)


def build_with_memory_retry(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, target_path: Path
) -> Iterator:
    """`dbt build` of the context's selection, as `uba build` runs it: when the build fails
    and every failed node ran out of DuckDB memory, the failed and skipped nodes are built once
    more in a fresh dbt process with one thread (dbt's threads share one DuckDB memory_limit;
    see python_models.dbt_runner). Any other failure raises dbt's error.

    The retry excludes what the first build finished rather than selecting what failed:
    dagster-dbt adds the context's selection to a --select of ours as a union, but subtracts
    an --exclude, so the retry stays inside Dagster's selection (what `dbt retry` does). A
    retry that fails too raises a Failure headed as `uba build`'s, naming each failed node."""
    started = time.time()
    seed_target_folder(target_path)  # a first build starts from a saved parse where it can
    build = dbt.cli(
        ["build", *warehouse_build_threads()],
        context=context,
        target_path=target_path,
        raise_on_error=False,
    )
    yield from build.stream()
    if build.is_successful():
        return
    results = Path(target_path) / "run_results.json"
    nodes = out_of_memory_nodes(results, since=started)
    if not nodes:
        raise build.get_error()
    context.log.warning(memory_retry_notice(nodes))
    retry = ["build", "--threads", "1"]
    finished = finished_nodes(results, since=started)
    if finished:
        retry += ["--exclude", " ".join(finished)]
    started = time.time()
    again = dbt.cli(retry, context=context, target_path=target_path, raise_on_error=False)
    yield from again.stream()
    if not again.is_successful():
        failed = failed_node_messages(results, since=started)
        raise dg.Failure(
            description=RETRY_FAILED_TOO + (failed[0] if failed else "see dbt's output"),
            metadata={"failed nodes": "\n".join(failed)},
        ) from again.get_error()


def dbt_resource() -> DbtCliResource:
    # the same executable as `uba build` (the tests' dbt fork server where one is set)
    return DbtCliResource(
        project_dir=dbt_project, target=get_settings().dbt_target, dbt_executable=dbt_executable()
    )
