"""Anomaly detection on the warehouse: per-user-day activity (SQL), model (Python)."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from python_models.anomaly.daily import (
    ACTIVITY_TABLE,
    MODEL_COLUMNS,
    user_day_activity,
    user_day_activity_slices,
)
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


def _scoring_since(con: Warehouse, model: AnomalyModel) -> date | None:
    """The first activity date scored (None: all history, score_lookback_days = 0)."""
    if model.params.score_lookback_days <= 0:
        return None
    latest = con.execute("select max(event_date) from marts.fct_events").fetchone()[0]
    return latest - timedelta(days=model.params.score_lookback_days)


# A full scoring reads this many user-days at a time: each user-day's score is its own row's,
# so the slices' alerts are the whole history's, and one slice in memory bounds the process
# (at 10M events the 1.46M user-days read whole took ~900 MB beside DuckDB's pool).
SCORE_SLICE_ROWS = 250_000


def score(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    model: AnomalyModel = bundle["model"]
    since = _scoring_since(con, model)
    slices = user_day_activity_slices(con, since, model.params.baseline_days, SCORE_SLICE_ROWS)
    scored = pl.concat([model.predict_frame(frame) for frame in slices])
    # predict_frame's order, over the whole history
    return scored.sort(["score", "user_id", "as_of_date"], descending=[True, False, False])


def scored_user_days(con: Warehouse, bundle: dict[str, Any]) -> tuple[str, list]:
    """The user-days `score` scores, as a condition on ftr_user_day_activity's columns
    (ModelSpec.score_population): each one's score depends on its own row alone (dbt computed
    its baseline deviations), so `uba refresh` rescores only the user-days whose rows changed."""
    since = _scoring_since(con, bundle["model"])
    return ("true", []) if since is None else ("activity_date >= ?", [since])


def latest_features(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    """The newest 7 days of user-days (drift), read alone, not the whole history."""
    model: AnomalyModel = bundle["model"]
    latest = con.execute(f"select max(activity_date) from {ACTIVITY_TABLE}").fetchone()[0]
    since = latest - timedelta(days=6) if latest is not None else None
    return user_day_activity(con, since=since, baseline_days=model.params.baseline_days)
