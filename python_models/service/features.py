"""Sequence features for posted events, by the feature mart's own SQL.

The service does not re-implement features.ftr_user_event_sequences: it runs that model's
dbt-compiled SQL on the user's history from the published marts plus the posted events, with
the model's one input (marts.fct_events) swapped for the combined events. Same SQL, same
vars, same session rule: the features equal the mart's (tests/integration/test_service.py
holds them to it). The SQL is compiled once (`dbt compile`, a few seconds) and cached under the
service folder, keyed by a hash of the dbt project's files, so a restart reuses it.

Concurrent requests share executions: most of one execution's cost is fixed (a plan of some
thirty window functions costs ~13 ms on 10 events, ~24 ms on 270), so a feature worker
takes every request waiting and runs them as one batch. Each request's rows get their own
user key and event-id prefix, so every window (all partitioned by user, ordered by time and
event id within it) and the event-id join see exactly that request's events: a batch gives
each request the rows it would get alone (tests/integration/test_service.py).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import dataclass, field
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


# The mart's label looks ahead to the data's end (the newest event of the whole run): not a
# feature of the event, and in a batch the end of other requests' events.
LABEL_COLUMNS = ("next_event_name",)
_DUCKDB_TYPES = {pl.String: "varchar", pl.Datetime("us"): "timestamp"}
# Feature workers (each one execution at a time, DuckDB at threads=1). One, on 2 cores: it
# takes every request waiting, so batches grow with the load; with 4 clients on the 1M-event
# publication it served 30-40 scorings/s where two workers (smaller batches) served 21-22.
FEATURE_WORKERS = 1
# A batch takes at most this many requests, and stops growing past this many events.
MAX_BATCH_REQUESTS = 8
MAX_BATCH_EVENTS = 20_000
_KEY_WIDTH = 4  # digits of a request's key within a batch (MAX_BATCH_REQUESTS < 10**4)


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


@dataclass
class _Job:
    events: pl.DataFrame
    done: threading.Event = field(default_factory=threading.Event)
    rows: pl.DataFrame | None = None
    error: BaseException | None = None


class SequenceFeatures:
    """Runs the compiled SQL on events frames, in private in-memory DuckDBs, one per feature
    worker thread (started on first use).

    Each worker's connection holds the SQL as a prepared statement over a temporary table of
    the events (the planner's ~10 ms for this SQL is paid once per worker, not per request);
    a worker takes every request waiting, refills the table with all of them and executes the
    plan once."""

    _PREPARED = "uba_sequence_features"

    def __init__(self, sql: str, workers: int = FEATURE_WORKERS):
        self.sql = sql
        self.workers = workers
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._started = False
        self._start_lock = threading.Lock()
        self._local = threading.local()  # `batch`'s connection per calling thread

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:", config={"threads": 1})
        columns = ", ".join(
            f"{name} {_DUCKDB_TYPES[dtype]}" for name, dtype in EVENT_COLUMNS.items()
        )
        con.execute(f"create temp table {EVENTS_RELATION} ({columns})")
        con.execute(f"prepare {self._PREPARED} as {self.sql}")
        return con

    def compute(self, events: pl.DataFrame) -> pl.DataFrame:
        """One row per event of `events` (user_id, event_id, event_name, event_ts), in the
        mart's columns but the label (in no particular order)."""
        if not self._started:
            self._start()
        job = _Job(events)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.rows  # type: ignore[return-value]

    def columns(self) -> list[str]:
        return self.compute(pl.DataFrame(schema=EVENT_COLUMNS)).columns

    def _start(self) -> None:
        with self._start_lock:
            if not self._started:
                for number in range(self.workers):
                    # Connected here, so a SQL that cannot be prepared raises to the caller.
                    threading.Thread(
                        target=self._work,
                        args=(self._connection(),),
                        name=f"uba-features-{number}",
                        daemon=True,
                    ).start()
                self._started = True

    def batch(self, frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
        """`compute` of each frame, all in one execution on this thread (what a worker does
        with the requests it takes)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connection()
        return self._execute(con, frames)

    def _work(self, con: duckdb.DuckDBPyConnection) -> None:
        while True:
            jobs = [self._jobs.get()]
            events = jobs[0].events.height
            while len(jobs) < MAX_BATCH_REQUESTS and events < MAX_BATCH_EVENTS:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
                events += jobs[-1].events.height
            try:
                results = self._execute(con, [job.events for job in jobs])
                for job, rows in zip(jobs, results, strict=True):
                    job.rows = rows
            except Exception:  # noqa: BLE001 - each job then gets its own error, or its rows
                for job in jobs:
                    try:
                        (job.rows,) = self._execute(con, [job.events])
                    except Exception as err:  # noqa: BLE001 - raised in the request's thread
                        job.error = err
            finally:
                for job in jobs:
                    job.done.set()

    def _execute(
        self, con: duckdb.DuckDBPyConnection, frames: list[pl.DataFrame]
    ) -> list[pl.DataFrame]:
        """One execution for all `frames`, each one's keys prefixed with its number."""
        frame = pl.concat(  # noqa: F841 - read by DuckDB below
            [
                events.select(pl.col(c).cast(t) for c, t in EVENT_COLUMNS.items()).with_columns(
                    (pl.lit(f"{number:0{_KEY_WIDTH}d}") + pl.col(c)).alias(c)
                    for c in ("user_id", "event_id")
                )
                for number, events in enumerate(frames)
            ]
        )
        con.execute(f"delete from {EVENTS_RELATION}")
        con.execute(f"insert into {EVENTS_RELATION} by name select * from frame")
        rows = con.execute(f"execute {self._PREPARED}").pl().drop(LABEL_COLUMNS)
        unkeyed = [pl.col(c).str.slice(_KEY_WIDTH) for c in ("user_id", "event_id")]
        if len(frames) == 1:
            return [rows.with_columns(unkeyed)]
        number = pl.col("user_id").str.head(_KEY_WIDTH).cast(pl.Int64).alias("__uba_frame")
        parts = rows.with_columns(number).with_columns(unkeyed)
        split = parts.partition_by("__uba_frame", as_dict=True, include_key=False)
        empty = rows.clear()
        return [split.get((number,), empty) for number in range(len(frames))]
