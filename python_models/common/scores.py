"""Score tables in `ml_scores`, in the column order of the model's spec, written atomically."""

from __future__ import annotations

import duckdb
import polars as pl

from python_models.common.registry import utc_now
from python_models.common.spec import ModelSpec
from python_models.warehouse import replace_table

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
