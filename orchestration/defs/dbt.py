"""The dbt project as Dagster assets; dbt tests become asset checks.

Once a build of this code has saved its data tests' compiled SQL (python_models/dbt_daily_tests.py:
a `uba refresh`, or the first whole run of these assets after the first batch, saves it), a
whole run of either dbt asset builds as `uba refresh` does: dbt builds the models only (no
unit tests, no data test nodes, not the seeds and views that plan's build wrote from this same
code: those are reported as materializations with status `reused`), then the data tests of the
asset's nodes run from that SQL in this process, each reported as the asset check (or, for a
singular test of several models, the observations) dagster-dbt reports for its node; a failing
test fails the step after every result is reported. Without a plan, a subset of the assets
or on another engine, dbt runs its test nodes itself.
"""

import contextlib
import graphlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import (
    get_asset_check_key_for_test,
    get_checks_on_sources_upstream_of_selected_assets,
    get_manifest_and_translator_from_dbt_assets,
)
from dagster_dbt.compat import DBT_PYTHON_VERSION
from packaging import version
from pydantic import PrivateAttr

from orchestration.defs.ml import model_libraries_for_run
from orchestration.manifest import ensure_manifest
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models import dbt_daily_tests, dbt_fork
from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, dbt_fork_server, get_settings
from python_models.dbt_runner import (
    RETRY_FAILED_TOO,
    a_saved_parse,
    dbt_executable,
    failed_node_messages,
    finished_nodes,
    memory_retry_notice,
    out_of_memory_nodes,
    seed_target_folder,
    warehouse_build_threads,
)

# No target given here or to the resource: dbt takes the settings' target from UBA_DBT_TARGET in
# the environment it starts in (_dbt_environment), as `uba build` does. A `--target` on dbt's
# command line enters dbt's check of a saved parse (its vars hash), so the parse Dagster's
# definitions and the install save without one made the assets' first build parse the whole
# project again (~8 s of CPU in a fresh clone's demo).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=REPO_ROOT)
MANIFEST_PATH = ensure_manifest()
DAGSTER_DBT_TARGET = DBT_PROJECT_DIR / "target" / "dagster"
# How long a dbt step waits for the run's dbt process to finish warming up (~4-5 s quiet,
# ~10-13 s without a saved parse) before it starts dbt cold.
WARM_UP_WAIT_S = 60.0


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
AFTER_SCORING_TAG = "after_scoring"
AFTER_SCORING = f"tag:{AFTER_SCORING_TAG}"


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=UbaDbtTranslator(),
    pool=WRITER_POOL,
    exclude=AFTER_SCORING,
)
def uba_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """`dbt build`: seeds, models (incremental where they grow) and their tests."""
    # One artifacts folder, overwritten per run: dagster-dbt's default is a new folder per run
    # (~7 MB each, never cleaned). Runs that write are serialized by the pool, so no clash.
    libraries = model_libraries_for_run(context)  # imported while this process waits on dbt
    try:
        yield from build_and_check(
            context, dbt, DAGSTER_DBT_TARGET, after_scoring=False, warehouse=warehouse
        )
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
def uba_dbt_after_scoring(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """`dbt build` of the models that read the score tables, once they are written."""
    yield from build_and_check(
        context, dbt, DAGSTER_DBT_TARGET, after_scoring=True, warehouse=warehouse
    )


def build_and_check(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    target_path: Path,
    after_scoring: bool,
    warehouse: WarehouseResource,
) -> Iterator:
    """The asset's `dbt build`, its data tests from their saved compiled SQL where a plan for
    this code is saved (module docstring), else as dbt's own test nodes; the main asset
    (`after_scoring` False) then saves a plan when one may be saved. `after_scoring`: which of
    the two dbt assets runs (a test runs in the one that builds a model it reads last).
    `warehouse`: the run's resource: after a day's build from the plan, the main asset starts
    the day's publish beside the later steps (orchestration/defs/publish.py); a dbt process
    started after that (the after-scoring asset building a model) lets the file go first."""
    # (imported here: the publish asset's module reads these assets)
    from orchestration.defs.publish import publish_beside_later_steps
    from python_models.days_written import PRODUCER
    from python_models.dbt_runner import dbt_env
    from python_models.warehouse import connect, table_exists
    from python_models.warehouse.duckdb_engine import daily_duckdb_settings, skip_vacuum_as

    manifest, translator, project = get_manifest_and_translator_from_dbt_assets(
        [context.assets_def]
    )
    plan = _saved_plan(context, manifest)  # only on DuckDB
    duckdb_settings, static = {}, set()
    if get_settings().warehouse == "duckdb":
        con = connect()
        try:
            # A day's build, as `uba refresh` runs it; a first build keeps DuckDB's own
            # settings, as `uba build` does.
            if table_exists(con, PRODUCER):
                duckdb_settings = daily_duckdb_settings(con)
                skip_vacuum_as(con, duckdb_settings)
            if plan is not None:
                static = set(dbt_daily_tests.unchanged_static_nodes(con, plan[0]))
        finally:
            con.close()
    if plan is None:
        warehouse.release_publication()  # (if started) the publish asset then does it all
        yield from build_with_memory_retry(
            context, dbt, target_path, duckdb_settings=duckdb_settings
        )
        if not after_scoring:
            _save_plan_when_due(context)
        return

    _, tests = plan
    nodes = _selected_nodes(context, manifest, translator, project)
    reused = [uid for uid in nodes if manifest["nodes"][uid]["name"] in static]
    built = iter(())
    if len(reused) < len(nodes):
        warehouse.release_publication()
        built = build_with_memory_retry(
            context,
            dbt,
            target_path,
            command=dbt_daily_tests.DAILY_MODELS_BUILD,
            exclude=sorted(manifest["nodes"][uid]["name"] for uid in reused),
            duckdb_settings=duckdb_settings,
        )
    yield from _with_reused(built, reused, nodes, manifest)
    tests = [t for t in tests if _reads_after_scoring(manifest, t["unique_id"]) == after_scoring]
    con = connect()
    try:
        outcome = dbt_daily_tests.run_plan(
            con, tests, threads=dbt_daily_tests.test_threads(dbt_env())
        )
    finally:
        con.close()
    yield from _test_events(context, manifest, translator, project, tests, outcome)
    for warning in outcome.warned:
        context.log.warning(f"data test warning: {warning}")
    if outcome.failed:
        raise dg.Failure(
            description=f"{len(outcome.failed)} data test(s) failed: {outcome.failed[0]}",
            metadata={"failed tests": "\n".join(outcome.failed)},
        )
    context.log.info(outcome.describe())
    if not after_scoring:
        # a day's build: the after-scoring asset finds the same plan, and builds no model
        # (its views over the scores are static, reused), so no dbt process needs the file
        publish_beside_later_steps(context, warehouse)


# A static node (a seed, a view, a model reading no other node) that the build which saved the
# plan wrote from this same code: not built again, reported as dbt reports a node it reused.
REUSED = {
    "status": "reused",
    "uba/reused": "built from the code alone, unchanged since the build that saved the data "
    "tests' plan (python_models/dbt_daily_tests.py)",
}


def _with_reused(
    events: Iterator, reused: list[str], nodes: Mapping[str, dg.AssetKey], manifest
) -> Iterator:
    """dbt's events, with an output (status reused) for each `reused` node: yielded just before
    the first node built downstream of it (a multi-asset yields its outputs in topological
    order; dbt builds in that order, so what a reused node reads was yielded before), the
    rest at the end."""
    parents = {uid: [p for p in _depends_on(manifest["nodes"][uid]) if p in nodes] for uid in nodes}
    order = graphlib.TopologicalSorter(parents).static_order()
    pending = [uid for uid in order if uid in reused]
    node_of_output = {key.to_python_identifier(): uid for uid, key in nodes.items()}

    def ancestors(uid: str, seen: set[str]) -> set[str]:
        for parent in parents[uid]:
            if parent not in seen:
                seen.add(parent)
                ancestors(parent, seen)
        return seen

    def release(due: set[str]) -> Iterator:
        for uid in [u for u in pending if u in due]:
            pending.remove(uid)
            yield dg.Output(None, output_name=nodes[uid].to_python_identifier(), metadata=REUSED)

    for event in events:
        if isinstance(event, dg.Output) and event.output_name in node_of_output:
            yield from release(ancestors(node_of_output[event.output_name], set()))
        yield event
    yield from release(set(pending))


def _saved_plan(
    context: dg.AssetExecutionContext, manifest: Mapping[str, Any]
) -> tuple[str, list[dict]] | None:
    """(code fingerprint, saved tests) when the asset's whole selection runs on DuckDB and a
    plan is saved for this code; None otherwise (dbt runs its test nodes)."""
    if context.is_subset or not dbt_daily_tests.replays_tests():
        return None
    from python_models.dbt_runner import dbt_env

    fingerprint = dbt_daily_tests.code_fingerprint(dbt_env())
    tests = dbt_daily_tests.load_plan(fingerprint)
    if not tests:
        return None
    # A plan of the project on disk that this process's manifest predates (the code location
    # loaded before the project changed): its tests are not all known here, dbt runs them.
    if any(test["unique_id"] not in manifest["nodes"] for test in tests):
        return None
    return fingerprint, tests


def _save_plan_when_due(context: dg.AssetExecutionContext) -> None:
    """After a whole build that ran dbt's test nodes, on DuckDB, once the warehouse holds an
    incremental batch: the tests compiled and saved for the next runs of this code (a dbt
    compile, ~2-3 s at 1M events, once per code version). A compile that fails is said, not
    raised: the build itself succeeded, and the next run tries again."""
    if context.is_subset or not dbt_daily_tests.replays_tests():
        return
    from python_models.dbt_runner import DbtError, dbt_env

    if not dbt_daily_tests.holds_an_incremental_batch():
        return
    try:
        saved = dbt_daily_tests.compile_and_save_plan(dbt_daily_tests.code_fingerprint(dbt_env()))
    except DbtError as err:
        context.log.warning(f"the data tests' SQL was not saved (dbt compile failed): {err}")
        return
    context.log.info(
        f"{saved} data tests saved: the next runs of this code run them from their compiled SQL"
    )


def _selected_nodes(context, manifest, translator, project) -> dict[str, dg.AssetKey]:
    """The dbt nodes (models, seeds, snapshots) the asset materializes, by unique_id."""
    nodes = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] in ("model", "seed", "snapshot"):
            key = translator.get_asset_spec(manifest, unique_id, project).key
            if key in context.selected_asset_keys:
                nodes[unique_id] = key
    return nodes


def _reads_after_scoring(manifest: Mapping[str, Any], test_id: str) -> bool:
    """Whether a test reads a model of the after-scoring asset: dbt's own selection then runs
    it there (its default, eager, indirect selection), and in the main asset otherwise."""
    return any(
        AFTER_SCORING_TAG in (manifest["nodes"].get(parent) or {}).get("tags", [])
        for parent in _depends_on(manifest["nodes"].get(test_id) or {})
    )


def _depends_on(node: Mapping[str, Any]) -> list[str]:
    return (node.get("depends_on") or {}).get("nodes") or []


def _test_events(context, manifest, translator, project, tests, outcome) -> Iterator:
    """Each replayed test as dagster-dbt reports its node: an asset check result where the
    test is a check of the selection, else an observation of each node it reads."""
    check_keys = {
        *context.selected_asset_check_keys,
        *get_checks_on_sources_upstream_of_selected_assets(
            context.assets_def, context.selected_asset_keys
        ),
    }
    for test in tests:
        status, failures = outcome.results[test["unique_id"]]
        metadata = {
            "unique_id": test["unique_id"],
            "status": status,
            "dagster_dbt/failed_row_count": failures,
            "uba/ran": "from its compiled SQL (python_models/dbt_daily_tests.py)",
        }
        key = get_asset_check_key_for_test(manifest, translator, test["unique_id"], project)
        if key in check_keys:
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=status == "pass",
                severity=dg.AssetCheckSeverity.WARN
                if status == "warn"
                else dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
            )
            continue
        for parent in _depends_on(manifest["nodes"][test["unique_id"]]):
            props = manifest["nodes"].get(parent) or manifest["sources"].get(parent)
            yield dg.AssetObservation(asset_key=translator.get_asset_key(props), metadata=metadata)


def build_with_memory_retry(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    target_path: Path,
    command: Sequence[str] = ("build",),
    exclude: Sequence[str] = (),
    duckdb_settings: Mapping[str, str] | None = None,
) -> Iterator:
    """`dbt build` of the context's selection (`command`: dbt's build with its options, less
    the nodes named in `exclude`; `duckdb_settings`: DuckDB settings for this build, as
    dbt_runner.dbt_env takes them), as `uba build` runs it: when the build fails
    and every failed node ran out of DuckDB memory, the failed and skipped nodes are built once
    more in a fresh dbt process with one thread (dbt's threads share one DuckDB memory_limit;
    see python_models.dbt_runner). Any other failure raises dbt's error.

    The retry excludes what the first build finished rather than selecting what failed:
    dagster-dbt adds the context's selection to a --select of ours as a union, but subtracts
    an --exclude, so the retry stays inside Dagster's selection (what `dbt retry` does). A
    retry that fails too raises a Failure headed as `uba build`'s, naming each failed node."""
    started = time.time()
    seed_target_folder(target_path)  # a first build starts from a saved parse where it can
    # one value: dagster-dbt takes a single value after each --exclude of ours
    excluded = ["--exclude", " ".join(exclude)] if exclude else []
    with _dbt_environment(duckdb_settings):
        build = dbt.cli(
            [*command, *warehouse_build_threads(), *excluded],
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
    retry = [*command, "--threads", "1"]
    finished = [*exclude, *finished_nodes(results, since=started)]
    if finished:
        retry += ["--exclude", " ".join(finished)]
    started = time.time()
    with _dbt_environment(duckdb_settings):
        again = dbt.cli(retry, context=context, target_path=target_path, raise_on_error=False)
    yield from again.stream()
    if not again.is_successful():
        failed = failed_node_messages(results, since=started)
        raise dg.Failure(
            description=RETRY_FAILED_TOO + (failed[0] if failed else "see dbt's output"),
            metadata={"failed nodes": "\n".join(failed)},
        ) from again.get_error()


@contextlib.contextmanager
def _dbt_environment(duckdb_settings: Mapping[str, str] | None) -> Iterator[None]:
    """This process's environment, while dagster-dbt starts a dbt process (it copies
    os.environ), made the one `uba build` and `uba refresh` start dbt in (dbt_runner.dbt_env):
    the warehouse file and target of the settings (without it, a UBA_DATA_DIR given alone left
    dbt on the profile's default file while the other assets wrote the settings' one) and
    `duckdb_settings`. Restored afterwards."""
    from python_models.dbt_runner import dbt_env

    before = dict(os.environ)
    wanted = dbt_env(duckdb_settings=dict(duckdb_settings or {}))
    changed = {key: value for key, value in wanted.items() if before.get(key) != value}
    os.environ.update(changed)
    try:
        yield
    finally:
        for key in changed:
            if key in before:
                os.environ.update({key: before[key]})
            else:
                os.environ.pop(key, None)


class UbaDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two costs of each `dbt.cli` call that this project
    has no use for (~5 s of a daily run's two dbt steps on 2 cores): a `dbt --version`
    subprocess (the executable is dbt-core's own CLI, so its version is the installed
    package's) and a dbt adapter handle built by loading the project's macros (dagster-dbt
    uses it only to fetch row counts and column metadata, which these assets do not ask for).

    A run's dbt starts warm: the resource, initialized as the run starts (the in-process
    executor initializes a run's resources once, before its first step), starts a dbt fork
    server of its own (python_models/dbt_fork.py), which imports dbt and parses the project
    (from the last run's saved parse: ~4-5 s) while the load and the gate run; each `cli`
    call waits for it to serve and runs dbt forked from it (~1 s to a model instead of
    ~7-8 s), and the run's end stops it. Where fork is not available, or a server already
    serves this process's dbt runs (the tests'), dbt starts as a process of its own, as
    dagster-dbt starts it."""

    _fork_server: Any = PrivateAttr(default=None)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[DbtCliResource]:
        folder, server = self._start_fork_server(context)
        resource = self
        if server is not None:
            resource = self._with_updated_values(
                {"dbt_executable": dbt_fork.executable_path(folder)}
            )
            resource._fork_server = server
        try:
            with super(UbaDbtCliResource, resource).yield_for_execution(context) as value:
                yield value
        finally:
            if server is not None:
                dbt_fork.stop_server(server)
                forked = dbt_fork.forked_runs(folder)
                shutil.rmtree(folder, ignore_errors=True)
                context.log.info(
                    f"{forked} dbt run(s) forked from this run's warmed dbt process "
                    "(python_models/dbt_fork.py)"
                )

    def _start_fork_server(self, context: dg.InitResourceContext) -> tuple[str | None, Any]:
        """(its folder, its process), or (None, None) where dbt starts cold."""
        if not sys.platform.startswith("linux") or dbt_fork_server():
            return None, None
        folder = tempfile.mkdtemp(prefix="uba-dbt-")  # short: a socket's path holds ~107 bytes
        try:
            return folder, dbt_fork.start_server(folder, a_saved_parse(DAGSTER_DBT_TARGET))
        except (OSError, ValueError) as err:
            shutil.rmtree(folder, ignore_errors=True)
            context.log.warning(f"dbt starts cold in this run (no warmed dbt process): {err}")
            return None, None

    def cli(self, args: Sequence[str], **kwargs: Any) -> Any:
        if self._fork_server is not None:
            folder = Path(self.dbt_executable).parent
            started = time.monotonic()
            serving = dbt_fork.wait_until_serving(folder, self._fork_server, WARM_UP_WAIT_S)
            waited = f"{time.monotonic() - started:.1f} s"
            if serving:
                dg.get_dagster_logger().info(
                    f"dbt forks from the run's warmed dbt process (waited {waited} for it)"
                )
            else:
                dg.get_dagster_logger().warning(
                    f"dbt starts cold: the run's dbt process is not warm after {waited}"
                )
        return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:
        # the installed dbt-core's, as dagster-dbt read it on import
        return DBT_PYTHON_VERSION or super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_resource() -> DbtCliResource:
    # the same executable as `uba build` (the tests' dbt fork server where one is set)
    return UbaDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
