"""`uba build` / run_dbt against real dbt: dbt's own error reported, the child dies with `uba`,
and a build queues behind another writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dbt_memory_project import heavy_rows_in, memory_project
from processes import children, gone_within, listening_fork_server

from python_models import dbt_fork
from python_models.dbt_runner import (
    DbtError,
    DbtProgress,
    WarmDbt,
    dbt_env,
    error_summary,
    run_dbt,
    run_dbt_build,
    save_parse,
    saved_parse_for,
    seed_target_folder,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_build_reports_dbt_s_own_error(tmp_path):
    """No raw tables: the staging model fails; the error names the model and the cause."""
    with pytest.raises(DbtError) as caught:
        run_dbt(
            ["build", "--select", "stg_app__events"],
            duckdb_path=tmp_path / "empty.duckdb",
            quiet=True,
            target_path=tmp_path / "target",
        )
    headline = str(caught.value).splitlines()[0]
    assert "Failure in model stg_app__events" in headline, headline
    assert "\x1b" not in str(caught.value)  # no terminal colour codes
    assert any("events_validated" in line for line in caught.value.summary), caught.value.summary


def test_error_summary_reads_the_failure_blocks():
    output = [
        "12:00:01  1 of 2 START test not_null_x ....... [RUN]\n",
        "12:00:02  Finished running 2 tests in 0 hours 0 minutes and 1.00 seconds (1.00s).\n",
        "12:00:02  \n",
        "12:00:02  Completed with 1 error, 0 partial successes, and 0 warnings:\n",
        "12:00:02  \n",
        "12:00:02  Failure in test not_null_x (models/x.yml)\n",
        "12:00:02    Got 3 results, configured to fail if != 0\n",
        "12:00:02  \n",
        "12:00:02    compiled code at target/compiled/x.sql\n",
        "12:00:02  \n",
        "12:00:02  Done. PASS=1 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=2\n",
    ]
    assert error_summary(output) == [
        "Failure in test not_null_x (models/x.yml)",
        "Got 3 results, configured to fail if != 0",
    ]


def _start_build(tmp_path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "UBA_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
           "DBT_TARGET_PATH": str(tmp_path / "target")}  # fmt: skip
    env.pop(dbt_fork.SERVER_ENV, None)  # dbt as a deployment starts it: uba's own child
    proc = subprocess.Popen(
        [sys.executable, "-m", "python_models.cli", "build"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals go to uba only, as with `kill PID`
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = children(proc.pid)
        if kids:
            return proc, kids[0]
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("uba build never started dbt")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killing_uba_build_kills_its_dbt_child(tmp_path, signum):
    proc, dbt_pid = _start_build(tmp_path)
    time.sleep(0.5)
    os.kill(proc.pid, signum)
    proc.wait(timeout=30)
    assert gone_within(dbt_pid, 20), f"dbt (PID {dbt_pid}) outlived uba after signal {signum}"


def test_a_build_waits_for_the_writer_lock_then_fails_clearly(tmp_path):
    from python_models.warehouse import writer_lock

    db = tmp_path / "w.duckdb"
    env = {**os.environ, "UBA_DUCKDB_PATH": str(db), "UBA_LOCK_TIMEOUT_SECONDS": "1"}
    with writer_lock(db, purpose="uba load big.csv"):
        done = subprocess.run(
            [sys.executable, "-m", "python_models.cli", "build"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert errors[-1].startswith("uba build: the warehouse")
    assert f"PID {os.getpid()} (uba load big.csv)" in errors[-1]
    assert "Traceback" not in done.stderr


def _build_memory_project(tmp_path, project, notices: list[str], ballast_rows, heavy_rows):
    return run_dbt_build(
        ["build"],
        say=notices.append,
        dbt_vars={"ballast_rows": ballast_rows, "heavy_rows": heavy_rows},
        duckdb_path=tmp_path / "w.duckdb",
        quiet=True,
        target_path=tmp_path / "target",
        project_dir=project,
    )


def test_a_node_out_of_memory_beside_another_s_leftovers_is_retried_alone(tmp_path, monkeypatch):
    project = memory_project(tmp_path, monkeypatch)
    notices: list[str] = []
    _build_memory_project(tmp_path, project, notices, ballast_rows=5_000_000, heavy_rows=2_000_000)
    assert notices == [
        "dbt: 1 node(s) ran out of DuckDB memory (heavy): retrying them once in a fresh dbt "
        "process with one thread"
    ]
    # every number 0..2M-1 once, in 1000 lists
    assert heavy_rows_in(tmp_path / "w.duckdb") == (1000, 2_000_000)
    retried = json.loads((tmp_path / "target" / "run_results.json").read_text())
    nodes = [r for r in retried["results"] if not r["unique_id"].startswith("operation.")]
    assert [(r["unique_id"], r["status"]) for r in nodes] == [
        ("model.memory_retry.heavy", "success")
    ]
    assert retried["args"]["threads"] == 1


def test_a_retry_that_runs_out_of_memory_again_fails_clearly(tmp_path, monkeypatch):
    project = memory_project(tmp_path, monkeypatch)
    notices: list[str] = []
    with pytest.raises(DbtError) as caught:
        _build_memory_project(tmp_path, project, notices, ballast_rows=0, heavy_rows=20_000_000)
    assert len(notices) == 1 and "(heavy): retrying" in notices[0]
    headline = str(caught.value).splitlines()[0]
    assert headline.startswith(
        "dbt ran out of DuckDB memory, and again in a fresh process with one thread: "
    ), headline
    assert any("Out of Memory Error" in line for line in caught.value.summary)
    assert heavy_rows_in(tmp_path / "w.duckdb") is None


def test_no_retry_when_a_node_failed_for_another_reason(tmp_path, monkeypatch):
    """`heavy` runs out of memory, but a data test also fails: the build fails as it is."""
    project = memory_project(tmp_path, monkeypatch, failing_test=True)
    notices: list[str] = []
    with pytest.raises(DbtError) as caught:
        _build_memory_project(
            tmp_path, project, notices, ballast_rows=5_000_000, heavy_rows=2_000_000
        )
    assert notices == []
    assert "always_fails" in str(caught.value) and "Out of Memory Error" in str(caught.value)
    statuses = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    }
    assert statuses["heavy"] == "error" and statuses["always_fails"] == "fail"


def _small_project(tmp_path) -> Path:
    project = tmp_path / "small"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text('name: small\nversion: "1.0"\nprofile: uba\n')
    (project / "models" / "ones.sql").write_text("select 1 as id")
    return project


def _tables(path: Path) -> dict[str, list]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("select table_name from information_schema.tables").fetchall()
        names = [r[0] for r in tables]
        return {name: con.execute(f"select * from main.{name}").fetchall() for name in names}
    finally:
        con.close()


def test_a_warm_dbt_builds_what_it_parsed_before_the_command_came(tmp_path):
    """The warm process parses when started (its saved parse written, nothing built yet) and
    runs the command it is sent on that parse: a model added afterwards is not built."""
    project = _small_project(tmp_path)
    warm = WarmDbt(tmp_path / "w.duckdb", tmp_path / "target", project)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "target" / "partial_parse.msgpack").exists():
            assert time.monotonic() < deadline, "the warm dbt never parsed"
            assert warm.proc.poll() is None, "the warm dbt exited before its command"
            time.sleep(0.1)
        assert not (tmp_path / "w.duckdb").exists()
        (project / "models" / "late.sql").write_text("select 2 as id")
        output = warm.run(["build"], quiet=True)
    finally:
        warm.close()
    assert "Completed successfully" in output
    assert _tables(tmp_path / "w.duckdb") == {"ones": [(1,)]}
    # the build wrote the manifest of what it parsed
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert sorted(n["name"] for n in manifest["nodes"].values()) == ["ones"]
    # a dbt started now parses again and builds the new model
    run_dbt(["build"], tmp_path / "w.duckdb", quiet=True, target_path=tmp_path / "target",
            project_dir=project)  # fmt: skip
    assert _tables(tmp_path / "w.duckdb") == {"late": [(2,)], "ones": [(1,)]}


def test_a_quiet_build_s_progress_names_each_node_dbt_finished(tmp_path):
    """DbtProgress reads dbt's own console lines (colours, seeds, tests, warnings): on a real
    build, each finished node once, counted against the build's total, with its name and
    seconds, the nodes dbt only started not counted."""
    project = _small_project(tmp_path)
    (project / "models" / "twos.sql").write_text("select 2 as id from {{ ref('ones') }}")
    (project / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: twos\n    columns:\n      - name: id\n"
        "        data_tests: [not_null, unique]\n"
    )
    said = []
    progress = DbtProgress(said.append, every=0)
    warm = WarmDbt(tmp_path / "w.duckdb", tmp_path / "target", project)
    try:
        run_dbt_build(["build"], warm=warm, quiet=True, progress=progress)
    finally:
        warm.close()
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    names = {r["unique_id"].split(".")[2] for r in results}
    assert len(said) == len(names) == 4  # two models, two tests
    assert [line.split(" nodes done")[0] for line in said] == [
        f"dbt: {done} of 4" for done in range(1, 5)
    ]
    assert {line.split("longest since the last line ")[1].rsplit(" ", 2)[0] for line in said} == (
        names
    )


def test_progress_says_a_line_at_most_every_so_often_with_the_longest_node_since():
    now = [100.0]
    said = []
    progress = DbtProgress(said.append, every=15, clock=lambda: now[0])
    lines = [
        "\x1b[0m02:56:59  1 of 3 START sql incremental model staging.stg_a .... [RUN]",
        "\x1b[0m02:56:59  1 of 3 OK created sql incremental model staging.stg_a .... "
        "[\x1b[32mOK\x1b[0m in 4.30s]",
        "\x1b[0m02:57:09  2 of 3 WARN 7 relationships_stg_a_b__x  [\x1b[33mWARN 7\x1b[0m in 0.11s]",
        "\x1b[0m02:57:19  3 of 3 OK created sql table model marts.fct_c .... [OK in 1.25s]",
    ]
    for seconds, line in zip((0, 2, 12, 22), lines, strict=True):
        now[0] = 100.0 + seconds
        progress.line(line)
    progress.line("\x1b[0m02:57:20  Finished running 3 nodes in 0 hours 0 minutes")
    now[0] = 140.0  # a retry's own numbering; a skipped node has no seconds
    progress.line("\x1b[0m02:57:40  1 of 2 SKIP relation marts.fct_d .... [\x1b[33mSKIP\x1b[0m]")
    assert said == [
        "dbt: 3 of 3 nodes done in 22 s; longest since the last line stg_a 4.3 s",
        "dbt: 1 of 2 nodes done in 40 s",
    ]


def test_a_warm_dbt_s_parse_leaves_manifest_json_to_its_command(tmp_path):
    """The parse saves dbt's parse state but writes no manifest.json (the command writes its
    own): a warm dbt told there is no command exits after parsing with none written."""
    project = _small_project(tmp_path)
    target = tmp_path / "target"
    warm = WarmDbt(tmp_path / "w.duckdb", target, project)
    try:
        warm.proc.stdin.close()  # end of input: parse, then exit without running anything
        assert warm.proc.wait(timeout=120) == 0
    finally:
        warm.close()
    assert (target / "partial_parse.msgpack").exists()
    assert not (target / "manifest.json").exists()
    assert not (tmp_path / "w.duckdb").exists()


def test_a_warm_dbt_reports_a_failure_as_run_dbt_does_and_stops_unused(tmp_path):
    project = _small_project(tmp_path)
    (project / "models" / "broken.sql").write_text("select * from no_such_table")
    warm = WarmDbt(tmp_path / "w.duckdb", tmp_path / "target", project)
    with pytest.raises(DbtError) as caught:
        run_dbt_build(["build"], warm=warm, quiet=True)
    assert "Failure in model broken" in str(caught.value).splitlines()[0], caught.value
    assert any("no_such_table" in line for line in caught.value.summary)
    unused = WarmDbt(tmp_path / "w2.duckdb", tmp_path / "target2", project)
    unused.close()
    assert unused.proc.poll() is not None
    assert not (tmp_path / "w2.duckdb").exists()


def test_an_incremental_model_whose_columns_changed_says_how_to_rebuild_it(tmp_path):
    """A table stored by an earlier version of a model fails dbt's schema check; the error's
    first line names the model and the command, and that command rebuilds it."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text('name: schema_change\nversion: "1.0"\nprofile: uba\n')
    model = project / "models" / "grows.sql"
    model.write_text(
        "{{ config(materialized='incremental', on_schema_change='fail') }}\nselect 1 as id\n"
    )
    where = {"duckdb_path": tmp_path / "w.duckdb", "quiet": True, "project_dir": project}
    run_dbt(["build"], target_path=tmp_path / "t1", **where)
    model.write_text(model.read_text().replace("1 as id", "1 as id, 2 as added"))
    with pytest.raises(DbtError) as caught:
        run_dbt(["build"], target_path=tmp_path / "t2", **where)
    headline = str(caught.value).splitlines()[0]
    assert headline.endswith(
        "grows: the stored table's columns differ from the model's (built by an earlier "
        'version): rebuild it once with `uba build --full-refresh --select "grows"`'
    ), headline
    run_dbt(["build", "--full-refresh", "--select", "grows"], target_path=tmp_path / "t3", **where)
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        assert con.execute("select id, added from main.grows").fetchall() == [(1, 2)]
    finally:
        con.close()


def _duckdb_setting(name: str, value: str | None) -> str:
    """How DuckDB itself reports setting `name` to `value` (None: its default)."""
    import duckdb

    con = duckdb.connect(config={name: value} if value else {})
    try:
        return con.execute(f"select current_setting('{name}')").fetchone()[0]
    finally:
        con.close()


def test_duckdb_settings_reach_dbt_s_duckdb_only_when_given(tmp_path, monkeypatch):
    """A warm dbt started with DuckDB settings (as `uba refresh` starts its build: a checkpoint
    threshold, no vacuum) runs DuckDB with them; a plain run keeps DuckDB's defaults."""
    project = _small_project(tmp_path)
    (project / "models" / "ones.sql").write_text(
        "{{ config(materialized='table') }} select current_setting('checkpoint_threshold') as t,"
        " cast(current_setting('max_vacuum_tasks') as varchar) as v"
    )
    daily = {"checkpoint_threshold": "1GB", "max_vacuum_tasks": "0"}
    warm = WarmDbt(tmp_path / "w.duckdb", tmp_path / "target", project, duckdb_settings=daily)
    try:
        run_dbt_build(["build"], warm=warm, quiet=True)
    finally:
        warm.close()
    given = (_duckdb_setting("checkpoint_threshold", "1GB"), "0")
    assert _tables(tmp_path / "w.duckdb") == {"ones": [given]}
    for name in ("UBA_DUCKDB_CHECKPOINT_THRESHOLD", "UBA_DUCKDB_MAX_VACUUM_TASKS"):
        monkeypatch.delenv(name, raising=False)  # the profile's defaults
    run_dbt(["build"], tmp_path / "p.duckdb", quiet=True, target_path=tmp_path / "target2",
            project_dir=project)  # fmt: skip
    default = (
        _duckdb_setting("checkpoint_threshold", None),
        str(_duckdb_setting("max_vacuum_tasks", None)),
    )
    assert _tables(tmp_path / "p.duckdb") == {"ones": [default]}
    assert default[0] != given[0] and default[1] != "0"


def test_a_refresh_s_duckdb_settings_keep_the_saved_parse(tmp_path, monkeypatch):
    """dbt parses the project in full when the connection info it hashed has changed; the
    refresh's DuckDB settings (checkpoint threshold, vacuum) are applied by the profile's plugin,
    so a day's build after `uba build`, or one that turns the vacuum back on, reuses the parse.
    Changing a setting that is in the profile (the memory limit) still re-parses in dbt's own
    check, without the parse cache (whose key leaves the limit out: test_a_run_with_its_own_
    memory_limit_and_threads_starts_from_the_parse_saved_at_install)."""
    project = _small_project(tmp_path)
    target = tmp_path / "target"

    def parse(**settings) -> str:
        return run_dbt(["parse"], tmp_path / "w.duckdb", quiet=True, target_path=target,
                       project_dir=project, duckdb_settings=settings)  # fmt: skip

    full = "Unable to do partial parsing"
    parse()
    assert full not in parse(checkpoint_threshold="1GB", max_vacuum_tasks="0")
    assert full not in parse(checkpoint_threshold="1GB")
    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", "off")
    monkeypatch.setenv("UBA_DUCKDB_MEMORY_LIMIT", "700MB")
    assert full in parse()


def test_a_new_target_folder_starts_from_the_parse_saved_for_its_warehouse(tmp_path, monkeypatch):
    """UBA_DBT_PARSE_CACHE: a run in a new target folder on the same warehouse starts from the
    parse last saved for that warehouse and its --vars, so dbt does not parse the project again
    (dbt alone keeps one parse per target folder: a new folder parses in full, and so does each
    switch of --vars)."""
    project = _small_project(tmp_path)
    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", str(tmp_path / "cache"))

    def parse(folder: str, *extra: str) -> str:
        return run_dbt(["parse", *extra], tmp_path / "w.duckdb", quiet=True,
                       target_path=tmp_path / folder, project_dir=project)  # fmt: skip

    full = "Unable to do partial parsing"
    assert full in parse("first")  # nothing saved yet
    assert full not in parse("second")
    assert full in parse("second", "--vars", "{uba_example: 1}")  # no parse with these vars yet
    assert full not in parse("second")  # its own parse now holds the vars: the cache's has none
    assert full not in parse("third", "--vars", "{uba_example: 1}")
    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", "off")
    assert full in parse("fourth")  # without the cache, as dbt alone


def test_a_warehouse_elsewhere_starts_from_the_parse_saved_for_its_file_name(tmp_path, monkeypatch):
    """dbt hashes the warehouse's path with the profile and parses in full when it differs; a
    run forked from the dbt fork server takes the cache's parse for a warehouse of the same file
    name in another folder as its own. The run still builds into its own file, its manifest is
    dbt's full parse of that warehouse, and a warehouse of another name (another database in
    the manifest) or a saved parse the cache did not provide parses in full."""
    if not os.environ.get(dbt_fork.SERVER_ENV):
        pytest.skip("no dbt fork server (Linux only)")
    listening_fork_server()
    project = _small_project(tmp_path)
    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", str(tmp_path / "cache"))

    def dbt(command: str, warehouse: str, folder: str) -> str:
        (tmp_path / warehouse).parent.mkdir(parents=True, exist_ok=True)
        return run_dbt([command], tmp_path / warehouse, target_path=tmp_path / folder,
                       project_dir=project)  # fmt: skip

    def nodes(folder: str) -> dict:
        manifest = json.loads((tmp_path / folder / "manifest.json").read_text())
        keep = ("database", "schema", "relation_name", "checksum", "config", "depends_on")
        return {
            key: {name: node.get(name) for name in keep} for key, node in manifest["nodes"].items()
        }

    full = "Unable to do partial parsing"
    assert full in dbt("run", "a/w.duckdb", "first")  # nothing saved yet
    assert full not in dbt("run", "b/w.duckdb", "second")
    assert _tables(tmp_path / "b" / "w.duckdb") == {"ones": [(1,)]}
    assert full in dbt("parse", "c/other.duckdb", "third")  # another database name
    assert nodes("third")["model.small.ones"]["database"] == "other"

    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", "off")
    assert full in dbt("parse", "b/w.duckdb", "uncached")  # dbt's own full parse of b
    assert nodes("second") == nodes("uncached")
    # without the cache's word a saved parse of another folder's warehouse is parsed again
    assert full in dbt("parse", "d/w.duckdb", "second")


def _parsed_files(target: Path) -> int:
    """How many project files the target's last parse read (0: dbt took its saved parse)."""
    return json.loads((target / "perf_info.json").read_text())["parsed_path_count"]


def _deployment_parse_cache(tmp_path, monkeypatch) -> None:
    """As a deployment runs: the user's parse cache (UBA_DBT_PARSE_CACHE unset, here under
    tmp_path) and no fork server (dbt as a deployment starts it)."""
    monkeypatch.delenv("UBA_DBT_PARSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv(dbt_fork.SERVER_ENV, raising=False)


def _warm_build(warehouse: Path, target: Path, project: Path) -> None:
    """`dbt build` in a warm dbt process started for `warehouse` and `target`."""
    warm = WarmDbt(warehouse, target, project)
    try:
        warm.run(["build"], quiet=True)
    finally:
        warm.close()


def test_a_first_build_starts_from_the_parse_saved_at_install(tmp_path, monkeypatch):
    """Without UBA_DBT_PARSE_CACHE the user's parse cache is used, and only to fill a target
    folder with no parse of its own: `uba build --save-parse` (scripts/bootstrap.sh) saves the
    project's parse, and a warm dbt in a new target folder (a first build or refresh) takes it
    for its warehouse of the same name elsewhere instead of parsing every file. A plain dbt
    (no fork server) in a target folder with its own parse keeps it: with the cache's parse
    of another folder's warehouse it would parse in full."""
    project = _small_project(tmp_path)
    (project / "models" / "twos.sql").write_text("select 2 as id")
    _deployment_parse_cache(tmp_path, monkeypatch)

    entry = save_parse(tmp_path / "install" / "w.duckdb", project)
    assert entry is not None and entry.is_relative_to(tmp_path / "user-cache")
    assert not (tmp_path / "install").exists()  # the parse touched no warehouse

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    _warm_build(tmp_path / "a" / "w.duckdb", tmp_path / "target-a", project)
    assert _parsed_files(tmp_path / "target-a") == 0
    assert _tables(tmp_path / "a" / "w.duckdb") == {"ones": [(1,)], "twos": [(2,)]}

    full = "Unable to do partial parsing"

    def parse(warehouse: str, folder: str) -> str:
        return run_dbt(["parse"], tmp_path / warehouse, quiet=True,
                       target_path=tmp_path / folder, project_dir=project)  # fmt: skip

    assert full in parse("b/w.duckdb", "target-b")  # plain dbt: another path, parsed in full
    assert full not in parse("a/w.duckdb", "target-a")  # its own parse, not the cache's (b's)
    assert _parsed_files(tmp_path / "target-a") == 0


def test_a_run_with_its_own_memory_limit_and_threads_starts_from_the_parse_saved_at_install(
    tmp_path, monkeypatch
):
    """The parse cache's entry leaves out how dbt runs (UBA_DBT_THREADS,
    UBA_DUCKDB_MEMORY_LIMIT: no model's Jinja reads them), not what it parses: a warm dbt with
    its own limit and threads in a new target folder takes the parse saved at install without
    them, and builds with its own limit (the one DuckDB reports inside the build); another
    target is another entry."""
    project = _small_project(tmp_path)
    (project / "models" / "limit.sql").write_text(
        "{{ config(materialized='table') }} select current_setting('memory_limit') as memory_limit"
    )
    _deployment_parse_cache(tmp_path, monkeypatch)
    for name in ("UBA_DUCKDB_MEMORY_LIMIT", "UBA_DBT_THREADS"):
        monkeypatch.delenv(name, raising=False)
    entry = save_parse(tmp_path / "install" / "w.duckdb", project)

    monkeypatch.setenv("UBA_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("UBA_DBT_THREADS", "1")
    env = dbt_env(tmp_path / "a" / "w.duckdb")
    assert saved_parse_for(env, project).cached == entry
    other_target = saved_parse_for({**env, "UBA_DBT_TARGET": "duckdb_plain"}, project)
    assert other_target.cached != entry
    (tmp_path / "a").mkdir()
    _warm_build(tmp_path / "a" / "w.duckdb", tmp_path / "target-a", project)
    assert _parsed_files(tmp_path / "target-a") == 0
    limit = _duckdb_setting("memory_limit", "700MB")
    assert _tables(tmp_path / "a" / "w.duckdb")["limit"] == [(limit,)]


def test_a_dagster_target_folder_without_a_parse_starts_from_the_cache_s(tmp_path, monkeypatch):
    """Dagster's dbt assets run dbt themselves: seed_target_folder gives their target folder
    the parse cache's parse when it has none, and a plain dbt on the warehouse that parse was
    saved for (the demo's) then parses partially; a folder with its own parse keeps it."""
    project = _small_project(tmp_path)
    monkeypatch.setenv("UBA_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    warehouse = tmp_path / "w.duckdb"
    run_dbt(["parse"], warehouse, quiet=True, target_path=tmp_path / "first", project_dir=project)
    own = tmp_path / "kept" / "partial_parse.msgpack"
    own.parent.mkdir()
    own.write_bytes(b"its own")
    for folder in ("dagster", "kept"):
        seed_target_folder(tmp_path / folder, project, warehouse)
    assert own.read_bytes() == b"its own"

    env = dbt_env(warehouse) | {"DBT_TARGET_PATH": str(tmp_path / "dagster")}
    env.pop(dbt_fork.SAVED_PARSE_ENV, None)
    dbt = Path(sys.executable).with_name("dbt")  # dbt itself, as dagster-dbt starts it
    # with the profile arguments dagster-dbt adds for the project's dbt resource
    from orchestration.defs.dbt import dbt_resource

    resource = dbt_resource()
    profile_args = ["--target", resource.target] if resource.target else []
    done = subprocess.run(
        [str(dbt), "parse", *profile_args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Unable to do partial parsing" not in done.stdout, done.stdout
    assert _parsed_files(tmp_path / "dagster") == 0


def test_one_dbt_thread_when_the_events_to_sessionize_outgrow_a_range_of_the_pool(
    tmp_path, monkeypatch
):
    """build_threads: `--threads 1` when the events not yet sessionized are more than one
    range of a full build holds (the dbt var per GiB of the pool, as DuckDB reads the
    setting), else nothing; only the loads after the sessionized table's newest count, every
    load on a full refresh; a set UBA_DBT_THREADS stands."""
    from python_models.common.feature_events import project_vars
    from python_models.config import reload_settings
    from python_models.dbt_runner import build_threads
    from python_models.warehouse import connect

    monkeypatch.delenv("UBA_DBT_THREADS", raising=False)
    monkeypatch.setenv("UBA_DUCKDB_MEMORY_LIMIT", "64MB")  # 64e6 bytes: DuckDB's "61.0 MiB"
    reload_settings()
    range_rows = int(project_vars()["uba__full_build_range_rows_per_gib"] * 61.0 / 1024)
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        assert build_threads(con) == []  # nothing gated yet
        con.execute("create schema raw")
        con.execute("create table raw.events_validated (load_id bigint)")
        con.execute(f"insert into raw.events_validated select 1 from range({range_rows})")
        assert build_threads(con) == []  # one range exactly
        con.execute("insert into raw.events_validated values (2)")
        assert build_threads(con) == ["--threads", "1"]
        # load 1 sessionized already: load 2's one event is what the build has to do
        con.execute("create schema intermediate")
        con.execute("create table intermediate.int_events_sessionized as select 1 as load_id")
        assert build_threads(con) == []
        assert build_threads(con, full_refresh=True) == ["--threads", "1"]  # every event again
        con.execute(f"insert into raw.events_validated select 3 from range({range_rows})")
        assert build_threads(con) == ["--threads", "1"]
        monkeypatch.setenv("UBA_DBT_THREADS", "2")
        assert build_threads(con) == []
    finally:
        con.close()
        reload_settings()
