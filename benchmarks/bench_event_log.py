"""Dagster's event log: one run storing as many asset check events as a daily run does.

    python benchmarks/bench_event_log.py [--checks 180] [--rounds 3]

Each round runs the same job (one asset and `--checks` asset checks, as the dbt assets report
each data test: planned, output, evaluation) on a new $DAGSTER_HOME, once with Dagster's own
SQLite event log (no dagster.yaml) and once with the one orchestration/dagster.yaml configures
(orchestration/event_log_storage.py), each in a process of its own, and prints wall and CPU
seconds, the events stored and the ratio. Dagster's console logging is off, so the figures are
the storage's and the run's own work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STORAGES = ("dagster's own", "the project's")

_RUN = """
import json, logging, sys, time
import dagster as dg

checks = int(sys.argv[1])

@dg.asset
def events_table():
    return 1

specs = [dg.AssetCheckSpec(f"check_{k}", asset=events_table) for k in range(checks)]

@dg.multi_asset_check(specs=specs)
def data_tests():
    for k in range(checks):
        yield dg.AssetCheckResult(asset_key="events_table", check_name=f"check_{k}", passed=True)

instance = dg.DagsterInstance.get()
logging.getLogger("dagster").setLevel(logging.ERROR)
wall, cpu = time.perf_counter(), time.process_time()
result = dg.materialize([events_table, data_tests], instance=instance)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
events = len(instance.get_records_for_run(result.run_id, limit=100000).records)
print(json.dumps({"storage": type(instance.event_log_storage).__name__, "wall": wall,
                  "cpu": cpu, "events": events, "ok": result.success}))
"""


def run_once(checks: int, project_storage: bool) -> dict:
    home = Path(tempfile.mkdtemp(prefix="uba-bench-dagster-home-"))
    try:
        if project_storage:
            shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(checks)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=180, help="asset checks in the run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"one run, 1 asset and {args.checks} asset checks, {args.rounds} round(s), a new home each"
    )
    print(f"{'round':>5}  {'storage':<15} {'events':>6} {'wall s':>7} {'CPU s':>7} {'events/s':>9}")
    totals = {name: 0.0 for name in STORAGES}
    for round_ in range(1, args.rounds + 1):
        for name, project_storage in zip(STORAGES, (False, True), strict=True):
            figures = run_once(args.checks, project_storage)
            if not figures["ok"]:
                print(f"the run with {name} storage failed", file=sys.stderr)
                return 1
            totals[name] += figures["wall"]
            rate = figures["events"] / figures["wall"]
            print(
                f"{round_:>5}  {name:<15} {figures['events']:>6} {figures['wall']:>7.2f} "
                f"{figures['cpu']:>7.2f} {rate:>9.0f}"
            )
    own, ours = (totals[name] for name in STORAGES)
    print(
        f"wall, all rounds: {own:.2f} s with Dagster's own, {ours:.2f} s with the project's "
        f"({own / ours:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
