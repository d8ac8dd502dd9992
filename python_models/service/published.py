"""The service's view of the published warehouse (data/published/warehouse.duckdb): attached
read-only, attached anew when a new publication is swapped in (publish_warehouse renames a new
file over the old one, so the path's inode changes), queried through one cursor per thread.

Reads: a user's newest row of every user-keyed score table, the user's events (the history the
posted events extend) and the champions' model bundles (registry rows in the copy; artifacts
on disk, sha256-checked, cached per version).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.common import registry
from python_models.common.spec import ModelSpec
from python_models.privacy.consent import CONSENT_TABLE, consent_state

EVENTS_TABLE = "marts.fct_events"
CATALOG = "published"


class NotPublished(LookupError):
    """No published warehouse yet, or it lacks a table the service needs."""


@dataclass(frozen=True)
class _Opened:
    connection: duckdb.DuckDBPyConnection
    identity: tuple[int, int, int]  # (device, inode, mtime_ns) of the file when opened
    tables: frozenset[str]
    # One query for a user's newest row of every user-keyed score table, as JSON (None when
    # the publication has none).
    scores_sql: str | None
    scores_tables: int


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns)


class PublishedWarehouse:
    def __init__(self, path: Path, models: tuple[ModelSpec, ...], memory_limit: str = "1GB"):
        self.path = Path(path)
        self.models = models
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._opened: _Opened | None = None
        self._retired: list[_Opened] = []  # kept open until the next swap: threads may use them
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
        with self._lock:
            if self._opened is None or self._opened.identity != identity:
                # Attached to a private in-memory database, not opened by path: DuckDB keeps
                # one instance per path in a process, so connecting to the path again would
                # hand back the replaced file while the old connection lives.
                connection = duckdb.connect(
                    ":memory:", config={"memory_limit": self.memory_limit, "threads": 1}
                )
                quoted = str(self.path).replace("'", "''")
                connection.execute(f"attach '{quoted}' as {CATALOG} (read_only)")
                connection.execute(f"use {CATALOG}")
                tables = frozenset(
                    f"{schema}.{name}"
                    for schema, name in connection.execute(
                        "select table_schema, table_name from information_schema.tables "
                        "where table_catalog = ?",
                        [CATALOG],
                    ).fetchall()
                )
                for old in self._retired:
                    old.connection.close()
                self._retired = [self._opened] if self._opened is not None else []
                scored = [
                    spec
                    for spec in self.models
                    if "user_id" in spec.key_columns and spec.score_table in tables
                ]
                self._opened = _Opened(
                    connection, identity, tables, _scores_sql(scored), len(scored)
                )
                self._champions = {}
            return self._opened

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

    def user_scores(self, user_id: str) -> dict[str, dict[str, Any]]:
        """{model name: the user's newest score row} over the user-keyed score tables (dates
        and timestamps as ISO text)."""
        cursor, _ = self.cursor()
        opened = self._opened
        if opened is None or opened.scores_sql is None:
            return {}
        rows = cursor.execute(opened.scores_sql, [user_id] * opened.scores_tables).fetchall()
        return {model: json.loads(payload) for model, payload in rows}

    def user_events(self, user_id: str) -> pl.DataFrame:
        """The user's events (user_id, event_id, event_name, event_ts) from the marts."""
        cursor, tables = self.cursor()
        if EVENTS_TABLE not in tables:
            raise NotPublished(f"the published warehouse has no {EVENTS_TABLE}")
        return cursor.execute(
            f"select user_id, event_id, event_name, event_ts from {EVENTS_TABLE} where user_id = ?",
            [user_id],
        ).pl()

    def consent(self, user_id: str) -> dict[str, bool]:
        """{purpose: granted} from the published consent mart ({}: not published, or a person
        it does not know; docs/privacy.md, "Consent")."""
        cursor, tables = self.cursor()
        if CONSENT_TABLE not in tables:
            return {}
        return consent_state(cursor, user_id)

    def knows_user(self, user_id: str) -> bool:
        cursor, tables = self.cursor()
        if EVENTS_TABLE not in tables:
            return False
        row = cursor.execute(
            f"select 1 from {EVENTS_TABLE} where user_id = ? limit 1", [user_id]
        ).fetchone()
        return row is not None

    def table_columns(self, qualified: str) -> list[str]:
        cursor, tables = self.cursor()
        if qualified not in tables:
            raise NotPublished(f"the published warehouse has no {qualified}")
        return [d[0] for d in cursor.execute(f"select * from {qualified} limit 0").description]

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


def _scores_sql(specs: list[ModelSpec]) -> str | None:
    """(model, the newest row as JSON) per score table holding the user (one ? per table)."""
    if not specs:
        return None
    parts = [
        f"""select '{spec.name}' as model, payload from (
            select to_json(scores) as payload from {spec.score_table} as scores
            where user_id = ? order by as_of_date desc limit 1
        )"""
        for spec in specs
    ]
    return "\nunion all\n".join(parts)
