"""Anomaly model defaults. Overrides come from `uba train --param` or Dagster config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from python_models.common.params import ModelParams


@dataclass(frozen=True)
class AnomalyParams(ModelParams):
    model_name: ClassVar[str] = "anomaly"

    # Each tree fits on max_samples user-days; 100 trees is IsolationForest's usual size
    # (Liu et al. 2008; scikit-learn's default) and halves scoring against 200.
    n_estimators: int = 100
    max_samples: int = 4096
    # The robust scales of both parts and the alert threshold (a quantile) come from a seeded
    # sample of this many training user-days, all of them when fewer: estimating a 99th
    # percentile needs thousands of days, not millions (10M events: ~1.7M user-days).
    calibration_rows: int = 200_000
    # Share of user-days (at training time) whose combined score becomes an alert.
    alert_fraction: float = 0.01
    # Weight of the user-baseline deviation score vs the IsolationForest score.
    deviation_weight: float = 0.5
    baseline_days: int = 28
    # Score only activity dates within this many days of the latest one (0 = all history).
    score_lookback_days: int = 0
    seed: int = 42
    n_jobs: int = 1
    # Scoring: row blocks scored in this many threads (anomaly.model.forest_scores: the same
    # scores as one thread, bit for bit). Plain threads, no OpenMP: on shared cores they wait.
    score_threads: int = 2

    def check(self) -> None:
        if not 0 < self.alert_fraction < 0.5:
            raise ValueError("alert_fraction must be in (0, 0.5)")
        if not 0 <= self.deviation_weight <= 1:
            raise ValueError("deviation_weight must be in [0, 1]")
        if self.baseline_days < 1 or self.score_lookback_days < 0:
            raise ValueError("baseline_days must be >= 1 and score_lookback_days >= 0")
        if self.n_estimators < 1 or self.max_samples < 2:
            raise ValueError("n_estimators must be >= 1 and max_samples >= 2")
        if self.score_threads < 1:
            raise ValueError("score_threads must be >= 1")
        if self.calibration_rows < 1_000:
            raise ValueError("calibration_rows must be >= 1000 (the alert threshold is a quantile)")
