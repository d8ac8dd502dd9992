"""Time-based splits over weekly snapshots, purged so no training label peeks past the holdout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class TimeSplit:
    fit_dates: list[date]
    calibration_date: date
    holdout_date: date
    purged: bool = True

    @property
    def window(self) -> tuple[date, date]:
        return self.fit_dates[0], self.holdout_date

    def describe(self) -> str:
        return (
            f"fit on {len(self.fit_dates)} snapshots {self.fit_dates[0]}..{self.fit_dates[-1]}, "
            f"calibrate on {self.calibration_date}, hold out {self.holdout_date}"
            + ("" if self.purged else " (not purged: label windows overlap the holdout)")
        )


def time_split(matured_dates: list[date], horizon_days: int, purge: bool | str = True) -> TimeSplit:
    """Holdout = the latest matured snapshot; calibration = the latest one before it whose label
    window closes by the holdout date (purged), fit = all earlier ones.

    With `purge`, a training snapshot's label window [d, d + horizon) must end on or before the
    holdout date, so training never sees outcomes from the holdout period. `purge="auto"` purges
    when the data covers enough weeks and otherwise keeps all earlier snapshots (with a note in
    `TimeSplit.purged`), for short samples where a long horizon would leave nothing to train on.
    """
    dates = sorted(set(matured_dates))
    if len(dates) < 3:
        raise ValueError(
            f"need at least 3 matured snapshots for a time split, found {len(dates)}: "
            "generate a longer date range or shorten the label horizon"
        )
    holdout = dates[-1]
    purged = [d for d in dates[:-1] if d + timedelta(days=horizon_days) <= holdout]
    if purge == "auto":
        purge = len(purged) >= 2
    training = purged if purge else dates[:-1]
    if len(training) < 2:
        raise ValueError(
            f"only {len(training)} snapshot(s) end their {horizon_days}-day label window before "
            f"the holdout {holdout}; need 2 (fit + calibration): the data covers too few weeks"
        )
    return TimeSplit(
        fit_dates=training[:-1],
        calibration_date=training[-1],
        holdout_date=holdout,
        purged=bool(purge),
    )


def apply_split(frame: pl.DataFrame, split: TimeSplit):
    fit = frame.filter(pl.col("as_of_date").is_in(split.fit_dates))
    calibration = frame.filter(pl.col("as_of_date") == split.calibration_date)
    holdout = frame.filter(pl.col("as_of_date") == split.holdout_date)
    return fit, calibration, holdout
