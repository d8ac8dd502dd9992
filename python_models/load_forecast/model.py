"""Load forecast: events and active users per UTC hour for the next `horizon_hours`.

Per metric, a ridge regression of log1p(value) on calendar terms: Fourier pairs of the hour of
the day and of the hour of the week (daily and weekly seasonality), a linear trend and, when
the `holidays` setting names dates, a holiday indicator, fitted on the newest `training_weeks`
with recency weights. Prediction intervals are split-conformal:
the quantiles of the log-scale errors of `calibration_origins` earlier forecasts, each made
inside the fit from the hours before its origin. The baseline is seasonal-naive (the same hour
one week earlier); the evaluation is a rolling-origin backtest, each origin refit from scratch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Self

import numpy as np
import polars as pl

from python_models.common.estimator import Estimator
from python_models.load_forecast.hourly import METRICS
from python_models.load_forecast.params import LoadForecastParams

if TYPE_CHECKING:  # sklearn costs seconds to import: loaded where it is used
    from sklearn.linear_model import Ridge

WEEK_HOURS = 168
MIN_FIT_HOURS = 2 * WEEK_HOURS  # two weeks: a weekly pattern seen twice
SERVED = "ridge_calendar"
BASELINE = "seasonal_naive"
# Hour-of-week 0 is Monday 00:00 UTC.
_EPOCH_MONDAY = datetime(2024, 1, 1)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _hours_since(ts: pl.Series, anchor: datetime) -> np.ndarray:
    since = ts.cast(pl.Datetime("us")).to_numpy() - np.datetime64(anchor, "us")
    return (since / np.timedelta64(1, "h")).astype(float)


def calendar_terms(
    hours: pl.Series, params: LoadForecastParams, trend_anchor: datetime
) -> np.ndarray:
    """Design matrix: [trend in weeks since trend_anchor], [holiday indicator], daily and
    weekly Fourier pairs."""
    since_epoch = _hours_since(hours, _EPOCH_MONDAY)
    columns = []
    if params.trend:
        columns.append(_hours_since(hours, trend_anchor) / WEEK_HOURS)
    holidays = params.holiday_dates()
    if holidays:
        columns.append(hours.dt.date().is_in(list(holidays)).cast(pl.Float64).to_numpy())
    for period, harmonics in ((24, params.daily_harmonics), (WEEK_HOURS, params.weekly_harmonics)):
        for k in range(1, harmonics + 1):
            angle = 2 * np.pi * k * since_epoch / period
            columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(hours), 1))
    return np.column_stack(columns)


@dataclass
class SeriesFit:
    """One metric's fitted calendar model."""

    ridge: Ridge
    trend_anchor: datetime
    last_hour: datetime

    def log_predict(self, hours: pl.Series, params: LoadForecastParams) -> np.ndarray:
        return self.ridge.predict(calendar_terms(hours, params, self.trend_anchor))

    def predict(self, hours: pl.Series, params: LoadForecastParams) -> np.ndarray:
        return np.clip(np.expm1(self.log_predict(hours, params)), 0.0, None)


def check_series(series: pl.DataFrame, metric: str) -> pl.DataFrame:
    """`series` (hour_ts, value) sorted, one row per hour, no gaps, no negative values."""
    series = series.sort("hour_ts")
    if series["hour_ts"].is_duplicated().any():
        raise ValueError(f"{metric}: an hour appears twice")
    steps = series["hour_ts"].diff().drop_nulls().unique().to_list()
    if steps and steps != [timedelta(hours=1)]:
        raise ValueError(f"{metric}: hours must be consecutive (reports.rpt_load_hourly is)")
    if series["value"].null_count() or (series["value"] < 0).any():
        raise ValueError(f"{metric}: values must be non-negative numbers")
    return series


def fit_series(series: pl.DataFrame, params: LoadForecastParams) -> SeriesFit:
    """The calendar model on the newest `training_weeks` of `series` (hour_ts, value)."""
    from sklearn.linear_model import Ridge

    if series.height < MIN_FIT_HOURS:
        raise ValueError(
            f"{series.height} hours of history: the forecast needs at least {MIN_FIT_HOURS}"
        )
    window = series.tail(params.training_weeks * WEEK_HOURS)
    anchor = window["hour_ts"][0]
    x = calendar_terms(window["hour_ts"], params, anchor)
    y = np.log1p(window["value"].to_numpy())
    weights = None
    if params.recency_half_life_days > 0:
        age_days = (window.height - 1 - np.arange(window.height)) / 24.0
        weights = 0.5 ** (age_days / params.recency_half_life_days)
    ridge = Ridge(alpha=params.ridge_alpha).fit(x, y, sample_weight=weights)
    return SeriesFit(ridge=ridge, trend_anchor=anchor, last_hour=window["hour_ts"][-1])


def future_hours(after: datetime, horizon: int) -> pl.Series:
    return pl.Series(
        "hour_ts",
        [after + timedelta(hours=h) for h in range(1, horizon + 1)],
        dtype=pl.Datetime("us"),
    )


def seasonal_naive(series: pl.DataFrame, hours: pl.Series) -> np.ndarray:
    """The value of the same hour 1 week earlier (k weeks earlier `k` hours-ahead > 1 week),
    from the history `series` (hour_ts, value) that ends before `hours`."""
    lead = _hours_since(hours, series["hour_ts"][-1])
    back = (np.ceil(lead / WEEK_HOURS) * WEEK_HOURS).astype("timedelta64[h]")
    source = hours.cast(pl.Datetime("us")).to_numpy() - back
    looked_up = pl.DataFrame({"hour_ts": source}).join(
        series.select(pl.col("hour_ts").cast(pl.Datetime("us")), "value"),
        on="hour_ts",
        how="left",
        maintain_order="left",
    )
    return looked_up["value"].fill_null(0.0).to_numpy()


def residual_quantiles(series: pl.DataFrame, params: LoadForecastParams) -> tuple[float, float]:
    """(low, high) quantiles of log1p(actual) - log1p(forecast) over `calibration_origins`
    forecasts of `horizon_hours`, each fitted on the hours before its origin."""
    horizon = params.horizon_hours
    residuals = []
    for i in range(1, params.calibration_origins + 1):
        end = series.height - (i - 1) * horizon
        origin = series.height - i * horizon
        if origin < MIN_FIT_HOURS:
            break
        fit = fit_series(series.head(origin), params)
        target = series.slice(origin, end - origin)
        residuals.append(
            np.log1p(target["value"].to_numpy()) - fit.log_predict(target["hour_ts"], params)
        )
    if not residuals:
        raise ValueError(
            f"{series.height} hours of history: the intervals need at least "
            f"{MIN_FIT_HOURS + horizon} (two weeks plus one horizon of {horizon} hours)"
        )
    pooled = np.concatenate(residuals)
    tail = (1 - params.interval_level) / 2
    low, high = np.quantile(pooled, [tail, 1 - tail])
    return float(low), float(high)


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error over the hours with a non-zero actual (NaN if none)."""
    mask = actual > 0
    if not mask.any():
        return float("nan")
    return float(np.mean(np.abs(actual[mask] - predicted[mask]) / actual[mask]))


def wape(actual: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum(actual))
    return float(np.sum(np.abs(actual - predicted)) / total) if total else float("nan")


class LoadForecaster(Estimator):
    """Hourly forecasts per metric. Frames are long: (metric, hour_ts, value), one row per
    metric and hour; `features` are the metrics forecast."""

    params_class = LoadForecastParams
    params: LoadForecastParams

    def __init__(self, features: list[str] | None = None, params: LoadForecastParams | None = None):
        super().__init__(list(METRICS) if features is None else features, params)

    def _series(self, frame: pl.DataFrame, metric: str) -> pl.DataFrame:
        series = frame.filter(pl.col("metric") == metric).select("hour_ts", "value")
        if series.height == 0:
            raise ValueError(f"no hours of {metric!r} in the frame")
        return check_series(series, metric)

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        """`validation` is unused: intervals come from forecasts made inside the history."""
        fits, quantiles = {}, {}
        for metric in self.features:
            series = self._series(frame, metric)
            fits[metric] = fit_series(series, self.params)
            quantiles[metric] = residual_quantiles(series, self.params)
        self.fits_ = fits
        self.residual_quantiles_ = quantiles
        self.last_hour_ = max(fit.last_hour for fit in fits.values())
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """The point forecast for each row's (metric, hour_ts)."""
        self.check_fitted()
        out = np.empty(frame.height)
        metric_of_row = frame["metric"].to_numpy()
        for metric in np.unique(metric_of_row):
            if metric not in self.fits_:
                raise ValueError(f"no model for metric {metric!r}; fitted: {list(self.fits_)}")
            rows = np.flatnonzero(metric_of_row == metric)
            out[rows] = self.fits_[metric].predict(frame["hour_ts"].gather(rows), self.params)
        return out

    def forecast(self, after: datetime | None = None) -> pl.DataFrame:
        """(metric, hour_ts, score, lower, upper) for the `horizon_hours` after `after`
        (default: the last hour fitted)."""
        self.check_fitted()
        after = after or self.last_hour_
        hours = future_hours(after, self.params.horizon_hours)
        parts = []
        for metric, fit in self.fits_.items():
            log_point = fit.log_predict(hours, self.params)
            low, high = self.residual_quantiles_[metric]
            parts.append(
                pl.DataFrame(
                    {
                        "metric": [metric] * len(hours),
                        "hour_ts": hours,
                        "score": np.clip(np.expm1(log_point), 0, None),
                        "lower": np.clip(np.expm1(log_point + low), 0, None),
                        "upper": np.clip(np.expm1(log_point + high), 0, None),
                    }
                )
            )
        return pl.concat(parts)

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Score-table rows: the forecast for the `horizon_hours` after the last hour of
        `frame`, per metric, with intervals and the calendar effect in words."""
        after = frame["hour_ts"].max()
        out = self.forecast(after)
        return out.with_columns(
            pl.lit(after.date()).alias("as_of_date"),
            pl.lit(self.params.interval_level).alias("interval_level"),
            pl.Series("reasons", self._reasons(out), dtype=pl.String),
        )

    def _reasons(self, forecast: pl.DataFrame) -> list[str]:
        """'Tue 20:00 UTC: 1.8x a typical hour; trend +2% per week' per forecast row."""
        out: list[str] = []
        for metric in forecast["metric"].unique(maintain_order=True).to_list():
            hours = forecast.filter(pl.col("metric") == metric)["hour_ts"]
            fit = self.fits_[metric]
            terms = calendar_terms(hours, self.params, fit.trend_anchor)
            coef = fit.ridge.coef_
            seasonal = terms[:, 1:] @ coef[1:] if self.params.trend else terms @ coef
            weekly = f"; trend {math.expm1(coef[0]):+.0%} per week" if self.params.trend else ""
            for ts, effect in zip(hours.to_list(), seasonal, strict=True):
                out.append(
                    f"{_DAYS[ts.weekday()]} {ts.hour:02d}:00 UTC: "
                    f"{math.exp(effect):.1f}x a typical hour{weekly}"
                )
        return out

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rolling-origin backtest on `frame`: at each of the last `backtest_origins` origins
        (one horizon apart) a new forecaster is fitted on the hours before it and forecasts the
        next `horizon_hours`, next to seasonal-naive. One row per variant; per metric the MAPE
        (non-zero hours), WAPE and, for the forecaster, the interval coverage."""
        horizon = self.params.horizon_hours
        collected: dict[tuple[str, str], list[np.ndarray]] = {}
        origins = 0
        for i in range(self.params.backtest_origins, 0, -1):
            history_parts, target_parts = [], []
            for metric in self.features:
                series = self._series(frame, metric)
                origin = series.height - i * horizon
                history_parts.append(series.head(origin).with_columns(metric=pl.lit(metric)))
                target_parts.append(
                    series.slice(origin, horizon).with_columns(metric=pl.lit(metric))
                )
            if min(part.height for part in history_parts) < MIN_FIT_HOURS + horizon:
                continue
            history = pl.concat(history_parts)
            model = LoadForecaster(self.features, self.params).fit(history)
            forecast = model.forecast()
            origins += 1
            for metric, target in zip(self.features, target_parts, strict=True):
                ahead = forecast.filter(pl.col("metric") == metric).head(target.height)
                actual = target["value"].to_numpy()
                naive = seasonal_naive(
                    history.filter(pl.col("metric") == metric), target["hour_ts"]
                )
                inside = (actual >= ahead["lower"].to_numpy()) & (
                    actual <= ahead["upper"].to_numpy()
                )
                for key, values in (
                    ("actual", actual),
                    (SERVED, ahead["score"].to_numpy()),
                    (BASELINE, naive),
                    ("covered", inside.astype(float)),
                ):
                    collected.setdefault((metric, key), []).append(values)
        if not origins:
            raise ValueError(
                f"too little history for a backtest: each origin needs "
                f"{MIN_FIT_HOURS + 2 * horizon} hours before its forecast ends"
            )
        rows = []
        for variant in (BASELINE, SERVED):
            row: dict[str, float | str] = {"variant": variant, "split": "backtest"}
            for metric in self.features:
                actual = np.concatenate(collected[(metric, "actual")])
                predicted = np.concatenate(collected[(metric, variant)])
                row[f"mape_{metric}"] = mape(actual, predicted)
                row[f"wape_{metric}"] = wape(actual, predicted)
                row[f"coverage_{metric}"] = (
                    float(np.concatenate(collected[(metric, "covered")]).mean())
                    if variant == SERVED
                    else float("nan")
                )
            row["origins"] = float(origins)
            rows.append(row)
        return pl.DataFrame(rows)


def beats_baseline(evaluation: pl.DataFrame, metrics: list[str]) -> bool:
    """Lower backtest MAPE than seasonal-naive on every metric."""
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    return all(by_variant[SERVED][f"mape_{m}"] < by_variant[BASELINE][f"mape_{m}"] for m in metrics)
