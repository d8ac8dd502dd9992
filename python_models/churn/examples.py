"""A tiny seeded churn problem: low planted activity means churn."""

from __future__ import annotations

import numpy as np
import polars as pl

from python_models.common.examples import split_last_snapshot, toy_snapshots
from python_models.common.spec import Example

FEATURES = [
    "days_since_last_event",
    "count_events_7d",
    "count_events_30d",
    "count_sessions_30d",
    "sum_revenue_usd_90d",
]


def example(seed: int) -> Example:
    frame = toy_snapshots(seed)
    rng = np.random.default_rng(seed + 1)
    churn_odds = 1 / (1 + np.exp(3 * (frame["truth_activity"].to_numpy() - 1.2)))
    frame = frame.with_columns(pl.Series("label", rng.random(frame.height) < churn_odds))
    fit, validation = split_last_snapshot(frame)
    return Example(FEATURES, fit, validation, params={"num_threads": 1})
