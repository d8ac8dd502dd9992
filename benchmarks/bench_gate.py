"""Load + gate throughput on generated events: prints seconds and rows/s per step.

    python benchmarks/bench_gate.py --events 1000000 [--formats parquet,jsonl] [--chunk-rows N]

Generates a sample (python_models.synthetic), writes it again as one JSON Lines file, loads
each format into its own fresh DuckDB file and gates the Parquet one. Everything goes to a
temporary directory (or --workdir), never to data/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="target valid events")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--formats", default="parquet,jsonl", help="comma-separated")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--workdir", help="keep files here instead of a temporary directory")
    args = parser.parse_args()
    os.environ.setdefault("UBA_QUIET_SALT", "1")

    from expectations.gate import run_gate
    from python_models.ingest import load_path
    from python_models.synthetic import generate
    from python_models.synthetic.formats import write_events
    from python_models.warehouse import connect

    with tempfile.TemporaryDirectory(prefix="bench_gate_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        sample = generate(out_dir=work / "sample", n_events=args.events, seed=args.seed)
        print(f"generate: {sample.n_rows:,} rows in {time.perf_counter() - started:.1f}s")
        sources = {"parquet": sample.events_dir}
        if "jsonl" in args.formats:
            jsonl = work / "events.jsonl"
            write_events(ds.dataset(sample.events_dir).to_table(), jsonl)
            sources["jsonl"] = jsonl

        figures = []
        for fmt in args.formats.split(","):
            con = connect(work / f"{fmt}.duckdb")
            started = time.perf_counter()
            loaded = load_path(con, sources[fmt], progress=False)
            seconds = time.perf_counter() - started
            figures.append((f"load {fmt}", loaded.rows_loaded, seconds))
            if fmt == "parquet":
                started = time.perf_counter()
                result = run_gate(con, chunk_rows=args.chunk_rows, progress=True)
                seconds = time.perf_counter() - started
                figures.append(("gate", result.rows_checked, seconds))
                print(f"gate: {result.rows_valid:,} valid, quarantined by reason {result.reasons}")
            con.close()

    print(f"\n{'step':<14}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for step, rows, seconds in figures:
        print(f"{step:<14}{rows:>12,}{seconds:>10.1f}{rows / seconds:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
