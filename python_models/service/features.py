"""Sequence features for posted events: the rows features.ftr_user_event_sequences would hold,
computed in numpy over the person's timeline (published history + posted events).

The definitions are the mart's (dbt_project/models/features/ftr_user_event_sequences.sql, its
full build) and the session rule is macro uba_sessionize's (int_events_sessionized, whose
sessions the mart reads), with the settings read from the dbt vars they read (dbt_project.yml:
uba__sequence_length, uba__top_event_types and the uba__session_* rules), never declared here.
A row depends only on the person's events up to it, so the posted events' rows need nothing
but the timeline; the service holds the published histories in memory, and one pass of
vectorized array work over a timeline of a few hundred events costs well under a millisecond,
where one execution of the mart's compiled SQL cost 13 ms plus 0.04 ms per event.

Parity is the proof: tests/integration/test_service.py (posted events give exactly the mart's
rows, every column) and tests/unit/test_service_features.py (this code against the
dbt-compiled SQL of int_events_sessionized and the mart, chained, on generated timelines, every
session option on). At each publication the service checks that the published mart has
exactly the columns computed here and recomputes a sample of its rows (`disagreement`): a mart
built with other vars or another version of the model stops scoring with one line, never
silently different features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from python_models.common.feature_events import (
    DBT_PROJECT_FILE,
    FeatureEventsError,
    check_event_types,
    project_vars,
)
from python_models.ingest.tracking_plan import read_tracking_plan
from python_models.next_action.sequences import SEQUENCE_MART

MART = f"features.{SEQUENCE_MART}"  # the mart whose rows this module computes
# The mart's label looks ahead (the session's next event, the data's end): not a feature.
LABEL_COLUMNS = ("next_event_name",)
EVENT_COLUMNS = {
    "user_id": pl.String,
    "event_id": pl.String,
    "event_name": pl.String,
    "event_ts": pl.Datetime("us"),
}
PLAN = Path("seeds") / "event_taxonomy.csv"  # beside dbt_project.yml
NO_EVENT = "none"  # the mart's categorical sentinel
NOTHING_TO_MEASURE = -1.0  # the mart's numeric sentinel
_EPOCH = datetime(1970, 1, 1)
_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_HOUR = 3_600 * _MICROS_PER_SECOND
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR


class FeatureDefinitionError(ValueError):
    """The mart and the service's reading of it differ; one line says how."""


@dataclass(frozen=True)
class SequenceSettings:
    """The dbt vars the mart's rows depend on (dbt_project.yml, read once)."""

    sequence_length: int  # uba__sequence_length
    event_types: tuple[str, ...]  # uba__top_event_types
    timeout_seconds: float  # uba__session_timeout_minutes * 60
    max_length_seconds: float  # uba__session_max_length_minutes * 60
    end_events: tuple[str, ...]  # uba__session_end_events
    split_at_midnight: bool  # uba__session_split_at_midnight
    time_zone: str  # uba__session_time_zone

    @classmethod
    def from_vars(cls, dbt_vars: dict, plan_path: Path | None = None) -> SequenceSettings:
        plan = read_tracking_plan(plan_path or DBT_PROJECT_FILE.parent / PLAN)
        end_events = dbt_vars["uba__session_end_events"] or []
        if isinstance(end_events, str):  # as the macro says
            raise FeatureDefinitionError(
                "uba__session_end_events must be a list of event names, e.g. ['logout']"
            )
        length = int(dbt_vars["uba__sequence_length"])
        if length < 2:
            raise FeatureDefinitionError("uba__sequence_length must be at least 2")
        try:
            event_types = check_event_types(dbt_vars.get("uba__top_event_types"), plan)
        except FeatureEventsError as err:
            raise FeatureDefinitionError(str(err)) from None
        return cls(
            sequence_length=length,
            event_types=event_types,
            timeout_seconds=dbt_vars["uba__session_timeout_minutes"] * 60,
            max_length_seconds=dbt_vars["uba__session_max_length_minutes"] * 60,
            end_events=tuple(end_events),
            split_at_midnight=bool(dbt_vars["uba__session_split_at_midnight"]),
            time_zone=str(dbt_vars["uba__session_time_zone"]),
        )

    @classmethod
    def from_project(cls) -> SequenceSettings:
        return cls.from_vars(project_vars())

    @property
    def lags(self) -> range:
        return range(1, self.sequence_length)

    @property
    def columns(self) -> tuple[str, ...]:
        """The mart's columns but the label, in its order (the rows' keys)."""
        lagged = [
            column
            for i in self.lags
            for column in (f"previous_event_name_{i}", f"seconds_since_previous_event_{i}")
        ]
        return (
            "user_id",
            "event_id",
            "event_ts",
            "event_date",
            "event_name",
            *lagged,
            "session_event_number",
            "seconds_since_session_start",
            "seconds_since_previous_session",
            "count_previous_sessions",
            "count_events_so_far",
            *(f"session_count_{t}" for t in self.event_types),
            *(f"share_{t}_so_far" for t in self.event_types),
            "hour_of_day",
            "day_of_week",
        )

    def check_columns(self, mart_columns: Sequence[str]) -> None:
        """Raise unless the published mart's columns (but the label) are the ones computed
        here, in the same order."""
        published = tuple(c for c in mart_columns if c not in LABEL_COLUMNS)
        if published == self.columns:
            return
        missing = [c for c in published if c not in self.columns]
        extra = [c for c in self.columns if c not in published]
        detail = (
            f"not computed by the service: {missing[:4]}"
            if missing
            else f"not in the mart: {extra[:4]}"
            if extra
            else "the same columns in another order"
        )
        raise FeatureDefinitionError(
            f"the published {MART} and the service's definitions differ ({detail}): the "
            "warehouse was built with other dbt vars or another version of the project"
        )


def _local_days(micros: np.ndarray, time_zone: str) -> np.ndarray:
    """The local calendar day of each UTC timestamp (the macro's uba_local_date)."""
    if time_zone.upper() == "UTC":
        return micros // _MICROS_PER_DAY
    local = (
        pl.Series(micros, dtype=pl.Int64)
        .cast(pl.Datetime("us", "UTC"))
        .dt.convert_time_zone(time_zone)
        .dt.date()
    )
    return local.to_numpy().astype("datetime64[D]").astype(np.int64)


class SequenceFeatures:
    """The mart's rows for one person's timeline."""

    def __init__(self, settings: SequenceSettings):
        self.settings = settings
        self.columns = settings.columns
        self._types = np.array(settings.event_types, dtype=object)
        self._end_events = np.array(settings.end_events, dtype=object)

    def rows(self, events: pl.DataFrame, at: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """The rows (dicts in `columns` order, Python values) of the events at positions `at`
        (all when None) of `events`: one person's events (EVENT_COLUMNS), sorted by
        (event_ts, event_id)."""
        columns = self._columns(events, at)
        micros = columns["event_ts"].tolist()
        stamps = [_EPOCH + timedelta(microseconds=m) for m in micros]
        values = {
            name: (
                stamps
                if name == "event_ts"
                else [ts.date() for ts in stamps]
                if name == "event_date"
                else column.tolist()
            )
            for name, column in columns.items()
        }
        return [dict(zip(values, row, strict=True)) for row in zip(*values.values(), strict=True)]

    def frame(self, events: pl.DataFrame) -> pl.DataFrame:
        """Every row of `events` (one person's, sorted) as the mart's frame."""
        columns = self._columns(events, None)
        schema = self.schema
        return pl.DataFrame(
            [
                pl.Series(name, column).cast(schema[name])
                if name in ("event_ts", "event_date")
                else pl.Series(name, column, dtype=schema[name])
                for name, column in columns.items()
            ]
        )

    def _columns(self, events: pl.DataFrame, at: Sequence[int] | None) -> dict[str, np.ndarray]:
        """The selected rows as arrays, one per column (event_ts as epoch microseconds,
        event_date as epoch days)."""
        s = self.settings
        n = events.height
        if n == 0:
            return {name: np.array([], dtype=object) for name in self.columns}
        user_id = events["user_id"][0]
        ids = events["event_id"].to_numpy().astype(object)
        names = events["event_name"].to_numpy().astype(object)
        micros = events["event_ts"].to_numpy().view(np.int64)
        seconds = micros / _MICROS_PER_SECOND  # DuckDB's epoch(): the same doubles
        index = np.arange(n)

        # Sessions (macro uba_sessionize): stretches cut by the boundary rules, each cut into
        # windows of the max length counted from the stretch's first event.
        gap = np.full(n, np.nan)
        gap[1:] = seconds[1:] - seconds[:-1]
        stretch_start = np.ones(n, dtype=bool)
        stretch_start[1:] = gap[1:] > s.timeout_seconds
        if s.end_events:
            stretch_start[1:] |= np.isin(names[:-1], self._end_events)
        if s.split_at_midnight:
            days = _local_days(micros, s.time_zone)
            stretch_start[1:] |= days[1:] != days[:-1]
        stretch_first = np.maximum.accumulate(np.where(stretch_start, index, 0))
        started_micros = micros[stretch_first]
        started_seconds = seconds[stretch_first]

        def window(at_micros: np.ndarray, at_seconds: np.ndarray) -> np.ndarray:
            elapsed = np.ceil((at_seconds - started_seconds) / s.max_length_seconds) - 1
            return np.where(at_micros <= started_micros, 0, elapsed.astype(np.int64))

        session_start = stretch_start.copy()
        if n > 1:
            current = window(micros, seconds)
            previous = window(
                np.concatenate((micros[:1], micros[:-1])),
                np.concatenate((seconds[:1], seconds[:-1])),
            )
            session_start[1:] |= current[1:] != previous[1:]
        session_index = np.cumsum(session_start)
        session_first = np.maximum.accumulate(np.where(session_start, index, 0))

        # The person's event mix so far, and the session's (so far minus before its start).
        is_type = names[:, None] == self._types[None, :]
        so_far = np.cumsum(is_type, axis=0)
        in_session = so_far - (so_far[session_first] - is_type[session_first])

        selected = index if at is None else np.asarray(at, dtype=np.int64)
        first = session_first[selected]
        stamps = micros[selected]
        out: dict[str, np.ndarray] = {
            "user_id": np.full(len(selected), user_id, dtype=object),
            "event_id": ids[selected],
            "event_ts": stamps,
            "event_date": stamps // _MICROS_PER_DAY,
            "event_name": names[selected],
        }
        for lag in s.lags:
            earlier = selected - lag
            known = earlier >= 0
            earlier = np.maximum(earlier, 0)
            out[f"previous_event_name_{lag}"] = np.where(known, names[earlier], NO_EVENT)
            out[f"seconds_since_previous_event_{lag}"] = np.where(
                known, seconds[selected] - seconds[earlier], NOTHING_TO_MEASURE
            )
        out["session_event_number"] = selected - first + 1
        out["seconds_since_session_start"] = seconds[selected] - seconds[first]
        out["seconds_since_previous_session"] = np.where(first > 0, gap[first], NOTHING_TO_MEASURE)
        out["count_previous_sessions"] = session_index[selected] - 1
        out["count_events_so_far"] = selected + 1
        for t, event_type in enumerate(s.event_types):
            out[f"session_count_{event_type}"] = in_session[selected, t]
        for t, event_type in enumerate(s.event_types):
            out[f"share_{event_type}_so_far"] = so_far[selected, t] / (selected + 1)
        out["hour_of_day"] = stamps // _MICROS_PER_HOUR % 24
        # ISO weekday, Monday 1: the epoch's first day was a Thursday (4).
        out["day_of_week"] = (stamps // _MICROS_PER_DAY + 3) % 7 + 1
        return out

    def disagreement(self, mart_columns: list[str], mart_rows: pl.DataFrame) -> str | None:
        """None when the mart's rows (every row of some people) are the ones computed here
        from their events, else why not, in one line (checked at each publication: a mart
        built with other dbt vars or another version of the model is not scored)."""
        try:
            self.settings.check_columns(mart_columns)
        except FeatureDefinitionError as err:
            return str(err)
        expected = mart_rows.select(self.columns).sort("user_id", "event_ts", "event_id")
        got = pl.concat(
            [
                self.frame(events.select(list(EVENT_COLUMNS)).cast(EVENT_COLUMNS))
                for _, events in expected.group_by("user_id", maintain_order=True)
            ]
            or [pl.DataFrame(schema=self.schema)]
        )
        differing = [c for c in self.columns if not got[c].equals(expected[c].cast(got[c].dtype))]
        if not differing:
            return None
        return (
            f"the published {MART} rows differ from the service's in {differing[:4]} (for "
            f"{mart_rows['user_id'].n_unique()} users checked): the warehouse was built with "
            "other dbt vars (uba__session_*, uba__sequence_length) or another version of the model"
        )

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Each column's type, in `columns` order: the events' own, then by kind of feature."""
        known = {**EVENT_COLUMNS, "event_date": pl.Date}
        types: dict[str, pl.DataType] = {}
        for column in self.columns:
            is_text = column.startswith("previous_event_name_")
            is_real = column.startswith(("seconds_", "share_"))
            types[column] = known.get(column) or (
                pl.String if is_text else pl.Float64 if is_real else pl.Int64
            )
        return types
