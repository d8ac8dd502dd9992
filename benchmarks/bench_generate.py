"""Throughput and peak memory of the sample-data generator.

    python benchmarks/bench_generate.py --events 1000000 [--out DIR] [--seed 42]

Prints events/second (valid events and written rows) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="kept; default: a temp dir")
    args = parser.parse_args()

    from python_models.synthetic import generate

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_generate_"))
    started = time.perf_counter()
    result = generate(out, n_events=args.events, seed=args.seed, progress=True)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    size_mib = sum(p.stat().st_size for p in result.events_dir.glob("*")) / 2**20
    m = result.manifest
    print(f"target events:      {args.events:,}")
    print(f"valid events:       {m['n_valid_events']:,}")
    files = len(m["event_files"])
    print(f"rows written:       {m['n_rows']:,} in {files} file(s), {size_mib:.1f} MiB")
    print(f"users:              {m['n_users']:,}")
    print(f"seconds:            {seconds:.2f}")
    print(f"valid events / s:   {m['n_valid_events'] / seconds:,.0f}")
    print(f"rows / s:           {m['n_rows'] / seconds:,.0f}")
    print(f"peak RSS:           {peak_mib:,.0f} MiB")
    if args.out is None:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
