"""`uba demo`: the main job end to end on generated sample data.

It generates a seeded sample (once per size and seed), then runs the Dagster job
`full_pipeline` — the same job definition the schedules and the drift sensor launch — in this
process against the persistent Dagster instance ($DAGSTER_HOME), so `dagster dev` shows the run.
A top-floor command: with the `uba` commands, the only code outside orchestration/ that
imports it.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from python_models.config import get_settings

# The demo sample is small: churn trains on fewer examples than its default bar (1,000
# churned and 1,000 returning user-snapshots, as GA4 asks); the eligibility report says how
# many there are.
DEMO_PARAMS = {"churn": {"min_class_examples": 100}}


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=200_000, help="sample size (events)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    parser.add_argument(
        "--input", default=None, help="load these event files instead of generated ones"
    )
    parser.add_argument("--job", default="full_pipeline", help="Dagster job to run")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (DEBUG shows every step event)",
    )


def _ensure_sample(events: int, seed: int) -> Path:
    from python_models.synthetic import generate

    settings = get_settings()
    out = settings.data_dir / "sample"
    params_path = out / "demo_params.json"
    wanted = {"events": events, "seed": seed}
    if params_path.exists():
        if json.loads(params_path.read_text()) == wanted:
            print(f"uba demo: reusing the sample in {out}")
            return out / "events"
        print(f"uba demo: sample in {out} has other settings; regenerating")
        shutil.rmtree(out)
    print(f"uba demo: generating {events:,} sample events (seed {seed}) into {out}")
    generate(out_dir=out, n_events=events, seed=seed, progress=True)
    params_path.write_text(json.dumps(wanted))
    return out / "events"


# What the demo shows of the published copy: a title, the table it reads, the query.
SUMMARY = (
    (
        "Highest churn risk among users still here (active in the last 7 days)",
        "ml_scores.churn_scores",
        "select user_id, round(score, 3) as churn_risk, reasons "
        "from ml_scores.churn_scores order by score desc limit 5",
    ),
    (
        "Not scored for churn (ml_scores.churn_lapsed_users)",
        "ml_scores.churn_lapsed_users",
        "select activity_status, count(*) as users from ml_scores.churn_lapsed_users "
        "group by 1 order by 1",
    ),
    (
        "Act first: churn risk x expected revenue (ml_scores.value_at_risk)",
        "ml_scores.value_at_risk",
        "select rank, user_id, round(value_at_risk_usd, 2) as value_at_risk_usd, "
        "holdout_group, reasons from ml_scores.value_at_risk order by rank limit 5",
    ),
    (
        "Top anomaly alerts",
        "ml_scores.anomaly_alerts",
        "select user_id, round(score, 3) as score, reasons from ml_scores.anomaly_alerts "
        "order by score desc limit 5",
    ),
)


def print_summary() -> None:
    from python_models.warehouse import connect

    settings = get_settings()
    published = settings.published_dir / "warehouse.duckdb"
    con = connect(published, read_only=True)
    try:
        print("\nPublished tables (read-only copy for BI):", published)
        print(
            con.sql(
                "select schema_name || '.' || table_name as table_name, estimated_size as rows "
                "from duckdb_tables() where schema_name in ('ml_scores', 'ml') order by 1"
            )
        )
        for title, table, query in SUMMARY:
            if con.table_exists(table):
                print(f"{title}:")
                print(con.sql(query))
            else:  # a day refreshed before any model was trained and served
                print(f"{title}: {table} not published (no model served it yet: `uba train`)")
    finally:
        con.close()


def run(args) -> int:
    from python_models.config import allow_development_salt

    # The demo opts in to the committed development salt (its pseudonyms are reversible);
    # real data needs UBA_PSEUDONYM_SALT.
    allow_development_salt()
    started = time.perf_counter()
    if args.input:
        input_path = Path(args.input).resolve()
    else:
        input_path = _ensure_sample(args.events, args.seed)

    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.defs.ingest import RAW_EVENTS, raw_files_run_config
    from orchestration.defs.ml import training_run_config

    instance = DagsterInstance.get()
    job = defs.resolve_job_def(args.job)
    print(f"uba demo: running Dagster job {args.job!r} (instance: {instance.root_directory})")
    # Step-level DEBUG events (start, output, materialization...) are in `dagster dev`; the
    # terminal gets INFO and up: progress lines and the models' evaluation tables.
    run_config = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if job.has_node_named(RAW_EVENTS.to_python_identifier()):
        run_config |= raw_files_run_config(str(input_path))
    training = training_run_config(DEMO_PARAMS)
    ops = {k: v for k, v in training.get("ops", {}).items() if job.has_node_named(k)}
    if ops:
        print(f"uba demo: small sample, so training with {DEMO_PARAMS}")
        run_config.setdefault("ops", {}).update(ops)
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    elapsed = time.perf_counter() - started
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"uba demo: job failed after {elapsed:.0f}s; failed steps: {failed}", file=sys.stderr)
        return 1
    print_summary()
    print(f"\nuba demo: done in {elapsed:.0f}s. Explore it with: dagster dev")
    return 0
