"""The model registry (`ml.model_registry`) and evaluation log (`ml.model_evaluations`).

Statuses: `champion` (the one scoring uses; at most one per model), `challenger` (beat the
baselines but not the champion), `rejected` (did not beat the baselines), `retired` (was
champion once). `promoted_at` keeps when a version first became champion, so a rollback can walk
back through former champions in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from python_models.common.artifacts import load_artifact
from python_models.warehouse import Warehouse, as_warehouse, transaction

REGISTRY_TABLE = "ml.model_registry"
EVALUATIONS_TABLE = "ml.model_evaluations"
STATUSES = ("champion", "challenger", "rejected", "retired")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (no champion, nothing to roll back to, ...)."""


@dataclass(frozen=True)
class RegistryEntry:
    model_name: str
    model_version: str
    trained_at: datetime
    data_window_start: date | None
    data_window_end: date | None
    feature_list_hash: str
    features: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str
    artifact_sha256: str
    status: str
    promoted_at: datetime | None
    run_id: str | None

    def load(self) -> dict[str, Any]:
        """The model bundle, after checking the file's sha256 against the registry."""
        return load_artifact(self.artifact_path, self.artifact_sha256)


def ensure_tables(con: Warehouse) -> None:
    w = as_warehouse(con)
    t = w.types
    w.create_schema("ml")
    key = ", primary key (model_name, model_version)" if w.supports_constraints else ""
    w.execute(
        f"""
        create table if not exists {REGISTRY_TABLE} (
            model_name {t.text} not null,
            model_version {t.text} not null,
            trained_at {t.timestamp} not null,
            data_window_start {t.date},
            data_window_end {t.date},
            feature_list_hash {t.text} not null,
            features {t.text} not null,
            params {t.text} not null,
            metrics {t.text} not null,
            artifact_path {t.text} not null,
            artifact_sha256 {t.text} not null,
            status {t.text} not null,
            promoted_at {t.timestamp},
            run_id {t.text}{key}
        )
        """
    )
    w.execute(
        f"""
        create table if not exists {EVALUATIONS_TABLE} (
            model_name {t.text} not null,
            model_version {t.text} not null,
            variant {t.text} not null,
            split {t.text} not null,
            metric {t.text} not null,
            value {t.double},
            evaluated_at {t.timestamp} not null,
            run_id {t.text}
        )
        """
    )


def utc_now() -> datetime:
    """Naive UTC timestamp (the warehouse stores UTC in TIMESTAMP without time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _entry_from_row(row: dict[str, Any]) -> RegistryEntry:
    return RegistryEntry(
        model_name=row["model_name"],
        model_version=row["model_version"],
        trained_at=row["trained_at"],
        data_window_start=row["data_window_start"],
        data_window_end=row["data_window_end"],
        feature_list_hash=row["feature_list_hash"],
        features=json.loads(row["features"]),
        params=json.loads(row["params"]),
        metrics=json.loads(row["metrics"]),
        artifact_path=row["artifact_path"],
        artifact_sha256=row["artifact_sha256"],
        status=row["status"],
        promoted_at=row["promoted_at"],
        run_id=row["run_id"],
    )


def _registry_exists(con: Warehouse) -> bool:
    """Readers do not create tables, so they work on a read-only (published) warehouse."""
    return as_warehouse(con).table_exists(REGISTRY_TABLE)


def list_versions(con: Warehouse, model_name: str | None = None) -> pl.DataFrame:
    if not _registry_exists(con):
        return pl.DataFrame()
    where = "where model_name = ?" if model_name else ""
    args = [model_name] if model_name else []
    return con.execute(
        f"select * from {REGISTRY_TABLE} {where} order by model_name, trained_at, model_version",
        args,
    ).pl()


def get_entry(con: Warehouse, model_name: str, model_version: str) -> RegistryEntry:
    if not _registry_exists(con):
        raise RegistryError("the model registry is empty: run `uba train` first")
    rows = con.execute(
        f"select * from {REGISTRY_TABLE} where model_name = ? and model_version = ?",
        [model_name, model_version],
    ).pl()
    if rows.height == 0:
        raise RegistryError(f"{model_name} version {model_version} is not in the registry")
    return _entry_from_row(rows.row(0, named=True))


def get_champion(con: Warehouse, model_name: str) -> RegistryEntry | None:
    if not _registry_exists(con):
        return None
    rows = con.execute(
        f"select * from {REGISTRY_TABLE} where model_name = ? and status = 'champion'",
        [model_name],
    ).pl()
    if rows.height == 0:
        return None
    return _entry_from_row(rows.row(0, named=True))


def champions(con: Warehouse) -> list[RegistryEntry]:
    """Every model's champion, by model name."""
    if not _registry_exists(con):
        return []
    rows = con.execute(
        f"select * from {REGISTRY_TABLE} where status = 'champion' order by model_name"
    ).pl()
    return [_entry_from_row(row) for row in rows.iter_rows(named=True)]


def require_champion(con: Warehouse, model_name: str) -> RegistryEntry:
    champion = get_champion(con, model_name)
    if champion is None:
        raise RegistryError(
            f"no champion for model {model_name!r}: run `uba train --model {model_name}` first"
        )
    return champion


def register(
    con: Warehouse,
    *,
    model_name: str,
    model_version: str,
    data_window: tuple[date | None, date | None],
    feature_list_hash: str,
    features: list[str],
    params: dict[str, Any],
    metrics: dict[str, Any],
    artifact_path: str | Path,
    artifact_sha256: str,
    status: str,
    run_id: str | None,
) -> None:
    """Insert or replace one version; a new champion retires the previous one (one transaction).

    Re-registering a version that exists (the same content retrained) keeps its first
    `promoted_at`, so rollback order does not change on idempotent re-runs.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    w = as_warehouse(con)
    ensure_tables(w)
    now = utc_now()
    with transaction(w):
        # The model's rows are rewritten as a whole (a handful): the same statements on
        # every engine, including those without UPDATE (Spark's Parquet tables).
        rows = _model_rows(w, model_name)
        previous = rows.filter(pl.col("model_version") == model_version)
        promoted_at = previous["promoted_at"][0] if previous.height else None
        if status == "champion":
            rows = rows.with_columns(
                pl.when(pl.col("status") == "champion")
                .then(pl.lit("retired"))
                .otherwise(pl.col("status"))
                .alias("status")
            )
            promoted_at = promoted_at or now
        elif previous.height and previous["status"][0] in ("champion", "retired"):
            # A version that was champion stays in the rollback chain; retraining the same
            # content does not demote it.
            status = previous["status"][0]
        entry = {
            "model_name": model_name,
            "model_version": model_version,
            "trained_at": now,
            "data_window_start": data_window[0],
            "data_window_end": data_window[1],
            "feature_list_hash": feature_list_hash,
            "features": json.dumps(features),
            "params": json.dumps(params, sort_keys=True, default=str),
            "metrics": json.dumps(metrics, sort_keys=True, default=str),
            "artifact_path": str(artifact_path),
            "artifact_sha256": artifact_sha256,
            "status": status,
            "promoted_at": promoted_at,
            "run_id": run_id,
        }
        rows = pl.concat(
            [
                rows.filter(pl.col("model_version") != model_version),
                pl.DataFrame([entry], schema=rows.schema),
            ]
        )
        w.replace_rows(REGISTRY_TABLE, "model_name = ?", [model_name], rows)


def _model_rows(w: Warehouse, model_name: str) -> pl.DataFrame:
    """The registry rows of one model, typed as the table is."""
    rows = w.execute(f"select * from {REGISTRY_TABLE} where model_name = ?", [model_name]).pl()
    return rows.with_columns(
        pl.col("trained_at", "promoted_at").cast(pl.Datetime("us")),
        pl.col("data_window_start", "data_window_end").cast(pl.Date),
    )


def record_evaluation(
    con: Warehouse,
    model_name: str,
    model_version: str,
    evaluation: pl.DataFrame,
    run_id: str | None,
) -> None:
    """Replace this version's rows in ml.model_evaluations with `evaluation`.

    `evaluation` is wide (one row per variant and split, one column per metric); it is stored
    long (variant, split, metric, value) so models with different metrics share one table.
    """
    ensure_tables(con)
    metric_columns = [c for c in evaluation.columns if c not in ("variant", "split")]
    long = (
        evaluation.unpivot(index=["variant", "split"], on=metric_columns)
        .rename({"variable": "metric"})
        .with_columns(pl.col("value").cast(pl.Float64))
        .with_columns(
            pl.lit(model_name).alias("model_name"),
            pl.lit(model_version).alias("model_version"),
            pl.lit(utc_now()).alias("evaluated_at"),
            pl.lit(run_id, dtype=pl.String).alias("run_id"),
        )
        .select(
            "model_name",
            "model_version",
            "variant",
            "split",
            "metric",
            "value",
            "evaluated_at",
            "run_id",
        )
    )
    as_warehouse(con).replace_rows(
        EVALUATIONS_TABLE,
        "model_name = ? and model_version = ?",
        [model_name, model_version],
        long,
    )


def rollback(con: Warehouse, model_name: str) -> str:
    """Retire the current champion and make the former champion before it champion again."""
    ensure_tables(con)
    current = require_champion(con, model_name)
    previous = con.execute(
        f"""
        select model_version from {REGISTRY_TABLE}
        where model_name = ? and status = 'retired' and promoted_at is not null
          and promoted_at <= ? and model_version <> ?
        order by promoted_at desc, trained_at desc
        limit 1
        """,
        [model_name, current.promoted_at, current.model_version],
    ).fetchone()
    if previous is None:
        raise RegistryError(
            f"cannot roll back {model_name!r}: version {current.model_version} is its first "
            "champion, there is no earlier one"
        )
    # The former champion must still load (sha256 checked) before we switch to it.
    get_entry(con, model_name, previous[0]).load()
    w = as_warehouse(con)
    with transaction(w):
        rows = _model_rows(w, model_name)
        version = pl.col("model_version")
        rows = rows.with_columns(
            pl.when(version == current.model_version)
            .then(pl.lit("retired"))
            .when(version == previous[0])
            .then(pl.lit("champion"))
            .otherwise(pl.col("status"))
            .alias("status")
        )
        w.replace_rows(REGISTRY_TABLE, "model_name = ?", [model_name], rows)
    return previous[0]
