"""The load forecast against a planted hourly pattern (python_models/load_forecast/examples.py):
a daily curve, quieter weekends and a slow trend, drawn as Poisson counts."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from python_models.load_forecast.examples import planted_load, planted_rates
from python_models.load_forecast.model import (
    BASELINE,
    SERVED,
    LoadForecaster,
    beats_baseline,
    mape,
    seasonal_naive,
)
from python_models.load_forecast.params import LoadForecastParams

METRICS = ["count_events", "count_active_users"]


def _split(frame: pl.DataFrame, weeks: int):
    cut = frame["hour_ts"].min() + timedelta(hours=weeks * 168)
    return frame.filter(pl.col("hour_ts") < cut), frame.filter(pl.col("hour_ts") >= cut)


@pytest.fixture(scope="module")
def planted():
    """14 weeks: fit on the first 12, the last 2 are the future nobody has seen."""
    history, future = _split(planted_load(seed=3, weeks=14), 12)
    return history, future, LoadForecaster(METRICS).fit(history)


def test_forecast_follows_the_planted_rate_and_beats_seasonal_naive(planted):
    history, future, model = planted
    forecast = model.forecast().join(future, on=["metric", "hour_ts"])
    assert forecast.height == 2 * 168
    for metric in METRICS:
        rows = forecast.filter(pl.col("metric") == metric)
        actual = rows["value"].to_numpy()
        naive = seasonal_naive(
            history.filter(pl.col("metric") == metric).select("hour_ts", "value"), rows["hour_ts"]
        )
        ours, theirs = mape(actual, rows["score"].to_numpy()), mape(actual, naive)
        print(f"\n{metric}: MAPE forecast {ours:.3f}, seasonal-naive {theirs:.3f}")
        assert ours < theirs
    # The point forecast tracks the planted expected events (within 15% on average).
    events = forecast.filter(pl.col("metric") == "count_events")
    truth = planted_rates(14 * 168)[12 * 168 : 13 * 168]
    assert np.mean(np.abs(events["score"].to_numpy() - truth) / truth) < 0.15


def test_the_planted_weekly_pattern_is_found(planted):
    """Weekends were planted at 0.5-0.6 of a weekday: the forecast says so too."""
    _, _, model = planted
    events = model.forecast().filter(pl.col("metric") == "count_events")
    by_day = events.group_by(pl.col("hour_ts").dt.weekday().alias("day")).agg(pl.col("score").sum())
    daily = dict(zip(by_day["day"], by_day["score"], strict=True))
    weekend, weekday = (daily[6] + daily[7]) / 2, np.mean([daily[d] for d in range(1, 6)])
    assert 0.45 < weekend / weekday < 0.7


def test_intervals_cover_at_their_stated_level(planted):
    """80% intervals on the two unseen weeks (each forecast from the hours before it) and in
    the rolling-origin backtest hold 80% of the actual hours, give or take sampling noise."""
    history, future, model = planted
    inside = []
    for week in (0, 1):
        seen = pl.concat([history, future]).filter(
            pl.col("hour_ts") < future["hour_ts"].min() + timedelta(hours=168 * week)
        )
        fitted = model if week == 0 else LoadForecaster(METRICS).fit(seen)
        rows = fitted.forecast().join(future, on=["metric", "hour_ts"])
        inside.append(
            ((rows["value"] >= rows["lower"]) & (rows["value"] <= rows["upper"])).to_numpy()
        )
    coverage = float(np.concatenate(inside).mean())
    backtest = model.evaluate(pl.concat([history, future]))
    print(f"\ncoverage of 80% intervals: unseen weeks {coverage:.3f}\n{backtest}")
    assert abs(coverage - 0.8) < 0.08
    served = backtest.filter(pl.col("variant") == SERVED).row(0, named=True)
    for metric in METRICS:
        assert abs(served[f"coverage_{metric}"] - 0.8) < 0.08


def test_backtest_beats_seasonal_naive_on_every_metric(planted):
    history, _, model = planted
    evaluation = model.evaluate(history)
    assert evaluation["variant"].to_list() == [BASELINE, SERVED]
    assert evaluation["origins"][0] == 4
    assert beats_baseline(evaluation, METRICS)


def test_horizon_is_a_setting(planted):
    history, _, _ = planted
    params = LoadForecastParams.from_overrides({"horizon_hours": 24})
    out = LoadForecaster(METRICS, params).fit(history).predict_frame(history)
    assert out.height == 2 * 24
    assert out["hour_ts"].min() == history["hour_ts"].max() + timedelta(hours=1)
    assert (out["lower"] <= out["score"]).all() and (out["score"] <= out["upper"]).all()
    assert out["reasons"].str.contains("UTC").all()


def test_gaps_and_short_histories_are_clear_errors():
    frame = planted_load(seed=1, weeks=3)
    with pytest.raises(ValueError, match="consecutive"):
        LoadForecaster(METRICS).fit(frame.filter(pl.col("hour_ts").dt.hour() != 3))
    with pytest.raises(ValueError, match="at least"):
        LoadForecaster(METRICS).fit(
            frame.filter(pl.col("hour_ts") < frame["hour_ts"].min() + timedelta(days=10))
        )
    with pytest.raises(ValueError, match="no hours"):
        LoadForecaster(["count_sessions"]).fit(frame)


def test_holidays_setting_learns_a_planted_holiday_dip():
    """Three holidays at 40% load inside the training window and one in the forecast week:
    with the dates in the `holidays` setting the forecast dips with them; without, it does not."""
    days = {37: 0.4, 58: 0.4, 72: 0.4, 87: 0.4}  # day 87 is a Wednesday of the forecast week
    history, future = _split(planted_load(seed=5, weeks=14, holidays=days), 12)
    start = history["hour_ts"].min()
    dates = ",".join(str((start + timedelta(days=d)).date()) for d in days)
    truth = planted_rates(14 * 168, holidays=days)[87 * 24 : 88 * 24]
    holiday = (start + timedelta(days=87)).date()

    def holiday_forecast(params: LoadForecastParams) -> np.ndarray:
        model = LoadForecaster(METRICS, params).fit(history)
        rows = model.forecast().filter(
            (pl.col("metric") == "count_events") & (pl.col("hour_ts").dt.date() == holiday)
        )
        return rows["score"].to_numpy()

    with_dates = holiday_forecast(LoadForecastParams(holidays=dates))
    without = holiday_forecast(LoadForecastParams())
    assert len(with_dates) == 24
    print(
        f"\nholiday: forecast / truth {with_dates.sum() / truth.sum():.2f} with the dates, "
        f"{without.sum() / truth.sum():.2f} without"
    )
    assert abs(with_dates.sum() / truth.sum() - 1) < 0.2
    assert without.sum() / truth.sum() > 1.8  # the planted dip is 0.4: 2.5x without dates
    assert mape(truth, with_dates) < 0.5 * mape(truth, without)


def test_a_bad_holiday_date_is_refused_with_its_text():
    with pytest.raises(ValueError, match="holidays: '2025-13-01' is not an ISO date"):
        LoadForecastParams(holidays="2025-12-25, 2025-13-01")
