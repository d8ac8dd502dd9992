"""Next-action model defaults. Overrides come from `uba train --param` or Dagster config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from python_models.common.booster import deterministic_settings
from python_models.common.params import ModelParams


@dataclass(frozen=True)
class NextActionParams(ModelParams):
    model_name: ClassVar[str] = "next_action"

    # Time split (by event time): holdout = the last holdout_days of events whose label is
    # known, validation (early stopping) = the validation_days before it, fit = all earlier.
    # purge_minutes drops the events just before each cut: their next event (at most the
    # session timeout, 30 minutes, later) may lie past it.
    holdout_days: int = 28
    validation_days: int = 14
    purge_minutes: int = 60
    # Seeded uniform samples of each window (0 = all rows): training time is bounded by the
    # sample, not the warehouse. Holdout accuracy is flat from 50,000 fit rows on (learning
    # curve in docs/performance.md, "Next action"); 50,000 holdout rows put a top-1 accuracy
    # within +-0.005 (two standard errors).
    max_fit_rows: int = 50_000
    max_validation_rows: int = 30_000
    max_holdout_rows: int = 50_000
    # LightGBM (multiclass over the next event names seen in training, 'session_end' included)
    num_leaves: int = 15
    # 0.15, not 0.1: ~30 instead of ~50 rounds, and every round's trees cost three times (the
    # boosting, the validation scores, the holdout's predict): training 35-45% less CPU for
    # top-1 0.001 lower, well inside champion_tolerance (docs/performance.md, "Next action").
    learning_rate: float = 0.15
    # Rounds stop 10 after the validation loss stops improving (~30 rounds at 50k rows; each
    # round grows one tree per class, ~20 of them).
    num_boost_round: int = 200
    early_stopping_rounds: int = 10
    min_child_samples: int = 40
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    max_bin: int = 63
    # Markov baseline: add-alpha smoothing towards the overall next-event distribution.
    markov_smoothing: float = 1.0
    # Promotion: a challenger must not fall more than this below the champion's top-1 accuracy.
    champion_tolerance: float = 0.005
    reason_chunk_size: int = 20_000
    seed: int = 42
    # One thread: multiclass boosting with 2 OpenMP threads ran 7-15x slower than with one on
    # the shared 2-core machine (50 rounds: 8 s vs 57-132 s, load average 8).
    num_threads: int = 1

    def check(self) -> None:
        if self.holdout_days < 1 or self.validation_days < 1 or self.purge_minutes < 0:
            raise ValueError("holdout_days and validation_days must be >= 1, purge_minutes >= 0")
        if min(self.max_fit_rows, self.max_validation_rows, self.max_holdout_rows) < 0:
            raise ValueError("max_fit_rows, max_validation_rows, max_holdout_rows must be >= 0")
        if self.num_leaves < 2 or self.num_boost_round < 1 or self.num_threads < 1:
            raise ValueError("num_leaves must be >= 2, num_boost_round and num_threads >= 1")
        if self.markov_smoothing < 0:
            raise ValueError("markov_smoothing must be >= 0")

    def lightgbm(self, n_classes: int) -> dict[str, Any]:
        return {
            "objective": "multiclass",
            "num_class": n_classes,
            "metric": "multi_logloss",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
        } | deterministic_settings(self.seed, self.num_threads)
