"""LTV model defaults (overrides via `train_model(..., params=...)`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class LtvParams:
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
    purge: str = "auto"  # "auto", "true" or "false"
    champion_tolerance: float = 0.01
    reason_chunk_size: int = 20_000
    seed: int = 42
    num_threads: int = 2

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> LtvParams:
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown ltv parameters {unknown}; known: {sorted(known)}")
        params = replace(cls(), **overrides)
        if not 1.0 < params.tweedie_variance_power < 2.0:
            raise ValueError("tweedie_variance_power must be in (1, 2)")
        if not 0.0 < params.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in (0, 1)")
        return params

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

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
            "seed": self.seed,
            "bagging_seed": self.seed,
            "feature_fraction_seed": self.seed,
            "data_random_seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }
