"""Realized performance: how good the stored scores turned out, once outcomes matured.

From a model's score history (every run kept, python_models.common.scores) joined to its
matured outcomes (the spec's `outcomes`): per model version and scored snapshot, and per model
version over all its snapshots (as_of_date null). A user scored several times for the same
snapshot by the same version counts once (the latest run). Yes/no outcomes (churn) get ROC
AUC, Brier score, mean predicted vs observed rate and their ratio (calibration); numbers (LTV
revenue) get MAE, RMSE, mean predicted vs actual and bias.

Stored long in `ml.realized_performance` (model_name, model_version, as_of_date, metric,
value, n_users, computed_at), rebuilt whole on each refresh: it is a function of the history
and the outcomes, so re-running gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import polars as pl

from python_models.common.registry import utc_now
from python_models.common.scores import newest_scores
from python_models.common.spec import KEY_COLUMNS, ModelSpec
from python_models.warehouse import replace_table

REALIZED_TABLE = "ml.realized_performance"
SCHEMA = {
    "model_name": pl.String,
    "model_version": pl.String,
    "as_of_date": pl.Date,  # null: every snapshot of the version together
    "metric": pl.String,
    "value": pl.Float64,
    "n_users": pl.Int64,
    "computed_at": pl.Datetime("us"),
}


def outcome_metrics(score: np.ndarray, outcome: np.ndarray, binary: bool) -> dict[str, float]:
    """Metrics of predictions `score` against realized `outcome`."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    if binary:
        y = outcome.astype(int)
        both = 0 < y.sum() < y.size
        mean_score = float(score.mean())
        return {
            "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
            "brier": float(brier_score_loss(y, np.clip(score, 0.0, 1.0))),
            "mean_predicted": mean_score,
            "observed_rate": float(y.mean()),
            "calibration_ratio": float(y.mean() / mean_score) if mean_score else float("nan"),
        }
    error = score - outcome
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "mean_predicted": float(score.mean()),
        "mean_actual": float(outcome.mean()),
        "bias": float(error.mean()),
    }


def realized_rows(model_name: str, joined: pl.DataFrame) -> list[dict]:
    """Rows for one model from its scored rows joined to outcomes (model_version,
    as_of_date, score, outcome)."""
    if joined.height == 0:
        return []
    binary = joined.schema["outcome"] == pl.Boolean
    rows = []
    now = utc_now()
    groups = [
        *joined.group_by("model_version", "as_of_date", maintain_order=True),
        *(
            ((version, None), part)
            for (version,), part in joined.group_by("model_version", maintain_order=True)
        ),
    ]
    for (version, as_of), part in groups:
        metrics = outcome_metrics(
            part["score"].cast(pl.Float64).to_numpy(),
            part["outcome"].cast(pl.Float64).to_numpy(),
            binary,
        )
        for metric, value in metrics.items():
            rows.append(
                {
                    "model_name": model_name,
                    "model_version": version,
                    "as_of_date": as_of,
                    "metric": metric,
                    "value": None if np.isnan(value) else value,
                    "n_users": part.height,
                    "computed_at": now,
                }
            )
    return rows


def scored_outcomes(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> pl.DataFrame:
    """The model's stored scores (latest run per version, snapshot and user) with their
    matured outcome; empty when nothing has matured."""
    if spec.outcomes is None:
        return pl.DataFrame()
    latest = newest_scores(
        con, spec, ("model_version", *KEY_COLUMNS, "score", *spec.detail_columns)
    )
    if latest.height == 0:
        return pl.DataFrame()
    details = [c for c in spec.detail_columns if c in latest.columns]
    keys = latest.select(*KEY_COLUMNS, *details).unique(subset=list(KEY_COLUMNS))
    outcomes = spec.outcomes(con, keys)
    if outcomes.height == 0:
        return pl.DataFrame()
    return latest.select("model_version", *KEY_COLUMNS, "score").join(
        outcomes, on=list(KEY_COLUMNS), how="inner"
    )


def refresh_realized_performance(
    con: duckdb.DuckDBPyConnection, specs: Iterable[ModelSpec]
) -> pl.DataFrame:
    """Recompute ml.realized_performance for every model with outcomes; returns it."""
    rows = []
    for spec in specs:
        rows += realized_rows(spec.name, scored_outcomes(con, spec))
    table = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    replace_table(con, REALIZED_TABLE, table.to_arrow())
    return table
