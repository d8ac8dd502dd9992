"""Shared fixtures: one small generated dataset, gated and built once per test run (shared by
the pytest-xdist workers).

Every fixture works in its own temporary directory; nothing touches the demo's data/ folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# pytest-xdist workers run with a __main__ without __file__, which pyspark (imported by Great
# Expectations when installed) takes for its doctest runner and exits: expectations' guard.
import expectations  # noqa: E402, F401

SAMPLE_EVENTS = int(os.environ.get("UBA_TEST_EVENTS", "60000"))
SAMPLE_SEED = 7
# More account takeovers than the default 2% so the anomaly tests have enough planted cases.
SAMPLE_ATO_RATE = 0.06
TEST_SALT = "test-salt"


# Under pytest-xdist, tests that share an expensive fixture run on one worker, so it is built
# once per session, not once per worker: each integration module (its module-scoped fixtures: a
# dbt build, a PostgreSQL or Spark run), and the modules below together (a session fixture only
# they use). Declared by file: the controller that schedules sees only test ids.
SHARED_FIXTURE_MODULES = {
    "full_pipeline": ("test_bi", "test_dev_signals", "test_orchestration"),
    "privacy_pipeline": ("test_privacy_consent", "test_privacy_erasure"),
}
# Scopes taking the most minutes, longest first: they start first, so that no worker is left
# finishing a long one alone at the end. Unit tests go last, one by one (they even out the end).
LONGEST_FIRST = (
    "test_spark_engine",
    "full_pipeline",
    "test_postgres_pipeline",
    "test_tracking_plan_features",
    "test_funnels",
    "test_daily_increment",
)
_GROUP_OF_MODULE = {m: group for group, modules in SHARED_FIXTURE_MODULES.items() for m in modules}


def xdist_scope(nodeid: str) -> str:
    """The scheduling unit of a test: its integration module (or shared-fixture group); a unit
    test is its own."""
    path = nodeid.split("::", 1)[0]
    if "/integration/" not in path:
        return nodeid
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    return _GROUP_OF_MODULE.get(module, module)


@pytest.hookimpl(optionalhook=True)  # run with or without pytest-xdist (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """Load balancing by xdist_scope, in the order pytest_collection_modifyitems gives (with
    --dist load, xdist's default under -n; an explicit other --dist is left alone). xdist's
    own loadgroup does not group under pytest 9 (it renames test ids, which pytest 9 ignores)."""
    if config.option.dist != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    config.option.loadscopereorder = False
    return SharedFixtureScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        scope = xdist_scope(item.nodeid)
        if scope in LONGEST_FIRST:
            return LONGEST_FIRST.index(scope)
        return len(LONGEST_FIRST) + (0 if scope != item.nodeid else 1)

    items.sort(key=rank)  # stable: collection order within a rank


DBT_EXCLUDE_ENV = "DBT_EXCLUDE_RESOURCE_TYPES"  # dbt's --exclude-resource-type
# dbt arguments for a build of the models alone, where the test's own check is a comparison
# (with the shared sample's tested build, a full refresh, another engine's tables or a
# reimplementation): the data and unit tests run in built_warehouse's build and the product's
# runs, and would only add minutes here.
DBT_MODELS_ONLY = ["--exclude-resource-type", "test", "unit_test"]


@contextlib.contextmanager
def with_dbt_unit_tests() -> Iterator[None]:
    """dbt runs started inside run the project's unit tests again (the session leaves them out)."""
    excluded = os.environ.pop(DBT_EXCLUDE_ENV, None)
    try:
        yield
    finally:
        if excluded is not None:
            os.environ[DBT_EXCLUDE_ENV] = excluded


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory):
    """Point every setting at a temporary directory for the whole session."""
    root = tmp_path_factory.mktemp("uba")
    os.environ["UBA_DATA_DIR"] = str(root / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(root / "data" / "warehouse.duckdb")
    os.environ["UBA_PSEUDONYM_SALT"] = TEST_SALT
    # The generator plants misspelled event names as defects to be quarantined (the default
    # policy would keep and flag them); tests of the flag policy pass their own GateRules.
    os.environ["UBA_UNKNOWN_EVENT_POLICY"] = "quarantine"
    os.environ["UBA_DUCKDB_MEMORY_LIMIT"] = "2GB"
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    (root / "dagster_home").mkdir()
    # dbt's unit tests check the SQL on fixed inputs: they run in the shared sample's full build
    # (built_warehouse) and where a test is about them (the PostgreSQL builds, `uba build`'s
    # nodes: with_dbt_unit_tests); in every other build they cost ~18 s of CPU for nothing new.
    os.environ[DBT_EXCLUDE_ENV] = "unit_test"
    # Each dbt run in a new target folder starts from the last parse saved for its profile
    # (python_models/dbt_runner.py; with `tmp_path` below, the same warehouse path test after
    # test).
    os.environ["UBA_DBT_PARSE_CACHE"] = str(root / "dbt_parse_cache")
    from python_models.config import reload_settings

    reload_settings()
    # Each dbt run forks from one process that imported dbt once (python_models/dbt_fork.py):
    # ~1 s of start-up instead of ~7 s, for each of a worker's dbt runs. Runs before it is
    # ready start dbt as usual.
    from python_models import dbt_fork

    server = None
    if sys.platform.startswith("linux"):  # fork and /proc
        server_folder = tmp_path_factory.mktemp("dbt-fork")
        server = dbt_fork.start_server(server_folder)
        os.environ[dbt_fork.SERVER_ENV] = str(server_folder)
    yield root
    if server is not None:
        dbt_fork.stop_server(server)


_FAILED = pytest.StashKey[bool]()  # set on a test whose setup, call or teardown failed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def tmp_path(request, tmp_path_factory) -> Iterator[Path]:
    """An empty folder for the test, as pytest's own, but the same folder for every
    integration test on a worker (emptied before each; a failed test's is kept under its
    name). dbt hashes the warehouse's path into the profile its saved parse must match, so a
    test's `tmp_path / "warehouse.duckdb"` at the path of the test before lets its dbt runs
    start from that test's parse (UBA_DBT_PARSE_CACHE) instead of parsing the project again
    (~12 s). Unit tests get a folder of their own."""
    name = re.sub(r"[^\w-]", "_", request.node.name)[:30]
    if "/integration/" not in request.node.nodeid:
        yield tmp_path_factory.mktemp(name, numbered=True)
        return
    folder = tmp_path_factory.getbasetemp() / "integration-test"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(exist_ok=True)
    if any(folder.iterdir()):  # something still held the last test's files: a folder of its own
        folder = tmp_path_factory.mktemp(name, numbered=True)
    yield folder
    if request.node.stash.get(_FAILED, False):
        kept = tmp_path_factory.mktemp(f"failed-{name}", numbered=True)
        kept.rmdir()
        folder.rename(kept)


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder `build(folder)` filled once per test run: under pytest-xdist the first worker
    to ask builds it (the others wait on a lock) in the folder the workers' temporary
    directories share, so the sample and its builds are made once, not once per worker (a
    full dbt build of the sample each); without xdist, a temporary directory of this session.
    What it holds is read only: a test that writes copies it first."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent / "shared"
    shared.mkdir(exist_ok=True)
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def _own_copy(shared: Path, tmp_path_factory, name: str) -> Path:
    """This worker's copy of a shared warehouse file: tests open it read-write, and DuckDB
    lets one process at a time do that."""
    path = tmp_path_factory.mktemp(name) / "warehouse.duckdb"
    shutil.copy(shared, path)
    return path


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """Generated events + planted truth (python_models.synthetic.generate), made once per run."""
    import pickle

    from python_models.synthetic import generate

    def build(out: Path) -> None:
        result = generate(
            out_dir=out, n_events=SAMPLE_EVENTS, seed=SAMPLE_SEED, ato_rate=SAMPLE_ATO_RATE
        )
        (out / "result.pickle").write_bytes(pickle.dumps(result))

    out = _built_once(tmp_path_factory, "sample", build)
    return pickle.loads((out / "result.pickle").read_bytes())


@pytest.fixture(scope="session")
def gated_warehouse(sample_data, tmp_path_factory) -> Path:
    """A DuckDB file with the sample loaded into raw.events and passed through the gate."""
    from expectations.gate import run_gate
    from python_models.ingest import load_path
    from python_models.warehouse import connect

    def build(folder: Path) -> None:
        con = connect(folder / "warehouse.duckdb")
        try:
            load_path(con, sample_data.events_dir)
            result = run_gate(con)
            assert result.success, result
        finally:
            con.close()

    shared = _built_once(tmp_path_factory, "gated", build) / "warehouse.duckdb"
    return _own_copy(shared, tmp_path_factory, "gated")


@pytest.fixture(scope="session")
def built_warehouse(gated_warehouse, tmp_path_factory) -> Path:
    """A copy of the gated warehouse after a full `dbt build` (models, data and unit tests)."""
    from python_models.dbt_runner import run_dbt

    def build(folder: Path) -> None:
        shutil.copy(gated_warehouse, folder / "warehouse.duckdb")
        with with_dbt_unit_tests():  # the suite's one DuckDB run of them
            run_dbt(["build"], duckdb_path=folder / "warehouse.duckdb", quiet=True)

    shared = _built_once(tmp_path_factory, "built", build) / "warehouse.duckdb"
    return _own_copy(shared, tmp_path_factory, "built")


def copy_warehouse(src: Path, tmp_path: Path, name: str = "warehouse.duckdb") -> Path:
    """A private copy for tests that write (so session fixtures stay pristine)."""
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


@pytest.fixture(scope="session")
def cdnow_wheel() -> Path:
    """The lifetimes 0.11.3 wheel from PyPI (cached), which ships the real CDNOW purchase log."""
    from python_models.ltv.public_data import LIFETIMES_WHEEL, PublicDataUnavailable, fetch_wheel

    try:
        return fetch_wheel(LIFETIMES_WHEEL)
    except PublicDataUnavailable as err:
        pytest.skip(f"PyPI unreachable, CDNOW data unavailable: {err}")


@pytest.fixture(scope="session")
def cdnow_sample(cdnow_wheel):
    """CDNOW's 2,357-customer sample as transactions (user_id text, purchased_at, revenue_usd)."""
    from python_models.ltv.public_data import cdnow_transactions

    return cdnow_transactions("sample", cdnow_wheel.parent)


PRIVACY_EVENTS = 40_000
PRIVACY_SEED = 11


@dataclass(frozen=True)
class PrivacyPipeline:
    """A whole pipeline run (load, gate, dbt build, train, score, publish) on a small sample
    with planted consent choices, in its own data folder (tests/integration/test_privacy_*)."""

    root: Path  # holds data/ (warehouse, models, published) and sample/ (input + truth)
    sample: object  # GenerationResult

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


@contextlib.contextmanager
def pipeline_env(data_dir: Path) -> Iterator:
    """Settings (and dbt's profile) pointed at `data_dir` while the block runs; the session's
    settings are back afterwards."""
    from python_models.config import reload_settings

    keys = ("UBA_DATA_DIR", "UBA_DUCKDB_PATH")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["UBA_DATA_DIR"] = str(data_dir)
    os.environ["UBA_DUCKDB_PATH"] = str(data_dir / "warehouse.duckdb")
    try:
        yield reload_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reload_settings()


def shifted_stamps(by: str) -> dict:
    """Polars expressions moving an event file's event_ts and received_at (ISO text) `by`
    later (e.g. "1d"), as text again; a stamp that does not parse becomes null (the gate
    quarantines it, as it did the original)."""
    import polars as pl

    return {
        column: pl.col(column)
        .str.to_datetime(time_zone="UTC", strict=False)
        .dt.offset_by(by)
        .dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for column in ("event_ts", "received_at")
    }


def lightgbm_threads() -> tuple[int, int]:
    """(the thread count LightGBM's next call would size and loop with, its ceiling: -1 when
    none is set): what python_models.common.booster's hold sets, read from LightGBM itself."""
    import ctypes

    from lightgbm.basic import _LIB

    ceiling = ctypes.c_int()
    _LIB.LGBM_GetMaxThreads(ctypes.byref(ceiling))
    return _LIB.OMP_NUM_THREADS(), ceiling.value


def repoint_registry(data_dir: Path, old_data_dir: Path) -> None:
    """After copying a data folder: the registry's artifact paths follow the copy."""
    import duckdb

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        con.execute(
            "update ml.model_registry set artifact_path = replace(artifact_path, ?, ?)",
            [str(old_data_dir), str(data_dir)],
        )
    finally:
        con.close()


def copy_pipeline(pipeline: PrivacyPipeline, dst: Path) -> PrivacyPipeline:
    """A private copy of a pipeline run (its data folder and sample)."""
    shutil.copytree(pipeline.root, dst)
    repoint_registry(dst / "data", pipeline.data_dir)
    return PrivacyPipeline(dst, pipeline.sample)


@pytest.fixture(scope="session")
def privacy_pipeline(tmp_path_factory) -> PrivacyPipeline:
    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.lifecycle import build_derived, score_each, train_each
    from python_models.models import model_names
    from python_models.publish import publish_warehouse
    from python_models.synthetic import ConsentPlan, generate
    from python_models.warehouse import connect

    root = tmp_path_factory.mktemp("privacy_pipeline")
    sample = generate(
        out_dir=root / "sample",
        n_events=PRIVACY_EVENTS,
        seed=PRIVACY_SEED,
        consent=ConsentPlan(),
    )
    with pipeline_env(root / "data") as settings:
        con = connect()
        try:
            load_path(con, sample.events_dir)
            assert run_gate(con).success
        finally:
            con.close()
        run_dbt(["build"], quiet=True)
        con = connect()
        try:
            # The sample is small: churn trains on fewer labelled examples than it would
            # serve on (as tests/integration/test_scoring_lifecycle.py does).
            trained = train_each(con, model_names(), params={"churn": {"min_class_examples": 50}})
            assert not [t for t in trained if t.status == "failed"], trained
            scored = score_each(con, model_names())
            assert not [s for s in scored if s.status == "failed"], scored
            derived = build_derived(con, model_names())  # value at risk, lapsed users
            assert not [d for d in derived if d.status == "failed"], derived
            publish_warehouse(con, settings.published_dir)
        finally:
            con.close()
    return PrivacyPipeline(root, sample)


def run_full_pipeline(input_path: Path, instance=None):
    """The Dagster job full_pipeline, in-process, on the files at `input_path`."""
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.defs.ingest import raw_files_run_config
    from orchestration.defs.ml import training_run_config

    job = defs.resolve_job_def("full_pipeline")
    run_config = raw_files_run_config(str(input_path))
    # The sample is far below churn's default bar of 1,000 examples of each class.
    run_config["ops"] |= training_run_config({"churn": {"min_class_examples": 50}})["ops"]
    return job.execute_in_process(
        run_config=run_config,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@dataclass(frozen=True)
class FullPipeline:
    result: object  # dagster ExecuteInProcessResult
    settings: object  # python_models.config.Settings of the run
    logs: tuple = ()  # (step key, message) of every log line the run wrote

    @property
    def published(self) -> Path:
        return self.settings.published_dir / "warehouse.duckdb"


@pytest.fixture(scope="session")
def full_pipeline(sample_data, tmp_path_factory) -> FullPipeline:
    """The whole Dagster graph materialized once on the sample: the pipeline's warehouse, the
    published copy, the Data Docs. Tests using it read only (and live in the modules of
    SHARED_FIXTURE_MODULES["full_pipeline"])."""
    from dagster import DagsterInstance

    data_dir = tmp_path_factory.mktemp("pipeline") / "data"
    instance = DagsterInstance.ephemeral()
    with pipeline_env(data_dir) as settings:
        result = run_full_pipeline(sample_data.events_dir, instance)
    logs = tuple((e.step_key, e.user_message) for e in instance.all_logs(result.run_id))
    return FullPipeline(result=result, settings=settings, logs=logs)


def publication_rows(out: Path) -> dict:
    """{table: (its rows in the publication's DuckDB copy, in its Parquet files)}, sorted, of
    the publication in `out` (python_models.publish)."""
    import json

    from python_models.warehouse import connect

    def ordered(frame):
        return frame.sort(frame.columns, nulls_last=True)

    con = connect(out / "warehouse.duckdb", read_only=True)
    try:
        tables = [
            f"{t['schema']}.{t['table']}"
            for t in json.loads((out / "manifest.json").read_text())["tables"]
        ]
        return {
            table: (
                ordered(con.execute(f"select * from {table}").pl()),
                ordered(
                    con.execute(
                        f"select * from read_parquet('{out}/parquet/{table}/*.parquet')"
                    ).pl()
                ),
            )
            for table in tables
        }
    finally:
        con.close()


def assert_equals_a_full_publish(published: Path, fresh: Path) -> None:
    """The publication in `published` holds, row for row in DuckDB and in Parquet, what a full
    publish of the warehouse (the settings' file) writes into `fresh`."""
    from python_models.publish import publish_warehouse
    from python_models.warehouse import connect

    con = connect()
    try:
        publish_warehouse(con, fresh)
    finally:
        con.close()
    kept, full = publication_rows(published), publication_rows(fresh)
    assert kept.keys() == full.keys()
    for table, (rows, parquet) in kept.items():
        assert rows.equals(full[table][0]), table
        assert parquet.equals(full[table][1]), table
