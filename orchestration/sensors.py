"""Drift sensor: asks for retraining at most once per new scoring run, never on unchanged data.

Every scoring run stores its drift measurements (ml.drift_measurements: the population scored
now against the population scored at training time, age-bound features not compared) and its
input fingerprint (ml.scoring_runs). The sensor reads them from the published copy, so it
never waits on (or blocks) a run that writes the warehouse; its cursor holds the last scoring
run it judged and that run's data fingerprint. The rule is a plain function,
python_models.common.drift.drift_decision.
"""

import dagster as dg

from orchestration.jobs import retrain_job
from python_models.config import get_settings
from python_models.models import MODELS

# Models whose drift asks for retraining (their spec's watch_drift); a retrain refreshes all.
WATCHED = [spec.name for spec in MODELS if spec.watch_drift]


@dg.sensor(
    job=retrain_job,
    name="drift_retrain_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests retrain_models when the newest scoring run of "
    f"{', '.join(WATCHED)} drifted past UBA_DRIFT_PSI_THRESHOLD (once per scoring run).",
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    from python_models.common.drift import decide_on_published

    settings = get_settings()
    decision = decide_on_published(
        settings.published_dir / "warehouse.duckdb",
        WATCHED,
        context.cursor,
        settings.drift_psi_threshold,
    )
    context.log.info(f"drift: {decision.message}")
    if not decision.request:
        return dg.SensorResult(skip_reason=decision.message, cursor=decision.cursor)
    worst, psi = next(iter(decision.worst.items()))
    tags = {
        "uba/trigger": "drift",
        "uba/scoring_run": str(decision.run_id),
        "uba/worst_feature": worst,
        "uba/max_psi": f"{psi:.3f}",
    }
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=decision.run_key, run_config=_retrain_config(settings), tags=tags)
        ],
        cursor=decision.cursor,
    )


def _retrain_config(settings) -> dict:
    """Retrain with the champions' registered parameters (read from the published copy)."""
    from orchestration.defs.ml import champion_params, training_run_config
    from python_models.warehouse import connect

    con = connect(settings.published_dir / "warehouse.duckdb", read_only=True)
    try:
        return training_run_config(champion_params(con))
    finally:
        con.close()
