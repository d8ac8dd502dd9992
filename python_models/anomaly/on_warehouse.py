"""Anomaly detection on the warehouse: per-user-day activity (SQL), model (Python)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from python_models.anomaly.daily import MODEL_COLUMNS, user_day_activity
from python_models.anomaly.model import AnomalyModel, evaluation_table
from python_models.anomaly.params import AnomalyParams
from python_models.common import plots
from python_models.common.training import TrainingResult, reference_sample
from python_models.warehouse import Warehouse


def train(con: Warehouse, overrides: dict[str, Any] | None) -> TrainingResult:
    params = AnomalyParams.from_overrides(overrides)
    daily = user_day_activity(con, baseline_days=params.baseline_days)
    if daily.height == 0:
        raise LookupError("marts.fct_events has no identified activity: nothing to learn")
    window = (daily["activity_date"].min(), daily["activity_date"].max())
    print(f"[anomaly] {daily.height} user-days {window[0]}..{window[1]}", file=sys.stderr)
    model = AnomalyModel(list(MODEL_COLUMNS), params).fit(daily)
    scores = model.training_scores_
    evaluation = evaluation_table(scores, model.threshold_, daily.height)
    alerts = int(evaluation["alerts"][0])

    def render(folder: Path) -> dict[str, Path]:
        return {
            "score_distribution": plots.score_histogram(
                scores, folder / "score_distribution.png", "Anomaly score per user-day"
            )
        }

    return TrainingResult(
        model_name="anomaly",
        model=model,
        features=list(MODEL_COLUMNS),
        params=params.as_dict(),
        data_window=window,
        evaluation=evaluation,
        metrics={
            "user_days": daily.height,
            "calibration_user_days": len(scores),
            "alerts": alerts,  # among the calibration days
            "threshold": model.threshold_,
        },
        passes_gate=True,
        gate_reason="unsupervised: no baseline to beat",
        data_fingerprint={"rows": daily.height, "events": int(daily["count_events"].sum())},
        reference_features=reference_sample(daily, list(MODEL_COLUMNS), params.seed),
        reference_scores=scores,
        render_plots=render,
    )


def _scoring_days(con: Warehouse, model: AnomalyModel) -> pl.DataFrame:
    since = None
    if model.params.score_lookback_days > 0:
        latest = con.execute("select max(event_date) from marts.fct_events").fetchone()[0]
        since = latest - timedelta(days=model.params.score_lookback_days)
    return user_day_activity(con, since=since, baseline_days=model.params.baseline_days)


def score(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    model: AnomalyModel = bundle["model"]
    return model.predict_frame(_scoring_days(con, model))


def latest_features(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    model: AnomalyModel = bundle["model"]
    daily = user_day_activity(con, baseline_days=model.params.baseline_days)
    latest = daily["activity_date"].max()
    return daily.filter(pl.col("activity_date") > latest - timedelta(days=7))
