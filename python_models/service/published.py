"""The service's view of the published warehouse (data/published/warehouse.duckdb): attached
read-only, attached anew when a new publication is swapped in (publish_warehouse renames a new
file over the old one, so the path's inode changes).

What a request needs per user is read once per publication, when the service picks it up, and
held in memory: every user's newest row of each user-keyed score table (as the JSON DuckDB
writes for it), the consent states, the events (the histories posted events extend) as one
frame sorted by user, so a user's history is a zero-copy slice. A request then reads no table
(at 1M events: ~100 MB and ~2-4 s per pickup; docs/models_ml.md, "Scoring service"). At each
pickup the service also recomputes the sequence mart's rows of a few users and compares them
with the published ones (`check_sequences`): a publication built with other definitions is not
scored. The champions' model bundles come from the registry rows in the copy (artifacts on
disk, sha256-checked, cached per version), through one cursor per thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.common import registry
from python_models.common.spec import ModelSpec
from python_models.privacy.consent import CONSENT_TABLE, consent_states
from python_models.service.features import MART as SEQUENCE_MART  # scoring computes its rows

LOG = logging.getLogger("uba.service")
EVENTS_TABLE = "marts.fct_events"
SEQUENCE_SAMPLE_USERS = 32  # whose published rows the service recomputes at each pickup
CATALOG = "published"
HISTORY_COLUMNS = ("event_id", "event_name", "event_ts")  # user_id is the slice's key
# How long a replaced publication stays open for the requests that were using it. Then it is
# closed, so the next publish can update that file in place (publish_warehouse switches
# between two files and copies instead when a reader still holds the older one).
RETIRED_GRACE_S = 60.0


class NotPublished(LookupError):
    """No published warehouse yet, or it lacks a table the service needs."""


@dataclass(frozen=True)
class _Opened:
    """One publication: its connection and what requests read from it, loaded at pickup."""

    connection: duckdb.DuckDBPyConnection
    identity: tuple[int, int, int]  # (device, inode, mtime_ns) of the file when opened
    tables: frozenset[str]
    scores: dict[str, dict[str, str]]  # user -> {model name: newest score row as JSON text}
    consent: dict[str, dict[str, bool]]  # user -> {purpose: granted}
    events: pl.DataFrame | None  # HISTORY_COLUMNS sorted by user (None: no EVENTS_TABLE)
    spans: dict[str, tuple[int, int]]  # user -> (first row, rows) of their events
    sequence_problem: str | None  # why posted events cannot be scored (None: they can)
    stats: dict[str, float]  # what the pickup loaded, and in how long


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns)


class PublishedWarehouse:
    def __init__(
        self,
        path: Path,
        models: tuple[ModelSpec, ...],
        memory_limit: str = "1GB",
        check_sequences: Callable[[list[str], pl.DataFrame], str | None] | None = None,
    ):
        """`check_sequences(columns, rows)`: given SEQUENCE_MART's columns and every row of a
        sample of its users, None if the service computes the same rows, else why not; run
        at each pickup."""
        self.path = Path(path)
        self.models = models
        self.memory_limit = memory_limit
        self.check_sequences = check_sequences
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()  # held by the thread loading a new publication
        self._opened: _Opened | None = None
        self._retired: list[_Opened] = []  # kept open RETIRED_GRACE_S: threads may use them
        self._local = threading.local()
        self._bundles: dict[tuple[str, str], dict[str, Any]] = {}
        self._champions: dict[str, str] = {}  # of the current publication

    # -- connection ------------------------------------------------------------------------

    def _current(self) -> _Opened:
        identity = _identity(self.path)
        if identity is None:
            raise NotPublished(
                f"no published warehouse at {self.path}: run the pipeline (`uba demo`) first"
            )
        opened = self._opened
        if opened is not None and opened.identity == identity:
            return opened
        # A new publication: one thread loads it; while it does, the others keep answering
        # from the one they have (no request waits on a pickup but the one that found it).
        if opened is not None and not self._swap_lock.acquire(blocking=False):
            return opened
        if opened is None:
            self._swap_lock.acquire()
        try:
            if self._opened is None or self._opened.identity != identity:
                fresh = self._load(identity)
                for old in self._retired:
                    self._close_retired(old)
                if self._opened is not None:
                    retired = self._opened
                    self._retired = [retired]
                    timer = threading.Timer(RETIRED_GRACE_S, self._close_retired, (retired,))
                    timer.daemon = True
                    timer.start()
                self._opened = fresh
                self._champions = {}
            return self._opened
        finally:
            self._swap_lock.release()

    def close(self) -> None:
        """Close the publication and any replaced one still open."""
        for old in list(self._retired):
            self._close_retired(old)
        if self._opened is not None:
            self._opened.connection.close()
            self._opened = None

    def _close_retired(self, old: _Opened) -> None:
        """Close a replaced publication once (at the grace period's end or the next swap)."""
        with self._lock:
            if not any(o is old for o in self._retired):
                return
            self._retired = [o for o in self._retired if o is not old]
        old.connection.close()

    def _attach(self) -> duckdb.DuckDBPyConnection:
        # Attached to a private in-memory database, not opened by path: DuckDB keeps one
        # instance per path in a process, so connecting to the path again would hand back the
        # replaced file while the old connection lives.
        connection = duckdb.connect(
            ":memory:", config={"memory_limit": self.memory_limit, "threads": 1}
        )
        quoted = str(self.path).replace("'", "''")
        connection.execute(f"attach '{quoted}' as {CATALOG} (read_only)")
        connection.execute(f"use {CATALOG}")
        return connection

    def _load(self, identity: tuple[int, int, int]) -> _Opened:
        started = time.perf_counter()
        connection = self._attach()
        try:
            return self._read(connection, identity, started)
        except BaseException:
            connection.close()
            raise

    def _read(
        self, connection: duckdb.DuckDBPyConnection, identity: tuple[int, int, int], started: float
    ) -> _Opened:
        tables = frozenset(
            f"{schema}.{name}"
            for schema, name in connection.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_catalog = ?",
                [CATALOG],
            ).fetchall()
        )
        # The bulk reads on a connection of their own, closed after: its buffers (the blocks
        # of the events table) go with it instead of staying cached for the publication's life.
        bulk = self._attach()
        try:
            scores, consent, events, spans = _request_data(bulk, self.models, tables)
        finally:
            bulk.close()
        sequence_problem = self._sequence_problem(connection, tables)
        seconds = time.perf_counter() - started
        stats = {
            "users_with_scores": len(scores),
            "events": 0 if events is None else events.height,
            "users_with_events": len(spans),
            "events_mb": 0.0 if events is None else round(events.estimated_size("mb"), 1),
            "pickup_seconds": round(seconds, 2),
        }
        LOG.info("picked up the publication at %s: %s", self.path, stats)
        return _Opened(
            connection,
            identity,
            tables,
            scores,
            consent,
            events,
            spans,
            sequence_problem,
            stats,
        )

    def _sequence_problem(
        self, connection: duckdb.DuckDBPyConnection, tables: frozenset[str]
    ) -> str | None:
        if SEQUENCE_MART not in tables:
            return f"the published warehouse has no {SEQUENCE_MART}"
        if self.check_sequences is None:
            return None
        # The first users by pseudonym (a hash: an arbitrary but fixed sample), every row.
        sample = connection.execute(
            f"""
            select * from {SEQUENCE_MART}
            where user_id in (
                select distinct user_id from {SEQUENCE_MART}
                order by user_id limit {SEQUENCE_SAMPLE_USERS}
            )
            """
        ).pl()
        try:
            problem = self.check_sequences(sample.columns, sample)
        except Exception as err:  # noqa: BLE001 - scoring stops, lookups go on
            LOG.exception("checking %s failed", SEQUENCE_MART)
            problem = f"checking the published {SEQUENCE_MART} failed: {err}"
        if problem is not None:
            LOG.error("posted events cannot be scored on %s: %s", self.path, problem)
        return problem

    def cursor(self) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
        """This thread's cursor on the current publication, and the tables it holds."""
        opened = self._current()
        local = self._local
        if getattr(local, "identity", None) != opened.identity:
            local.cursor = opened.connection.cursor()
            local.cursor.execute(f"use {CATALOG}")
            local.identity = opened.identity
        return local.cursor, opened.tables

    @property
    def published_at(self) -> float | None:
        identity = _identity(self.path)
        return None if identity is None else identity[2] / 1e9

    # -- reads -----------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, float]:
        """What the current publication's pickup loaded (sizes, seconds)."""
        return self._current().stats

    def user_scores(self, user_id: str) -> dict[str, dict[str, Any]]:
        """{model name: the user's newest score row} over the user-keyed score tables (dates
        and timestamps as ISO text); fresh dicts, the caller's to change."""
        rows = self._current().scores.get(user_id, {})
        return {model: json.loads(payload) for model, payload in rows.items()}

    def user_events(self, user_id: str) -> pl.DataFrame:
        """The user's events (user_id, event_id, event_name, event_ts) from the marts."""
        opened = self._current()
        if opened.events is None:
            raise NotPublished(f"the published warehouse has no {EVENTS_TABLE}")
        start, length = opened.spans.get(user_id, (0, 0))
        return opened.events.slice(start, length).select(
            pl.lit(user_id, dtype=pl.String).alias("user_id"), *HISTORY_COLUMNS
        )

    def sequence_problem(self) -> str | None:
        """Why posted events cannot be scored on this publication (None: they can)."""
        return self._current().sequence_problem

    def consent(self, user_id: str) -> dict[str, bool]:
        """{purpose: granted} from the published consent mart ({}: not published, or a person
        it does not know; docs/privacy.md, "Consent")."""
        return self._current().consent.get(user_id, {})

    def knows_user(self, user_id: str) -> bool:
        return user_id in self._current().spans

    def champion(self, model_name: str) -> tuple[str, dict[str, Any]]:
        """(version, bundle) of the model's champion in the published registry; looked up
        once per publication, each version's artifact loaded (sha256-checked) once."""
        cursor, _ = self.cursor()
        version = self._champions.get(model_name)
        if version is None:
            entry = registry.require_champion(cursor, model_name)
            key = (model_name, entry.model_version)
            if key not in self._bundles:
                bundle = entry.load()
                with self._lock:
                    self._bundles = {k: v for k, v in self._bundles.items() if k[0] != model_name}
                    self._bundles[key] = bundle
            version = self._champions[model_name] = entry.model_version
        return version, self._bundles[(model_name, version)]

    def champions(self) -> dict[str, str]:
        cursor, _ = self.cursor()
        out = {}
        for spec in self.models:
            entry = registry.get_champion(cursor, spec.name)
            if entry is not None:
                out[spec.name] = entry.model_version
        return out


def _request_data(
    connection: duckdb.DuckDBPyConnection, models: tuple[ModelSpec, ...], tables: frozenset[str]
):
    """(scores, consent, events, spans) of `_Opened`, read from the publication."""
    scores: dict[str, dict[str, str]] = {}
    for spec in models:
        if "user_id" in spec.key_columns and spec.score_table in tables:
            for user_id, payload in connection.execute(_newest_scores_sql(spec)).fetchall():
                scores.setdefault(user_id, {})[spec.name] = payload
    consent = consent_states(connection) if CONSENT_TABLE in tables else {}
    events, spans = None, {}
    if EVENTS_TABLE in tables:
        events, spans = _histories(connection)
    return scores, consent, events, spans


def _newest_scores_sql(spec: ModelSpec) -> str:
    """(user_id, the user's newest row as JSON) for every user of the spec's score table."""
    return f"""
        select user_id, to_json(scores) as payload
        from {spec.score_table} as scores
        qualify row_number() over (partition by user_id order by as_of_date desc) = 1
    """


def _histories(
    connection: duckdb.DuckDBPyConnection,
) -> tuple[pl.DataFrame, dict[str, tuple[int, int]]]:
    """Every event (HISTORY_COLUMNS) sorted by user, and each user's (first row, rows)."""
    events = (
        connection.execute(f"select user_id, {', '.join(HISTORY_COLUMNS)} from {EVENTS_TABLE}")
        .pl()
        .sort("user_id", maintain_order=True)
    )
    runs = events.group_by("user_id", maintain_order=True).len()
    starts = runs["len"].cum_sum() - runs["len"]
    spans = dict(zip(runs["user_id"], zip(starts, runs["len"], strict=True), strict=True))
    return events.drop("user_id").rechunk(), spans
