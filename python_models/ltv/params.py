"""LTV model defaults. Overrides come from `uba train --param` or Dagster config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from python_models.common.booster import deterministic_settings
from python_models.common.params import ModelParams

PURGE_CHOICES = ("auto", "true", "false", "1", "0")


@dataclass(frozen=True)
class LtvParams(ModelParams):
    model_name: ClassVar[str] = "ltv"

    tweedie_variance_power: float = 1.3
    num_leaves: int = 15
    learning_rate: float = 0.05
    num_boost_round: int = 500
    early_stopping_rounds: int = 40
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    # Baseline: past spend rate x horizon. None = the catalogue's longest-window revenue sum.
    baseline_feature: str | None = None
    # Transaction-only path: share of users held out (seeded split).
    holdout_fraction: float = 0.25
    # Purge training snapshots whose label window overlaps the holdout ("auto": when possible).
    purge: str | bool = "auto"  # "auto", true or false
    champion_tolerance: float = 0.01
    reason_chunk_size: int = 20_000
    seed: int = 42
    num_threads: int = 2

    def check(self) -> None:
        if not 1.0 < self.tweedie_variance_power < 2.0:
            raise ValueError("tweedie_variance_power must be in (1, 2)")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in (0, 1)")
        if isinstance(self.purge, str) and self.purge.lower() not in PURGE_CHOICES:
            raise ValueError(f"purge must be 'auto', true or false, got {self.purge!r}")
        if self.num_leaves < 2 or self.num_boost_round < 1 or self.num_threads < 1:
            raise ValueError("num_leaves must be >= 2, num_boost_round and num_threads >= 1")

    def purge_split(self) -> bool | str:
        """What `time_split` takes: "auto", True or False."""
        if isinstance(self.purge, bool):
            return self.purge
        return "auto" if self.purge.lower() == "auto" else self.purge.lower() in ("true", "1")

    def lightgbm(self) -> dict[str, Any]:
        return {
            "objective": "tweedie",
            "tweedie_variance_power": self.tweedie_variance_power,
            "metric": "tweedie",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
        } | deterministic_settings(self.seed, self.num_threads)
