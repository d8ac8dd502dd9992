"""Drift sensor: after churn scores are written, compare features and predictions with the
champion's training window (population stability index) and ask for retraining past a threshold.

It reads the published copy, so it never waits on (or blocks) a run that writes the warehouse.
"""

import os

import dagster as dg

from orchestration.defs.ml import score_key
from orchestration.jobs import retrain_job
from python_models.config import get_settings

# PSI above 0.25 is the usual "significant shift" rule of thumb.
PSI_THRESHOLD = float(os.environ.get("UBA_DRIFT_PSI_THRESHOLD", "0.25"))


def evaluate_drift(duckdb_path: str, model_name: str = "churn") -> dict:
    """Max feature PSI and prediction PSI for `model_name`, read from a (published) warehouse."""
    from python_models.common.drift import feature_drift, prediction_drift
    from python_models.warehouse import connect

    con = connect(duckdb_path, read_only=True)
    try:
        features = feature_drift(con, model_name)
        prediction_psi = prediction_drift(con, model_name)
    finally:
        con.close()
    worst = features.sort("psi", descending=True).head(5)
    return {
        "max_feature_psi": float(features["psi"].max() or 0.0) if features.height else 0.0,
        "prediction_psi": float(prediction_psi or 0.0),
        "worst_features": dict(zip(worst["feature"], worst["psi"], strict=True)),
    }


@dg.asset_sensor(
    asset_key=score_key("churn"),
    job=retrain_job,
    name="drift_retrain_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    published = get_settings().published_dir / "warehouse.duckdb"
    if not published.exists():
        return dg.SkipReason(f"no published warehouse at {published} yet")
    drift = evaluate_drift(str(published))
    context.log.info(f"drift: {drift}")
    if max(drift["max_feature_psi"], drift["prediction_psi"]) > PSI_THRESHOLD:
        return dg.RunRequest(
            run_key=f"drift-{asset_event.run_id}",
            tags={"uba/trigger": "drift", "uba/max_feature_psi": f"{drift['max_feature_psi']:.3f}"},
        )
    return dg.SkipReason(
        f"no drift past PSI {PSI_THRESHOLD}: features {drift['max_feature_psi']:.3f}, "
        f"predictions {drift['prediction_psi']:.3f}"
    )
