"""`uba` command line. Each subcommand lives in the module that owns it; this file only routes.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int`. Modules are imported
lazily so `uba generate` does not pay for importing dbt or Dagster.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("python_models.synthetic.cli", "generate seeded sample events with planted truth"),
    "load": ("python_models.ingest.cli", "load CSV / Parquet / JSON Lines files into raw.events"),
    "gate": ("expectations.cli", "run the data-quality gate: validate, quarantine bad rows"),
    "build": ("python_models.dbt_runner", "run dbt build on the warehouse"),
    "train": ("python_models.commands.train", "train the models and update the registry"),
    "score": ("python_models.commands.train", "batch-score users and write the score tables"),
    "rollback": ("python_models.commands.rollback", "roll a model back to its previous champion"),
    "demo": ("python_models.commands.demo", "run the whole pipeline end to end on generated data"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="uba", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    command_parser = argparse.ArgumentParser(prog=f"uba {name}", description=help_text)
    add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
    run = getattr(module, f"run_{name}", None) or module.run
    add(command_parser)
    args = command_parser.parse_args(argv[1:])
    from python_models.config import SettingsError

    try:
        return int(run(args) or 0)
    except SettingsError as err:
        print(f"uba {name}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
