"""Score tables in `ml_scores`, in the column order of the model's spec, written atomically."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from python_models.common.features import FEATURES_TABLE
from python_models.common.registry import utc_now
from python_models.common.spec import ModelSpec
from python_models.warehouse import replace_table, table_exists, table_fingerprint

_KEY_TYPES = {"user_id": pl.String, "as_of_date": pl.Date}


def score_frame(
    spec: ModelSpec,
    model_version: str,
    run_id: str | None,
    frame: pl.DataFrame,
) -> pl.DataFrame:
    """Add the bookkeeping columns to `frame` (the spec's key columns, score, labels, reasons)."""
    label_columns = list(spec.label_columns)
    missing = [c for c in [*spec.key_columns, "score", *label_columns] if c not in frame]
    if missing:
        raise ValueError(f"score frame for {spec.name} lacks columns {missing}")
    if "reasons" not in frame.columns:
        frame = frame.with_columns(pl.lit("", dtype=pl.String).alias("reasons"))
    return frame.select(
        *[
            pl.col(c).cast(_KEY_TYPES[c]) if c in _KEY_TYPES else pl.col(c)
            for c in spec.key_columns
        ],
        pl.lit(spec.name).alias("model_name"),
        pl.lit(model_version).alias("model_version"),
        pl.col("score").cast(pl.Float64),
        *[pl.col(c) for c in label_columns],
        pl.col("reasons").cast(pl.String),
        pl.lit(utc_now()).cast(pl.Datetime("us")).alias("scored_at"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
    )


def write_scores(con: duckdb.DuckDBPyConnection, spec: ModelSpec, frame: pl.DataFrame) -> int:
    """Replace the model's score table (atomic: a failure keeps the previous scores)."""
    return replace_table(con, spec.score_table, frame.to_arrow())


# --- what was scored, so a refresh rescores only what changed --------------------------------
# Bookkeeping, not for readers: the schema is not published.
STATE_SCHEMA = "pipeline_state"
SCORE_RUNS = f"{STATE_SCHEMA}.score_runs"  # per model: version and input fingerprint scored
SCORED_ROWS = f"{STATE_SCHEMA}.scored_rows"  # per model and row: the feature-row hash scored
_LATEST_ROWS = "__uba_latest_feature_rows"


@dataclass(frozen=True)
class ScoreRun:
    model_version: str
    inputs_fingerprint: str | None  # None for row-wise models (their rows are compared)


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"""
        create table if not exists {SCORE_RUNS} (
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


def last_score_run(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> ScoreRun | None:
    """What the score table holds now, or None when unknown (never scored, or scored before
    this bookkeeping existed, or the table is gone): then the next scoring is a full one."""
    if not table_exists(con, SCORE_RUNS) or not table_exists(con, spec.score_table):
        return None
    row = con.execute(
        f"select model_version, inputs_fingerprint from {SCORE_RUNS} where model_name = ?",
        [spec.name],
    ).fetchone()
    return ScoreRun(row[0], row[1]) if row else None


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> str:
    return ";".join(f"{table}={table_fingerprint(con, table)}" for table in spec.inputs)


def stage_latest_rows(con: duckdb.DuckDBPyConnection) -> None:
    """A temp table of the feature mart's newest snapshot: user_id, as_of_date and a hash of
    the whole row. Doubles are rounded to 9 decimals first, so a rebuild that sums in another
    order (DuckDB's parallel aggregates) does not read as a change."""
    schema, table = FEATURES_TABLE.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    if not columns:
        raise LookupError(f"table {FEATURES_TABLE} does not exist: run `uba build` first")
    hashed = ", ".join(
        f'round(f."{name}", 9)' if kind in ("DOUBLE", "FLOAT") else f'f."{name}"'
        for name, kind in columns
    )
    con.execute(
        f"""
        create or replace temp table {_LATEST_ROWS} as
        select f.user_id, f.as_of_date, hash({hashed}) as row_hash
        from {FEATURES_TABLE} as f
        where f.as_of_date = (select max(as_of_date) from {FEATURES_TABLE})
        """
    )


def changed_rows(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> tuple[pl.DataFrame, int]:
    """(feature-mart rows of the newest snapshot not scored with these values, score-table rows
    no longer in the newest snapshot). Call stage_latest_rows first."""
    changed = con.execute(
        f"""
        select f.*
        from {FEATURES_TABLE} as f
        join {_LATEST_ROWS} as l using (user_id, as_of_date)
        where not exists (
            select 1 from {SCORED_ROWS} as s
            where s.model_name = ? and s.user_id = l.user_id and s.as_of_date = l.as_of_date
              and s.row_hash = l.row_hash
        )
        order by f.user_id
        """,
        [spec.name],
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


def record_score_run(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    model_version: str,
    run_id: str | None,
    fingerprint: str | None,
) -> None:
    """Remember what the score table now holds (inside the caller's transaction, if any)."""
    ensure_state_tables(con)
    con.execute(f"delete from {SCORE_RUNS} where model_name = ?", [spec.name])
    con.execute(
        f"insert into {SCORE_RUNS} values (?, ?, ?, ?, ?)",
        [spec.name, model_version, fingerprint, utc_now(), run_id],
    )
    con.execute(f"delete from {SCORED_ROWS} where model_name = ?", [spec.name])
    if spec.rowwise_scoring:
        con.execute(
            f"insert into {SCORED_ROWS} select ?, user_id, as_of_date, row_hash "
            f"from {_LATEST_ROWS}",
            [spec.name],
        )


def merge_scores(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    frame: pl.DataFrame,
    model_version: str,
    run_id: str | None,
) -> int:
    """Replace the rows of `frame`'s keys in the score table and drop the rows no longer in the
    newest snapshot, in one transaction (a failure keeps the previous scores and state)."""
    con.register("__uba_scores", frame.to_arrow())
    try:
        con.execute("begin transaction")
        try:
            con.execute(
                f"""
                delete from {spec.score_table} as s
                where not exists (
                    select 1 from {_LATEST_ROWS} as l
                    where l.user_id = s.user_id and l.as_of_date = s.as_of_date
                )
                or exists (
                    select 1 from __uba_scores as n
                    where n.user_id = s.user_id and n.as_of_date = s.as_of_date
                )
                """
            )
            con.execute(f"insert into {spec.score_table} by name select * from __uba_scores")
            record_score_run(con, spec, model_version, run_id, None)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.unregister("__uba_scores")
    return frame.height
