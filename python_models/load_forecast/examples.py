"""Seeded hourly load with a planted pattern: a daily curve (quiet nights, a midday and an
evening peak), quieter weekends and a slow trend, drawn as Poisson counts. The shared estimator
checks fit on it; the planted-truth test checks that the forecaster finds the pattern (beats
seasonal-naive) and that its intervals cover at their stated level."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from python_models.common.spec import Example
from python_models.load_forecast.hourly import METRICS

START = datetime(2025, 1, 6)  # a Monday
WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.1, 1.05, 0.95, 0.6, 0.5])  # Monday .. Sunday
EVENTS_PER_ACTIVE_USER = 3.5


def daily_curve(hour: np.ndarray) -> np.ndarray:
    return (
        0.15
        + np.exp(-0.5 * ((hour - 13) / 2.5) ** 2)
        + 1.3 * np.exp(-0.5 * ((hour - 20) / 2.0) ** 2)
    )


def planted_rates(
    hours: int,
    base: float = 30.0,
    weekly_growth: float = 0.01,
    holidays: dict[int, float] | None = None,
) -> np.ndarray:
    """Expected events per hour for `hours` hours from START; `holidays` maps a day number
    (0 = START's day) to its load factor (e.g. {23: 0.4}: day 23 at 40%)."""
    index = np.arange(hours)
    hour, day = index % 24, (index // 24) % 7
    rates = base * daily_curve(hour) * WEEKDAY_FACTOR[day] * (1 + weekly_growth) ** (index / 168)
    for day_number, factor in (holidays or {}).items():
        rates[day_number * 24 : (day_number + 1) * 24] *= factor
    return rates


def planted_load(
    seed: int, weeks: int = 10, base: float = 30.0, holidays: dict[int, float] | None = None
) -> pl.DataFrame:
    """(metric, hour_ts, value): Poisson events at the planted rate, and active users drawn at
    the rate / EVENTS_PER_ACTIVE_USER (never above the events)."""
    rng = np.random.default_rng(seed)
    rates = planted_rates(weeks * 168, base, holidays=holidays)
    events = rng.poisson(rates)
    users = np.minimum(rng.poisson(rates / EVENTS_PER_ACTIVE_USER), events)
    hours = [START + timedelta(hours=h) for h in range(len(rates))]
    wide = pl.DataFrame({"hour_ts": hours, METRICS[0]: events, METRICS[1]: users})
    return (
        wide.unpivot(index="hour_ts", on=list(METRICS), variable_name="metric", value_name="value")
        .with_columns(pl.col("value").cast(pl.Float64))
        .sort("metric", "hour_ts")
    )


def example(seed: int) -> Example:
    return Example(features=list(METRICS), frame=planted_load(seed))
