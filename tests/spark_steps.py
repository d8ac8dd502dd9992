"""The Python steps of the Spark test, each run in its own process (tests/integration/
test_spark_engine.py): Spark's embedded Derby metastore admits one JVM at a time, so these
processes and dbt's own Spark session take turns on the same warehouse directory.

    python tests/spark_steps.py load VALIDATED.parquet
    python tests/spark_steps.py export OUT_DIR TABLE [TABLE ...]
    python tests/spark_steps.py train OUT_DIR MODEL [MODEL ...]
    python tests/spark_steps.py export OUT_DIR TABLE ... then train OUT_DIR MODEL ...

`load` writes raw.events_validated through the warehouse interface (Arrow into Spark);
`export` reads each table through it, writes OUT_DIR/<table>.parquet, and writes and reads
back a derived table (a Python step writing to the warehouse); `train` trains and scores
each MODEL on Spark's marts (lifecycle.train_model / score_model, the registry, score and
drift tables on Spark too) and writes OUT_DIR/<model>.json (status, version, metrics,
evaluation), the score table as OUT_DIR/<model>.scores.parquet, the model's drift
measurements as OUT_DIR/<model>.drift.parquet and the drift sensor's decision over the run as
OUT_DIR/drift_decision.json (`train_and_score` does the same on any engine).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import polars as pl


def load(validated: Path) -> None:
    from python_models.warehouse import connect

    con = connect(engine="spark")
    rows = con.replace_table("raw.events_validated", pl.read_parquet(validated))
    print(f"spark: {rows} rows in raw.events_validated", flush=True)


def export(out_dir: Path, tables: list[str]) -> None:
    from python_models.warehouse import connect

    con = connect(engine="spark")
    for table in tables:
        frame = con.execute(f"select * from {table}").pl()
        frame.write_parquet(out_dir / f"{table}.parquet")
    per_country = con.execute(
        "select country_mode as country, count(*) as users from marts.dim_users "
        "group by country_mode"
    ).pl()
    con.replace_table("ml_scores.users_per_country", per_country)
    con.replace_table("ml_scores.users_per_country", per_country)  # twice: replaces
    back = con.execute("select * from ml_scores.users_per_country").pl()
    back.write_parquet(out_dir / "ml_scores.users_per_country.parquet")


# The sample is far below churn's default bar of 1,000 churned and returning user-snapshots
# (as in tests/integration/test_models_truth.py).
SMALL = {"churn": {"min_class_examples": 50}}
RUN_ID = "engine-run"  # the same on every engine, so drift decisions read alike


def train(out_dir: Path, models: list[str]) -> None:
    from python_models.warehouse import connect

    train_and_score(connect(engine="spark"), out_dir, models)


def train_and_score(con, out_dir: Path, models: list[str]) -> None:
    """Each model in turn through the Warehouse interface (any engine: the test runs the same
    on DuckDB); one that fails writes its error (the test reports it) and the others still
    run. Then the drift sensor's decision over the scoring run."""
    from python_models.common.drift import drift_decision
    from python_models.config import get_settings

    for model in models:
        try:
            _train_one(con, out_dir, model)
        except Exception:
            error = traceback.format_exc()
            print(f"{con.engine}: {model} failed\n{error}", flush=True)
            (out_dir / f"{model}.json").write_text(json.dumps({"error": error}))
    decision = drift_decision(con, list(models), None, get_settings().drift_psi_threshold)
    (out_dir / "drift_decision.json").write_text(
        json.dumps({"request": decision.request, "message": decision.message})
    )


def _train_one(con, out_dir: Path, model: str) -> None:
    from python_models.common.drift import latest_measurements
    from python_models.lifecycle import score_model, train_model

    clock = time.perf_counter()
    trained = train_model(con, model, run_id=RUN_ID, params=SMALL.get(model))
    trained_at = time.perf_counter()
    scored = score_model(con, model, run_id=RUN_ID)
    summary = {
        "seconds_train": trained_at - clock,
        "seconds_score": time.perf_counter() - trained_at,
        "status": trained.status,
        "version": trained.model_version,
        "reason": trained.reason,
        "metrics": {k: v for k, v in trained.metrics.items() if isinstance(v, int | float)},
        "evaluation": trained.evaluation.to_dicts(),
        "scored_rows": scored.rows,
        "score_table": scored.table,
    }
    (out_dir / f"{model}.json").write_text(json.dumps(summary, default=str))
    scores = con.execute(f"select * from {scored.table}").pl()
    scores.write_parquet(out_dir / f"{model}.scores.parquet")
    latest_measurements(con, model).write_parquet(out_dir / f"{model}.drift.parquet")


STEPS = {
    "load": lambda args: load(Path(args[0])),
    "export": lambda args: export(Path(args[0]), args[1:]),
    "train": lambda args: train(Path(args[0]), args[1:]),
}


if __name__ == "__main__":
    # Steps separated by "then" run in this one process (one JVM start).
    steps: list[list[str]] = [[]]
    for arg in sys.argv[1:]:
        if arg == "then":
            steps.append([])
        else:
            steps[-1].append(arg)
    for command, *args in steps:
        if command not in STEPS:
            raise SystemExit(f"unknown step {command!r}")
        STEPS[command](args)
