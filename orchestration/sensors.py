"""Drift sensor: after churn scores are written, measure feature and prediction drift against
the champion's training window (python_models.common.drift) and ask for retraining past the
threshold (UBA_DRIFT_PSI_THRESHOLD).

It reads the published copy, so it never waits on (or blocks) a run that writes the warehouse.
"""

import dagster as dg

from orchestration.defs.ml import score_key
from orchestration.jobs import retrain_job
from python_models.config import get_settings
from python_models.models import get_spec

# Churn is the model whose inputs move first when behaviour shifts; a retrain refreshes all.
WATCHED = get_spec("churn")


@dg.asset_sensor(
    asset_key=score_key(WATCHED),
    job=retrain_job,
    name="drift_retrain_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    from python_models.common.drift import measure_drift

    settings = get_settings()
    published = settings.published_dir / "warehouse.duckdb"
    if not published.exists():
        return dg.SkipReason(f"no published warehouse at {published} yet")
    drift = measure_drift(published, WATCHED)
    context.log.info(f"drift: {drift}")
    if drift.exceeds(settings.drift_psi_threshold):
        return dg.RunRequest(
            run_key=f"drift-{asset_event.run_id}",
            tags={"uba/trigger": "drift", "uba/max_feature_psi": f"{drift.max_feature_psi:.3f}"},
        )
    return dg.SkipReason(
        f"no drift past PSI {settings.drift_psi_threshold}: features "
        f"{drift.max_feature_psi:.3f}, predictions {drift.prediction_psi:.3f}"
    )
