"""A tiny seeded segmentation problem: three planted personas in the event-type shares."""

from __future__ import annotations

import polars as pl

from python_models.common.examples import EVENT_TYPES, toy_snapshots
from python_models.common.spec import Example

FEATURES = [
    "days_since_last_event",
    "count_events_30d",
    "count_events_90d",
    "sum_revenue_usd_90d",
    *[f"share_{event_type}_90d" for event_type in EVENT_TYPES],
]


def example(seed: int) -> Example:
    frame = toy_snapshots(seed, users=240, snapshots=2)
    return Example(
        features=FEATURES,
        frame=frame.filter(pl.col("as_of_date") == frame["as_of_date"].max()),
        params={"n_init": 3},
    )
