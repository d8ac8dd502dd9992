"""`uba refresh`: the daily job in one process, costing what the new data costs.

    uba refresh [PATH ...]        # default: $UBA_INPUT_PATH

1. load the files not loaded yet (a file already in raw.load_log adds nothing; a new file
   starts the gate's Great Expectations import in a thread: expectations.preload);
2. gate the new load batches (a dbt process imports dbt and parses the project meanwhile:
   dbt_runner.WarmDbt, so the build starts without dbt's start-up; on the first refresh of a
   warehouse, which always builds, it starts before the load);
3. `dbt build` when the gate let new rows in since the last build (incremental models, data
   tests on the rows the run wrote, no unit tests: dbt_daily_tests.DATA_BUILD); the data
   tests run from their compiled SQL here after the models (python_models/dbt_daily_tests.py):
   compiled by the build's own dbt process the first time for this code, which saves that SQL;
   then dbt builds the models only (not the seeds and views that build wrote from the same code);
4. score what changed (python_models.lifecycle.score_changed): row-wise models only the rows
   (users, anomaly's user-days) whose features changed, other models only when one of their
   inputs changed, every model in full when its champion changed;
5. publish only the tables whose content changed (python_models.publish), hashing only the
   days of the big tables that the build can have written (python_models.days_written); the
   tables only dbt writes are hashed and their Parquet files written while step 4 scores.

With nothing new (no new file, no new champion, the last refresh complete) it stops after
step 2's check, without importing dbt, Great Expectations or any model library. The writer
lock is held throughout, so no `uba load` / `uba build` interleaves with it. It does not train:
that is `uba train` (then the next refresh rescores in full with the new champions).

Exit status: 0 done (or nothing to do); 1 a step failed (the tables a failed step would have
written keep their previous contents); 3 a batch was blocked as corrupt (the rest went on).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_models.common.scores import SCORE_STATE, STATE_SCHEMA
from python_models.model_libraries import ModelLibraries
from python_models.publish import DayPublication

REFRESH_STATE = f"{STATE_SCHEMA}.refresh"
EXIT_BLOCKED = 3


class RefreshError(RuntimeError):
    """A step failed (the gate could not prove its rows, dbt failed); the message says which."""


@dataclass
class RefreshResult:
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, what)
    nothing_new: bool = False
    blocked: int = 0  # load batches the gate blocked as corrupt
    failed: list[str] = field(default_factory=list)  # models whose scoring failed
    scored: dict[str, Any] = field(default_factory=dict)  # model -> outcome
    published: Any = None  # PublishResult, or None when nothing was published


def add_arguments(parser) -> None:
    parser.add_argument(
        "paths", nargs="*", help="event files or directories (default $UBA_INPUT_PATH)"
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="skip rendering Great Expectations Data Docs"
    )


class _Steps:
    """Times each step and says what it did, as it goes."""

    def __init__(self, result: RefreshResult, say: Callable[[str], None]):
        self.result, self.say = result, say

    def run(self, name: str, fn: Callable[[], Any], describe: Callable[[Any], str]) -> Any:
        started = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - started
        what = describe(out)
        self.result.steps.append((name, seconds, what))
        self.say(f"[refresh] {name:<8} {seconds:6.1f} s  {what}")
        return out


def _scalar(con, sql: str, args: list | None = None):
    return con.execute(sql, args or []).fetchone()[0]


def _table_exists(con, qualified: str) -> bool:
    from python_models.warehouse import table_exists

    return table_exists(con, qualified)


def _ungated_batches(con) -> int:
    if not _table_exists(con, "raw.load_log"):
        return 0
    if not _table_exists(con, "raw.gate_batches"):
        return int(_scalar(con, "select count(*) from raw.load_log"))
    return int(
        _scalar(
            con,
            "select count(*) from raw.load_log as l where not exists "
            "(select 1 from raw.gate_batches as g where g.load_id = l.load_id)",
        )
    )


def _gate_fingerprint(con) -> str | None:
    """Changes whenever the gate records a batch (new, released): then dbt has new rows."""
    from python_models.warehouse import table_fingerprint

    if not _table_exists(con, "raw.gate_batches"):
        return None
    return table_fingerprint(con, "raw.gate_batches")


def _read_state(con) -> tuple[str | None, bool] | None:
    """(gate fingerprint of the last successful build, scored and published since)."""
    if not _table_exists(con, REFRESH_STATE):
        return None
    row = con.execute(f"select gate_fingerprint, complete from {REFRESH_STATE}").fetchone()
    return (row[0], bool(row[1])) if row else None


def _write_state(con, gate_fingerprint: str | None, complete: bool) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"create table if not exists {REFRESH_STATE} "
        "(gate_fingerprint varchar, complete boolean not null, updated_at timestamp not null)"
    )
    con.execute("begin transaction")
    con.execute(f"delete from {REFRESH_STATE}")
    con.execute(
        f"insert into {REFRESH_STATE} values (?, ?, now()::timestamp)",
        [gate_fingerprint, complete],
    )
    con.execute("commit")


def record_build(con) -> None:
    """Say that the warehouse was just built on every gated batch (as after `uba build`), so
    the next refresh builds only when the gate lets new rows in."""
    _write_state(con, _gate_fingerprint(con), complete=False)


def _champions_scored(con) -> bool:
    """Every champion's scores are in its table (no new champion since the last scoring)."""
    from python_models.common.registry import REGISTRY_TABLE

    if not _table_exists(con, REGISTRY_TABLE):
        return True
    if not _table_exists(con, SCORE_STATE):
        return not _scalar(con, f"select count(*) from {REGISTRY_TABLE} where status='champion'")
    return not _scalar(
        con,
        f"""
        select count(*) from {REGISTRY_TABLE} as r
        where r.status = 'champion' and not exists (
            select 1 from {SCORE_STATE} as s
            where s.model_name = r.model_name and s.model_version = r.model_version
        )
        """,
    )


def _load(con, paths: list[str]):
    from expectations.preload import start_suites_import
    from python_models.ingest import load_path

    existing = [p for p in paths if Path(p).exists()]
    if not existing:
        return None
    # A new file means a gate: its GX import (1.5-2.5 s) starts now, beside the load.
    return load_path(con, existing, progress=False, on_new_file=start_suites_import)


def _describe_load(result) -> str:
    if result is None:
        return "no input files"
    return (
        f"{result.files_loaded} new file(s), {result.rows_loaded:,} rows; "
        f"{result.files_skipped} already loaded"
    )


def refresh(
    paths: list[str] | None = None,
    data_docs: bool = True,
    say: Callable[[str], None] = print,
) -> RefreshResult:
    """The daily job (module docstring). Raises GateError / DbtError / WarehouseBusyError."""
    from python_models.common import registry
    from python_models.config import get_settings
    from python_models.dbt_runner import build_threads
    from python_models.warehouse import connect, writer_lock
    from python_models.warehouse.duckdb_engine import daily_duckdb_settings, skip_vacuum_as

    settings = get_settings()
    paths = list(paths) if paths else [str(settings.input_path)]
    result = RefreshResult()
    steps = _Steps(result, say)
    warm = None  # dbt, importing and parsing the project while the gate runs
    with writer_lock(purpose="uba refresh"):
        try:
            con = connect()
            try:
                # before the load: its checkpoint would vacuum the earlier days' deletes
                duckdb_settings = daily_duckdb_settings(con)
                skip_vacuum_as(con, duckdb_settings)
                if _read_state(con) is None:
                    # Never built by a refresh: this run builds whatever the load finds, so
                    # dbt's start-up (its import and full parse, ~15 s whatever the data's
                    # size) runs beside the load as well as the gate.
                    warm = _start_dbt(duckdb_settings)
                steps.run("load", lambda: _load(con, paths), _describe_load)
                if _ungated_batches(con):
                    # gated rows always mean a build (the gate's fingerprint changes)
                    if warm is None:
                        warm = _start_dbt(duckdb_settings)
                    gate = steps.run("gate", lambda: _gate(con, data_docs), _describe_gate)
                    result.blocked = len(gate.blocked)
                fingerprint = _gate_fingerprint(con)
                if fingerprint is None:
                    raise RefreshError(
                        f"no events gated yet: give event files (`uba refresh PATH`); "
                        f"nothing found in {', '.join(paths)}"
                    )
                state = _read_state(con)
                build = state is None or state[0] != fingerprint
                threads = build_threads(con) if build else []
                champions = registry.champions(con) if build else []
                if not build and state[1] and _champions_scored(con):
                    result.nothing_new = True
                    say("[refresh] nothing new: no new rows since the last build, no new champion")
                    return result
            finally:
                con.close()
            replayed = False  # the day's build ran the saved plan: the code did not change
            if build:
                libraries = ModelLibraries(champions, trains=False)
                _, replayed = steps.run(
                    "dbt",
                    lambda: _build(steps.say, warm, duckdb_settings, threads),
                    lambda out: out[0],
                )
                con = connect()
                try:
                    skip_vacuum_as(con, duckdb_settings)
                    _write_state(con, fingerprint, complete=False)
                finally:
                    con.close()
        finally:
            if warm is not None:
                warm.close()
        con = connect()
        try:
            skip_vacuum_as(con, duckdb_settings)
            # Only this refresh's build wrote since the last refresh published (no `uba build`
            # since: it records complete=False), with the code it ran: python_models.days_written.
            bounded = replayed and state is not None and state[1]
            publication = DayPublication(con, settings.published_dir, bounded)
            if build:
                libraries.join()
            try:
                _score(con, steps, result, publication)
                result.published = steps.run(
                    "publish",
                    publication.publish,
                    lambda out: _describe_publish(out, publication.beside_seconds()),
                )
            finally:
                publication.close()
            if not result.failed:
                _write_state(con, fingerprint, complete=True)
        finally:
            con.close()
    return result


def _gate(con, data_docs: bool):
    from expectations.gate import GateError, GateRules, run_gate
    from python_models.config import get_settings

    docs = get_settings().reports_dir / "data_docs" if data_docs else None
    try:
        return run_gate(con, rules=GateRules.from_settings(), data_docs_dir=docs)
    except GateError as err:
        raise RefreshError(f"gate failed, nothing written: {err}") from err


def _describe_gate(gate) -> str:
    text = (
        f"{len(gate.batches)} batch(es): {gate.rows_valid:,} valid, "
        f"{gate.rows_quarantined:,} quarantined"
    )
    return text + (f"; {len(gate.blocked)} BLOCKED as corrupt" if gate.blocked else "")


def _start_dbt(duckdb_settings: dict[str, str]):
    from python_models.dbt_runner import WarmDbt

    return WarmDbt(duckdb_settings=duckdb_settings)


def _build(
    say: Callable[[str], None],
    warm=None,
    duckdb_settings: dict[str, str] | None = None,
    threads: Sequence[str] = (),
) -> tuple[str, bool]:
    """The day's dbt step; `warm`: a WarmDbt already importing dbt and parsing (_start_dbt);
    `duckdb_settings`: daily_duckdb_settings'; `threads`: dbt's thread option for the build
    (python_models.dbt_runner.build_threads).
    Returns what it did and whether it ran the saved plan (the code unchanged since)."""
    from python_models import dbt_daily_tests
    from python_models.config import get_settings
    from python_models.dbt_runner import DbtError, DbtProgress, dbt_env, run_dbt_build
    from python_models.warehouse import connect

    def warn(line: str) -> None:
        print(f"[refresh] {line}", file=sys.stderr)

    def dbt(run: Callable[[], Any]) -> Any:  # called once per build
        try:
            return run()
        except DbtError as err:
            raise RefreshError(" / ".join(err.summary[:3]) or str(err)) from err

    dbt_kwargs = {
        "quiet": True,
        "say": lambda line: say(f"[refresh] {line}"),
        "warm": warm,
        "duckdb_settings": duckdb_settings,
        # a long build says how far it got (a first build at 10M: ~3 minutes of dbt)
        "progress": DbtProgress(lambda line: say(f"[refresh]   {line}")),
    }
    if not get_settings().dbt_target.startswith("duckdb"):
        dbt(lambda: run_dbt_build(dbt_daily_tests.DATA_BUILD, **dbt_kwargs))
        return "dbt build (incremental models and data tests)", False
    env = dbt_env()
    fingerprint = dbt_daily_tests.code_fingerprint(env)
    plan = dbt_daily_tests.load_plan(fingerprint)
    if plan is None:
        # the tests compiled after the whole build: each scope selects what a replay selects
        _, outcome = dbt(
            lambda: dbt_daily_tests.build_and_test(
                [*dbt_daily_tests.DATA_BUILD, *threads], warn, **dbt_kwargs
            )
        )
        saved = (
            dbt_daily_tests.save_plan(fingerprint, dbt_daily_tests.compiled_tests_dir())
            if dbt_daily_tests.holds_an_incremental_batch()
            else 0
        )
        return f"dbt build (incremental models), {outcome.describe()}" + (
            f"; {saved} data tests saved for the next runs" if saved else ""
        ), False
    con = connect()
    try:
        static = dbt_daily_tests.unchanged_static_nodes(con, fingerprint)
    finally:
        con.close()
    models_build = [
        *dbt_daily_tests.DAILY_MODELS_BUILD,
        *threads,
        *(["--exclude", *static] if static else []),
    ]
    dbt(lambda: run_dbt_build(models_build, **dbt_kwargs))
    con = connect()
    try:
        outcome = dbt_daily_tests.run_plan(con, plan, threads=dbt_daily_tests.test_threads(env))
    finally:
        con.close()
    dbt(lambda: dbt_daily_tests.judge(outcome, warn))
    return f"dbt build (incremental models), {outcome.describe()}", True


def _score(con, steps: _Steps, result: RefreshResult, publication: DayPublication) -> None:
    from python_models.lifecycle import build_derived, refresh_realized, score_each
    from python_models.models import fingerprinted_inputs, model_names

    seconds: dict[str, float] = {}  # each model's, said beside its line

    def score() -> list:
        # Models rescored when an input table changed compare its published content, which
        # the publish figures anyway (days_written bounds what it hashes): one scan a day.
        fingerprints = publication.fingerprints(fingerprinted_inputs())
        publication.start_beside()
        outcomes = score_each(
            con, model_names(), changed_only=True, fingerprints=fingerprints, seconds=seconds
        )
        scored = [o.model_name for o in outcomes if o.status == "scored"]
        if scored:  # the tables built from scores (value at risk...), realized performance
            outcomes += build_derived(con, scored)
            refresh_realized(con)
        return outcomes

    outcomes = steps.run(
        "score",
        score,
        lambda outcomes: f"{sum(o.status == 'scored' for o in outcomes)} model(s) scored",
    )
    for outcome in outcomes:
        result.scored[outcome.model_name] = outcome
        if outcome.status == "failed":
            result.failed.append(outcome.model_name)
        took = f" ({seconds[outcome.model_name]:.1f} s)" if outcome.model_name in seconds else ""
        if outcome.status == "built":
            steps.say(f"           {outcome.model_name:<14} {outcome.rows:,} rows (rebuilt)")
        elif outcome.status != "scored":
            steps.say(
                f"           {outcome.model_name:<14} {outcome.status}: {outcome.reason}{took}"
            )
        else:
            scored = outcome.rows if outcome.rows_scored is None else outcome.rows_scored
            what = (
                f"{scored:,} rows whose features changed"
                + (f", {outcome.rows:,} written" if scored != outcome.rows else "")
                if outcome.mode == "changed"
                else f"{outcome.rows:,} rows (full)"
            )
            steps.say(f"           {outcome.model_name:<14} {what} -> {outcome.table}{took}")


def _describe_publish(published, beside_seconds: float | None = None) -> str:
    if not published.changed:
        return f"nothing changed in {len(published.tables)} tables: publication kept"
    removed = f", {len(published.removed)} removed" if published.removed else ""
    text = f"{len(published.copied)} of {len(published.tables)} tables copied{removed}"
    if published.beside and beside_seconds is not None:
        text += f" ({len(published.beside)} of them beside the scoring, in {beside_seconds:.1f} s)"
    return text


def run(args) -> int:
    from python_models.warehouse import WarehouseBusyError

    started = time.perf_counter()
    try:
        result = refresh(args.paths, data_docs=not args.no_docs)
    except (RefreshError, WarehouseBusyError, LookupError) as err:
        print(f"uba refresh: FAILED: {str(err).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"uba refresh: done in {time.perf_counter() - started:.1f} s")
    if result.failed:
        print(f"uba refresh: scoring failed for {', '.join(result.failed)}", file=sys.stderr)
        return 1
    return EXIT_BLOCKED if result.blocked else 0
