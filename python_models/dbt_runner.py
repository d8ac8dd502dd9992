"""Run dbt as a subprocess against the configured warehouse (`uba build`).

A subprocess keeps dbt's ~3 s import and its global state out of callers that do not need it,
and lets tests point dbt at their own DuckDB file through the environment. The child dies with
its parent: SIGTERM / SIGINT to `uba` are passed on to dbt, and on Linux dbt gets SIGTERM if
`uba` is killed outright (PR_SET_PDEATHSIG), so a killed build never leaves dbt holding the
warehouse. `uba build` holds the writer lock (python_models.warehouse.writer_lock) while dbt
runs, so a second build or a load waits for it instead of failing on DuckDB's lock.

A build whose every failed node ran out of DuckDB memory is retried once (`run_dbt_build`):
`dbt retry` in a fresh process, one thread. dbt's threads share one DuckDB instance and its
memory_limit, so two heavy models side by side, or what an earlier node left in the pool, can
exhaust it where the node alone fits.

`WarmDbt` starts the dbt process before its command is known (python_models/dbt_warm.py): it
imports dbt and parses the project meanwhile, then runs the command it is sent on that parse.

The parse cache: a run starts from the last parse saved for the same project, profiles.yml,
profile variables (a path by its file name) and --vars (`saved_parse_for`), whatever its
target folder, not from nothing. dbt keeps one saved parse (partial_parse.msgpack) in the
target folder and parses the project in full when the profile (the warehouse path included)
or the --vars differ from that parse's; it checks the copy as its own (dbt's version, the
profile, --vars, every file's checksum) and parses again what differs. A run forked from the
dbt fork server, and a WarmDbt process, also take a copy made for a warehouse of the same name
in another folder (dbt_fork.SAVED_PARSE_ENV), the same parse (dbt-duckdb names the database
after the file), which dbt alone would parse again. A full parse of this project costs ~12 s
(~8 s of CPU). UBA_DBT_PARSE_CACHE names the cache's folder (the tests set one): every run
starts from its copy. Unset, the cache is the user's (config.dbt_cache_dir, which
scripts/bootstrap.sh fills with the parse of a default warehouse after installing, `uba build
--save-parse`), and a run takes its copy only into a target folder without a parse of its
own: a warehouse's first build or refresh in a new target folder then starts with dbt's
partial parse beside the load and gate instead of a full one. "off": no cache.

UBA_DBT_FORK_SERVER (a folder; the tests set it): dbt runs fork from one process that
imported dbt and parsed once (python_models/dbt_fork.py), ~1 s of start-up instead of ~7 s;
`dbt_executable()` returns that server's executable, which behaves as dbt's own. Without it,
run_dbt runs dbt's command line through python_models.dbt_templates, which keeps dbt's
compiled Jinja templates in the parse cache's folder (as WarmDbt's process and the server do).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from python_models import dbt_fork, dbt_warm
from python_models.config import (
    DBT_CACHE_ENV,
    DBT_PROJECT_DIR,
    REPO_ROOT,
    dbt_cache_dir,
    dbt_fork_server,
    dbt_target_dir,
    dbt_threads_set,
    get_settings,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?(\s+|$)")
# Seconds dbt gets to stop after SIGTERM before it is killed.
_STOP_GRACE_SECONDS = 10.0
# How DuckDB's error starts when a query needs more than memory_limit (and cannot spill).
_OUT_OF_MEMORY = "Out of Memory Error"
# dbt's statuses of a node that failed (a test that found rows: "fail").
_FAILED = {"error", "fail", "runtime error"}


class DbtError(RuntimeError):
    """dbt exited non-zero. `summary` lists dbt's own error lines (which model or test failed
    and why); str() starts with a one-line headline."""

    def __init__(self, message: str, summary: list[str] | None = None, output: str = ""):
        super().__init__(message)
        self.summary = summary or []
        self.output = output


def _forked_dbt(server: str | Path | None) -> str | None:
    """The `dbt` executable of the fork server in folder `server`, if it has one."""
    if server and os.path.exists(dbt_fork.executable_path(server)):
        return dbt_fork.executable_path(server)
    return None


def dbt_executable() -> str:
    """The fork server's `dbt` where UBA_DBT_FORK_SERVER names one (python_models/dbt_fork.py),
    else the venv's dbt next to this interpreter, else the one on PATH."""
    forked = _forked_dbt(dbt_fork_server())
    if forked:
        return forked
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise DbtError("dbt is not installed: run ./scripts/bootstrap.sh")
    return found


def dbt_command() -> list[str]:
    """How run_dbt starts dbt_executable(): this interpreter's dbt as dbt's command line in a
    process that keeps its compiled templates (python_models.dbt_templates), any other (the
    fork server's, one on PATH) as it is."""
    executable = dbt_executable()
    if Path(executable).parent == Path(sys.executable).parent:
        return [sys.executable, "-m", "python_models.dbt_templates"]
    return [executable]


def dbt_env(
    duckdb_path: str | Path | None = None,
    target: str | None = None,
    duckdb_settings: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment dbt runs in; `duckdb_settings`: DuckDB settings for this run, each
    passed as UBA_DUCKDB_<NAME> to the profile's plugin (python_models.dbt_salt_plugin
    RUN_SETTINGS, kept out of the profile so dbt's saved parse holds across runs; DuckDB's own
    defaults when not given, or what the environment already sets)."""
    settings = get_settings()
    env = dict(os.environ)
    for name, value in (duckdb_settings or {}).items():
        env.setdefault(f"UBA_DUCKDB_{name.upper()}", str(value))
    env["UBA_DUCKDB_PATH"] = str(Path(duckdb_path) if duckdb_path else settings.duckdb_path)
    env["UBA_DBT_TARGET"] = target or settings.dbt_target
    env.setdefault("UBA_PSEUDONYM_SALT", settings.pseudonym_salt)
    env.setdefault("UBA_DUCKDB_MEMORY_LIMIT", settings.duckdb_memory_limit)
    # the spark target's warehouse and metastore, absolute (dbt runs in dbt_project/)
    env["UBA_SPARK_DIR"] = str(settings.spark_dir)
    env["DBT_PROFILES_DIR"] = str(REPO_ROOT)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def error_summary(lines: list[str]) -> list[str]:
    """dbt's own account of what failed, from its console output.

    dbt ends a failed run with "Completed with N error(s)..." followed by one block per failed
    node ("Failure in test ...", "Database Error in model ...", the message indented below);
    an error before any node runs is printed after "Encountered an error:". Falls back to the
    last non-blank lines. A model failing dbt's schema check gets the command that rebuilds it
    as the first line.
    """
    text = [_TIMESTAMP.sub("", _ANSI.sub("", line).rstrip()) for line in lines]
    return _with_rebuild_hint(_blocks(text))


def _blocks(text: list[str]) -> list[str]:
    blocks: list[str] = []
    for marker in ("Completed with", "Encountered an error"):
        starts = [i for i, line in enumerate(text) if marker in line]
        if not starts:
            continue
        for line in text[starts[-1] + 1 :]:
            stripped = line.strip()
            if not stripped or stripped.startswith(("Done. PASS", "compiled code at", "See ")):
                continue
            blocks.append(stripped)
        if blocks:
            return blocks[:40]
    return [line.strip() for line in text if line.strip()][-15:]


# dbt's on_schema_change='fail' check: the stored table's columns differ from the model's.
_OUT_OF_SYNC = "schemas on this incremental model are out of sync"
_FAILED_MODEL = re.compile(r"in model (?P<model>\w+) \(")


def _with_rebuild_hint(summary: list[str]) -> list[str]:
    """A model whose stored table has other columns (a warehouse built by an earlier version)
    fails dbt's schema check, which says what differs but not what to run: put that first."""
    models: dict[str, None] = {}
    named = None  # the model of the block being read
    for line in summary:
        found = _FAILED_MODEL.search(line)
        named = found["model"] if found else named
        if _OUT_OF_SYNC in line and named:
            models[named] = None
    if not models:
        return summary
    selected = " ".join(models)
    hint = (
        f"{', '.join(models)}: the stored table's columns differ from the model's (built by an "
        f'earlier version): rebuild it once with `uba build --full-refresh --select "{selected}"`'
    )
    return [hint, *summary]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _ForwardSignals:
    """While dbt runs, SIGTERM and SIGINT to this process stop dbt first, then act as usual
    (SIGINT raises KeyboardInterrupt, SIGTERM exits with 128 + 15). Main thread only: Python
    installs signal handlers there alone (a Dagster worker thread relies on PDEATHSIG)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        _stop(self.proc)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def _popen(cmd: list[str], env: dict[str, str], cwd, stdin=None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


class DbtProgress:
    """Progress of a quiet dbt command from its console lines ("12 of 58 OK created sql
    incremental model marts.x ..... [OK in 38.26s]"): every `every` seconds at most, one line to
    `say` with the nodes done and the longest of them since the line before, so a long build
    (a first build at 10M: ~3 minutes of dbt) is not silent. `clock`: time.monotonic."""

    _NODE = re.compile(r"\b(\d+) of (\d+) (\w+)\b(.*)$")
    _NAME = re.compile(r"(\S+) \.{2,}|(\S+)\s+\[")
    _SECONDS = re.compile(r" in ([\d.]+)s\]")
    _COLOR = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, say, every: float = 15.0, clock=time.monotonic):
        self.say, self.every, self.clock = say, every, clock
        self.started = self.last = clock()
        self.done = self.total = 0
        self.longest: tuple[float, str] | None = None

    def line(self, text: str) -> None:
        found = self._NODE.search(self._COLOR.sub("", text))
        if found is None or found.group(3) == "START":
            return
        if int(found.group(2)) != self.total:  # another command's nodes (a retry)
            self.done, self.total = 0, int(found.group(2))
        self.done += 1
        rest = found.group(4)
        name, seconds = self._NAME.search(rest), self._SECONDS.search(rest)
        took = float(seconds.group(1)) if seconds else None
        if name and took is not None and (self.longest is None or took > self.longest[0]):
            self.longest = (took, (name.group(1) or name.group(2)).split(".")[-1])
        now = self.clock()
        if now - self.last < self.every:
            return
        text = f"dbt: {self.done} of {self.total} nodes done in {now - self.started:.0f} s"
        if self.longest is not None:
            text += f"; longest since the last line {self.longest[1]} {self.longest[0]:.1f} s"
        self.say(text)
        self.last, self.longest = now, None


def _finish(
    proc: subprocess.Popen,
    args: Sequence[str],
    quiet: bool,
    progress: DbtProgress | None = None,
) -> str:
    """Stream the dbt process's output until it exits; return it, raise DbtError on failure.
    `progress`: sees every line (a quiet caller's progress lines)."""
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        with _ForwardSignals(proc):
            for line in proc.stdout:
                lines.append(line)
                if progress is not None:
                    progress.line(line)
                if not quiet:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    output = "".join(lines)
    if code != 0:
        summary = error_summary(lines)
        headline = summary[0] if summary else "no output"
        raise DbtError(
            f"dbt {' '.join(args)} failed (exit {code}): {headline}\n" + "\n".join(summary[1:]),
            summary=summary,
            output=output,
        )
    return output


_SAVED_PARSE = "partial_parse.msgpack"


@dataclass(frozen=True)
class SavedParse:
    """A run's saved parse (`own`, in its target folder) and its copy in the parse cache; a
    `seed_only` cache (the user's default one) fills only a target folder without its own."""

    own: Path
    cached: Path
    seed_only: bool


def _profile_variables(profiles: str) -> list[str]:
    """The environment variables profiles.yml reads: the connection dbt hashes is made of them."""
    return sorted(set(re.findall(r"env_var\(\s*['\"](\w+)['\"]", profiles)))


# Profile variables that say how dbt runs, not what it parses: its threads and DuckDB's memory
# limit (no model's Jinja reads either). Left out of the parse cache's key, so a deployment that
# sets them (a 10M warehouse within 1.5 GB) starts from the parse saved at install; a run that
# takes a cached parse gives it this profile's hash (dbt_fork.take_cached_parse_as_own).
_RUN_ONLY_VARIABLES = frozenset({"UBA_DBT_THREADS", "UBA_DUCKDB_MEMORY_LIMIT"})


def _location_free(name: str, value: str) -> str:
    """A profile variable's value as the parse sees it: a file or folder (UBA_DUCKDB_PATH,
    UBA_SPARK_DIR, ...) by its name alone. dbt-duckdb names the database after the file, and
    nothing else in the parsed project depends on where the file lies."""
    return Path(value).name if name.endswith(("_PATH", "_DIR")) else value


def saved_parse_for(
    env: dict[str, str], project_dir: str | Path | None, args: Sequence[str] = ()
) -> SavedParse | None:
    """The run's saved parse and its copy in the parse cache; None with the cache off."""
    cache = dbt_cache_dir(env)
    if cache is None:
        return None
    seed_only = DBT_CACHE_ENV not in env
    project = Path(project_dir or DBT_PROJECT_DIR).resolve()
    target = Path(env.get("DBT_TARGET_PATH") or "target")
    target = target if target.is_absolute() else project / target
    # One entry per project, profile and --vars, what dbt's check compares, except where the
    # warehouse lies and how dbt runs (_RUN_ONLY_VARIABLES): runs on two warehouses of one name
    # share an entry, runs that alternate between two sets of vars each start from their own.
    given_vars = [value for flag, value in zip(args, args[1:], strict=False) if flag == "--vars"]
    profiles = (REPO_ROOT / "profiles.yml").read_text()
    profile = [
        f"{name}={_location_free(name, env.get(name, ''))}"
        for name in _profile_variables(profiles)
        if name not in _RUN_ONLY_VARIABLES
    ]
    digest = hashlib.sha256(profiles.encode()).hexdigest()
    key = "|".join([str(project), digest, *profile, *given_vars])
    entry = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.msgpack"
    return SavedParse(target / _SAVED_PARSE, entry, seed_only)


def _start_from_cache(saved: SavedParse | None, env: dict[str, str]) -> None:
    """Put the cached parse in the run's target folder; a run forked from the dbt fork server,
    or a WarmDbt process, then takes it as its own although dbt's hash of the profile names
    another warehouse path (dbt_fork.SAVED_PARSE_ENV); dbt itself parses such a run in full."""
    if saved is None or (saved.seed_only and saved.own.exists()):
        return
    if saved.cached.exists():
        saved.own.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved.cached, saved.own)
        env[dbt_fork.SAVED_PARSE_ENV] = "1"


def seed_target_folder(
    target_path: str | Path,
    project_dir: str | Path | None = None,
    duckdb_path: str | Path | None = None,
) -> None:
    """Give a target folder without a saved parse of its own the parse cache's, before a dbt
    run this module does not start (Dagster's dbt assets). That dbt takes it as its own only
    where the cache's parse was saved for the same warehouse path (the demo's: Dagster's
    definitions parse the project through run_dbt first), and otherwise parses in full, as
    it would have. `duckdb_path`: another warehouse than the configured one."""
    env = dbt_env(duckdb_path)
    env["DBT_TARGET_PATH"] = str(target_path)
    saved = saved_parse_for(env, project_dir)
    if saved is not None and not saved.own.exists():
        _start_from_cache(saved, env)


def a_saved_parse(target_path: str | Path) -> Path | None:
    """The parse saved in `target_path`, else the parse cache's for the settings' warehouse,
    None without either: what a dbt fork server's warm-up starts from (dbt_fork._warm_up)."""
    env = dbt_env()
    env["DBT_TARGET_PATH"] = str(target_path)
    saved = saved_parse_for(env, None)
    candidates = [Path(target_path) / _SAVED_PARSE, *([saved.cached] if saved else [])]
    return next((path for path in candidates if path.exists()), None)


def _keep_in_cache(saved: SavedParse | None) -> None:
    """The run's parse into the cache (an unwritable cache is skipped: it only saves time)."""
    if saved is None or not saved.own.exists():
        return
    partial = saved.cached.with_name(f"{saved.cached.name}.{os.getpid()}.tmp")
    try:
        saved.cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved.own, partial)
        os.replace(partial, saved.cached)  # whole or not at all: a reader never sees half a file
    except OSError:
        partial.unlink(missing_ok=True)


def run_dbt(
    args: Sequence[str],
    duckdb_path: str | Path | None = None,
    target: str | None = None,
    dbt_vars: dict | None = None,
    quiet: bool = False,
    target_path: str | Path | None = None,
    project_dir: str | Path | None = None,
    duckdb_settings: dict[str, str] | None = None,
    progress: DbtProgress | None = None,
) -> str:
    """Run `dbt <args>` in the project (`project_dir`: another one, same profiles); return its
    output, raise DbtError on failure. `duckdb_settings`: as dbt_env. `progress`: as _finish."""
    cmd = [*dbt_command(), *args]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dbt_vars)]
    env = dbt_env(duckdb_path, target, duckdb_settings)
    if target_path:
        env["DBT_TARGET_PATH"] = str(target_path)
    saved = saved_parse_for(env, project_dir, cmd)
    _start_from_cache(saved, env)
    try:
        return _finish(_popen(cmd, env, project_dir or DBT_PROJECT_DIR), args, quiet, progress)
    finally:
        _keep_in_cache(saved)


class WarmDbt:
    """A dbt process that imports dbt and parses this project now, and runs one command later
    (python_models/dbt_warm.py): `uba refresh` starts it before the gate, so dbt's fixed
    start-up cost runs beside the gate instead of after it. `run(args)` as run_dbt (the
    warehouse, target, target folder, project and DuckDB settings it was started with, no
    --vars); `close()` stops it unused."""

    def __init__(
        self,
        duckdb_path: str | Path | None = None,
        target_path: str | Path | None = None,
        project_dir: str | Path | None = None,
        duckdb_settings: dict[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        env = dbt_env(duckdb_path, target, duckdb_settings)
        if target_path:
            env["DBT_TARGET_PATH"] = str(target_path)
        self._saved = saved_parse_for(env, project_dir)
        _start_from_cache(self._saved, env)
        forked = _forked_dbt(dbt_fork_server())
        command = (
            [forked, dbt_fork.MODULE_FLAG, "python_models.dbt_warm"]
            if forked
            else [sys.executable, "-m", "python_models.dbt_warm"]
        )
        if env.get(dbt_fork.SAVED_PARSE_ENV) == "1":
            command.append(dbt_warm.TAKE_CACHED_PARSE)
        self.proc = _popen(
            command,
            env,
            project_dir or DBT_PROJECT_DIR,
            stdin=subprocess.PIPE,
        )

    def run(
        self,
        args: Sequence[str],
        quiet: bool = False,
        then: Sequence[Sequence[str]] = (),
        progress: DbtProgress | None = None,
    ) -> str:
        """`then`: commands run after `args` on the same parse, each only if the one before
        succeeded. `progress`: as _finish."""
        assert self.proc.stdin is not None
        commands = [list(args), *(list(command) for command in then)]
        try:
            self.proc.stdin.write(json.dumps(commands if then else commands[0]) + "\n")
            self.proc.stdin.close()
        except BrokenPipeError:  # it died while parsing: its output says why
            pass
        try:
            return _finish(
                self.proc, [arg for command in commands for arg in command], quiet, progress
            )
        finally:
            _keep_in_cache(self._saved)

    def close(self) -> None:
        """Stop it if it has not run a command (a no-op once `run` returned)."""
        if self.proc.poll() is None:
            _stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _results(run_results: Path, since: float) -> list[dict]:
    """run_results.json's results when this run (started at `since`, a time.time()) wrote it;
    [] when it is an earlier run's (this one failed before writing results) or unreadable."""
    try:
        if run_results.stat().st_mtime < since:
            return []
        return json.loads(run_results.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []


def _node_name(unique_id: str) -> str:
    """A node's selectable name: `model.uba.fct_events` -> fct_events, and a test's
    `test.uba.unique_x_id.40018f0422` -> unique_x_id (not its hash)."""
    return unique_id.split(".")[2]


def out_of_memory_nodes(run_results: Path, since: float = 0.0) -> list[str]:
    """The failed nodes of the dbt run that wrote `run_results` (modified at or after `since`,
    a time.time()) when every one of them failed with DuckDB's out-of-memory error; [] when
    none failed, any failed otherwise, or the run wrote no results."""
    results = _results(run_results, since)
    failed = [r for r in results if str(r.get("status")).lower() in _FAILED]
    if not failed or any(_OUT_OF_MEMORY not in (r.get("message") or "") for r in failed):
        return []
    return [_node_name(r["unique_id"]) for r in failed]


def finished_nodes(run_results: Path, since: float = 0.0) -> list[str]:
    """The nodes (models, seeds, tests...; not hooks) of the dbt run that wrote `run_results`
    that neither failed nor were skipped: what a retry of that run leaves out."""
    return [
        _node_name(r["unique_id"])
        for r in _results(run_results, since)
        if not r["unique_id"].startswith("operation.")
        and str(r.get("status")).lower() not in _FAILED | {"skipped"}
    ]


# The headline of a failure whose out-of-memory retry failed as well (`uba build`, Dagster).
RETRY_FAILED_TOO = "dbt ran out of DuckDB memory, and again in a fresh process with one thread: "


def failed_node_messages(run_results: Path, since: float = 0.0) -> list[str]:
    """`name: the error` for each failed node of the dbt run that wrote `run_results`: the
    first line of dbt's message that says the cause (not its "Runtime Error in model ...")."""

    def cause(message: str) -> str:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        said = [line for line in lines if not line.startswith("Runtime Error in ")]
        return (said or lines or ["no message"])[0]

    return [
        f"{_node_name(r['unique_id'])}: {cause(r.get('message') or '')}"
        for r in _results(run_results, since)
        if str(r.get("status")).lower() in _FAILED
    ]


# The events a build has yet to sessionize, and the dbt var that says how many events one range
# of a full build holds per GiB of DuckDB's pool (dbt_project.yml; macros/uba_time_slices.sql).
_UNSESSIONIZED_EVENTS = """
    select count(*) from raw.events_validated
    where load_id > (select coalesce(max(load_id), 0) from intermediate.int_events_sessionized)
"""
_RANGE_ROWS_VAR = "uba__full_build_range_rows_per_gib"


def _pool_gib(memory_limit: str) -> float:
    """DuckDB's reading of a memory_limit setting in GiB, as the models' uba_pool_gib reads it
    ('1500MB' -> 1.3)."""
    import duckdb

    from python_models.warehouse.duckdb_engine import size_bytes

    scratch = duckdb.connect()
    try:
        scratch.execute(f"set memory_limit = '{memory_limit}'")
        pool = scratch.execute("select current_setting('memory_limit')").fetchone()[0]
    finally:
        scratch.close()
    return size_bytes(pool) / 2**30


def build_threads(con, full_refresh: bool = False) -> list[str]:
    """`--threads 1` for a dbt build on DuckDB that has more events to sessionize than one
    range of a full build holds (var uba__full_build_range_rows_per_gib per GiB of the pool:
    the data outgrows the pool, so int_events_sessionized is written in ranges), else nothing
    (the profile's threads, UBA_DBT_THREADS, default 2). `con`: an open warehouse connection;
    `full_refresh`: the build rewrites every event (`uba build --full-refresh`).

    Past that size every heavy node fills both cores alone, and two side by side share the
    pool and the cores: a first build of 10M events in a 1.5 GB pool took 206.8 s of dbt with
    two threads and 192.3 s with one (means of 2 and 3 builds, each node ~1.8x slower beside
    another), while at 1M (the default pool) two threads were 1.0-1.4 s faster, dbt's own
    Python around each node overlapping the other's SQL (docs/performance.md). A build that
    sets UBA_DBT_THREADS keeps it."""
    if dbt_threads_set() or getattr(con, "engine", None) != "duckdb":
        return []
    from python_models.common.feature_events import project_vars

    per_gib = int(project_vars().get(_RANGE_ROWS_VAR) or 0)
    if per_gib <= 0:
        return []
    from python_models.warehouse import table_exists

    if not table_exists(con, "raw.events_validated"):
        return []
    query = _UNSESSIONIZED_EVENTS
    if full_refresh or not table_exists(con, "intermediate.int_events_sessionized"):
        query = "select count(*) from raw.events_validated"
    events = con.execute(query).fetchone()[0]
    # as the macro uba_rows_per_part counts a range
    range_rows = int(per_gib * _pool_gib(get_settings().duckdb_memory_limit))
    return ["--threads", "1"] if events > range_rows else []


def warehouse_build_threads(target: str | None = None, full_refresh: bool = False) -> list[str]:
    """build_threads on the configured warehouse (a connection of its own, closed after) for
    a dbt build on `target` (default: the settings' dbt target); nothing for other targets.
    `uba build`, Dagster's dbt assets and the bench's lineage build choose with it."""
    if not (target or get_settings().dbt_target).startswith("duckdb"):
        return []
    from python_models.warehouse import connect

    con = connect()
    try:
        return build_threads(con, full_refresh=full_refresh)
    finally:
        con.close()


def memory_retry_notice(nodes: Sequence[str]) -> str:
    """The one line said before out-of-memory nodes are retried (`uba build`, Dagster)."""
    return (
        f"dbt: {len(nodes)} node(s) ran out of DuckDB memory ({', '.join(nodes[:3])}"
        f"{', ...' if len(nodes) > 3 else ''}): retrying them once in a fresh dbt process "
        "with one thread"
    )


def run_dbt_build(
    args: Sequence[str],
    say=None,
    target_path: str | Path | None = None,
    project_dir: str | Path | None = None,
    warm: WarmDbt | None = None,
    then: Sequence[Sequence[str]] = (),
    **kwargs,
) -> str:
    """`run_dbt(args)` for a `dbt build`; when it fails and every failed node ran out of DuckDB
    memory, those nodes (and the ones skipped after them) once more with `dbt retry` in a fresh
    dbt process (a fresh DuckDB instance) with one thread. `say` gets the one-line notice.
    `warm`: the first try runs in that started process (the configured paths, no vars).
    `then`: dbt commands run after the build succeeded, in the same dbt process (no new import
    and parse; after a retry, each in a process of its own); no vars with them.
    Raises DbtError when the build fails otherwise or the retry fails too."""
    started = time.time()
    quiet = kwargs.get("quiet", False)
    try:
        progress = kwargs.get("progress")
        if warm is not None:
            return warm.run(args, quiet=quiet, then=then, progress=progress)
        if then:
            assert not kwargs.get("dbt_vars"), "a warm dbt process runs without --vars"
            process = WarmDbt(
                kwargs.get("duckdb_path"),
                target_path,
                project_dir,
                kwargs.get("duckdb_settings"),
                kwargs.get("target"),
            )
            return process.run(args, quiet=quiet, then=then, progress=progress)
        return run_dbt(args, target_path=target_path, project_dir=project_dir, **kwargs)
    except DbtError as err:
        target = Path(target_path) if target_path else dbt_target_dir()
        nodes = out_of_memory_nodes(target / "run_results.json", since=started)
        if not nodes:
            raise
        first_error = err
    (say or print)(memory_retry_notice(nodes))
    kwargs.pop("dbt_vars", None)  # dbt retry takes the failed run's own
    try:
        output = run_dbt(
            ["retry", "--threads", "1"], target_path=target_path, project_dir=project_dir, **kwargs
        )
    except DbtError as err:
        headline = RETRY_FAILED_TOO + (err.summary[0] if err.summary else "no output")
        raise DbtError(
            f"{headline}\n" + "\n".join(err.summary[1:]),
            summary=[headline, *err.summary[1:]],
            output=first_error.output + err.output,
        ) from first_error
    for command in then:
        output += run_dbt(command, target_path=target_path, project_dir=project_dir, **kwargs)
    return output


def add_arguments(parser) -> None:
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    parser.add_argument("--select", "-s", default=None, help="dbt selection")
    parser.add_argument("--target", default=None, help="dbt target (duckdb or postgres)")
    parser.add_argument(
        "--save-parse",
        action="store_true",
        help="only parse the dbt project into the parse cache, so that a first build in a new "
        "target folder starts from it (scripts/bootstrap.sh runs it after installing)",
    )


def save_parse(
    duckdb_path: str | Path | None = None, project_dir: str | Path | None = None
) -> Path | None:
    """Parse the project (the configured warehouse, or `duckdb_path`; no --vars) in a scratch
    target folder and keep the parse in the parse cache; returns the cache entry, None with
    the cache off. Nothing is read from or written to the warehouse."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="uba-dbt-parse-") as scratch:
        args = ["parse", "--quiet"]
        run_dbt(args, duckdb_path, quiet=True, target_path=scratch, project_dir=project_dir)
        saved = saved_parse_for(dbt_env(duckdb_path), project_dir)
    return saved.cached if saved is not None and saved.cached.exists() else None


def run(args) -> int:
    from python_models.common.catalogue_sync import check_project
    from python_models.warehouse import WarehouseBusyError, writer_lock

    if args.save_parse:
        try:
            entry = save_parse()
        except DbtError as err:
            print(f"uba build --save-parse: dbt parse failed: {err}", file=sys.stderr)
            return 1
        print(f"uba build: dbt's parse saved in {entry}" if entry else "uba build: no parse cache")
        return 0
    # A per-event feature setting that does not fit the plan or the catalogue fails here in one
    # line, before dbt spends minutes on the models upstream of the feature marts.
    problem = check_project()
    if problem:
        print(f"uba build: {problem}", file=sys.stderr)
        return 1
    dbt_args = ["build"]
    if args.full_refresh:
        dbt_args.append("--full-refresh")
    if args.select:
        dbt_args += ["--select", args.select]
    from python_models.dbt_daily_tests import build_and_test, replays_tests

    # A whole build on DuckDB runs the data tests from their compiled SQL after the models
    # (python_models.dbt_daily_tests.build_and_test): the same verdicts without dbt's cost per
    # test node. A selection, or another engine, runs the test nodes in dbt.
    replay = not args.select and replays_tests(args.target)
    say = lambda line: print(f"uba build: {line}")  # noqa: E731
    try:
        with writer_lock(purpose=f"uba {' '.join(dbt_args)}"):
            dbt_args += warehouse_build_threads(args.target, full_refresh=args.full_refresh)
            if replay:
                _, outcome = build_and_test(
                    dbt_args,
                    warn=lambda line: print(f"uba build: {line}", file=sys.stderr),
                    target=args.target,
                    say=say,
                )
                say(outcome.describe())
            else:
                run_dbt_build(dbt_args, target=args.target, say=say)
    except WarehouseBusyError as err:
        print(f"uba build: {err}", file=sys.stderr)
        return 1
    except DbtError as err:
        print(f"uba build: dbt {' '.join(dbt_args)} failed:", file=sys.stderr)
        for line in err.summary or [str(err)]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
