"""Reading the feature mart: feature lists from the catalogue, frames through Arrow -> polars."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from python_models.common.artifacts import stable_hash
from python_models.warehouse import Warehouse, as_warehouse

FEATURES_TABLE = "features.ftr_user_features"
LABELS_TABLE = "features.ftr_user_labels"
KEY_COLUMNS = ("user_id", "as_of_date")


def catalogue_feature_columns(model_name: str) -> list[str]:
    """Feature names for `model_name` from the feature catalogue (dbt column meta)."""
    from python_models.common import catalogue

    return list(catalogue.feature_columns(model_name))


def feature_list_hash(features: list[str]) -> str:
    return stable_hash(list(features), length=16)


def table_columns(con: Warehouse, qualified: str) -> list[str]:
    columns = as_warehouse(con).table_columns(qualified)
    if not columns:
        raise LookupError(f"table {qualified} does not exist: run `uba build` first")
    return columns


def check_columns(available: list[str], wanted: list[str], where: str) -> None:
    missing = [c for c in wanted if c not in available]
    if missing:
        raise LookupError(
            f"{where} lacks the catalogue's feature columns {missing}; rebuild the features "
            "(`uba build`) or fix dbt_project/models/features/_features__models.yml"
        )


def _select_list(columns: list[str], alias: str) -> str:
    return ", ".join(f'{alias}."{c}"' for c in columns)


def load_labelled(
    con: Warehouse,
    features: list[str],
    label: str,
    since: date | None = None,
    population: str | None = None,
) -> pl.DataFrame:
    """Features joined to a matured label (rows whose label is not null), as polars.
    `population`: a condition on the feature row (alias `f`) the rows must also meet, read in
    the warehouse so the other rows never reach Python."""
    check_columns(table_columns(con, FEATURES_TABLE), features, FEATURES_TABLE)
    where = [f'l."{label}" is not null']
    args: list[Any] = []
    if since is not None:
        where.append("f.as_of_date >= ?")
        args.append(since)
    if population is not None:
        where.append(f"({population})")
    sql = f"""
        select f.user_id, f.as_of_date, {_select_list(features, "f")}, l."{label}" as label
        from {FEATURES_TABLE} as f
        join {LABELS_TABLE} as l using (user_id, as_of_date)
        where {" and ".join(where)}
        order by f.as_of_date, f.user_id
    """
    return con.execute(sql, args).pl()


def load_snapshot(
    con: Warehouse, features: list[str], as_of_date: date | None = None
) -> pl.DataFrame:
    """One snapshot of the feature mart (the latest when `as_of_date` is None), as polars."""
    check_columns(table_columns(con, FEATURES_TABLE), features, FEATURES_TABLE)
    if as_of_date is None:
        as_of_date = con.execute(f"select max(as_of_date) from {FEATURES_TABLE}").fetchone()[0]
        if as_of_date is None:
            raise LookupError(f"{FEATURES_TABLE} is empty: nothing to score")
    sql = f"""
        select f.user_id, f.as_of_date, {_select_list(features, "f")}
        from {FEATURES_TABLE} as f
        where f.as_of_date = ?
        order by f.user_id
    """
    return con.execute(sql, [as_of_date]).pl()


def label_horizon_days(con: Warehouse, column: str) -> int:
    """A label's horizon in days, as the labels mart recorded it (`<label>_horizon_days`)."""
    value = con.execute(f'select max("{column}") from {LABELS_TABLE}').fetchone()[0]
    if value is None:
        raise LookupError(f"{LABELS_TABLE} has no matured labels yet: run `uba build` first")
    return int(value)


def latest_snapshot_features(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    """A spec's `latest_features` (drift) for models that read the feature mart."""
    return load_snapshot(con, bundle["features"])


def to_matrix(frame: pl.DataFrame, features: list[str], dtype: type = np.float64) -> np.ndarray:
    """Numpy matrix of `features` in `dtype` (nulls become NaN; LightGBM handles missing),
    column-major as LightGBM reads it without a copy. Filled one column at a time, so no cast
    copy of the whole frame stands beside it (at 100M events churn's fit matrix is 2.5 GB in
    float64, and the cast copy took RSS up by 3.6 GB in all)."""
    matrix = np.empty((frame.height, len(features)), dtype=dtype, order="F")
    for position, name in enumerate(features):
        matrix[:, position] = frame[name].cast(pl.Float64).to_numpy()
    return matrix
