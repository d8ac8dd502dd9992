"""The gate's rules as one value, built from the settings: `uba gate` and the Dagster asset and
check all read them from here, so there is one corrupt-batch threshold and one pair of date
bounds in the project (docs/quality_gate.md lists the settings)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from python_models.config import Settings, SettingsError, get_settings


@dataclass(frozen=True)
class GateRules:
    # A load batch (one file) whose share of defective rows (quarantined for any reason but
    # being a duplicate) is above this is blocked: none of its rows reach events_validated.
    max_quarantine_rate: float = 0.2
    # Event times before this date are out of range (purchases from 1997 pass by default).
    earliest_event_date: date = date(1990, 1, 1)
    # An event may be stamped this long after it was received or loaded (device clocks).
    max_clock_skew_days: float = 1.0
    # An event stamped more than this many days before the newest event time already accepted
    # (raw.events_validated, before the run) is quarantined as event_too_late; 0 turns the rule
    # off. Relative to the warehouse, never the wall clock: a first load into an empty
    # warehouse accepts its whole history. Why: the daily models re-cut every person, day and
    # report from the earliest changed event time, so one row from a reset device clock (1990)
    # made a 126 s day 399 s at 10M events, publish included (docs/performance.md). Why 7: the
    # latest real late rows seen (Snowplow's labelled late arrivals, replayed in daily
    # batches: 3.6 days behind the newest accepted event; the generator's late arrivals: up to
    # 72 h) fit with room to spare; GA4 takes 72 h, Mixpanel's /track 5 days.
    # `uba gate --release-late LOAD_ID` lets a batch's late rows in after review.
    late_window_days: float = 7.0
    # properties.revenue outside [revenue_min, revenue_max] is implausible.
    revenue_min: float = 0.0
    revenue_max: float = 1_000_000.0
    # Event names the tracking plan does not list: "flag" (keep, is_planned_event false) or
    # "quarantine" (reason unknown_event_name).
    unknown_event_policy: str = "flag"

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_quarantine_rate <= 1.0:
            raise SettingsError(
                f"max quarantine rate {self.max_quarantine_rate} must be between 0 and 1"
            )
        if self.revenue_min > self.revenue_max:
            raise SettingsError(
                f"UBA_REVENUE_MIN ({self.revenue_min}) is above UBA_REVENUE_MAX "
                f"({self.revenue_max})"
            )
        if self.late_window_days < 0:
            raise SettingsError(f"late window {self.late_window_days} days must not be negative")
        if self.unknown_event_policy not in ("flag", "quarantine"):
            raise SettingsError(
                f"unknown-event policy {self.unknown_event_policy!r}: use flag or quarantine"
            )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides) -> GateRules:
        settings = settings or get_settings()
        rules = cls(
            max_quarantine_rate=settings.max_quarantine_rate,
            earliest_event_date=settings.earliest_event_date,
            max_clock_skew_days=settings.max_clock_skew_days,
            late_window_days=settings.late_window_days,
            revenue_min=settings.revenue_min,
            revenue_max=settings.revenue_max,
            unknown_event_policy=settings.unknown_event_policy,
        )
        return replace(rules, **overrides) if overrides else rules
