"""Tiny seeded user-days in the shape of `python_models.anomaly.daily`, with three planted
takeover days (new country, odd hours, a burst, settings changes)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from python_models.anomaly.daily import MODEL_COLUMNS
from python_models.common.spec import Example

PLANTED = ("user-0003", "user-0011", "user-0017")


def example(seed: int, users: int = 20, days: int = 30) -> Example:
    rng = np.random.default_rng(seed)
    n = users * days
    usual = rng.uniform(5, 40, users).repeat(days)
    count_events = rng.poisson(usual)
    frame = pl.DataFrame(
        {
            "user_id": np.repeat([f"user-{i:04d}" for i in range(users)], days),
            "activity_date": [date(2025, 3, 1) + timedelta(days=d) for d in range(days)] * users,
            "count_events": count_events,
            "count_logins": rng.poisson(1.0, n),
            "count_countries": np.ones(n, dtype=np.int64),
            "count_devices": np.ones(n, dtype=np.int64),
            "count_new_countries": np.zeros(n, dtype=np.int64),
            "new_countries": [None] * n,
            "count_new_devices": np.zeros(n, dtype=np.int64),
            "new_devices": [None] * n,
            "share_odd_hour_events": rng.uniform(0, 0.05, n),
            "first_odd_hour": [None] * n,
            "max_events_10m": rng.poisson(usual / 6),
            "count_password_resets": np.zeros(n, dtype=np.int64),
            "count_settings_changed": rng.binomial(1, 0.02, n),
            "baseline_days": np.full(n, 28),
            "baseline_events": usual,
            "z_events": (count_events - usual) / np.maximum(np.sqrt(usual), 2.0),
            "z_burst": rng.normal(0, 1, n),
            "odd_share_increase": rng.normal(0, 0.02, n),
            "account_changes_increase": rng.normal(0, 0.1, n),
        },
        schema_overrides={
            "new_countries": pl.String,
            "new_devices": pl.String,
            "first_odd_hour": pl.Int64,
        },
    )
    takeover = pl.col("user_id").is_in(PLANTED) & (pl.col("activity_date") == date(2025, 3, 20))
    planted = {
        "count_new_countries": 1,
        "new_countries": "RU",
        "odd_share_increase": 0.8,
        "first_odd_hour": 3,
        "z_burst": 6.0,
        "count_settings_changed": 4,
        "account_changes_increase": 3.5,
    }
    frame = frame.with_columns(
        pl.when(takeover).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        for column, value in planted.items()
    )
    return Example(features=list(MODEL_COLUMNS), frame=frame, params={"n_estimators": 50})
