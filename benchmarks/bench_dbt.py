"""dbt benchmark: first build, one new day, and a run with no new data, on generated events.

    python benchmarks/bench_dbt.py --events 1000000 [--keep DIR] [--memory-limit 2GB]
        [--reference ../shared/bench/ref_pipeline.py] [--select SELECTION]

Generates, loads and gates N events (not timed: bench_pipeline.py times those), holds the
last day back (rows received since the latest event day began), then times `dbt build` as
`uba refresh` runs it (models and data tests; dbt's unit tests run in CI):
1. first build (--full-refresh) on the history;
2. one new day: the held-back rows appended to raw.events_validated as one new load batch,
   as the gate appends a day's file, then an incremental `dbt build`;
3. no new data: `dbt build` again.
Each line prints wall seconds (dbt start-up included, ~8 s of parsing and connecting), the
slowest models and the peak RSS of the dbt process. With --reference, the hand-written
reference (../shared/bench/README.md) runs on the same files afterwards and its stages that do
what dbt does (stage, stitch, sessionize, features, labels) are summed and compared with the
first build; the reference has no incremental path, so the daily figures have no yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "ref_pipeline.py"
# The reference's stages that do what the dbt project does (the rest: load, gate, train, score).
REFERENCE_DBT_STAGES = ("stage", "stitch", "sessionize", "features", "labels")


def _children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _slowest_models(target_path: Path, n: int = 6) -> list[tuple[str, float]]:
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    timed = [
        (r["unique_id"].split(".")[-1], r["execution_time"])
        for r in results
        if r["unique_id"].startswith("model.")
    ]
    return sorted(timed, key=lambda item: -item[1])[:n]


def _hold_back_last_day(con) -> int:
    """Move the rows received since the start of the latest event day out of
    raw.events_validated: that day's events and the late ones that arrived with them."""
    con.execute(
        "create or replace table raw.bench_held_back as select * from raw.events_validated"
        " where received_at >= (select date_trunc('day', max(event_ts))"
        " from raw.events_validated)"
    )
    con.execute(
        "delete from raw.events_validated where event_id in"
        " (select event_id from raw.bench_held_back)"
    )
    return con.execute("select count(*) from raw.bench_held_back").fetchone()[0]


def _append_held_back(con) -> None:
    """The held-back day arrives as one new load batch, as the gate appends it."""
    con.execute(
        "insert into raw.events_validated select * replace ((select max(load_id) + 1"
        " from raw.events_validated) as load_id) from raw.bench_held_back"
    )
    con.execute("drop table raw.bench_held_back")


def _run_reference(script: Path, events_dir: Path, work: Path, memory_limit: str | None) -> dict:
    command = [
        sys.executable,
        str(script),
        "--weekly",
        "--events-dir",
        str(events_dir),
        "--db",
        str(work / "reference.duckdb"),
        "--threads",
        "2",
    ]
    if memory_limit:
        command += ["--memory-limit", memory_limit]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", default=None, help="work directory to keep (default: temp)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB")
    parser.add_argument("--select", default=None, help="dbt selection (default: everything)")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="stop after preparing the data (copy DIR/data to pair runs on the same data)",
    )
    parser.add_argument(
        "--reference",
        nargs="?",
        const=str(DEFAULT_REFERENCE),
        default=None,
        help=f"also run the reference pipeline (default path: {DEFAULT_REFERENCE})",
    )
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-dbt-"))
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    os.environ.setdefault("UBA_QUIET_SALT", "1")
    if args.memory_limit:
        os.environ["UBA_DUCKDB_MEMORY_LIMIT"] = args.memory_limit

    from python_models.config import reload_settings

    settings = reload_settings()
    from expectations.gate import run_gate
    from python_models.dbt_daily_tests import DATA_BUILD
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.synthetic import generate
    from python_models.warehouse import connect

    print(
        f"benchmark: {args.events:,} events in {work}, DuckDB memory_limit "
        f"{settings.duckdb_memory_limit}",
        flush=True,
    )
    sample_events = work / "sample" / "events"
    if not settings.duckdb_path.exists():
        print("  preparing data (generate, load, gate; not timed)...", flush=True)
        sample = generate(out_dir=work / "sample", n_events=args.events, seed=args.seed)
        sample_events = sample.events_dir
        con = connect()
        try:
            load_path(con, sample.events_dir)
            run_gate(con)
            held_back = _hold_back_last_day(con)
            history = con.execute("select count(*) from raw.events_validated").fetchone()[0]
        finally:
            con.close()
        print(f"  history {history:,} validated rows; new day {held_back:,} rows", flush=True)

    if args.prepare_only:
        return 0
    target = work / "dbt-target"
    selection = ["--select", args.select] if args.select else []
    run_dbt(["seed"], quiet=True, target_path=target)  # staging reads the tracking plan seed
    figures: dict[str, float] = {}

    def timed_build(label: str, extra: list[str]) -> None:
        started = time.perf_counter()
        run_dbt([*DATA_BUILD, *selection, *extra], quiet=True, target_path=target)
        figures[label] = time.perf_counter() - started
        slowest = ", ".join(f"{name} {sec:.1f}" for name, sec in _slowest_models(target))
        print(
            f"  dbt build, {label:<14} {figures[label]:7.1f} s   "
            f"peak RSS {_children_peak_rss_mb():6.0f} MB   slowest: {slowest}",
            flush=True,
        )

    timed_build("first build", ["--full-refresh"])
    con = connect()
    try:
        _append_held_back(con)
    finally:
        con.close()
    timed_build("one new day", [])
    timed_build("no new data", [])
    print(
        f"  one new day = {figures['one new day'] / figures['first build']:.0%} of a first "
        f"build; no new data = {figures['no new data'] / figures['first build']:.0%}"
    )

    if args.reference:
        reference = _run_reference(
            Path(args.reference), Path(sample_events), work, args.memory_limit
        )
        same_work = sum(reference[stage] for stage in REFERENCE_DBT_STAGES)
        parts = ", ".join(f"{stage} {reference[stage]:.1f}" for stage in REFERENCE_DBT_STAGES)
        print(
            f"  reference, same transforms {same_work:7.1f} s ({parts}); whole reference "
            f"{reference['total']:.1f} s, peak RSS {reference['peak_rss_mb']} MB"
        )
        print(f"  first build / reference transforms: {figures['first build'] / same_work:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
