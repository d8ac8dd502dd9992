"""Privacy operations benchmark: prints the seconds of each erasure step and of retention.

    python benchmarks/bench_privacy.py --events 200000 [--users 3] [--full] [--keep DIR]

Builds a whole pipeline run (generate with planted consent, load, gate, dbt build, train,
score, derived tables, publish), then erases the `--users` most active users in one request
(targeted rebuild; `--full` erases as many more with a full dbt refresh, for comparison),
checks that no file under the data folder holds their identifiers, erases them again (a
no-op), and applies retention with both windows cutting the data in two.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def _pipeline(work: Path, events: int, seed: int) -> None:
    from expectations.gate import run_gate
    from python_models.config import get_settings
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.lifecycle import build_derived, score_each, train_each
    from python_models.models import model_names
    from python_models.publish import publish_warehouse
    from python_models.synthetic import ConsentPlan, generate
    from python_models.warehouse import connect

    started = time.perf_counter()
    sample = generate(work / "sample", n_events=events, seed=seed, consent=ConsentPlan())
    con = connect()
    try:
        load_path(con, sample.events_dir)
        run_gate(con)
    finally:
        con.close()
    run_dbt(["build"], quiet=True)
    con = connect()
    try:
        train_each(con, model_names())
        score_each(con, model_names())
        build_derived(con, model_names())
        publish_warehouse(con, get_settings().published_dir)
    finally:
        con.close()
    print(f"pipeline: {time.perf_counter() - started:.1f} s", flush=True)


def _most_active(count: int, skip: int = 0) -> list[str]:
    from python_models.warehouse import connect

    con = connect(read_only=True)
    try:
        rows = con.execute(
            "select user_id from raw.events_validated where user_id is not null "
            "group by 1 order by count(*) desc, 1 limit ? offset ?",
            [count, skip],
        ).fetchall()
    finally:
        con.close()
    return [row[0] for row in rows]


def _erase(ids: list[str], rebuild: str) -> None:
    from python_models.privacy.erasure import erase, leftover_files, verification_needles

    started = time.perf_counter()
    result = erase(ids, rebuild=rebuild)
    seconds = time.perf_counter() - started
    steps = ", ".join(f"{name} {value:.1f}" for name, value in result.seconds.items())
    print(
        f"erase {len(ids)} user(s), rebuild {rebuild}: {seconds:.1f} s ({steps}); "
        f"{result.rows_deleted:,} rows in {len(result.tables)} tables and files",
        flush=True,
    )
    started = time.perf_counter()
    left = leftover_files(verification_needles(ids, result))
    print(f"  byte scan of every file: {time.perf_counter() - started:.1f} s, {len(left)} hit(s)")
    started = time.perf_counter()
    again = erase(ids, rebuild=rebuild)
    print(f"  again: {time.perf_counter() - started:.1f} s: {again.message}", flush=True)


def _retention() -> None:
    from python_models.privacy.retention import apply_retention
    from python_models.warehouse import connect

    con = connect(read_only=True)
    try:
        loaded, first, last = con.execute(
            "select max(loaded_at), min(event_ts), max(event_ts) from raw.events_validated"
        ).fetchone()
    finally:
        con.close()
    now = loaded + timedelta(days=31)
    raw_days = (now - (first + (last - first) / 2)).days
    started = time.perf_counter()
    result = apply_retention(now=now, pii_days=30, raw_days=raw_days)
    print(f"retention: {time.perf_counter() - started:.1f} s: {result.summary()}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=3, help="users erased in one request")
    parser.add_argument("--full", action="store_true", help="also erase with a full refresh")
    parser.add_argument("--keep", default=None, help="work directory to keep (default: temp)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-privacy-"))
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    os.environ.setdefault("UBA_QUIET_SALT", "1")
    from python_models.config import reload_settings

    reload_settings()
    print(f"benchmark: {args.events:,} events in {work}", flush=True)
    _pipeline(work, args.events, args.seed)
    _erase(_most_active(args.users), "targeted")
    if args.full:
        _erase(_most_active(args.users), "full")
    _retention()
    return 0


if __name__ == "__main__":
    sys.exit(main())
