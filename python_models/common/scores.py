"""Score tables in `ml_scores`: every run kept, the newest one current.

For each model (its spec declares the table and its columns):

- `ml_scores.<table>_history`: every scoring run's rows, keyed by (run_id, user_id, as_of_date),
  with scored_at. Re-running a run id replaces that run's rows, so it never duplicates them.
- `ml_scores.<table>`: the rows of the newest run, what BI reads (same columns).
- `ml.scoring_runs`: one row per (model_name, run_id): model version, scored_at, as_of_date,
  rows and the fingerprint of the inputs it scored (the drift sensor's "did the data change").

All three are written in one transaction: a failure leaves the previous tables as they were.
An incremental scorer (only rows whose features changed) fits this shape: it appends its
rows to the history under its run id and rebuilds the current table from its rows plus the
previous current rows of the rows it did not rescore.

That bookkeeping of what was scored (`pipeline_state`, for `uba refresh`) is kept on DuckDB
only (it hashes feature rows with DuckDB's hash()); on another engine it is not recorded, so
every scoring there is a full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from python_models.common.features import FEATURES_TABLE, KEY_COLUMNS
from python_models.common.registry import utc_now
from python_models.common.spec import HOLDOUT_COLUMN, ModelSpec
from python_models.warehouse import (
    Warehouse,
    as_warehouse,
    split_name,
    table_exists,
    table_fingerprint,
)

SCORING_RUNS_TABLE = "ml.scoring_runs"

_KEY_TYPES = {"user_id": pl.String, "as_of_date": pl.Date}


def score_frame(
    spec: ModelSpec,
    model_version: str,
    run_id: str | None,
    frame: pl.DataFrame,
) -> pl.DataFrame:
    """Add the bookkeeping columns to `frame` (the spec's key columns, score, labels, details,
    reasons, and holdout_group when known for per-user tables) in the spec's column order."""
    required = [*spec.key_columns, "score", *spec.label_columns, *spec.detail_columns]
    missing = [c for c in required if c not in frame]
    if missing:
        raise ValueError(f"score frame for {spec.name} lacks columns {missing}")
    if "reasons" not in frame.columns:
        frame = frame.with_columns(pl.lit("", dtype=pl.String).alias("reasons"))
    per_user = "user_id" in spec.key_columns
    if per_user and HOLDOUT_COLUMN not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(HOLDOUT_COLUMN))
    return frame.select(
        *[
            pl.col(c).cast(_KEY_TYPES[c]) if c in _KEY_TYPES else pl.col(c)
            for c in spec.key_columns
        ],
        pl.lit(spec.name).alias("model_name"),
        pl.lit(model_version).alias("model_version"),
        pl.col("score").cast(pl.Float64),
        *[pl.col(c) for c in spec.label_columns],
        *[pl.col(c) for c in spec.detail_columns],
        pl.col("reasons").cast(pl.String),
        *([pl.col(HOLDOUT_COLUMN).cast(pl.String)] if per_user else []),
        pl.lit(utc_now()).cast(pl.Datetime("us")).alias("scored_at"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
    )


def ensure_runs_table(con: Warehouse) -> None:
    w = as_warehouse(con)
    t = w.types
    w.create_schema("ml")
    key = ", primary key (model_name, run_id)" if w.supports_constraints else ""
    w.execute(
        f"""
        create table if not exists {SCORING_RUNS_TABLE} (
            model_name {t.text} not null,
            run_id {t.text} not null,
            model_version {t.text} not null,
            scored_at {t.timestamp} not null,
            as_of_date {t.date},
            rows {t.bigint} not null,
            input_fingerprint {t.text}{key}
        )
        """
    )


def _add_missing_columns(w: Warehouse, table: str, frame: pl.DataFrame) -> None:
    """A history written under an older contract gets the new columns (null in old rows)."""
    have = set(w.table_columns(table))
    for column, dtype in frame.schema.items():
        if column not in have:
            w.execute(f'alter table {table} add column "{column}" {w.column_type(dtype)}')


def _swap_in_run(
    w: Warehouse, spec: ModelSpec, run_rows: pl.DataFrame, current: Any, run_id: str
) -> None:
    """Inside the caller's transaction: the run's rows replace that run in the history,
    `current` (an Arrow table or frame) becomes the current table, and the run's old record is
    removed (the caller inserts the new one)."""
    history = spec.history_table
    data = run_rows.to_arrow()
    if table_exists(w, history):
        _add_missing_columns(w, history, run_rows)
    else:
        w.replace_table(history, data.slice(0, 0))
    w.replace_rows(history, "run_id = ?", [run_id], data)
    w.replace_table(spec.score_table, current)
    w.replace_rows(SCORING_RUNS_TABLE, "model_name = ? and run_id = ?", [spec.name, run_id], None)


def write_scores(
    con: Warehouse,
    spec: ModelSpec,
    frame: pl.DataFrame,
    input_fingerprint: str | None = None,
) -> int:
    """Append one run (`frame`, from `score_frame`: a single run_id) to the model's history,
    make it the current table and record the run, in one transaction on engines that have
    them (DuckDB, PostgreSQL). Returns the rows written."""
    run_ids = frame["run_id"].unique().to_list()
    if len(run_ids) != 1 or run_ids[0] is None:
        raise ValueError(f"a score write holds exactly one run id, got {run_ids}")
    run_id = run_ids[0]
    w = as_warehouse(con)
    w.create_schema(split_name(spec.score_table)[0])
    ensure_runs_table(w)
    with w.transaction():
        _swap_in_run(w, spec, frame, frame.to_arrow(), run_id)
        as_of = frame["as_of_date"].max() if frame.height and "as_of_date" in frame else None
        w.execute(
            f"insert into {SCORING_RUNS_TABLE} values (?, ?, ?, ?, ?, ?, ?)",
            [
                spec.name,
                run_id,
                frame["model_version"][0] if frame.height else "",
                frame["scored_at"][0] if frame.height else utc_now(),
                as_of,
                frame.height,
                input_fingerprint,
            ],
        )
    return frame.height


def newest_scores(con: duckdb.DuckDBPyConnection, spec: ModelSpec, columns: tuple[str, ...]):
    """Per model version and key (user_id, as_of_date), the newest stored score's `columns`
    (those the history has), picked in the warehouse: the history grows by a run a day, and
    reading all of it into memory grew with it (realized performance)."""
    stored = set(as_warehouse(con).table_columns(spec.history_table))
    if not stored:  # never scored
        return pl.DataFrame()
    keys = ", ".join(("model_version", *KEY_COLUMNS))
    return con.execute(
        f"""
        select {", ".join(c for c in columns if c in stored)} from (
            select *, row_number() over (
                partition by {keys} order by scored_at desc, run_id desc
            ) as newest_first
            from {spec.history_table}
        ) as runs
        where newest_first = 1
        order by scored_at, run_id, {", ".join(KEY_COLUMNS)}
        """
    ).pl()


# --- what was scored, so a refresh rescores only what changed --------------------------------
# Bookkeeping, not for readers: the schema is not published.
STATE_SCHEMA = "pipeline_state"
SCORE_STATE = f"{STATE_SCHEMA}.score_runs"  # per model: version and input fingerprint scored
SCORED_ROWS = f"{STATE_SCHEMA}.scored_rows"  # per model and row: the feature-row hash scored
_LATEST_ROWS = "__uba_latest_feature_rows"
_CHANGED_ROWS = "__uba_changed_feature_rows"  # changed_rows' keys, for merge_scores


def tracks_score_state(con: Any) -> bool:
    """Whether this warehouse keeps the refresh bookkeeping (DuckDB; see the module docstring)."""
    return as_warehouse(con).engine == "duckdb"


@dataclass(frozen=True)
class ScoreState:
    model_version: str
    inputs_fingerprint: str | None  # None for row-wise models (their rows are compared)


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"""
        create table if not exists {SCORE_STATE} (
            model_name varchar primary key,
            model_version varchar not null,
            inputs_fingerprint varchar,
            scored_at timestamp not null,
            run_id varchar
        )
        """
    )
    con.execute(
        f"""
        create table if not exists {SCORED_ROWS} (
            model_name varchar not null,
            user_id varchar not null,
            as_of_date date not null,
            row_hash ubigint not null
        )
        """
    )


def last_score_state(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> ScoreState | None:
    """What the score table holds now, or None when unknown (never scored, scored before this
    bookkeeping existed, or the table is gone): then the next scoring is a full one."""
    if not tracks_score_state(con):
        return None
    if not table_exists(con, SCORE_STATE) or not table_exists(con, spec.score_table):
        return None
    row = con.execute(
        f"select model_version, inputs_fingerprint from {SCORE_STATE} where model_name = ?",
        [spec.name],
    ).fetchone()
    return ScoreState(row[0], row[1]) if row else None


def inputs_fingerprint(
    con: duckdb.DuckDBPyConnection, spec: ModelSpec, known: dict[str, str] | None = None
) -> str:
    """Content fingerprints of the input tables (ModelSpec.fingerprinted_inputs). `known`: the
    fingerprints taken earlier in one scoring run, filled as tables are hashed: a run's models
    write only their score tables, never an input (dbt's tables), and one hash of a 10M-row
    fct_events is seconds, which LTV and anomaly both read."""
    known = {} if known is None else known
    for table in spec.fingerprinted_inputs:
        if table not in known:
            known[table] = table_fingerprint(con, table)
    return ";".join(f"{table}={known[table]}" for table in spec.fingerprinted_inputs)


def _feature_rows(spec: ModelSpec) -> tuple[str, list[str]]:
    """(the table of the rows a row-wise model scores: its feature mart unless
    spec.scored_rows, the columns naming one of its rows: the mart's grain in the catalogue,
    e.g. user_id + as_of_date, or user_id + event_id)."""
    from python_models.common import catalogue

    mart = spec.feature_mart or split_name(FEATURES_TABLE)[1]
    return spec.scored_rows or f"features.{mart}", catalogue.key_columns(mart)


def stage_latest_rows(
    con: duckdb.DuckDBPyConnection,
    keys: pl.DataFrame | tuple[str, list],
    spec: ModelSpec | None = None,
) -> None:
    """A temp table of the rows a row-wise model scores now with a hash of each one's whole
    feature-mart row (`spec`'s mart, or its scored_rows table; ftr_user_features when None).
    `keys`: user_id, as_of_date of its population in the newest snapshot and the mart's grain
    columns; or (a SQL condition on the mart's columns, its parameters) for a model that scores
    every row matching it (ModelSpec.score_population: anomaly's user-days), as_of_date being
    the grain's date.
    Doubles are rounded to 9 decimals first, so a rebuild that sums in another order (DuckDB's
    parallel aggregates) does not read as a change."""
    if not tracks_score_state(con):
        return
    mart, grain = _feature_rows(spec) if spec else (FEATURES_TABLE, list(KEY_COLUMNS))
    schema, table = split_name(mart)
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    if not columns:
        raise LookupError(f"table {mart} does not exist: run `uba build` first")
    hashed = ", ".join(
        f'round(f."{name}", 9)' if kind in ("DOUBLE", "FLOAT") else f'f."{name}"'
        for name, kind in columns
    )
    extra = [c for c in grain if c not in KEY_COLUMNS]
    if isinstance(keys, tuple):
        condition, params = keys
        (date,) = ["as_of_date"] if "as_of_date" in grain else [c for c in grain if c != "user_id"]
        con.execute(
            f"""
            create or replace temp table {_LATEST_ROWS} as
            select f.user_id, f."{date}" as as_of_date, {", ".join(f'f."{c}"' for c in extra)},
                hash({hashed}) as row_hash
            from {mart} as f
            where {condition}
            """,
            params,
        )
        return
    on = " and ".join(f'k."{c}" = f."{c}"' for c in grain)
    con.register("__uba_keys", keys.select(*KEY_COLUMNS, *extra).to_arrow())
    try:
        con.execute(
            f"""
            create or replace temp table {_LATEST_ROWS} as
            select {", ".join(f'k."{c}"' for c in (*KEY_COLUMNS, *extra))},
                hash({hashed}) as row_hash
            from {mart} as f
            join __uba_keys as k on {on}
            """
        )
    finally:
        con.unregister("__uba_keys")


def changed_rows(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> tuple[pl.DataFrame, int]:
    """(the feature-mart rows of the staged population not scored with these values, the
    score-table rows no longer in it). Call stage_latest_rows first; it also stages the
    changed rows' keys for merge_scores (whether each was scored before, with other values)."""
    mart, grain = _feature_rows(spec)
    con.execute(
        f"""
        create or replace temp table {_CHANGED_ROWS} as
        select l.*, s.row_hash is not null as was_scored
        from {_LATEST_ROWS} as l
        left join (select * from {SCORED_ROWS} where model_name = ?) as s
            on s.user_id = l.user_id and s.as_of_date = l.as_of_date
        where s.row_hash is distinct from l.row_hash
        """,
        [spec.name],
    )
    changed = con.execute(
        f"""
        select f.*
        from {mart} as f
        join {_CHANGED_ROWS} as c using ({", ".join(f'"{c}"' for c in grain)})
        order by f.user_id
        """
    ).pl()
    stale = con.execute(
        f"""
        select count(*) from {spec.score_table} as s
        where not exists (
            select 1 from {_LATEST_ROWS} as l
            where l.user_id = s.user_id and l.as_of_date = s.as_of_date
        )
        """
    ).fetchone()[0]
    return changed, int(stale)


def record_score_state(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    model_version: str,
    run_id: str | None,
    fingerprint: str | None,
    changed_only: bool = False,
) -> None:
    """Remember what the score table now holds (inside the caller's transaction, if any); a
    row-wise model's rows are the staged ones (stage_latest_rows). `changed_only`: only the
    changed rows (changed_rows') and the rows that left the population are written, the same
    end state without rewriting every row (anomaly records every user-day of its history)."""
    if not tracks_score_state(con):
        return
    ensure_state_tables(con)
    con.execute(f"delete from {SCORE_STATE} where model_name = ?", [spec.name])
    con.execute(
        f"insert into {SCORE_STATE} values (?, ?, ?, ?, ?)",
        [spec.name, model_version, fingerprint, utc_now(), run_id],
    )
    if not (spec.rowwise_scoring and changed_only):
        con.execute(f"delete from {SCORED_ROWS} where model_name = ?", [spec.name])
    if not spec.rowwise_scoring:
        return
    if not changed_only:
        con.execute(
            f"insert into {SCORED_ROWS} select ?, user_id, as_of_date, row_hash "
            f"from {_LATEST_ROWS}",
            [spec.name],
        )
        return
    # One row per model and key: the recorded rows not changed are the staged ones not
    # changed, so any other recorded row left the population (rare: a consent withdrawal,
    # the lookback window moving on); only then is every recorded row looked up.
    recorded, staged, changed, rescored, earliest = con.execute(
        f"""
        select (select count(*) from {SCORED_ROWS} where model_name = ?),
            (select count(*) from {_LATEST_ROWS}),
            (select count(*) from {_CHANGED_ROWS}),
            (select count(*) from {_CHANGED_ROWS} where was_scored),
            (select min(as_of_date) from {_CHANGED_ROWS} where was_scored)
        """,
        [spec.name],
    ).fetchone()
    if recorded - rescored != staged - changed:
        con.execute(
            f"""
            delete from {SCORED_ROWS} as s
            where s.model_name = ? and not exists (
                select 1 from {_LATEST_ROWS} as l
                where l.user_id = s.user_id and l.as_of_date = s.as_of_date
            )
            """,
            [spec.name],
        )
    if rescored:
        # The earliest rescored date written in as a literal: the recorded rows are appended
        # in date order (a population's, then each day's changes), so DuckDB skips the row
        # groups before it (anomaly records every user-day: at 10M the delete read 1.5M rows
        # for 15,000, 0.4 s a day).
        con.execute(
            f"""
            delete from {SCORED_ROWS} as s
            where s.model_name = ? and s.as_of_date >= cast('{earliest.isoformat()}' as date)
            and exists (
                select 1 from {_CHANGED_ROWS} as c
                where c.was_scored and c.user_id = s.user_id and c.as_of_date = s.as_of_date
            )
            """,
            [spec.name],
        )
    con.execute(
        f"insert into {SCORED_ROWS} select ?, user_id, as_of_date, row_hash from {_CHANGED_ROWS}",
        [spec.name],
    )


def merge_scores(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    frame: pl.DataFrame,
    run_id: str,
    model_version: str,
    input_fingerprint: str | None = None,
) -> int:
    """An incremental run (`frame`: the scores of changed_rows' rows under `run_id`; a model
    that keeps some rows only, like anomaly's alerts, may return fewer, or none): appended to
    the history under its run id; the current table becomes these rows plus the previous
    current rows of the staged population whose features did not change (rows that left the
    population, and changed rows the model no longer keeps, are dropped); the run and the new
    state are recorded. One transaction: a failure keeps everything as it was."""
    if set(frame["run_id"].unique().to_list()) - {run_id}:
        raise ValueError(f"a score write holds exactly one run id, {run_id}")
    w = as_warehouse(con)
    ensure_runs_table(w)
    w.register("__uba_scores", frame.to_arrow())
    try:
        with w.transaction():
            current = w.execute(
                f"""
                select * from __uba_scores
                union all by name
                select s.* from {spec.score_table} as s
                where exists (
                    select 1 from {_LATEST_ROWS} as l
                    where l.user_id = s.user_id and l.as_of_date = s.as_of_date
                )
                and not exists (
                    select 1 from {_CHANGED_ROWS} as c
                    where c.user_id = s.user_id and c.as_of_date = s.as_of_date
                )
                """
            ).fetch_arrow_table()
            _swap_in_run(w, spec, frame, current, run_id)
            as_of = frame["as_of_date"].max() if frame.height else None
            w.execute(
                f"insert into {SCORING_RUNS_TABLE} values (?, ?, ?, ?, ?, ?, ?)",
                [
                    spec.name,
                    run_id,
                    model_version,
                    utc_now(),
                    as_of,
                    frame.height,
                    input_fingerprint,
                ],
            )
            record_score_state(w, spec, model_version, run_id, None, changed_only=True)
    finally:
        w.unregister("__uba_scores")
    return frame.height
