"""What each model's trainer hands back to the lifecycle (one shape for all models)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REFERENCE_SAMPLE_ROWS = 20_000


@dataclass
class TrainingResult:
    model_name: str
    model: Any  # the fitted model object the package's `score` takes
    features: list[str]
    params: dict[str, Any]
    data_window: tuple[date | None, date | None]
    evaluation: pl.DataFrame  # one row per (variant, split), one column per metric
    metrics: dict[str, Any]  # headline metrics of the served variant (go to the registry)
    passes_gate: bool  # beat the baselines / passed the model's sanity bar
    gate_reason: str
    data_fingerprint: dict[str, Any]
    # Drift reference. The lifecycle replaces an empty frame by the population the model
    # would score at training time (its spec's latest_features), and empty or None scores by
    # the model's predictions of it.
    reference_features: pl.DataFrame
    reference_scores: np.ndarray | None
    # For champion/challenger: the served metric of another model bundle on this run's holdout.
    compare_metric: Callable[[dict[str, Any]], float] | None = None
    primary_metric: str | None = None
    render_plots: Callable[[Path], dict[str, Path]] = field(default=lambda folder: {})
    # Features that grow with calendar time by construction (python_models.common.drift).
    age_bound_features: list[str] = field(default_factory=list)
    # Holdout rows (user_id, score, label) of a yes/no model: the fairness report's input.
    holdout_predictions: pl.DataFrame | None = None
    # Tables the training reported on (name -> frame), shown with the outcome.
    reports: dict[str, pl.DataFrame] = field(default_factory=dict)


class BelowMinimumError(ValueError):
    """The data are too thin to train on; `report` says where (e.g. positives per window)."""

    def __init__(self, message: str, report: pl.DataFrame | None = None):
        super().__init__(message)
        self.report = report


def reference_sample(frame: pl.DataFrame, features: list[str], seed: int) -> pl.DataFrame:
    """A seeded sample of training features kept in the artifact as the drift baseline."""
    sample = frame.select(features)
    if sample.height > REFERENCE_SAMPLE_ROWS:
        sample = sample.sample(n=REFERENCE_SAMPLE_ROWS, seed=seed)
    return sample
