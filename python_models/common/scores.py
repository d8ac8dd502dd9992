"""Score tables in `ml_scores`: every run kept, the newest one current.

For each model (its spec declares the table and its columns):

- `ml_scores.<table>_history`: every scoring run's rows, keyed by (run_id, user_id, as_of_date),
  with scored_at. Re-running a run id replaces that run's rows, so it never duplicates them.
- `ml_scores.<table>`: the rows of the newest run, what BI reads (same columns).
- `ml.scoring_runs`: one row per (model_name, run_id): model version, scored_at, as_of_date,
  rows and the fingerprint of the inputs it scored (the drift sensor's "did the data change").

All three are written in one transaction: a failure leaves the previous tables as they were.
An incremental scorer (only users whose features changed) fits this shape: it appends its
rows to the history under its run id and rebuilds the current table from its rows plus the
previous current rows of the users it did not rescore.
"""

from __future__ import annotations

import uuid

import duckdb
import polars as pl

from python_models.common.registry import utc_now
from python_models.common.spec import HOLDOUT_COLUMN, ModelSpec
from python_models.warehouse import split_name, table_exists

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


def ensure_runs_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ml")
    con.execute(
        f"""
        create table if not exists {SCORING_RUNS_TABLE} (
            model_name varchar not null,
            run_id varchar not null,
            model_version varchar not null,
            scored_at timestamp not null,
            as_of_date date,
            rows bigint not null,
            input_fingerprint varchar,
            primary key (model_name, run_id)
        )
        """
    )


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, staged: str) -> None:
    """A history written under an older contract gets the new columns (null in old rows)."""
    schema, name = split_name(table)
    have = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }
    for column, kind in con.execute(
        f"select column_name, column_type from (describe {staged})"
    ).fetchall():
        if column not in have:
            con.execute(f'alter table {table} add column "{column}" {kind}')


def write_scores(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    frame: pl.DataFrame,
    input_fingerprint: str | None = None,
) -> int:
    """Append one run (`frame`, from `score_frame`: a single run_id) to the model's history,
    make it the current table and record the run, atomically. Returns the rows written."""
    run_ids = frame["run_id"].unique().to_list()
    if len(run_ids) != 1 or run_ids[0] is None:
        raise ValueError(f"a score write holds exactly one run id, got {run_ids}")
    run_id = run_ids[0]
    schema, table = split_name(spec.score_table)
    history = spec.history_table
    staged = f'"{schema}"."{table}__new_{uuid.uuid4().hex[:8]}"'
    con.execute(f'create schema if not exists "{schema}"')
    ensure_runs_table(con)
    con.register("__uba_scores", frame.to_arrow())
    try:
        con.execute("begin transaction")
        con.execute(f"create table {staged} as select * from __uba_scores")
        if table_exists(con, history):
            _add_missing_columns(con, history, staged)
        else:
            con.execute(f"create table {history} as select * from {staged} limit 0")
        con.execute(f"delete from {history} where run_id = ?", [run_id])
        con.execute(f"insert into {history} by name select * from {staged}")
        con.execute(f'drop table if exists "{schema}"."{table}"')
        con.execute(f'alter table {staged} rename to "{table}"')
        con.execute(
            f"delete from {SCORING_RUNS_TABLE} where model_name = ? and run_id = ?",
            [spec.name, run_id],
        )
        as_of = frame["as_of_date"].max() if frame.height and "as_of_date" in frame else None
        con.execute(
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
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("__uba_scores")
    return frame.height


def score_history(
    con: duckdb.DuckDBPyConnection, spec: ModelSpec, columns: tuple[str, ...] = ()
) -> pl.DataFrame:
    """The model's stored scores of every run (empty when it was never scored)."""
    if not table_exists(con, spec.history_table):
        return pl.DataFrame()
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    order = ", ".join(["scored_at", "run_id", *spec.key_columns])
    return con.execute(f"select {select} from {spec.history_table} order by {order}").pl()
