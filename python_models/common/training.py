"""What each model's trainer hands back to `python_models.jobs` (one shape for all four)."""

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
    reference_features: pl.DataFrame  # sample of training features (drift reference)
    reference_scores: np.ndarray  # scores at training time (prediction drift reference)
    # For champion/challenger: the served metric of another model bundle on this run's holdout.
    compare_metric: Callable[[dict[str, Any]], float] | None = None
    primary_metric: str | None = None
    render_plots: Callable[[Path], dict[str, Path]] = field(default=lambda folder: {})


def reference_sample(frame: pl.DataFrame, features: list[str], seed: int) -> pl.DataFrame:
    """A seeded sample of training features kept in the artifact as the drift baseline."""
    sample = frame.select(features)
    if sample.height > REFERENCE_SAMPLE_ROWS:
        sample = sample.sample(n=REFERENCE_SAMPLE_ROWS, seed=seed)
    return sample
