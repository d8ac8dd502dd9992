"""Load + gate throughput and memory on generated events, against the reference's gate.

    python benchmarks/bench_gate.py --events 1000000 [--events-dir DIR] [--formats parquet,jsonl]
        [--reference] [--no-docs]

Generates a sample (python_models.synthetic) or reuses --events-dir (the events/*.parquet of an
earlier `uba generate`), optionally writes it again as one JSON Lines file, loads each format
into its own fresh DuckDB file and gates the Parquet one. Each step runs in its own child
process, so its peak RSS is its own. With --reference, the hand-written reference pipeline
(../shared/bench/ref_pipeline.py --weekly) runs on the same files in the same run and the
gate's time is printed as a ratio to the reference's gate stage. Everything goes to a temporary
directory (or --workdir), never to data/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "bench" / "ref_pipeline.py"


def _child(argv: list[str]) -> tuple[dict, float, float]:
    """Run a step in a child process: (its JSON result, wall seconds, peak RSS MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"step {argv[2:]} failed (exit {proc.returncode})")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), seconds, usage.ru_maxrss / 1024


def _step(args: argparse.Namespace) -> int:
    """Inside the child: one load or one gate, timed in-process, printed as JSON."""
    from python_models.warehouse import connect

    con = connect(args.db)
    started = time.perf_counter()
    if args.step == "load":
        from python_models.ingest import load_path

        result = load_path(con, args.source, progress=False)
        out = {"rows": result.rows_loaded}
    else:
        from expectations.gate import run_gate

        docs = None if args.no_docs else Path(args.db).parent / "data_docs"
        result = run_gate(con, progress=True, data_docs_dir=docs)
        out = {"rows": result.rows_checked, "valid": result.rows_valid, "reasons": result.reasons}
    out["seconds"] = time.perf_counter() - started
    con.close()
    print(json.dumps(out))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="target valid events")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--events-dir", help="reuse these generated events/*.parquet")
    parser.add_argument("--formats", default="parquet", help="comma-separated: parquet,jsonl")
    parser.add_argument("--reference", action="store_true", help="run the reference too")
    parser.add_argument("--no-docs", action="store_true", help="gate without Data Docs")
    parser.add_argument("--workdir", help="keep files here instead of a temporary directory")
    parser.add_argument("--step", choices=["load", "gate"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A benchmark, not a deployment: the development salt is fine (and what the reference uses).
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")
    os.environ.setdefault("UBA_QUIET_SALT", "1")
    os.environ.setdefault("UBA_MAX_QUARANTINE_RATE", "1")
    sys.path.insert(0, str(REPO))
    if args.step:
        return _step(args)

    with tempfile.TemporaryDirectory(prefix="bench_gate_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        events_dir = Path(args.events_dir) if args.events_dir else None
        if events_dir is None:
            from python_models.synthetic import generate

            started = time.perf_counter()
            sample = generate(out_dir=work / "sample", n_events=args.events, seed=args.seed)
            events_dir = sample.events_dir
            print(f"generate: {sample.n_rows:,} rows in {time.perf_counter() - started:.1f}s")
        sources = {"parquet": events_dir}
        formats = args.formats.split(",")
        if "jsonl" in formats:
            import pyarrow.dataset as ds

            from python_models.synthetic.formats import write_events

            sources["jsonl"] = write_events(
                ds.dataset(events_dir).to_table(), work / "events.jsonl"
            )

        me = [sys.executable, str(Path(__file__).resolve())]
        flags = ["--no-docs"] if args.no_docs else []
        figures = []
        for fmt in formats:
            db = work / f"{fmt}.duckdb"
            db.unlink(missing_ok=True)
            out, _, rss = _child([*me, "--step", "load", "--db", str(db),
                                  "--source", str(sources[fmt])])  # fmt: skip
            figures.append((f"load {fmt}", out["rows"], out["seconds"], rss))
            if fmt == "parquet":
                out, _, rss = _child([*me, "--step", "gate", "--db", str(db), *flags])
                figures.append(("gate", out["rows"], out["seconds"], rss))
                print(f"gate: {out['valid']:,} valid, quarantined by reason {out['reasons']}")
        reference = None
        if args.reference:
            ref_db = work / "reference.duckdb"
            ref_db.unlink(missing_ok=True)
            command = [sys.executable, str(REFERENCE), "--weekly", "--events-dir",
                       str(events_dir), "--db", str(ref_db)]  # fmt: skip
            reference, _, ref_rss = _child(command)
            rows = reference["rows_good"] + reference["rows_bad"]
            figures.append(("reference gate", rows, reference["gate"], ref_rss))

    print(f"\n{'step':<16}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
    for step, rows, seconds, rss in figures:
        print(f"{step:<16}{rows:>12,}{seconds:>10.1f}{rows / seconds:>12,.0f}{rss:>13,.0f}")
    if reference:
        gate = next(seconds for step, _, seconds, _ in figures if step == "gate")
        print(
            f"\ngate / reference gate: {gate / reference['gate']:.2f}x "
            "(reference peak RSS is its whole pipeline's)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
