"""Run dbt as a subprocess against the configured warehouse (`uba build`).

A subprocess keeps dbt's ~3 s import and its global state out of callers that do not need it,
and lets tests point dbt at their own DuckDB file through the environment. The child dies with
its parent: SIGTERM / SIGINT to `uba` are passed on to dbt, and on Linux dbt gets SIGTERM if
`uba` is killed outright (PR_SET_PDEATHSIG), so a killed build never leaves dbt holding the
warehouse. `uba build` holds the writer lock (python_models.warehouse.writer_lock) while dbt
runs, so a second build or a load waits for it instead of failing on DuckDB's lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, get_settings

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?(\s+|$)")
# Seconds dbt gets to stop after SIGTERM before it is killed.
_STOP_GRACE_SECONDS = 10.0


class DbtError(RuntimeError):
    """dbt exited non-zero. `summary` lists dbt's own error lines (which model or test failed
    and why); str() starts with a one-line headline."""

    def __init__(self, message: str, summary: list[str] | None = None, output: str = ""):
        super().__init__(message)
        self.summary = summary or []
        self.output = output


def dbt_executable() -> str:
    """The venv's dbt next to this interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise DbtError("dbt is not installed: run ./scripts/bootstrap.sh")
    return found


def dbt_env(duckdb_path: str | Path | None = None, target: str | None = None) -> dict[str, str]:
    settings = get_settings()
    env = dict(os.environ)
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
    last non-blank lines.
    """
    text = [_TIMESTAMP.sub("", _ANSI.sub("", line).rstrip()) for line in lines]
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


def run_dbt(
    args: Sequence[str],
    duckdb_path: str | Path | None = None,
    target: str | None = None,
    dbt_vars: dict | None = None,
    quiet: bool = False,
    target_path: str | Path | None = None,
) -> str:
    """Run `dbt <args>` in the project; return its output, raise DbtError on failure."""
    cmd = [dbt_executable(), *args]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dbt_vars)]
    env = dbt_env(duckdb_path, target)
    if target_path:
        env["DBT_TARGET_PATH"] = str(target_path)
    proc = subprocess.Popen(
        cmd,
        cwd=DBT_PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        with _ForwardSignals(proc):
            for line in proc.stdout:
                lines.append(line)
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


def add_arguments(parser) -> None:
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    parser.add_argument("--select", "-s", default=None, help="dbt selection")
    parser.add_argument("--target", default=None, help="dbt target (duckdb or postgres)")


def run(args) -> int:
    from python_models.common.catalogue_sync import check_project
    from python_models.warehouse import WarehouseBusyError, writer_lock

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
    try:
        with writer_lock(purpose=f"uba {' '.join(dbt_args)}"):
            run_dbt(dbt_args, target=args.target)
    except WarehouseBusyError as err:
        print(f"uba build: {err}", file=sys.stderr)
        return 1
    except DbtError as err:
        print(f"uba build: dbt {' '.join(dbt_args)} failed:", file=sys.stderr)
        for line in err.summary or [str(err)]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
