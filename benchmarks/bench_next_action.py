"""Next action: train, full scoring, refreshes (nothing changed, N users changed), reasons/s.

    UBA_DUCKDB_PATH=... python benchmarks/bench_next_action.py [--reason-rows 60000]

Uses the configured warehouse, which must be built, and WRITES to it (registry, model store,
score tables): run it on a copy. Prints one line per step with its seconds; the figures are in
docs/performance.md ("Next action").
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reason-rows", type=int, default=60_000)
    parser.add_argument("--skip-train", action="store_true", help="score the current champion")
    parser.add_argument(
        "--changed-users", type=int, default=600, help="users a simulated refresh rescores"
    )
    args = parser.parse_args()

    from python_models.common.scores import SCORED_ROWS
    from python_models.lifecycle import load_champion, score_changed, score_model, train_model
    from python_models.next_action.sequences import load_latest
    from python_models.warehouse import connect, table_exists

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    con = connect()
    if not args.skip_train:
        started = time.perf_counter()
        outcome = train_model(con, "next_action", run_id="bench")
        seconds = time.perf_counter() - started
        metrics = outcome.metrics
        print(
            f"train        {seconds:7.1f} s  {outcome.status}: top-1 / top-3 "
            f"{metrics['top1_accuracy']:.4f} / {metrics['top3_accuracy']:.4f}, Markov "
            f"{metrics['baseline_markov_chain_top1_accuracy']:.4f} / "
            f"{metrics['baseline_markov_chain_top3_accuracy']:.4f}; fit on "
            f"{metrics.get('fit_rows', 'all')} rows, {metrics['best_iteration']} rounds"
        )
    started = time.perf_counter()
    scored = score_model(con, "next_action", run_id="bench-full")
    print(f"score (full) {time.perf_counter() - started:7.2f} s  {scored.rows:,} users")
    started = time.perf_counter()
    again = score_changed(con, "next_action", run_id="bench-changed")
    said = getattr(again, "reason", None) or f"{again.rows:,} rows ({again.mode})"
    print(f"refresh      {time.perf_counter() - started:7.2f} s  nothing changed: {said}")
    if args.changed_users and table_exists(con, SCORED_ROWS):
        # As if these users had new events: their scored rows are forgotten, so the refresh
        # finds their newest rows changed (a real day also rebuilds the mart: bench_pipeline).
        con.execute(
            f"""delete from {SCORED_ROWS} where model_name = 'next_action' and user_id in (
                select user_id from {SCORED_ROWS} where model_name = 'next_action'
                order by hash(user_id) limit ?)""",
            [args.changed_users],
        )
        started = time.perf_counter()
        changed = score_changed(con, "next_action", run_id="bench-some-changed")
        said = getattr(changed, "reason", None) or f"{changed.rows:,} rows ({changed.mode})"
        print(f"refresh      {time.perf_counter() - started:7.2f} s  some users changed: {said}")

    _, bundle = load_champion(con, "next_action")
    model = bundle["model"]
    latest = load_latest(con, model.features)
    matrix = model.matrix(latest)
    repeat = max(1, -(-args.reason_rows // max(len(matrix), 1)))
    matrix = np.vstack([matrix] * repeat)
    started = time.perf_counter()
    proba = model._proba(matrix)
    predict_s = time.perf_counter() - started
    started = time.perf_counter()
    model.reasons(matrix, proba.argmax(axis=1))
    reasons_s = time.perf_counter() - started
    print(
        f"reasons      {reasons_s:7.2f} s  for {len(matrix):,} rows "
        f"({len(matrix) / reasons_s:,.0f} rows/s; predict alone {predict_s:.2f} s)"
    )
    con.close()


if __name__ == "__main__":
    main()
