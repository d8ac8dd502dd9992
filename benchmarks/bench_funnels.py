"""Timing of the funnel models (attempts, steps, daily / weekly reports, incidents).

    python benchmarks/bench_funnels.py --events 1000000 [--keep DIR]

Generates, loads and gates N events and builds fct_events (not timed), then times a
`dbt run` of the funnel models with the configured funnels, per model, and prints the number
of attempts and the most attempts in one user or session.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

FUNNEL_SELECT = ["fct_funnel_attempts+"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", default=None, help="work directory to keep (default: temp)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-funnels-"))
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
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
        print("  preparing data (generate, load, gate, fct_events)...", flush=True)
        sample = generate(out_dir=work / "sample", n_events=args.events, seed=args.seed)
        con = connect()
        try:
            load_path(con, sample.events_dir, progress=False)
            run_gate(con)
        finally:
            con.close()
        run_dbt(["run", "--select", "+fct_events"], quiet=True, target_path=work / "target")
    run_dbt(["run", "--select", *FUNNEL_SELECT], quiet=True, target_path=work / "target")
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    total = 0.0
    for result in results:
        total += result["execution_time"]
        print(f"  {result['unique_id'].split('.')[-1]:<36}{result['execution_time']:>8.2f} s")
    print(f"  {'funnel models':<36}{total:>8.2f} s")
    con = connect(read_only=True)
    try:
        rows = con.execute(
            """select funnel_name, funnel_level, count(*) as attempts,
                max(attempt_number) as max_attempts_per_partition
            from marts.fct_funnel_attempts group by 1, 2 order by 1, 2"""
        ).fetchall()
        events = con.execute("select count(*) from marts.fct_events").fetchone()[0]
    finally:
        con.close()
    print(f"  fct_events: {events:,} rows")
    for name, level, attempts, deepest in rows:
        print(f"  {name:<12}{level:<9}{attempts:>10,} attempts, up to {deepest:,} per partition")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
