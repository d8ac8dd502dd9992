"""The pipeline's stages on DuckDB, PostgreSQL and Spark, on the same generated data
(docs/scale.md).

    UBA_ALLOW_DEV_SALT=1 python benchmarks/bench_engines.py --events 60000

Generates the sample once, then per engine (a fresh DuckDB file; a throwaway PostgreSQL,
tests/pg_server.py; a fresh Spark warehouse in local mode): load, gate, `dbt build` of every
model, the dbt tests, train and score every model. Prints seconds per stage and engine.

Spark differs where it must (docs/scale.md): the gate runs on DuckDB (no Spark dialect) and
its validated rows go to Spark as Arrow ("load" includes that and a JVM start); the dbt tests
are left out unless --spark-tests (each costs seconds in local mode); the Python steps run in
one process of tests/spark_steps.py (Derby admits one JVM at a time), timed inside it.
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
    """Spark's stages, each Spark step in its own process (tests/spark_steps.py)."""
    from expectations.gate import run_gate
    from python_models.config import reload_settings
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.models import model_names
    from python_models.warehouse import connect

    timings: dict[str, float] = {}
    scratch = work / "gate.duckdb"
    con = connect(scratch)
    try:
        load_path(con, events_dir, progress=False)
        _timed(timings, "gate", lambda: run_gate(con).success or sys.exit("gate failed"))
        validated = work / "validated.parquet"
        con.execute("select * from raw.events_validated").pl().write_parquet(validated)
    finally:
        con.close()
    os.environ.update(
        {"UBA_SPARK_DIR": str(work / "spark"), "UBA_WAREHOUSE": "spark", "UBA_DBT_TARGET": "spark"}
    )
    reload_settings()
    try:

        def step(*args: str) -> None:
            subprocess.run(
                [sys.executable, str(TESTS / "spark_steps.py"), *args],
                check=True,
                capture_output=True,
            )

        _timed(timings, "load", lambda: step("load", str(validated)))
        dbt_args = {"target": "spark", "quiet": True, "target_path": work / "dbt"}
        _timed(timings, "dbt models", lambda: run_dbt(["build", *MODELS_ONLY], **dbt_args))
        if dbt_tests:
            _timed(timings, "dbt tests", lambda: run_dbt(["test"], **dbt_args))
        out = work / "models"
        out.mkdir()
        chained: list[str] = []
        for name in model_names():
            chained += [*(["then"] if chained else []), "train", str(out), name]
        step(*chained)
        outcomes = {n: json.loads((out / f"{n}.json").read_text()) for n in model_names()}
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
        print(engine, {k: round(v, 1) for k, v in results[engine].items()}, flush=True)
    names = ["load", "gate", "dbt models", "dbt tests", "train", "score"]
    print(f"\n{args.events:,} generated events; seconds per stage (-: not run)")
    print(f"{'stage':<12}" + "".join(f"{engine:>12}" for engine in results))
    for stage in [*names, "total"]:
        row = [sum(r.values()) if stage == "total" else r.get(stage) for r in results.values()]
        print(f"{stage:<12}" + "".join(f"{'-' if v is None else f'{v:.1f}':>12}" for v in row))


if __name__ == "__main__":
    main()
