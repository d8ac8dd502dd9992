"""Acceptance check of the drift sensor under the real Dagster daemon (issue 11): after a demo
(trained, scored, published), run `dagster-daemon` on the unchanged data for N minutes and
count the sensor's evaluations and the `retrain_models` runs it started. Expected: many
evaluations, zero runs.

    source scripts/env.sh && UBA_ALLOW_DEV_SALT=1 uba demo --events 60000
    UBA_ALLOW_DEV_SALT=1 python scripts/check_drift_daemon.py --minutes 15

Prints one line of figures and exits 1 when any retrain run was requested. Runs against the
persistent instance in $DAGSTER_HOME (the one `uba demo` and `dagster dev` use).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

SENSOR = "drift_retrain_sensor"
JOB = "retrain_models"


def _counts() -> tuple[int, int, int]:
    """(sensor ticks, ticks that requested runs, retrain_models runs) in the instance."""
    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorType

    instance = dg.DagsterInstance.get()
    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.name == SENSOR
    ]
    ticks = requested = 0
    for state in states:
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100000):
            ticks += 1
            requested += bool(tick.run_ids)
    runs = len(instance.get_runs(filters=dg.RunsFilter(job_name=JOB)))
    return ticks, requested, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    args = parser.parse_args()
    before = _counts()
    daemon = subprocess.Popen(
        ["dagster-daemon", "run", "-m", "orchestration.definitions"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ,
    )
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.minutes * 60:
            if daemon.poll() is not None:
                print(f"dagster-daemon exited early with {daemon.returncode}", file=sys.stderr)
                return 2
            time.sleep(10)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
    after = _counts()
    ticks, requested, runs = (a - b for a, b in zip(after, before, strict=True))
    print(
        f"{args.minutes:g} min of dagster-daemon on unchanged data: {ticks} evaluations of "
        f"{SENSOR}, {requested} with a run request, {runs} {JOB} runs"
    )
    return 1 if requested or runs else 0


if __name__ == "__main__":
    raise SystemExit(main())
