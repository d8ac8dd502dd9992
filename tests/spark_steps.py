"""The Python steps of the Spark test and benchmark, each run in its own process (tests/
integration/test_spark_engine.py, benchmarks/bench_engines.py): Spark's embedded Derby
metastore admits one JVM at a time, so these processes and dbt's own Spark session take turns
on the same warehouse directory. Steps separated by `then` share one process (one JVM start).

    python tests/spark_steps.py load_raw RAW_DIR then gate OUT_DIR
    python tests/spark_steps.py load_files PATH OUT_DIR then gate OUT_DIR
    python tests/spark_steps.py gate_file FILE OUT_DIR
    python tests/spark_steps.py export OUT_DIR TABLE [TABLE ...]
    python tests/spark_steps.py train OUT_DIR MODEL [MODEL ...]
    python tests/spark_steps.py dbt TARGET_PATH DBT_ARG [DBT_ARG ...]

`load_raw` writes loaded, not yet gated raw tables (RAW_DIR/<table>.parquet) into Spark;
`load_files` loads event files as `uba load` does on a server warehouse; `gate` gates every
new load batch on Spark (expectations/gate's Spark dialect); `gate_file` loads one file and
gates it. `export` reads each table through the warehouse interface into
OUT_DIR/<table>.parquet, and writes and reads back a derived table. `train` trains and scores
each MODEL on Spark's marts (lifecycle.train_model / score_model; registry, score and drift
tables on Spark too) and writes OUT_DIR/<model>.json (status, version, metrics, evaluation),
OUT_DIR/<model>.scores.parquet, OUT_DIR/<model>.drift.parquet (its drift measurements) and
OUT_DIR/drift_decision.json (the drift sensor's rule over the run); `train_and_score` does the
same on any engine. `dbt` runs a dbt command (target spark, dbt's files in TARGET_PATH) in
this process: dbt-spark's `session` method takes the process's Spark session, so a dbt build
between two Python steps costs no JVM start of its own.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import polars as pl

# The raw tables a load writes (python_models/ingest): the gate's input.
RAW_TABLES = ("raw.events", "raw.load_log", "raw.schema_drift")


def load_raw(raw_dir: Path) -> None:
    """The loaded (not yet gated) raw tables, as DuckDB's load wrote them, into Spark."""
    from python_models.warehouse import connect

    con = connect(engine="spark")
    for table in RAW_TABLES:
        rows = con.replace_table(table, pl.read_parquet(raw_dir / f"{table}.parquet"))
        print(f"spark: {rows} rows in {table}", flush=True)


def load_files(path: Path, out_dir: Path) -> None:
    """Event files loaded into Spark the way `uba load` does on a server warehouse
    (python_models/ingest/remote.load_into: DuckDB's file readers, rows shipped as Arrow);
    the seconds as OUT_DIR/load.json."""
    from python_models.ingest.remote import load_into
    from python_models.warehouse import connect

    con = connect(engine="spark")
    clock = time.perf_counter()
    result = load_into(con, path, progress=False)
    seconds = time.perf_counter() - clock
    (out_dir / "load.json").write_text(json.dumps({"seconds": seconds, "rows": result.rows_loaded}))


def gate(out_dir: Path) -> None:
    """The gate on Spark (expectations/gate, SparkDialect) over every load batch not gated
    yet; its verdicts exported as OUT_DIR/raw.events_validated.parquet and
    OUT_DIR/raw.events_quarantine.parquet, its result as OUT_DIR/gate.json."""
    from expectations.gate import run_gate
    from python_models.warehouse import connect

    con = connect(engine="spark")
    clock = time.perf_counter()
    result = run_gate(con, progress=True)
    _write_gate(con, out_dir, result, time.perf_counter() - clock, "gate")


def gate_file(path: Path, out_dir: Path) -> None:
    """A file loaded into Spark (python_models/ingest/remote.load_into) and gated there with
    the rules of tests/unit/test_gate.py; the verdict of each of its rows (row number ->
    reasons, None when validated) as OUT_DIR/gate_file.json."""
    sys.path.insert(0, str(Path(__file__).parent / "unit"))
    from dataclasses import replace

    from test_gate import RULES

    from expectations.gate import run_gate
    from python_models.ingest.remote import load_into
    from python_models.warehouse import connect

    con = connect(engine="spark")
    load_into(con, path, progress=False)
    # The lateness rule off: this warehouse already holds the sample's newer events, while
    # test_gate.py's verdicts are those of a first load (its own test plants event_too_late).
    result = run_gate(con, rules=replace(RULES, late_window_days=0))
    verdicts = con.execute(
        """
        select e.row_number, q.reasons, v.raw_id is not null as is_valid
        from raw.events as e
        left join raw.events_quarantine as q on q.raw_id = e.raw_id
        left join raw.events_validated as v on v.raw_id = e.raw_id
        where e.source_file = ?
        """,
        [str(path)],
    ).fetchall()
    summary = {
        "rows_checked": result.rows_checked,
        "rows_valid": result.rows_valid,
        "verdicts": [[row, reasons, valid] for row, reasons, valid in verdicts],
        "user_id_of_bad_nul": con.scalar(
            "select user_id from raw.events_quarantine where event_id = 'bad-nul'"
        ),
    }
    (out_dir / "gate_file.json").write_text(json.dumps(summary))


def _write_gate(con, out_dir: Path, result, seconds: float, name: str) -> None:
    for table in ("raw.events_validated", "raw.events_quarantine"):
        con.execute(f"select * from {table}").pl().write_parquet(out_dir / f"{table}.parquet")
    summary = {
        "seconds": seconds,
        "success": result.success,
        "rows_checked": result.rows_checked,
        "rows_valid": result.rows_valid,
        "rows_quarantined": result.rows_quarantined,
        "reasons": result.reasons,
        "blocked": [b.load_id for b in result.blocked],
    }
    (out_dir / f"{name}.json").write_text(json.dumps(summary))


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


def dbt(target_path: Path, args: list[str]) -> None:
    """`dbt ARGS` as python_models.dbt_runner.run_dbt runs it (its environment, in the project
    folder), but in this process, on this process's Spark session."""
    import os

    from dbt.cli.main import dbtRunner

    from python_models.config import DBT_PROJECT_DIR
    from python_models.dbt_runner import dbt_env
    from python_models.warehouse import connect

    connect(engine="spark")  # the session dbt-spark's getOrCreate finds (same settings)
    saved, cwd = dict(os.environ), Path.cwd()
    os.environ.update(dbt_env(target="spark"))
    os.environ["DBT_TARGET_PATH"] = str(target_path)
    os.chdir(DBT_PROJECT_DIR)
    try:
        result = dbtRunner().invoke(args)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    if not result.success:
        raise SystemExit(f"dbt {' '.join(args)} failed: {result.exception or 'see above'}")


STEPS = {
    "load_raw": lambda args: load_raw(Path(args[0])),
    "gate": lambda args: gate(Path(args[0])),
    "load_files": lambda args: load_files(Path(args[0]), Path(args[1])),
    "gate_file": lambda args: gate_file(Path(args[0]), Path(args[1])),
    "export": lambda args: export(Path(args[0]), args[1:]),
    "train": lambda args: train(Path(args[0]), args[1:]),
    "dbt": lambda args: dbt(Path(args[0]), args[1:]),
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
        clock = time.perf_counter()
        STEPS[command](args)
        print(f"spark_steps: {command} took {time.perf_counter() - clock:.1f} s", flush=True)
