"""End-to-end pipeline benchmark: prints seconds and peak memory per step.

    python benchmarks/bench_pipeline.py --events 1000000 [--keep DIR]

Steps: generate -> load -> gate -> dbt build -> train (4 models) -> score (4 models) -> publish.
Reference (hand-written DuckDB pipeline on 2 cores): ~30-40 s for 10M events, ~220 s for 50M.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", default=None, help="work directory to keep (default: temp)")
    parser.add_argument("--skip-models", action="store_true", help="stop after dbt build")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-"))
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    os.environ.setdefault("UBA_QUIET_SALT", "1")

    from python_models.config import reload_settings

    settings = reload_settings()
    timings: list[tuple[str, float, float]] = []

    def step(name, fn):
        started = time.perf_counter()
        out = fn()
        timings.append((name, time.perf_counter() - started, _peak_rss_mb()))
        print(
            f"  {name:<22} {timings[-1][1]:8.1f} s   peak RSS {timings[-1][2]:8.0f} MB", flush=True
        )
        return out

    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.synthetic import generate
    from python_models.warehouse import connect

    print(f"benchmark: {args.events:,} events in {work}")
    sample = step(
        "generate", lambda: generate(work / "sample", n_events=args.events, seed=args.seed)
    )
    con = connect()
    step("load", lambda: load_path(con, sample.events_dir))
    step("gate", lambda: run_gate(con))
    con.close()
    step("dbt build", lambda: run_dbt(["build"], quiet=True))
    if not args.skip_models:
        from python_models.lifecycle import score_model, train_model
        from python_models.models import model_names
        from python_models.publish import publish_warehouse

        con = connect()
        for name in model_names():
            step(f"train {name}", lambda name=name: train_model(con, name))
        for name in model_names():
            step(f"score {name}", lambda name=name: score_model(con, name))
        step("publish", lambda: publish_warehouse(con, settings.published_dir))
        con.close()

    total = sum(t for name, t, _ in timings if name != "generate")
    rows = sample.n_rows
    print(
        f"\npipeline (without generation): {total:.1f} s for {rows:,} rows "
        f"= {rows / total:,.0f} rows/s; peak RSS {max(m for *_, m in timings):.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
