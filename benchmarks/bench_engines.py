"""The pipeline's stages on DuckDB and on PostgreSQL, on the same generated data (docs/scale.md).

    UBA_ALLOW_DEV_SALT=1 python benchmarks/bench_engines.py --events 60000

Generates the sample once, then per engine (a fresh DuckDB file; a throwaway PostgreSQL,
tests/pg_server.py): load, gate, `dbt build` (every model and test), train and score every
model. Prints seconds per stage and engine. Spark's figures come from
tests/integration/test_spark_engine.py (its dbt run covers the core models only).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_server import pg_environment, throwaway_postgres  # noqa: E402


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
    try:
        clock = time.perf_counter()
        load_into(con, events_dir, progress=False)
        timings["load"] = time.perf_counter() - clock
        clock = time.perf_counter()
        assert run_gate(con).success
        timings["gate"] = time.perf_counter() - clock
        if path:
            con.close()
        clock = time.perf_counter()
        run_dbt(["build"], duckdb_path=path, target=engine, quiet=True, target_path=work / "dbt")
        timings["dbt build"] = time.perf_counter() - clock
        if path:
            con = connect(path)
        clock = time.perf_counter()
        for name in model_names():
            train_model(con, name, run_id="bench")
        timings["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
        for name in model_names():
            score_model(con, name, run_id="bench")
        timings["score"] = time.perf_counter() - clock
    finally:
        con.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--engines", default="duckdb,postgres")
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
        else:
            results[engine] = stages(engine, sample.events_dir, work)
        print(engine, {k: round(v, 1) for k, v in results[engine].items()}, flush=True)
    names = list(next(iter(results.values())))
    print(f"\n{args.events:,} generated events; seconds per stage")
    print(f"{'stage':<12}" + "".join(f"{engine:>12}" for engine in results))
    for stage in [*names, "total"]:
        row = [sum(r.values()) if stage == "total" else r[stage] for r in results.values()]
        print(f"{stage:<12}" + "".join(f"{value:>12.1f}" for value in row))


if __name__ == "__main__":
    main()
