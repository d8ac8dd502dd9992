"""Run dbt as a subprocess against the configured warehouse (`uba build`).

A subprocess keeps dbt's ~3 s import and its global state out of callers that do not need it,
and lets tests point dbt at their own DuckDB file through the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, get_settings


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the tail of its output."""


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
    env["DBT_PROFILES_DIR"] = str(REPO_ROOT)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


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
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not quiet:
            sys.stdout.write(line)
            sys.stdout.flush()
    code = proc.wait()
    output = "".join(lines)
    if code != 0:
        tail = "".join(lines[-60:])
        raise DbtError(f"dbt {' '.join(args)} failed (exit {code}):\n{tail}")
    return output


def add_arguments(parser) -> None:
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    parser.add_argument("--select", "-s", default=None, help="dbt selection")
    parser.add_argument("--target", default=None, help="dbt target (duckdb or postgres)")


def run(args) -> int:
    dbt_args = ["build"]
    if args.full_refresh:
        dbt_args.append("--full-refresh")
    if args.select:
        dbt_args += ["--select", args.select]
    try:
        run_dbt(dbt_args, target=args.target)
    except DbtError as err:
        print(str(err).splitlines()[0], file=sys.stderr)
        return 1
    return 0
