"""Timing of the dbt core models (staging, stitching, sessions, core marts) on generated data.

    python benchmarks/bench_dbt_core.py --events 1000000 [--keep DIR]

Generates, loads and gates N events (not timed here: see bench_pipeline.py), then times a
full-refresh `dbt run` of the core models, per model, and an incremental re-run with no new
data (which still re-processes people touched within uba__late_event_lookback_days).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

CORE_SELECT = ["+fct_events", "+fct_sessions", "+dim_users", "+int_identity_stitched"]


def _model_timings(target_path: Path) -> list[tuple[str, float]]:
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return [(r["unique_id"].split(".")[-1], r["execution_time"]) for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", default=None, help="work directory to keep (default: temp)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-core-"))
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    os.environ.setdefault("UBA_QUIET_SALT", "1")

    from python_models.config import reload_settings

    settings = reload_settings()
    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.synthetic import generate
    from python_models.warehouse import connect

    print(f"benchmark: {args.events:,} events in {work}", flush=True)
    if not settings.duckdb_path.exists():
        print("  preparing data (generate, load, gate)...", flush=True)
        sample = generate(out_dir=work / "sample", n_events=args.events, seed=args.seed)
        con = connect()
        try:
            load_path(con, sample.events_dir)
            run_gate(con)
        finally:
            con.close()
    con = connect(read_only=True)
    try:
        validated = con.execute("select count(*) from raw.events_validated").fetchone()[0]
    finally:
        con.close()
    print(f"  raw.events_validated: {validated:,} rows", flush=True)

    target = work / "dbt-target"
    run_dbt(["seed"], quiet=True, target_path=target)  # staging reads the tracking plan seed
    for label, extra in [("full refresh", ["--full-refresh"]), ("incremental (no new data)", [])]:
        started = time.perf_counter()
        run_dbt(["run", "--select", *CORE_SELECT, *extra], quiet=True, target_path=target)
        elapsed = time.perf_counter() - started
        print(f"  dbt run core models, {label:<26} {elapsed:7.1f} s (wall, incl. dbt start-up)")
        for model, seconds in _model_timings(target):
            print(f"      {model:<28} {seconds:7.2f} s")

    con = connect(read_only=True)
    try:
        for table in ["marts.fct_events", "marts.fct_sessions", "marts.dim_users"]:
            print(f"  {table:<22} {con.execute(f'select count(*) from {table}').fetchone()[0]:,}")
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
