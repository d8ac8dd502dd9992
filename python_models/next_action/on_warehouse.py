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
    top_k_accuracy,
)
from python_models.next_action.params import NextActionParams
from python_models.next_action.sequences import (
    MODEL_COLUMNS,
    TimeWindow,
    count_labelled,
    labelled_span,
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


def windows_of(split: EventTimeSplit) -> tuple[TimeWindow, TimeWindow, TimeWindow]:
    """The fit, validation and holdout windows in event time."""
    return (
        (None, split.fit_end),
        (split.validation_start, split.validation_end),
        (split.holdout_start, None),
    )


def load_windows(
    con: duckdb.DuckDBPyConnection,
    features: list[str],
    split: EventTimeSplit,
    caps: tuple[int, int, int],
    seed: int,
) -> tuple[list[pl.DataFrame], list[int]]:
    """Each window's labelled rows, a seeded sample of at most its cap (params max_*_rows;
    0: all), and how many rows each window holds. Raises ValueError when a window is empty."""
    frames, sizes = [], []
    for name, window, cap in zip(
        ("fit", "validation", "holdout"), windows_of(split), caps, strict=True
    ):
        size = count_labelled(con, window)
        if size == 0:
            raise ValueError(
                f"the {name} window of the next-action split is empty ({split.describe()}): the "
                "data covers too few days for holdout_days + validation_days"
            )
        frames.append(load_labelled(con, features, window, cap if cap and size > cap else 0, seed))
        sizes.append(size)
    return frames, sizes


def train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = NextActionParams.from_overrides(overrides)
    features = list(MODEL_COLUMNS)
    labelled, newest = labelled_span(con)
    if labelled == 0:
        raise LookupError("features.ftr_user_event_sequences has no labelled events")
    split = event_time_split(newest, params)
    caps = (params.max_fit_rows, params.max_validation_rows, params.max_holdout_rows)
    (fit, validation, holdout), drawn_from = load_windows(con, features, split, caps, params.seed)
    sizes = [part.height for part in (fit, validation, holdout)]
    print(
        f"[next_action] {labelled:,} labelled events; {split.describe()}; fit / validate / "
        f"hold out {' / '.join(f'{n:,}' for n in sizes)} rows"
        + (
            f" (seeded samples of {' / '.join(f'{n:,}' for n in drawn_from)})"
            if sizes != drawn_from
            else ""
        ),
        file=sys.stderr,
    )
    transitions = transition_counts(con, before=split.fit_end)
    model = NextActionModel(features, params).fit(fit, validation, transitions=transitions)
    probabilities = model.variant_proba(holdout)  # predicted once: evaluation and drift use it
    evaluation = model.evaluate(holdout, probabilities)
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
        return top_k_accuracy(other.predict_proba(holdout), other.class_index(holdout), 1)

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
        # The sample (params max_*_rows, seed) and the windows it was drawn from.
        "fit_rows": fit.height,
        "fit_window_rows": drawn_from[0],
        "validation_rows": validation.height,
        "holdout_window_events": drawn_from[2],
        "classes": len(model.classes_),
        "best_iteration": model.best_iteration_,
    }
    for baseline in BASELINES:
        for metric in ("top1_accuracy", "top3_accuracy"):
            metrics[f"baseline_{baseline}_{metric}"] = by_variant[baseline][metric]
    reference = reference_sample(fit, features, params.seed)
    encoded = pl.DataFrame(model.matrix(reference), schema=features, orient="row")
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
            "rows": labelled,
            "holdout_start": str(split.holdout_start),
        },
        reference_features=encoded,
        reference_scores=probabilities[SERVED].max(axis=1),
        compare_metric=compare,
        primary_metric="top1_accuracy",
        render_plots=render,
    )


def score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    model: NextActionModel = bundle["model"]
    return model.predict_frame(load_latest(con, model.features))


def latest_features(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    """Each user's newest sequence row, encoded as the model sees it (drift), with the keys of
    its score row (user_id, as_of_date = the event's day) and of its mart row (event_id): what
    `uba refresh` compares to rescore only the users with a new newest event."""
    model: NextActionModel = bundle["model"]
    latest = load_latest(con, model.features)
    encoded = pl.DataFrame(model.matrix(latest), schema=model.features, orient="row")
    keys = latest.select("user_id", pl.col("event_date").alias("as_of_date"), "event_id")
    return pl.concat([keys, encoded], how="horizontal")
