"""A dbt process started before its command is known: `python -m python_models.dbt_warm`, run by
python_models.dbt_runner.WarmDbt in dbt's project folder with dbt's environment.

It imports dbt and parses the project (a partial parse where dbt can: together ~4-7 s, most of
a daily build's fixed cost), then reads ONE line from stdin, a JSON list of dbt arguments, and
runs that command with the manifest it parsed, exiting as the `dbt` command does (0 done,
non-zero failed). The line may instead hold a list of such lists: the commands run in order on
the one parse, up to the first that fails (a build, then `dbt compile` of the data tests on the
relations it left: python_models.dbt_runner.run_dbt_build_compiling_tests). End of input
instead of a line: it exits without running anything. The commands must not change what the
parse depends on (no --vars, --target or --project-dir). A parse the parse cache put in the
target folder, saved for a warehouse of the same name in another folder, is taken as its own
(TAKE_CACHED_PARSE; python_models.dbt_runner): a first build starts from the parse saved at
install instead of parsing the project in full. The parse writes no manifest.json: the command
writes its own (a build does as it starts), so the parse's copy was overwritten unread
(0.3-0.4 s of CPU on a 1M day's path, where the parse ends after the gate). dbt's compiled
Jinja templates come from dbt's cache folder (python_models/dbt_templates.py).
"""

from __future__ import annotations

import json
import sys

TAKE_CACHED_PARSE = "--take-cached-parse"  # WarmDbt's argument when the parse cache filled it


def main() -> int:
    from dbt.cli.main import dbtRunner

    from python_models import dbt_templates

    dbt_templates.install_from_env()
    if TAKE_CACHED_PARSE in sys.argv[1:]:  # a parse the parse cache put in the target
        from python_models import dbt_fork

        dbt_fork.take_cached_parse_as_own()
    # --no-write-json: the command writes manifest.json itself (the saved parse, which the
    # next run starts from, is written either way)
    parsed = dbtRunner().invoke(["parse", "--quiet", "--no-write-json"])
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    args = json.loads(line)
    commands = args if args and isinstance(args[0], list) else [args]
    # A failed parse: the command parses again itself, so dbt reports the problem as usual.
    runner = dbtRunner(manifest=parsed.result) if parsed.success else dbtRunner()
    for command in commands:
        result = runner.invoke(command)
        if not result.success:
            return 2 if result.exception is not None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
