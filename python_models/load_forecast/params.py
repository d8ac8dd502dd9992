"""Load-forecast defaults. Overrides come from `uba train --param` or Dagster config
(`uba train --model load_forecast --param horizon_hours=72`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from python_models.common.params import ModelParams


@dataclass(frozen=True)
class LoadForecastParams(ModelParams):
    model_name: ClassVar[str] = "load_forecast"

    # How far ahead to forecast, in hours (7 days by default).
    horizon_hours: int = 168
    # Hours of history each fit sees (the newest ones), weighted towards the newest with this
    # half-life in days (0 = equal weights).
    training_weeks: int = 8
    recency_half_life_days: float = 28.0
    # Calendar terms (log scale): Fourier pairs of the day (24 h) and of the week (168 h), and
    # a linear trend.
    daily_harmonics: int = 8
    weekly_harmonics: int = 6
    trend: bool = True
    ridge_alpha: float = 1.0
    # Prediction intervals: central interval_level, from the log-scale residuals of
    # calibration_origins earlier forecasts made inside every fit (split conformal).
    interval_level: float = 0.8
    calibration_origins: int = 4
    # Holidays (optional): comma-separated ISO dates ("2025-12-25,2026-01-01"), UTC days whose
    # load differs from their weekday's. Each adds one indicator term (a level shift on the log
    # scale, learned from the holidays inside the training window; none there: no effect).
    holidays: str = ""
    # Evaluation: rolling-origin backtest over the last backtest_origins horizons, each refit
    # on the hours before its origin; MAPE over hours with a non-zero actual.
    backtest_origins: int = 4

    def check(self) -> None:
        if self.horizon_hours < 1 or self.training_weeks < 2:
            raise ValueError("horizon_hours must be >= 1 and training_weeks >= 2")
        if not 0.5 <= self.interval_level < 1:
            raise ValueError("interval_level must be in [0.5, 1)")
        if self.calibration_origins < 1 or self.backtest_origins < 1:
            raise ValueError("calibration_origins and backtest_origins must be >= 1")
        if not 0 <= self.daily_harmonics <= 12 or not 0 <= self.weekly_harmonics <= 6:
            raise ValueError("daily_harmonics must be in [0, 12] and weekly_harmonics in [0, 6]")
        if self.ridge_alpha < 0 or self.recency_half_life_days < 0:
            raise ValueError("ridge_alpha and recency_half_life_days must be >= 0")
        self.holiday_dates()  # a bad date is refused here, with its text

    def holiday_dates(self) -> frozenset[date]:
        """The `holidays` setting as dates."""
        days = set()
        for text in filter(None, (part.strip() for part in self.holidays.split(","))):
            try:
                days.add(date.fromisoformat(text))
            except ValueError:
                raise ValueError(
                    f"holidays: {text!r} is not an ISO date (YYYY-MM-DD, comma-separated)"
                ) from None
        return frozenset(days)
