"""Tiny seeded user snapshots in the feature mart's shape, with the latent truth that made
them (`truth_*` columns). The models' `examples.py` turn them into their own inputs; the shared
estimator checks (tests/unit/test_estimator_checks.py) fit every model on them in seconds."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

FIRST_SNAPSHOT = date(2025, 1, 6)  # a Monday, like the mart's weekly grid
EVENT_TYPES = ("page_view", "click", "search", "purchase")
# Three behaviours: browsers, searchers, shoppers (shares of the four event types).
PERSONA_MIX = np.array(
    [[0.75, 0.15, 0.05, 0.05], [0.20, 0.15, 0.60, 0.05], [0.25, 0.20, 0.10, 0.45]]
)


def toy_snapshots(seed: int, users: int = 120, snapshots: int = 4) -> pl.DataFrame:
    """One row per (user, weekly snapshot): a few catalogue features drawn from each user's
    latent activity, spend and persona."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(2.0, 0.75, users)
    spend = rng.gamma(1.0, 25.0, users) * (rng.random(users) < 0.6)
    persona = rng.integers(0, len(PERSONA_MIX), users)
    frames = []
    for week in range(snapshots):
        rate = activity * rng.uniform(0.7, 1.3, users)
        events_90d = rng.poisson(rate * 90).astype(float)
        mix = PERSONA_MIX[persona] + rng.normal(0, 0.02, (users, len(EVENT_TYPES)))
        mix = np.clip(mix, 0.0, None)
        mix = mix / mix.sum(axis=1, keepdims=True)
        columns = {
            "user_id": [f"user-{i:04d}" for i in range(users)],
            "as_of_date": [FIRST_SNAPSHOT + timedelta(days=7 * week)] * users,
            "tenure_days": rng.uniform(30, 400, users),
            "days_since_last_event": rng.exponential(3.0 / np.maximum(rate, 0.05)),
            "count_events_7d": rng.poisson(rate * 7).astype(float),
            "count_events_30d": rng.poisson(rate * 30).astype(float),
            "count_events_90d": np.where(rng.random(users) < 0.05, 0.0, events_90d),
            "count_sessions_30d": rng.poisson(rate * 8).astype(float),
            "sum_revenue_usd_90d": spend * rng.poisson(rate * 3),
            "truth_activity": activity,
            "truth_spend": spend,
            "truth_persona": persona,
        }
        for j, event_type in enumerate(EVENT_TYPES):
            columns[f"share_{event_type}_90d"] = mix[:, j]
        frames.append(pl.DataFrame(columns))
    return pl.concat(frames)


def split_last_snapshot(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(every snapshot but the last, the last): fit and validation frames, as a time split."""
    last = frame["as_of_date"].max()
    return frame.filter(pl.col("as_of_date") < last), frame.filter(pl.col("as_of_date") == last)
