"""The tracking plan: the user's own list of events (dbt seed event_taxonomy.csv), validated.

One file, edited by the user (docs/tracking_plan.md): event names, categories, which events are
conversions, and the properties each event requires or may carry, with their types. dbt seeds
it as `reference.event_taxonomy` (funnels and reports read `is_conversion`), the gate checks
event names and property types against it, and schema drift treats declared keys as known.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from python_models.config import DBT_PROJECT_DIR

TRACKING_PLAN_PATH = DBT_PROJECT_DIR / "seeds" / "event_taxonomy.csv"
PLAN_COLUMNS = (
    "event_name",
    "category",
    "description",
    "is_conversion",
    "required_properties",
    "optional_properties",
)
PROPERTY_TYPES = ("string", "number", "integer", "boolean", "object", "array")
_BOOLEANS = {"true": True, "false": False}
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TrackingPlanError(ValueError):
    """The tracking plan file is malformed; the message names the file, line and problem."""


@dataclass(frozen=True)
class PropertySpec:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class EventSpec:
    event_name: str
    category: str
    description: str
    is_conversion: bool
    properties: tuple[PropertySpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TrackingPlan:
    path: Path
    events: tuple[EventSpec, ...]

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.event_name for event in self.events)

    @property
    def conversion_events(self) -> tuple[str, ...]:
        return tuple(event.event_name for event in self.events if event.is_conversion)

    def declared_properties(self) -> dict[str, tuple[PropertySpec, ...]]:
        """event name -> its declared properties (events without any are left out)."""
        return {event.event_name: event.properties for event in self.events if event.properties}


def _parse_properties(text: str, required: bool, where: str, column: str) -> list[PropertySpec]:
    specs = []
    for item in (part.strip() for part in (text or "").split(";")):
        if not item:
            continue
        name, sep, type_name = (piece.strip() for piece in item.partition(":"))
        if not sep:
            raise TrackingPlanError(
                f"{where}: {column} entry {item!r} is not name:type (e.g. revenue:number)"
            )
        if not _PROPERTY_NAME.match(name):
            raise TrackingPlanError(
                f"{where}: {column} property name {name!r} must be letters, digits and _"
            )
        if type_name.lower() not in PROPERTY_TYPES:
            raise TrackingPlanError(
                f"{where}: {column} property {name!r} has unknown type {type_name!r}; "
                f"choose from {', '.join(PROPERTY_TYPES)}"
            )
        specs.append(PropertySpec(name=name, type=type_name.lower(), required=required))
    return specs


def read_tracking_plan(path: str | Path | None = None) -> TrackingPlan:
    """Read and validate the plan; raise TrackingPlanError naming the line of the first problem."""
    path = Path(path) if path is not None else TRACKING_PLAN_PATH
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TrackingPlanError(f"{path}: tracking plan not found") from None
    except UnicodeDecodeError as exc:
        raise TrackingPlanError(f"{path}: not UTF-8 text ({exc.reason})") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in ("event_name", "is_conversion") if name not in header]
    if missing:
        raise TrackingPlanError(
            f"{path}: header lacks {', '.join(missing)} (columns: {', '.join(PLAN_COLUMNS)})"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise TrackingPlanError(f"{path}: header names {', '.join(repeated)} more than once")
    events: list[EventSpec] = []
    seen: dict[str, int] = {}
    for line_number, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{path} line {line_number}"
        name = row.get("event_name", "")
        if not name:
            raise TrackingPlanError(f"{where}: empty event_name")
        if name in seen:
            raise TrackingPlanError(
                f"{where}: event {name!r} is already declared on line {seen[name]}"
            )
        seen[name] = line_number
        flag = row.get("is_conversion", "").lower()
        if flag not in _BOOLEANS:
            raise TrackingPlanError(
                f"{where}: is_conversion for {name!r} must be true or false, got {flag!r}"
            )
        properties = _parse_properties(
            row.get("required_properties", ""), True, where, "required_properties"
        ) + _parse_properties(
            row.get("optional_properties", ""), False, where, "optional_properties"
        )
        names = [spec.name for spec in properties]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TrackingPlanError(f"{where}: property {', '.join(twice)} declared twice")
        events.append(
            EventSpec(
                event_name=name,
                category=row.get("category", ""),
                description=row.get("description", ""),
                is_conversion=_BOOLEANS[flag],
                properties=tuple(properties),
            )
        )
    if not events:
        raise TrackingPlanError(f"{path}: the tracking plan lists no events")
    return TrackingPlan(path=path, events=tuple(events))
