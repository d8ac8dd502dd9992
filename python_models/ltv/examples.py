"""A tiny seeded LTV problem: future revenue follows the planted spend and activity."""

from __future__ import annotations

import numpy as np
import polars as pl

from python_models.common.examples import split_last_snapshot, toy_snapshots
from python_models.common.spec import Example

FEATURES = [
    "days_since_last_event",
    "count_events_30d",
    "count_sessions_30d",
    "sum_revenue_usd_90d",
]


def example(seed: int) -> Example:
    frame = toy_snapshots(seed)
    rng = np.random.default_rng(seed + 1)
    expected = frame["truth_spend"].to_numpy() * frame["truth_activity"].to_numpy()
    revenue = expected * rng.gamma(4.0, 0.25, frame.height)  # zero for users who never spend
    frame = frame.with_columns(pl.Series("label", revenue))
    fit, validation = split_last_snapshot(frame)
    return Example(FEATURES, fit, validation, params={"num_threads": 1})
