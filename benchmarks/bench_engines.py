"""The pipeline's stages on DuckDB, PostgreSQL and Spark, on the same generated data
(docs/scale.md).

    UBA_ALLOW_DEV_SALT=1 python benchmarks/bench_engines.py --events 60000

Generates the sample once, then per engine (a fresh DuckDB file; a throwaway PostgreSQL,
tests/pg_server.py; a fresh Spark warehouse in local mode): load, gate, `dbt build` of every
model, the dbt tests, train and score every model. Prints seconds per stage and engine.

Spark runs every stage too: load (DuckDB's file readers, rows shipped as Arrow, as `uba load`
does on a server warehouse), the gate in its Spark dialect, dbt, and all six models; the
Python steps run in processes of tests/spark_steps.py (Derby admits one JVM at a time), timed
inside them, so a JVM start (about half a minute) is not counted. The dbt tests are left out
on Spark unless --spark-tests (each costs seconds in local mode). The load average is printed
beside the figures (the machine may be shared).
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

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from pg_server import pg_environment, throwaway_postgres  # noqa: E402
from spark_steps import SMALL  # noqa: E402

MODELS_ONLY = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def _timed(timings: dict[str, float], stage: str, step) -> None:
    clock = time.perf_counter()
    step()
    timings[stage] = time.perf_counter() - clock


def stages(engine: str, events_dir: Path, work: Path) -> dict[str, float]:
    from expectations.gate import run_gate
    from python_models.config import reload_settings
    from python_models.dbt_runner import run_dbt
    from python_models.ingest.remote import load_into
    from python_models.lifecycle import score_model, train_model
    from python_models.models import model_names
    from python_models.warehouse import connect

    reload_settings()
    timings: dict[str, float] = {}
    path = work / "warehouse.duckdb" if engine == "duckdb" else None
    con = connect(path) if path else connect(engine=engine)
    dbt_args = {"duckdb_path": path, "target": engine, "quiet": True, "target_path": work / "dbt"}
    try:
        _timed(timings, "load", lambda: load_into(con, events_dir, progress=False))
        _timed(timings, "gate", lambda: run_gate(con).success or sys.exit("gate failed"))
        if path:
            con.close()
        _timed(timings, "dbt models", lambda: run_dbt(["build", *MODELS_ONLY], **dbt_args))
        _timed(timings, "dbt tests", lambda: run_dbt(["test"], **dbt_args))
        if path:
            con = connect(path)
        clock = time.perf_counter()
        for name in model_names():
            train_model(con, name, run_id="bench", params=SMALL.get(name))
        timings["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
        for name in model_names():
            score_model(con, name, run_id="bench")
        timings["score"] = time.perf_counter() - clock
    finally:
        con.close()
    return timings


def spark_stages(events_dir: Path, work: Path, dbt_tests: bool) -> dict[str, float]:
    """Spark's stages, the Python ones in processes of tests/spark_steps.py (Derby admits one
    JVM at a time), timed inside them (without the JVM start)."""
    from python_models.config import reload_settings
    from python_models.dbt_runner import run_dbt
    from python_models.models import model_names

    timings: dict[str, float] = {}
    os.environ.update(
        {"UBA_SPARK_DIR": str(work / "spark"), "UBA_WAREHOUSE": "spark", "UBA_DBT_TARGET": "spark"}
    )
    reload_settings()
    out = work / "out"
    out.mkdir()
    try:

        def step(*args: str) -> None:
            subprocess.run(
                [sys.executable, str(TESTS / "spark_steps.py"), *args],
                check=True,
                capture_output=True,
            )

        step("load_files", str(events_dir), str(out), "then", "gate", str(out))
        timings["load"] = json.loads((out / "load.json").read_text())["seconds"]
        timings["gate"] = json.loads((out / "gate.json").read_text())["seconds"]
        dbt_args = {"target": "spark", "quiet": True, "target_path": work / "dbt"}
        _timed(timings, "dbt models", lambda: run_dbt(["build", *MODELS_ONLY], **dbt_args))
        if dbt_tests:
            _timed(timings, "dbt tests", lambda: run_dbt(["test"], **dbt_args))
        step("train", str(out), *model_names())
        outcomes = {n: json.loads((out / f"{n}.json").read_text()) for n in model_names()}
        failed = {n: o["error"].splitlines()[-1] for n, o in outcomes.items() if "error" in o}
        if failed:
            sys.exit(f"spark: models failed: {failed}")
        timings["train"] = sum(o["seconds_train"] for o in outcomes.values())
        timings["score"] = sum(o["seconds_score"] for o in outcomes.values())
    finally:
        for name in ("UBA_SPARK_DIR", "UBA_WAREHOUSE", "UBA_DBT_TARGET"):
            os.environ.pop(name, None)
        reload_settings()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--engines", default="duckdb,postgres,spark")
    parser.add_argument("--spark-tests", action="store_true", help="run the dbt tests on Spark")
    args = parser.parse_args()
    os.environ.setdefault("UBA_UNKNOWN_EVENT_POLICY", "quarantine")
    root = Path(tempfile.mkdtemp(prefix="uba-bench-engines-"))
    os.environ["UBA_DATA_DIR"] = str(root / "data")
    from python_models.synthetic import generate

    sample = generate(out_dir=root / "sample", n_events=args.events, seed=7, ato_rate=0.06)
    results: dict[str, dict[str, float]] = {}
    for engine in args.engines.split(","):
        work = root / engine
        work.mkdir()
        if engine == "postgres":
            with throwaway_postgres() as port:
                os.environ.update(pg_environment(port))
                results[engine] = stages(engine, sample.events_dir, work)
            os.environ["UBA_WAREHOUSE"] = "duckdb"
        elif engine == "spark":
            results[engine] = spark_stages(sample.events_dir, work, args.spark_tests)
        else:
            results[engine] = stages(engine, sample.events_dir, work)
        load = os.getloadavg()[0]
        print(
            engine,
            {k: round(v, 1) for k, v in results[engine].items()},
            f"load {load:.1f}",
            flush=True,
        )
    names = ["load", "gate", "dbt models", "dbt tests", "train", "score"]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n{args.events:,} generated events; seconds per stage (-: not run); load {load}")
    print(f"{'stage':<12}" + "".join(f"{engine:>12}" for engine in results))
    for stage in [*names, "total"]:
        row = [sum(r.values()) if stage == "total" else r.get(stage) for r in results.values()]
        print(f"{stage:<12}" + "".join(f"{'-' if v is None else f'{v:.1f}':>12}" for v in row))


if __name__ == "__main__":
    main()
