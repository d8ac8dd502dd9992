"""Next action on the warehouse: read the sequence mart, split by event time, fit, evaluate
against the baselines; score each user's newest sequence row."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.common import plots
from python_models.common.training import TrainingResult, reference_sample
from python_models.next_action.model import (
    BASELINES,
    SERVED,
    VARIANTS,
    NextActionModel,
    beats_baselines,
)
from python_models.next_action.params import NextActionParams
from python_models.next_action.sequences import (
    MODEL_COLUMNS,
    load_labelled,
    load_latest,
    transition_counts,
)


@dataclass(frozen=True)
class EventTimeSplit:
    """Cut points in event time: fit < fit_end <= (purged) validation < holdout_start <= holdout."""

    fit_end: datetime
    validation_start: datetime
    validation_end: datetime
    holdout_start: datetime
    last_event: datetime

    def describe(self) -> str:
        return (
            f"fit on events before {self.fit_end:%Y-%m-%d %H:%M}, validate "
            f"{self.validation_start:%Y-%m-%d}..{self.validation_end:%Y-%m-%d %H:%M}, hold out "
            f"{self.holdout_start:%Y-%m-%d}..{self.last_event:%Y-%m-%d}"
        )


def event_time_split(last_event: datetime, params: NextActionParams) -> EventTimeSplit:
    purge = timedelta(minutes=params.purge_minutes)
    holdout_start = last_event - timedelta(days=params.holdout_days)
    validation_start = holdout_start - timedelta(days=params.validation_days)
    return EventTimeSplit(
        fit_end=validation_start - purge,
        validation_start=validation_start,
        validation_end=holdout_start - purge,
        holdout_start=holdout_start,
        last_event=last_event,
    )


def apply_split(frame: pl.DataFrame, split: EventTimeSplit, params: NextActionParams):
    ts = pl.col("event_ts")
    fit = frame.filter(ts < split.fit_end)
    validation = frame.filter((ts >= split.validation_start) & (ts < split.validation_end))
    holdout = frame.filter(ts >= split.holdout_start)
    for name, part in (("fit", fit), ("validation", validation), ("holdout", holdout)):
        if part.height == 0:
            raise ValueError(
                f"the {name} window of the next-action split is empty ({split.describe()}): the "
                "data covers too few days for holdout_days + validation_days"
            )
    if params.max_fit_rows and fit.height > params.max_fit_rows:
        fit = fit.tail(params.max_fit_rows)  # the newest rows (frame is ordered by time)
    return fit, validation, holdout


def train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = NextActionParams.from_overrides(overrides)
    features = list(MODEL_COLUMNS)
    frame = load_labelled(con, features)
    if frame.height == 0:
        raise LookupError("features.ftr_user_event_sequences has no labelled events")
    split = event_time_split(frame["event_ts"].max(), params)
    fit, validation, holdout = apply_split(frame, split, params)
    print(
        f"[next_action] {frame.height} labelled events; {split.describe()}; "
        f"{fit.height} / {validation.height} / {holdout.height} rows",
        file=sys.stderr,
    )
    transitions = transition_counts(con, before=split.fit_end)
    model = NextActionModel(features, params).fit(fit, validation, transitions=transitions)
    evaluation = model.evaluate(holdout)
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    served = by_variant[SERVED]
    gate_reason = "holdout top-1 / top-3 accuracy: " + ", ".join(
        f"{v} {by_variant[v]['top1_accuracy']:.3f} / {by_variant[v]['top3_accuracy']:.3f}"
        for v in VARIANTS
    )

    def compare(bundle: dict[str, Any]) -> float:
        other: NextActionModel = bundle["model"]
        if any(f not in holdout.columns for f in other.features):
            return float("-inf")  # the champion's features no longer exist: it cannot compete
        theirs = other.evaluate(holdout).filter(pl.col("variant") == SERVED)
        return float(theirs["top1_accuracy"][0])

    def render(folder: Path) -> dict[str, Path]:
        return {
            "accuracy_by_variant": plots.accuracy_by_variant_plot(
                evaluation, ("top1_accuracy", "top3_accuracy"), folder / "accuracy.png"
            ),
            "feature_importance": plots.importance_plot(
                features, model.importance(), folder / "feature_importance.png"
            ),
        }

    metrics: dict[str, Any] = {
        "top1_accuracy": served["top1_accuracy"],
        "top3_accuracy": served["top3_accuracy"],
        "log_loss": served["log_loss"],
        "holdout_events": holdout.height,
        "classes": len(model.classes_),
        "best_iteration": model.best_iteration_,
    }
    for baseline in BASELINES:
        for metric in ("top1_accuracy", "top3_accuracy"):
            metrics[f"baseline_{baseline}_{metric}"] = by_variant[baseline][metric]
    encoded = pl.DataFrame(model.matrix(fit), schema=features, orient="row")
    return TrainingResult(
        model_name="next_action",
        model=model,
        features=features,
        params=params.as_dict(),
        data_window=(fit["event_date"].min(), holdout["event_date"].max()),
        evaluation=evaluation,
        metrics=metrics,
        passes_gate=beats_baselines(evaluation),
        gate_reason=gate_reason,
        data_fingerprint={
            "rows": frame.height,
            "holdout_start": str(split.holdout_start),
        },
        reference_features=reference_sample(encoded, features, params.seed),
        reference_scores=model.predict(holdout),
        compare_metric=compare,
        primary_metric="top1_accuracy",
        render_plots=render,
    )


def score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    model: NextActionModel = bundle["model"]
    return model.predict_frame(load_latest(con, model.features))


def latest_features(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    """Each user's newest sequence row, encoded as the model sees it (drift)."""
    model: NextActionModel = bundle["model"]
    latest = load_latest(con, model.features)
    return pl.DataFrame(model.matrix(latest), schema=model.features, orient="row")
