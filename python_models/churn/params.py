"""Churn model defaults. Overrides come from `uba train --param` or Dagster config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from python_models.common.booster import deterministic_settings
from python_models.common.params import ModelParams

CALIBRATIONS = ("sigmoid", "isotonic")


@dataclass(frozen=True)
class ChurnParams(ModelParams):
    model_name: ClassVar[str] = "churn"

    # LightGBM
    # Small trees and large leaves: weekly snapshots repeat the same users, so deep trees
    # memorise them, and among users still here churners are rare (~5% a week on the demo):
    # 4 leaves of >= 100 rows beat 7 of >= 50 there (holdout ROC AUC 0.769 vs 0.753; the
    # logistic baseline 0.760), see docs/models_ml.md.
    num_leaves: int = 4
    learning_rate: float = 0.05
    num_boost_round: int = 400
    early_stopping_rounds: int = 30
    min_child_samples: int = 100
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    # Drop training snapshots whose label window overlaps the holdout period. Off by default:
    # on the 60k-event sample the purged split leaves LightGBM tied with the logistic baseline
    # (0.903 vs 0.905 ROC AUC), see docs/models_ml.md.
    purge: bool = False
    # Calibration on the last training snapshot: "sigmoid" (Platt, keeps the ranking) or
    # "isotonic" (more flexible, introduces ties).
    calibration: str = "sigmoid"
    # Baseline rule: the recency feature itself is the score. It also says who is scored.
    recency_feature: str = "days_since_last_event"
    # The logistic-regression baseline fits on a seeded sample of this many training rows (all
    # when fewer): a linear model with 73 coefficients is pinned down long before the 388k fit
    # rows of 10M events. Holdout ROC AUC at 10M: 100k rows 0.7843 / 0.7819 (two sample
    # seeds), 200k 0.7840 / 0.7832, all 0.7835; the fit 7.4-8.9 s vs 18.9 s (loaded machine).
    baseline_rows: int = 100_000
    # Population (as GA4): users with an event in the last N days before the snapshot are
    # scored (and trained on); users quiet for longer are not risks but inactive, and past
    # the churn horizon lapsed (ml_scores.churn_lapsed_users).
    active_window_days: int = 7
    # Training refuses below this many positives and as many negatives (user-snapshots of the
    # population with a matured label), in the spirit of GA4's 1,000 each; lower it to train
    # on a small sample anyway (the eligibility report says how many there are).
    min_class_examples: int = 1000
    # Scoring: churn is predicted when the calibrated probability reaches this. None: the
    # probability that maximizes F1 on the calibration snapshot, learned at training (churners
    # are a few percent of the users scored, so 0.5 would flag almost nobody).
    threshold: float | None = None
    top_fraction: float = 0.10
    # Promotion: a challenger must not fall more than this below the champion's ROC AUC.
    champion_tolerance: float = 0.005
    # Rows whose reasons are computed at once (memory: rows x features x 8 bytes, a few times).
    reason_chunk_size: int = 100_000
    seed: int = 42
    num_threads: int = 2

    def check(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ValueError("calibration must be 'sigmoid' or 'isotonic'")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError("top_fraction must be in (0, 1]")
        if self.baseline_rows < 1_000:
            raise ValueError("baseline_rows must be >= 1000")
        if self.active_window_days < 1 or self.min_class_examples < 1:
            raise ValueError("active_window_days and min_class_examples must be >= 1")
        if self.num_leaves < 2 or self.num_boost_round < 1 or self.num_threads < 1:
            raise ValueError("num_leaves must be >= 2, num_boost_round and num_threads >= 1")

    def lightgbm(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "auc",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
        } | deterministic_settings(self.seed, self.num_threads)
