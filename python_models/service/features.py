"""Sequence features for posted events, by the feature mart's own SQL.

The service does not re-implement features.ftr_user_event_sequences: it runs that model's
dbt-compiled SQL on the user's history from the published marts plus the posted events, with
the model's one input (marts.fct_events) swapped for the combined events. Same SQL, same
vars, same session rule: the features equal the mart's (tests/integration/test_service.py
holds them to it). The SQL is compiled once (`dbt compile`, a few seconds) and cached under the
service folder, keyed by a hash of the dbt project's files, so a restart reuses it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import duckdb
import polars as pl

from python_models.config import DBT_PROJECT_DIR

MODEL = "ftr_user_event_sequences"
INPUT_MODEL = "fct_events"
EVENTS_RELATION = "__uba_posted_events"
EVENT_COLUMNS = {
    "user_id": pl.String,
    "event_id": pl.String,
    "event_name": pl.String,
    "event_ts": pl.Datetime("us"),
}


_DUCKDB_TYPES = {pl.String: "varchar", pl.Datetime("us"): "timestamp"}


class FeatureSqlError(RuntimeError):
    """The mart's compiled SQL cannot be produced or used."""


def project_fingerprint() -> str:
    """Hash of what the compiled SQL depends on: models, macros, dbt_project.yml."""
    digest = hashlib.sha256()
    files = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for folder in ("models", "macros"):
        files += sorted(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compile_feature_sql(cache_dir: Path) -> str:
    """The mart's SELECT with its input relation replaced by EVENTS_RELATION (cached)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"{MODEL}-{project_fingerprint()}.sql"
    if cached.exists():
        return cached.read_text()
    from python_models.dbt_runner import DbtError, run_dbt

    target = cache_dir / "dbt_target"
    try:
        # A scratch database: compiling this model needs no tables, only the project.
        run_dbt(
            ["compile", "--select", MODEL],
            duckdb_path=cache_dir / "compile.duckdb",
            quiet=True,
            target_path=target,
        )
    except DbtError as err:
        raise FeatureSqlError(f"cannot compile {MODEL}: {str(err).splitlines()[0]}") from None
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    compiled = nodes[f"model.uba.{MODEL}"].get("compiled_code")
    relation = nodes[f"model.uba.{INPUT_MODEL}"]["relation_name"]
    if not compiled or compiled.count(relation) != 1:
        raise FeatureSqlError(
            f"the compiled {MODEL} must read {relation} exactly once; the service swaps it for "
            "the posted events"
        )
    sql = compiled.replace(relation, EVENTS_RELATION)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(sql)
    tmp.replace(cached)
    return sql


class SequenceFeatures:
    """Runs the compiled SQL on an events frame, in a private in-memory DuckDB per thread.

    Each thread's connection holds the SQL as a prepared statement over a temporary table of
    the events: a request refills the table and executes the prepared plan, so the planner's
    ~10 ms for this SQL is paid once per thread, not per request."""

    _PREPARED = "uba_sequence_features"

    def __init__(self, sql: str):
        self.sql = sql
        self._local = threading.local()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(":memory:", config={"threads": 1})
            columns = ", ".join(
                f"{name} {_DUCKDB_TYPES[dtype]}" for name, dtype in EVENT_COLUMNS.items()
            )
            con.execute(f"create temp table {EVENTS_RELATION} ({columns})")
            con.execute(f"prepare {self._PREPARED} as {self.sql}")
            self._local.con = con
        return con

    def compute(self, events: pl.DataFrame) -> pl.DataFrame:
        """One row per event of `events` (user_id, event_id, event_name, event_ts), in the
        mart's columns."""
        frame = events.select(pl.col(c).cast(t) for c, t in EVENT_COLUMNS.items())  # noqa: F841
        con = self._connection()
        con.execute(f"delete from {EVENTS_RELATION}")
        con.execute(f"insert into {EVENTS_RELATION} by name select * from frame")
        return con.execute(f"execute {self._PREPARED}").pl()

    def columns(self) -> list[str]:
        empty = pl.DataFrame(schema=EVENT_COLUMNS)
        return self.compute(empty).columns
