"""`uba dev`: `dagster dev` (UI + daemon) for this project, stopping on Ctrl-C and SIGTERM.

    uba dev                      # http://127.0.0.1:3000
    uba dev -- --port 3001       # anything after `--` goes to `dagster dev`

Why not plain `dagster dev`: a process started from a script, a service manager or with `&` in
a non-interactive shell begins with SIGINT ignored. `dagster dev` then maps SIGTERM onto that
ignored handler, and its webserver and daemon stop by sending themselves SIGINT, so all of its
processes ignore both signals and have to be killed one by one. This command gives SIGINT back
its Python handler first (children started afterwards begin with SIGINT at its default, since
exec resets caught signals) and then runs `dagster dev` in this process, so SIGTERM or Ctrl-C
shuts the webserver, the daemon and their code servers down cleanly.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dagster_args",
        nargs=argparse.REMAINDER,
        help="arguments for `dagster dev` (after `--`), e.g. -- --port 3001",
    )


def run(args) -> int:
    # python_models/cli.py has given SIGINT its Python handler back before this runs.
    from dagster._cli import main as dagster_main

    extra = [a for a in args.dagster_args if a != "--"]
    sys.argv = ["dagster", "dev", *extra]
    try:
        dagster_main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0
