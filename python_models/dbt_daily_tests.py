"""The daily build's data tests run from their compiled SQL, in one DuckDB connection.

dbt spends ~0.04-0.07 s of its own CPU on each test node (compiling it, opening a cursor,
BEGIN / ROLLBACK, events and artifacts), and a daily `uba refresh` runs ~300 of them on a
day's rows: most of the day's dbt time. The tests stay declared once, in the models' yml and
tests/; what a daily run executes is derived from them:

- a `uba refresh` build with no saved plan (first refresh, or the dbt project, the profile,
  the target or dbt changed since the plan was saved: `code_fingerprint`) builds the models,
  compiles every test after them in the same dbt process and runs that SQL (`build_and_test`,
  as `uba build` and the bench's first build do), then saves each test's compiled SQL and its
  severity / fail_calc / warn_if / error_if from that compile's manifest.json (`save_plan`);
- the next refreshes build the models with `--exclude-resource-type test` (and without the
  nodes that build wrote from the code alone: seeds, views, models reading no other node:
  `unchanged_static_nodes`) and run the saved SQL here, wrapped as dbt's own get_test_sql
  wraps it, so a test passes, warns or fails exactly as its node would; a failure names the
  test and shows its first failing rows.

The compiled SQL holds no data: a scoped test (macros/uba_test_scope.sql) selects "the latest
batch" with subqueries evaluated when it runs. Those subqueries are marked
(uba_run_time_value): the replay runs each distinct one once, when the tests run, and writes
its value into the tests' SQL as a literal (`run_time_values`), so DuckDB skips the row groups
of the history instead of reading every row of the tested table to compare it with a
subquery; a number frozen at compile time never enters the plan. A marked key set
(uba_run_time_values: the newest load batches of the new-key and reconciliation tests) is
written in the same way, as a list (`load_id in (3)`; inside DuckDB's membership shape
`coalesce(c in (...), false)`, which DuckDB cannot skip row groups by, as
`(c is not null and c in (...))`). Tests that cannot find a failing row
given a NOT NULL constraint or another test of the plan (`implied_tests`) count as passed
without a query. The SQL depends on which relations existed when it was compiled (a
staged-rows test checks every staged row before int_events_sessionized exists), so the tests
are compiled after the whole build, and a plan is saved only from a build after batch 1.
Dagster's dbt assets run a saved plan too (orchestration/defs/dbt.py: each test reported as
its asset check); without one they run the test nodes, then save a plan
(compile_and_save_plan) from a build after batch 1. `uba build --select`, a subset of the
Dagster assets and CI's builds keep running the test nodes; the salt guard (tag
uba_stops_the_build) runs as a node inside every build without a plan (a changed salt
changes the fingerprint, so no saved plan holds). DuckDB targets only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import sysconfig
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, dbt_target_dir, get_settings

PLAN_FILE = "uba_daily_tests.json"

# dbt's unit tests check the SQL on fixed inputs, not the data: `uba build`, CI and any code
# change run them; a build of the data with the same code does not repeat them (about a
# quarter of a small daily build's time, a tenth of a first build at 1M). The data tests run,
# on the rows the run wrote (docs/models.md).
DATA_BUILD = ["build", "--exclude-resource-type", "unit_test"]

# A daily build once a plan is saved for this code: dbt's own per-node cost is most of a day's
# dbt time, and ~300 of its ~360 nodes are data tests, which run from the plan instead. The
# callers also leave out the nodes the plan's build wrote from the code alone (seeds, views,
# the time spine: unchanged_static_nodes).
DAILY_MODELS_BUILD = [*DATA_BUILD, "--exclude-resource-type", "test"]
_SESSIONIZED = "intermediate.int_events_sessionized"

# What the compiled SQL of a test can depend on, besides the warehouse's relations.
_PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "tests", "seeds", "snapshots")
_FAILING_ROWS_SHOWN = 5
# A scalar subquery the replay evaluates once and writes in as a literal (uba_run_time_value).
_RUN_TIME_VALUE = re.compile(r"\(/\* uba:run_time \*/ (?P<query>.*?) /\* uba:end \*/\)", re.S)
# A key set's subquery (uba_run_time_values) the replay writes in as a list of literals; its
# query may hold run-time values, written in first.
_RUN_TIME_LIST = re.compile(
    r"\(/\* uba:run_time_list \*/ (?P<query>.*?) /\* uba:end_list \*/\)", re.S
)
# The same inside DuckDB's membership shape (macro duckdb__uba_in_key_set:
# `coalesce(<column> in (<key set>), false)`, which DuckDB cannot use to skip row groups).
_KEY_SET_MEMBERSHIP = re.compile(
    r"coalesce\((?P<column>[\w.\"]+) in \(/\* uba:run_time_list \*/ (?P<query>.*?) "
    r"/\* uba:end_list \*/\), false\)",
    re.S,
)
# The project's one-scan test of a model's NOT NULL-constrained columns (macros/
# uba_generic_tests.sql).
NOT_NULL_COLUMNS = "uba_not_null_columns"
# dbt's not_null test as it compiles (default__test_not_null): the model (a scoped subquery on
# the daily run) and the column. Such tests on one model are counted in one scan.
_NOT_NULL = re.compile(
    r"select (?P<column>[^\n]+)\nfrom (?P<model>.+)\nwhere (?P=column) is null", re.S
)


@dataclass
class TestsOutcome:
    passed: int = 0
    warned: list[str] = field(default_factory=list)  # "<test>: <n> rows"
    failed: list[str] = field(default_factory=list)  # "<test>: <n> rows; first: ..."
    seconds: float = field(default=0.0, compare=False)  # run_plan's wall time
    # Each test's verdict by unique_id: (status as dbt says it: pass / warn / fail, failures):
    # what Dagster's dbt assets report as one asset check result per test.
    results: dict[str, tuple[str, int]] = field(default_factory=dict, compare=False)
    # Each query's tests and wall seconds, slowest first (several tests share a query).
    timings: list[tuple[str, float]] = field(default_factory=list, compare=False)

    def describe(self) -> str:
        """One line for `uba build` and `uba refresh`: how many ran, in how long."""
        line = (
            f"{self.passed + len(self.warned)} data tests passed from their compiled SQL in "
            f"{self.seconds:.1f} s ({len(self.warned)} warned)"
        )
        if self.timings:  # where a slow day's test time goes
            names, seconds = self.timings[0]
            first, *others = names.split(", ")
            line += f"; slowest {first}{f' (+{len(others)})' if others else ''} {seconds:.1f} s"
        return line


def code_fingerprint(env: dict[str, str]) -> str:
    """Hash of every file dbt compiles the tests from, the profile, the target the build writes
    to (UBA_DBT_TARGET, UBA_DUCKDB_PATH from `env`, as dbt_env gives it), dbt's version and the
    pseudonymization salt: a changed salt must meet stg_app__pseudonym_salts' test inside
    `dbt build`, where its failure stops staging before keys of two salts mix (the saved
    plan runs after the models). Only the hash is kept."""
    digest = hashlib.sha256()
    files = [REPO_ROOT / "profiles.yml"]
    for part in _PROJECT_PARTS:
        path = DBT_PROJECT_DIR / part
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for key in ("UBA_DBT_TARGET", "UBA_DUCKDB_PATH", "UBA_PSEUDONYM_SALT"):
        digest.update(f"{key}={env.get(key, '')}\0".encode())
    salt_file = env.get("UBA_PSEUDONYM_SALT_FILE")
    if salt_file and Path(salt_file).is_file():
        digest.update(Path(salt_file).read_bytes())
    # dbt's and the adapter's versions, from their installed distributions' folder names
    # (dbt_core-1.11.16.dist-info): no import of dbt on the daily path.
    site = Path(sysconfig.get_paths()["purelib"])
    for pattern in ("dbt_core-*.dist-info", "dbt_duckdb-*.dist-info"):
        digest.update(" ".join(sorted(p.name for p in site.glob(pattern))).encode() + b"\0")
    return digest.hexdigest()


def _saved(fingerprint: str) -> dict | None:
    path = dbt_target_dir() / PLAN_FILE
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if plan.get("fingerprint") != fingerprint or not plan.get("tests"):
        return None
    return plan


def replays_tests(target: str | None = None) -> bool:
    """Whether a whole build's data tests may run from their compiled SQL: a DuckDB warehouse
    built by a DuckDB dbt target (`target`, default the settings'), the SQL's dialect. `uba
    build` and Dagster's dbt assets ask it."""
    settings = get_settings()
    return settings.warehouse == "duckdb" and (target or settings.dbt_target).startswith("duckdb")


def holds_an_incremental_batch() -> bool:
    """Whether int_events_sessionized holds rows of an incremental batch (batch_id > 1): only
    then may a plan be saved. While it holds a full build's rows only, the tests'
    __latest_batch*__ scopes compile to whole tables (macro uba_latest_batch_is_everything),
    which a replayed plan must not keep."""
    from python_models.warehouse import connect

    con = connect()
    try:
        query = f"select count(*) from (select 1 from {_SESSIONIZED} where batch_id > 1 limit 1)"
        return bool(con.execute(query).fetchone()[0])
    finally:
        con.close()


def load_plan(fingerprint: str) -> list[dict] | None:
    """The saved tests, or None when there is none for this code (the build runs the nodes)."""
    plan = _saved(fingerprint)
    return plan["tests"] if plan else None


def static_nodes(manifest: dict) -> list[dict]:
    """The nodes whose relation is a function of the code alone: seeds (their CSV), views (their
    query) and models that read no other node or source (metricflow_time_spine). The build that
    saved a plan wrote them with this code; a daily build of the same code has nothing to do
    there. Each as {unique_id, name, schema, identifier}."""
    return [
        {
            "unique_id": node["unique_id"],
            "name": node["name"],
            "schema": node["schema"],
            "identifier": node.get("alias") or node["name"],
        }
        for node in sorted(manifest["nodes"].values(), key=lambda n: n["unique_id"])
        if node["resource_type"] == "seed"
        or (
            node["resource_type"] == "model"
            and (
                node["config"].get("materialized") == "view"
                or not (node.get("depends_on") or {}).get("nodes")
            )
        )
    ]


def unchanged_static_nodes(con, fingerprint: str) -> list[str]:
    """Names of the saved plan's static nodes (static_nodes), when every one of their relations
    is in the warehouse: the daily build can leave them out. Empty when there is no plan for
    this code or one is missing (then the build writes them again)."""
    plan = _saved(fingerprint)
    nodes = (plan or {}).get("static_nodes") or []
    if not nodes:
        return []
    present = {
        (schema, name)
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    if any((node["schema"], node["identifier"]) not in present for node in nodes):
        return []
    return [node["name"] for node in nodes]


def compiled_tests(manifest: dict, require_all: bool = True) -> list[dict] | None:
    """Each test node of a dbt manifest.json as the plan keeps it: name, severity, fail_calc,
    warn_if, error_if, limit and compiled SQL. None when `require_all` and some test was not
    compiled (the run did not select it: the plan would miss it); otherwise the compiled ones."""
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    compiled = [n for n in nodes if n.get("compiled_code")]
    if require_all and (not nodes or len(compiled) < len(nodes)):
        return None
    return [
        {
            "name": node["name"],
            "unique_id": node["unique_id"],
            "kind": (node.get("test_metadata") or {}).get("name"),  # None: a singular test
            "severity": str(node["config"].get("severity") or "error").lower(),
            "fail_calc": node["config"].get("fail_calc") or "count(*)",
            "warn_if": node["config"].get("warn_if") or "!= 0",
            "error_if": node["config"].get("error_if") or "!= 0",
            "limit": node["config"].get("limit"),
            "sql": node["compiled_code"],
            **_tested_columns(manifest, node),
        }
        for node in sorted(compiled, key=lambda n: n["unique_id"])
    ]


def not_null_constrained(columns: Iterable[dict]) -> list[str]:
    """Names of the columns (dbt column entries, from a manifest or a yml) whose constraints
    include not_null: what uba_not_null_columns checks (its macro reads the same)."""
    return [
        column["name"]
        for column in columns
        if any(c.get("type") == "not_null" for c in column.get("constraints") or [])
    ]


def _tested_columns(manifest: dict, node: dict) -> dict:
    """What a generic test checks, for `implied_tests`: the model's or source's table
    ([schema, name]), the column(s) and the test's own `where` (with the model, its scope)."""
    attached = manifest["nodes"].get(node.get("attached_node") or "")
    if attached is None:  # a source's test: attached to no node, depending on the source
        sources = manifest.get("sources") or {}
        tested = [
            sources[n] for n in (node.get("depends_on") or {}).get("nodes", []) if n in sources
        ]
        attached = tested[0] if len(tested) == 1 else None
    kwargs = (node.get("test_metadata") or {}).get("kwargs") or {}
    columns = kwargs.get("combination_of_columns") or (
        [kwargs["column_name"]] if kwargs.get("column_name") else None
    )
    if (node.get("test_metadata") or {}).get("name") == NOT_NULL_COLUMNS and attached:
        columns = not_null_constrained(attached.get("columns", {}).values())
    if attached is None or not columns:
        return {}
    return {
        "table": [
            attached["schema"],
            attached.get("identifier") or attached.get("alias") or attached["name"],
        ],
        "columns": list(columns),
        "where": node["config"].get("where"),
    }


def save_plan(fingerprint: str, compiled_in: Path | None = None) -> int:
    """Save the compiled data tests of the `dbt build` that just ran (its manifest.json, or the
    one in `compiled_in`: compiled_tests_dir); the number saved, 0 when some test was not
    compiled (then nothing is saved)."""
    manifest = json.loads(((compiled_in or dbt_target_dir()) / "manifest.json").read_text())
    tests = compiled_tests(manifest)
    if not tests:
        return 0
    path = dbt_target_dir() / PLAN_FILE
    staged = path.with_suffix(".json.new")
    staged.write_text(
        json.dumps(
            {"fingerprint": fingerprint, "tests": tests, "static_nodes": static_nodes(manifest)}
        )
    )
    staged.replace(path)
    return len(tests)


def compile_and_save_plan(fingerprint: str) -> int:
    """After a whole build that ran dbt's test nodes (Dagster's dbt assets without a plan): `dbt
    compile` of every data test, as build_and_test compiles them after its build, and save_plan
    of that SQL. The number saved; raises DbtError when the compile fails."""
    from python_models.dbt_runner import run_dbt

    tests_dir = compiled_tests_dir()
    run_dbt([*COMPILE_TESTS, "--target-path", str(tests_dir)], quiet=True)
    return save_plan(fingerprint, tests_dir)


# `dbt compile` of every data test, after a build that left their nodes out (build_and_test):
# each test's SQL then sees the relations the whole build left, as a saved plan's does. Its
# artifacts go to a folder of their own, so the target's run_results.json stays the build's.
COMPILE_TESTS = ["compile", "--select", "resource_type:test"]
COMPILED_TESTS_DIR = "compiled_tests"
_BUILT_KINDS = ("model", "seed", "snapshot", "exposure", "unit_test")


def build_without_tests(select: Sequence[str] = ()) -> list[str]:
    """What build_and_test's `dbt build` runs: every node but the data tests (of the `select`
    selectors' nodes alone when given), except the tests tagged uba_stops_the_build
    (assert_one_pseudonym_salt: a changed salt must skip staging inside the build, before keys
    of two salts mix). No other test is pulled in by the models selected (indirect selection
    empty); no warning for a resource type the project lacks."""
    kinds = [f"resource_type:{kind}" for kind in _BUILT_KINDS]
    chosen = [f"{node},{kind}" for node in select for kind in kinds] if select else kinds
    return [
        "--select",
        *chosen,
        "tag:uba_stops_the_build",
        "--indirect-selection",
        "empty",
        "--warn-error-options",
        '{"silence": ["NoNodesForSelectionCriteria"]}',
    ]


def compile_tests(select: Sequence[str] = ()) -> list[str]:
    """`dbt compile` of every data test, or of the tests of the `select` selectors' nodes whose
    every parent is selected (indirect selection cautious: a test also reading a model outside
    the selection is left out)."""
    if not select:
        return COMPILE_TESTS
    return [
        "compile",
        "--select",
        *(f"{node},resource_type:test" for node in select),
        "--indirect-selection",
        "cautious",
    ]


def compiled_tests_dir(target_path: str | Path | None = None) -> Path:
    """Where build_and_test's `dbt compile` writes its manifest.json."""
    return Path(target_path or dbt_target_dir()) / COMPILED_TESTS_DIR


def build_and_test(
    build_args: list[str],
    warn: Callable[[str], None],
    warm=None,
    select: Sequence[str] = (),
    **dbt_kwargs,
) -> tuple[list[dict], TestsOutcome]:
    """A `dbt build` (`build_args`: no selection of its own) with its data tests run from their
    compiled SQL: the build without the test nodes (build_without_tests), then `dbt compile` of
    every test in the same dbt process, then that SQL here (run_plan), as many queries at a
    time as dbt runs nodes. `select`: dbt node selectors (`+ftr_user_labels`) to build only
    those nodes, with the tests whose every parent is among them (the bench's same-work row).
    Each test passes, warns or fails as its node would after the build; dbt's per-node cost
    (~0.06 s of CPU a test) is left out. `warm`, `dbt_kwargs`: as run_dbt_build's. `warn` gets
    each warning. Returns the compiled tests and their outcome; raises DbtError when the build
    fails, a test was not compiled, or a test failed (each named: failed_tests_error)."""
    from python_models.dbt_runner import DbtError, dbt_env, run_dbt_build
    from python_models.warehouse import connect

    if any(arg in ("--select", "-s", "--selector", "--exclude") for arg in build_args):
        raise ValueError("build_and_test: pass a selection as `select`, not in build_args")
    full = ["--full-refresh"] if "--full-refresh" in build_args else []
    tests_dir = compiled_tests_dir(dbt_kwargs.get("target_path"))
    run_dbt_build(
        [*build_args, *build_without_tests(select)],
        warm=warm,
        then=[[*compile_tests(select), *full, "--target-path", str(tests_dir)]],
        **dbt_kwargs,
    )
    # A selection compiles its own tests only: the rest of the manifest stays uncompiled.
    manifest = json.loads((tests_dir / "manifest.json").read_text())
    tests = compiled_tests(manifest, require_all=not select)
    if tests is None:
        raise DbtError("dbt compile left some data test uncompiled: the tests did not run")
    con = connect(dbt_kwargs.get("duckdb_path"))
    try:
        outcome = run_plan(con, tests, threads=test_threads(dbt_env()))
    finally:
        con.close()
    judge(outcome, warn)
    return tests, outcome


def test_threads(env: dict[str, str]) -> int:
    """Queries at a time for run_plan: as many as dbt runs nodes (profiles.yml: UBA_DBT_THREADS)."""
    return int(env.get("UBA_DBT_THREADS") or 2)


def judge(outcome: TestsOutcome, warn: Callable[[str], None]) -> None:
    """`warn` each warning; raise DbtError naming each failed test, its failing rows count and
    first rows (the first line counts them)."""
    from python_models.dbt_runner import DbtError

    for warning in outcome.warned:
        warn(f"data test warning: {warning}")
    if outcome.failed:
        summary = [f"{len(outcome.failed)} data test(s) failed: {outcome.failed[0]}"]
        summary += outcome.failed[1:]
        raise DbtError("\n".join(summary), summary=summary)


def _literal(value) -> str | None:
    """SQL literal of a run-time value; None for a type the replay does not write in."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.datetime):
        return f"cast('{value.isoformat(sep=' ')}' as timestamp)"
    if isinstance(value, datetime.date):
        return f"cast('{value.isoformat()}' as date)"
    return None


def run_time_values(con, tests: list[dict]) -> list[dict]:
    """The tests with each marked subquery (uba_run_time_value) replaced by its value now, as
    a literal, and each marked key set (uba_run_time_values) by its values, as a list: each
    distinct subquery runs once. The tested tables do not change while the tests run, so each
    test selects the rows it would with the subquery; a value of a type this does not write
    in keeps its subquery."""
    tests = _substitute(con, tests, _RUN_TIME_VALUE, lambda rows: _literal(rows[0][0]))
    tests = _substitute(con, tests, _KEY_SET_MEMBERSHIP, _membership)
    return _substitute(con, tests, _RUN_TIME_LIST, _list_literal)


def _membership(rows: list[tuple]) -> Callable[[re.Match], str] | None:
    """`coalesce(c in (<key set>), false)` written with the key set's values in a form DuckDB
    pushes into the scan (a filter on the column, so the row groups of other values are
    skipped): `(c is not null and c in (v1, v2))`, or `false` for no values: the same truth
    value for every row, null keys included (a null among the values matches nothing that
    coalesce does not turn into false anyway, so it is left out)."""
    literal = _list_literal([row for row in rows if row[0] is not None])
    if literal is None:
        return None
    if literal == "(null)":  # no values
        return lambda match: "false"
    return lambda match: f"({match['column']} is not null and {match['column']} in {literal})"


def _list_literal(rows: list[tuple]) -> str | None:
    """`(v1, v2)` of a key set's rows; `(null)` for none (`x in (null)` holds for no row, as
    an empty subquery); None when a value is of a type the replay does not write in."""
    literals = [_literal(row[0]) for row in rows]
    if any(literal is None for literal in literals):
        return None
    return f"({', '.join(sorted(set(literals))) or 'null'})"


def _substitute(con, tests: list[dict], marker: re.Pattern, literal) -> list[dict]:
    """Each distinct `marker` subquery of the tests run once, replaced by literal(its rows)
    (kept where that is None; a callable literal is given the match)."""
    queries = {m["query"] for test in tests for m in marker.finditer(test["sql"])}
    literals = {}
    for query in sorted(queries):
        written = literal(con.execute(query).fetchall())
        if written is not None:
            literals[query] = written

    def substitute(match: re.Match) -> str:
        written = literals.get(match["query"], match[0])
        return written(match) if callable(written) else written

    return [{**test, "sql": marker.sub(substitute, test["sql"])} for test in tests]


def _tested_sql(test: dict) -> str:
    limit = f"\nlimit {int(test['limit'])}" if test.get("limit") is not None else ""
    return f"{test['sql']}{limit}"


def _not_null_parts(test: dict) -> tuple[str, str] | None:
    """(model, column) of a not_null test counted as dbt counts it, else None."""
    if test.get("kind") != "not_null" or test["fail_calc"] != "count(*)" or test.get("limit"):
        return None
    match = _NOT_NULL.fullmatch(test["sql"].strip())
    return (match["model"], match["column"]) if match else None


def _judge(con, test: dict, failures, should_warn, should_error, outcome: TestsOutcome) -> None:
    if test["severity"] == "error" and should_error:
        rows = con.execute(
            f"select * from (\n{_tested_sql(test)}\n) dbt_internal_test limit {_FAILING_ROWS_SHOWN}"
        ).fetchall()
        shown = "; ".join(str(row) for row in rows)
        outcome.failed.append(f"{test['name']}: {failures} failing rows; first: {shown}")
        status = "fail"
    elif should_warn:
        outcome.warned.append(f"{test['name']}: {failures} rows")
        status = "warn"
    else:
        outcome.passed += 1
        status = "pass"
    outcome.results[test["unique_id"]] = (status, int(failures or 0))


def _queries(tests: list[dict]) -> list[tuple[list[dict], str]]:
    """(tests, query) pairs: one query per test, except one per model for its not_null tests;
    each query returns (failures, should_warn, should_error) per test, in order."""
    queries: list[tuple[list[dict], str]] = []
    not_null: dict[str, list[tuple[dict, str]]] = {}
    for test in tests:
        parts = _not_null_parts(test)
        if parts:
            not_null.setdefault(parts[0], []).append((test, parts[1]))
            continue
        calc = test["fail_calc"]
        query = (
            f"select {calc} as failures, {calc} {test['warn_if']} as should_warn, "
            f"{calc} {test['error_if']} as should_error "
            f"from (\n{_tested_sql(test)}\n) dbt_internal_test"
        )
        queries.append(([test], query))
    for model, group in not_null.items():
        counts = ", ".join(
            f"count_if({column} is null) as f{i}" for i, (_, column) in enumerate(group)
        )
        judged = ", ".join(
            f"f{i}, f{i} {test['warn_if']}, f{i} {test['error_if']}"
            for i, (test, _) in enumerate(group)
        )
        queries.append(
            ([test for test, _ in group], f"select {judged} from (select {counts}\nfrom {model}) c")
        )
    return queries


# Tests whose failure count is 0 whenever another guarantee holds count as passed unread: only
# with dbt's default judgement (a failing row fails or warns).
_DEFAULT_JUDGEMENT = {"fail_calc": "count(*)", "warn_if": "!= 0", "error_if": "!= 0"}


def implied_tests(con, tests: list[dict]) -> set[str]:
    """Names of the saved tests that cannot find a failing row, given what DuckDB enforces and
    the other tests of the plan, so the replay does not read their tables:
    - not_null of a column the warehouse table declares NOT NULL (a contract's constraint:
      DuckDB refuses a null on every insert and update), and uba_not_null_columns of a table
      that declares all of its constrained columns so;
    - uba_unique_combination_of_columns whose columns include one that a `unique` test of the
      same table and scope checks (severity error: if it fails, the refresh fails) and that
      is NOT NULL: a combination holding a unique non-null value has no two equal rows.
    Tests saved without their columns (older plans) are never implied."""
    not_null = {
        (schema, table, column)
        for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and not is_nullable"
        ).fetchall()
    }
    unique = {
        (*test["table"], test["where"], test["columns"][0])
        for test in tests
        if test.get("kind") == "unique" and test.get("table") and test["severity"] == "error"
    }
    implied = set()
    for test in tests:
        if not test.get("table") or any(test[k] != v for k, v in _DEFAULT_JUDGEMENT.items()):
            continue
        if test.get("limit") is not None:
            continue
        keys = [(*test["table"], column) for column in test["columns"]]
        if test.get("kind") in ("not_null", NOT_NULL_COLUMNS) and all(
            key in not_null for key in keys
        ):
            implied.add(test["name"])
        elif test.get("kind") == "uba_unique_combination_of_columns" and any(
            key in not_null and (*test["table"], test["where"], key[2]) in unique for key in keys
        ):
            implied.add(test["name"])
    return implied


def run_plan(con, tests: list[dict], threads: int = 1) -> TestsOutcome:
    """Run each saved test as dbt's default get_test_sql does: fail_calc over the test's rows,
    compared with warn_if / error_if; severity warn never fails. The not_null tests of one
    model (the same scoped rows) are counted together, in one scan of the model. `threads`
    queries at a time, each on its own cursor (as dbt runs `threads` nodes at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    implied = implied_tests(con, tests)
    queries = _queries(run_time_values(con, [t for t in tests if t["name"] not in implied]))

    def figures(query: str) -> tuple[tuple, float]:
        cursor = con.cursor()
        began = time.perf_counter()
        try:
            return cursor.execute(query).fetchone(), time.perf_counter() - began
        finally:
            cursor.close()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        timed = list(pool.map(figures, [query for _, query in queries]))
    results = [row for row, _ in timed]
    outcome = TestsOutcome(passed=len(implied))
    outcome.results = {t["unique_id"]: ("pass", 0) for t in tests if t["name"] in implied}
    outcome.timings = sorted(
        (
            (", ".join(t["name"] for t in group), secs)
            for (group, _), (_, secs) in zip(queries, timed, strict=True)
        ),
        key=lambda item: -item[1],
    )
    for (group, _), row in zip(queries, results, strict=True):
        for i, test in enumerate(group):
            _judge(con, test, *row[3 * i : 3 * i + 3], outcome)
    outcome.seconds = time.perf_counter() - started
    return outcome
