"""`uba features`: keep the feature catalogue's per-event columns in step with the configuration.

The feature marts have one column per configured event type and window (count_<event>_<N>d,
share_<event>_<N>d on ftr_user_features; session_count_<event>, share_<event>_so_far on
ftr_user_event_sequences). Their contract and catalogue entries live in
dbt_project/models/features/_features__models.yml, which dbt cannot loop over, so those entries
are generated here from `uba__top_event_types` and `uba__feature_windows`: each carries
`event_type: <event>` in its meta. `uba features sync` drops the entries of events no longer
listed, adds the new ones from the templates below (reasons say "'order paid' events" for
order_paid; edit them freely, a sync keeps an existing entry as it is) and leaves every other
line alone;
`uba features check` (and `uba build`, before dbt) fails with one line when the file is stale.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from python_models.common.catalogue import CATALOGUE_PATH
from python_models.common.feature_events import (
    DBT_PROJECT_FILE,
    FeatureEvents,
    FeatureEventsError,
    read_feature_events,
)
from python_models.ingest.tracking_plan import TrackingPlanError

_COLUMN_START = "      - name: "
_EVENT_MARKER = re.compile(r"^\s+event_type:\s*(\S+)\s*$")


class CatalogueSyncError(ValueError):
    """The catalogue file does not have the shape the generator edits."""


@dataclass(frozen=True)
class GeneratedColumn:
    mart: str
    name: str
    event_type: str
    after: str  # the hand-written column the entry follows (entries with the same one in order)
    text: str  # the YAML entry written for an event that has none yet


def _entry(name, event, description, data_type, unit, window, used_by, high, low) -> str:
    return (
        f"{_COLUMN_START}{name}\n"
        f'        description: "{description}"\n'
        f"        data_type: {data_type}\n"
        "        constraints:\n"
        "          - type: not_null\n"
        "        config:\n"
        "          meta:\n"
        f"            event_type: {event}\n"
        f"            unit: {unit}\n"
        f"            window_days: {window}\n"
        f"            used_by: [{', '.join(used_by)}]\n"
        f'            reason_high: "{high}"\n'
        f'            reason_low: "{low}"\n'
    )


def generated_columns(config: FeatureEvents) -> list[GeneratedColumn]:
    """Every per-event column of the feature marts, in the order the models build them."""
    columns: list[GeneratedColumn] = []

    def add(mart: str, after: str, name: str, event: str, *entry) -> None:
        columns.append(GeneratedColumn(mart, name, event, after, _entry(name, event, *entry)))

    top, events = config.max_window, config.event_types
    # Reasons are read by business users: 'order paid' events, not order_paid.
    words = {e: e.replace("_", " ") for e in events}
    for window in config.windows:
        used_by = ("churn", "segmentation") if window == top else ("churn",)
        for e in events:
            add(
                "ftr_user_features", f"sum_revenue_usd_{window}d", f"count_{e}_{window}d", e,
                f"Visible '{e}' events in the {window} days before the snapshot.",
                "bigint", "events", window, used_by,
                f"{{value:.0f}} '{words[e]}' events in the last {window} days",
                f"only {{value:.0f}} '{words[e]}' events in the last {window} days",
            )  # fmt: skip
    for e in events:
        add(
            "ftr_user_features", f"sum_revenue_usd_{top}d", f"share_{e}_{top}d", e,
            f"Share of the user's events in the last {top} days that were '{e}' "
            f"(count_{e}_{top}d / count_events_{top}d; 0 without events).",
            "float8", "ratio", top, ("segmentation", "churn"),
            f"{{value:.0%}} of recent activity is '{words[e]}' events",
            f"only {{value:.0%}} of recent activity is '{words[e]}' events",
        )  # fmt: skip
    for e in events:
        add(
            "ftr_user_event_sequences", "count_events_so_far", f"session_count_{e}", e,
            f"'{e}' events in the session so far (this one included).",
            "bigint", "events", "null", ("next_action",),
            f"{{value:.0f}} '{words[e]}' events in this session",
            f"only {{value:.0f}} '{words[e]}' events in this session",
        )  # fmt: skip
    for e in events:
        add(
            "ftr_user_event_sequences", "count_events_so_far", f"share_{e}_so_far", e,
            f"Share of the person's events so far (this one included) that are '{e}'.",
            "double", "share", "null", ("next_action",),
            f"{{value:.0%}} of the user's events are '{words[e]}' events",
            f"few of the user's events are '{words[e]}' events ({{value:.0%}})",
        )  # fmt: skip
    return columns


def _column_section(lines: list[str], mart: str) -> tuple[int, int]:
    """(first, end) line indexes of `mart`'s column entries."""
    try:
        start = lines.index(f"  - name: {mart}\n")
        first = lines.index("    columns:\n", start) + 1
    except ValueError:
        raise CatalogueSyncError(f"{CATALOGUE_PATH.name}: no columns of model {mart}") from None
    end = first
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("      ")):
        end += 1
    while end > first and not lines[end - 1].strip():
        end -= 1
    if not lines[first].startswith(_COLUMN_START):
        raise CatalogueSyncError(f"{CATALOGUE_PATH.name}: {mart}'s columns must start with -")
    return first, end


def _entries(lines: list[str]) -> list[list[str]]:
    entries: list[list[str]] = []
    for line in lines:
        if line.startswith(_COLUMN_START):
            entries.append([])
        entries[-1].append(line)
    return entries


def _event_type(entry: list[str]) -> str | None:
    for line in entry:
        match = _EVENT_MARKER.match(line)
        if match:
            return match.group(1)
    return None


def synced_text(text: str, config: FeatureEvents) -> str:
    """The catalogue text with its per-event entries regenerated for `config`."""
    lines = text.splitlines(keepends=True)
    by_mart: dict[str, list[GeneratedColumn]] = defaultdict(list)
    for column in generated_columns(config):
        by_mart[column.mart].append(column)
    for mart, columns in by_mart.items():
        first, end = _column_section(lines, mart)
        entries = _entries(lines[first:end])
        kept = {e[0][len(_COLUMN_START) :].strip(): e for e in entries if _event_type(e)}
        hand_written = [e for e in entries if not _event_type(e)]
        names = {e[0][len(_COLUMN_START) :].strip() for e in hand_written}
        following: dict[str, list[GeneratedColumn]] = defaultdict(list)
        for column in columns:
            if column.after not in names:
                raise CatalogueSyncError(
                    f"{CATALOGUE_PATH.name}: {mart} lacks column {column.after}, after which "
                    f"{column.name} goes"
                )
            following[column.after].append(column)
        section: list[str] = []
        for entry in hand_written:
            section += entry
            for column in following[entry[0][len(_COLUMN_START) :].strip()]:
                section += kept.get(column.name) or column.text.splitlines(keepends=True)
        lines[first:end] = section
    return "".join(lines)


def check_project(
    project_file: Path = DBT_PROJECT_FILE, catalogue_path: Path = CATALOGUE_PATH
) -> str | None:
    """None when the per-event setting fits the plan and the catalogue is current, else one
    line saying what to do."""
    try:
        config = read_feature_events(project_file)
        text = catalogue_path.read_text()
        if synced_text(text, config) != text:
            return (
                f"{catalogue_path.name} does not match uba__top_event_types / "
                "uba__feature_windows (dbt_project/dbt_project.yml): run `uba features sync` "
                "to regenerate the per-event feature columns"
            )
    except (FeatureEventsError, TrackingPlanError, CatalogueSyncError) as err:
        return str(err)
    return None


def sync_project(
    project_file: Path = DBT_PROJECT_FILE, catalogue_path: Path = CATALOGUE_PATH
) -> bool:
    """Rewrite the catalogue's per-event entries; True when the file changed."""
    text = catalogue_path.read_text()
    new = synced_text(text, read_feature_events(project_file))
    if new == text:
        return False
    tmp = catalogue_path.with_suffix(".tmp")
    tmp.write_text(new)
    tmp.replace(catalogue_path)
    return True


def add_arguments(parser) -> None:
    parser.add_argument(
        "action",
        choices=("check", "sync"),
        help="check: fail when the catalogue is stale; sync: regenerate its per-event columns",
    )


def run(args) -> int:
    if args.action == "check":
        problem = check_project()
        if problem:
            print(f"uba features: {problem}", file=sys.stderr)
            return 1
        print("uba features: the per-event feature columns match the configuration")
        return 0
    try:
        changed = sync_project()
    except (FeatureEventsError, TrackingPlanError, CatalogueSyncError) as err:
        print(f"uba features: {err}", file=sys.stderr)
        return 1
    config = read_feature_events()
    print(
        f"uba features: {'updated' if changed else 'already current:'} {CATALOGUE_PATH.name} "
        f"for {', '.join(config.event_types)}; purchases: "
        f"{', '.join(config.purchase_events) or 'none (no conversion declares revenue)'}"
    )
    return 0
