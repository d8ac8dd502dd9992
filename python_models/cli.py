"""`uba` command line. Each subcommand lives in the module that owns it; this file only routes.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int` (or
`add_<name>_arguments` / `run_<name>` when one module serves several). Modules are imported
only when their command runs, so `uba generate` does not pay for importing dbt or Dagster.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import ModuleType

COMMANDS: dict[str, str] = {
    "generate": "generate seeded sample events with planted truth",
    "load": "load CSV / Parquet / JSON Lines files into raw.events",
    "gate": "run the data-quality gate: validate, quarantine bad rows",
    "build": "run dbt build on the warehouse",
    "features": "check or regenerate the feature catalogue's per-event columns "
    "(uba__top_event_types, the tracking plan)",
    "train": "train the models and update the registry",
    "score": "batch-score users and write the score tables",
    "rollback": "roll a model back to its previous champion",
    "refresh": "the daily job in one process: load new files, gate, dbt, score what changed, "
    "publish what changed",
    "demo": "run the whole pipeline end to end on generated data",
    "erase": "erase people (user or device ids) from every table and file",
    "retention": "apply the retention windows: purge old PII properties and raw events",
    "dashboard": "serve the BI dashboard over the published copy",
    "dev": "dagster dev (UI + daemon) that stops on Ctrl-C and SIGTERM",
    "serve": "serve scores over HTTP from the published warehouse, with trigger rules",
}


def command_module(name: str) -> ModuleType:
    """The module that owns command `name`."""
    if name == "generate":
        from python_models.synthetic import cli as module
    elif name == "load":
        from python_models.ingest import cli as module
    elif name == "gate":
        from expectations import cli as module
    elif name == "build":
        from python_models import dbt_runner as module
    elif name == "features":
        from python_models.common import catalogue_sync as module
    elif name in ("train", "score"):
        from python_models.commands import train as module
    elif name == "rollback":
        from python_models.commands import rollback as module
    elif name == "refresh":
        from python_models.commands import refresh as module
    elif name == "demo":
        from python_models.commands import demo as module
    elif name == "erase":
        from python_models.commands import erase as module
    elif name == "retention":
        from python_models.commands import retention as module
    elif name == "dashboard":
        from python_models.commands import dashboard as module
    elif name == "dev":
        from python_models.commands import dev as module
    elif name == "serve":
        from python_models.commands import serve as module
    else:
        raise ValueError(f"unknown command {name!r}")
    return module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="uba", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = command_module(name)
    command_parser = argparse.ArgumentParser(prog=f"uba {name}", description=COMMANDS[name])
    add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
    run = getattr(module, f"run_{name}", None) or module.run
    add(command_parser)
    args = command_parser.parse_args(argv[1:])
    from python_models.config import SettingsError

    # Ctrl-C / SIGINT stops every command, even one started with SIGINT ignored (`cmd &` in a
    # script, some service managers). SIGTERM keeps its default: the process ends at once, and
    # an unfinished DuckDB transaction never commits, so every table stays as it was (dbt
    # children get SIGTERM too: python_models/dbt_runner.py).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Both survive exec, so a process can start with SIGTERM ignored or blocked (Dagster maps
    # SIGTERM onto SIGINT's handler: under a parent whose SIGINT was ignored, its children
    # inherit SIGTERM ignored); give it back its default.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        return int(run(args) or 0)
    except SettingsError as exc:  # a missing or malformed setting: one line, no traceback
        print(f"uba {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"uba {name}: interrupted; tables are as the last finished step left them",
              file=sys.stderr)  # fmt: skip
        return 130
    except Exception as exc:
        if not _duckdb_out_of_memory(exc):
            raise
        # The failed statement's transaction is not committed: its tables are as they were.
        print(f"uba {name}: {_out_of_memory_line(exc)}", file=sys.stderr)
        return 1


def _duckdb_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's out-of-memory error (looked up only if something imported duckdb, which
    whatever raised it did)."""
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException)


def _out_of_memory_line(exc: BaseException) -> str:
    """One line: the limit that was too small, what to change, and DuckDB's own words."""
    from python_models.config import get_settings

    said = str(exc).strip().splitlines()[0]
    return (
        f"DuckDB ran out of memory within its limit of {get_settings().duckdb_memory_limit}: "
        f"raise UBA_DUCKDB_MEMORY_LIMIT, or lower UBA_DUCKDB_THREADS (DuckDB: {said})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
