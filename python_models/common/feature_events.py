"""Which feature columns the user's events get: the per-event feature list and the purchase
events, both read from configuration and checked against the tracking plan.

The rules are the dbt macros' in dbt_project/macros/uba_tracking_plan.sql (the build applies
them); this is their Python reading, for `uba features` (which regenerates the catalogue
entries of the per-event columns) and for the checks `uba build` runs before dbt:

- `uba__top_event_types` (dbt_project.yml) lists the events with their own feature columns
  (count_<event>_<N>d, share_<event>_<N>d, session_count_<event>, share_<event>_so_far): each a
  tracking-plan event whose name can be part of a column name.
- Purchases (count_purchases, average order value, days since the last purchase) are the plan's
  conversions (is_conversion = true) that declare a `revenue` property.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from python_models.config import DBT_PROJECT_DIR
from python_models.ingest.tracking_plan import TrackingPlan, read_tracking_plan

DBT_PROJECT_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
SETTING = "uba__top_event_types"
_COLUMN_PART = re.compile(r"^[a-z][a-z0-9_]*$")


class FeatureEventsError(ValueError):
    """The per-event feature setting does not fit the tracking plan; one line says what to edit."""


@dataclass(frozen=True)
class FeatureEvents:
    event_types: tuple[str, ...]  # uba__top_event_types, in order
    windows: tuple[int, ...]  # uba__feature_windows, ascending
    purchase_events: tuple[str, ...]

    @property
    def max_window(self) -> int:
        return max(self.windows)


def purchase_events(plan: TrackingPlan) -> tuple[str, ...]:
    """The plan's conversions that declare a revenue property (required or optional)."""
    return tuple(
        event.event_name
        for event in plan.events
        if event.is_conversion and any(spec.name == "revenue" for spec in event.properties)
    )


def project_vars(project_file: Path = DBT_PROJECT_FILE) -> dict:
    return (yaml.safe_load(project_file.read_text()) or {}).get("vars") or {}


def check_event_types(configured: object, plan: TrackingPlan) -> tuple[str, ...]:
    """The configured list, validated as the dbt macro uba_feature_event_types does."""
    where = f"{SETTING} (dbt_project/dbt_project.yml)"
    if not isinstance(configured, list) or not configured:
        raise FeatureEventsError(
            f"{where} must be a non-empty list of event names from the tracking plan, "
            "like [page_view, purchase]"
        )
    names: list[str] = []
    for name in configured:
        if not isinstance(name, str) or not _COLUMN_PART.match(name):
            raise FeatureEventsError(
                f"{where}: '{name}' cannot name a feature column; list events whose names are "
                "lowercase letters, digits and _"
            )
        if name in names:
            raise FeatureEventsError(f"{where} lists '{name}' twice")
        names.append(name)
    unplanned = [name for name in names if name not in plan.event_names]
    if unplanned:
        raise FeatureEventsError(
            f"{where} lists {', '.join(unplanned)}, not in the tracking plan "
            "dbt_project/seeds/event_taxonomy.csv: name events of your plan there "
            "(then run `uba features sync`)"
        )
    return tuple(names)


def read_feature_events(
    project_file: Path = DBT_PROJECT_FILE, plan_path: Path | None = None
) -> FeatureEvents:
    """The per-event feature configuration of the project, validated against its plan."""
    dbt_vars = project_vars(project_file)
    plan = read_tracking_plan(plan_path or project_file.parent / "seeds" / "event_taxonomy.csv")
    return FeatureEvents(
        event_types=check_event_types(dbt_vars.get(SETTING), plan),
        windows=tuple(sorted(int(w) for w in dbt_vars["uba__feature_windows"])),
        purchase_events=purchase_events(plan),
    )
