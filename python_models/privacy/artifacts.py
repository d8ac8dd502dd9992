"""Model artifacts after an erasure: the person's rows leave the drift reference samples stored
in each artifact, and every version trained on data that held them is flagged.

A reference sample (common.training.reference_sample) keeps feature values without the user
id, so the person's rows are found by value: their rows in the model's feature tables, read
before the deletion, are taken out of the sample once each (a multiset difference). Rows of
other people with exactly the same values are interchangeable with them, so the sample left is
the one it would have been without the person. The model's scores of the sample
(`reference_scores`, one per row when the lifecycle drew the sample) lose the same rows.

The fitted model itself (trees, centroids, fitted parameters) is an aggregate of everyone it
was trained on; it is not edited. Its version is flagged in `ml.model_erasure_flags`, and the
next retraining (the weekly retrain_models schedule) trains a version without the person.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from python_models.common.artifacts import ArtifactIntegrityError, load_artifact, sha256_file
from python_models.privacy.identities import Identity, temp_ids

FLAGS_TABLE = "ml.model_erasure_flags"
REGISTRY_TABLE = "ml.model_registry"
PENDING_SUFFIX = ".erasing"
_COUNT = "__uba_copy"
_POSITION = "__uba_position"


@dataclass(frozen=True)
class ArtifactScrub:
    """A rewritten artifact waiting beside the original until the registry knows its sha256."""

    model_name: str
    model_version: str
    path: Path
    pending: Path
    sha256: str
    rows_removed: int


def registry_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ml' "
        "and table_name = 'model_registry' and table_catalog = current_database()"
    ).fetchone()[0]
    if not exists:
        return []
    return con.execute(
        f"select model_name, model_version, artifact_path, artifact_sha256, data_window_end "
        f"from {REGISTRY_TABLE} order by 1, 2"
    ).fetchall()


def person_feature_rows(
    con: duckdb.DuckDBPyConnection, identity: Identity, tables: list[str]
) -> dict[str, pl.DataFrame]:
    """The identity's rows of each feature table ("schema.table" with a user_id column)."""
    if not identity.person_keys:
        return {}
    temp_ids(con, "erase_feature_keys", identity.person_keys)
    rows = {}
    for table in tables:
        schema, name = table.split(".")
        has_user = con.execute(
            "select count(*) from information_schema.columns where table_schema = ? "
            "and table_name = ? and column_name = 'user_id' "
            "and table_catalog = current_database()",
            [schema, name],
        ).fetchone()[0]
        if has_user:
            rows[table] = con.execute(
                f"select * from {table} where user_id in (select id from erase_feature_keys)"
            ).pl()
    return rows


def as_sample_rows(rows: pl.DataFrame, sample: pl.DataFrame, model: object) -> pl.DataFrame | None:
    """`rows` (a feature table's) as the sample stores them: the same columns cast to its
    types, or, for a model that keeps its sample encoded (categories as codes), through the
    model's own `matrix` encoding. None when the sample's columns are not the table's."""
    if not set(sample.columns) <= set(rows.columns):
        return None
    try:
        return rows.select(sample.columns).cast(sample.schema)
    except pl.exceptions.InvalidOperationError:
        encode = getattr(model, "matrix", None)
        if encode is None:
            return None
        return pl.DataFrame(encode(rows), schema=sample.schema, orient="row")


def kept_positions(sample: pl.DataFrame, rows: pl.DataFrame) -> pl.Series:
    """Row positions of `sample` left once each row of `rows` (same columns and types) has
    taken out at most one equal row, in order."""
    indexed = sample.with_row_index(_POSITION)
    if rows.height == 0 or sample.height == 0:
        return indexed[_POSITION]
    columns = sample.columns

    def numbered(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.int_range(pl.len()).over(columns).alias(_COUNT))

    kept = numbered(indexed).join(
        numbered(rows.select(columns)), on=[*columns, _COUNT], how="anti", nulls_equal=True
    )
    return kept[_POSITION].sort()


def without_rows(sample: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """`sample` minus `rows` (same columns and types), each row of `rows` taking out at most
    one equal row of `sample`."""
    return sample[kept_positions(sample, rows).to_list()]


def plan_scrubs(
    con: duckdb.DuckDBPyConnection, person_rows: dict[str, pl.DataFrame]
) -> tuple[list[ArtifactScrub], list[str]]:
    """Write a scrubbed copy beside each artifact whose reference sample holds the person's
    rows; return the plans and one line per artifact that could not be read."""
    plans, problems = [], []
    candidates = [frame for frame in person_rows.values() if frame.height]
    if not candidates:
        return plans, problems
    for model_name, version, path, sha, _window_end in registry_rows(con):
        try:
            bundle = load_artifact(path, sha)
        except ArtifactIntegrityError as err:
            problems.append(f"{model_name} {version}: {err}")
            continue
        sample = bundle.get("reference_features") if isinstance(bundle, dict) else None
        if not isinstance(sample, pl.DataFrame):
            continue
        keep = list(range(sample.height))
        for rows in candidates:
            matched = as_sample_rows(rows, sample, bundle.get("model"))
            if matched is not None:
                left = kept_positions(sample[keep], matched).to_list()
                keep = [keep[i] for i in left]
        if len(keep) == sample.height:
            continue
        scrubbed = sample[keep]
        bundle["reference_features"] = scrubbed
        scores = bundle.get("reference_scores")
        if scores is not None and len(scores) == sample.height:  # one score per sample row
            bundle["reference_scores"] = np.asarray(scores)[keep]
        pending = Path(str(path) + PENDING_SUFFIX)
        with open(pending, "wb") as handle:
            pickle.dump(bundle, handle, protocol=5)
        plans.append(
            ArtifactScrub(
                model_name,
                version,
                Path(path),
                pending,
                sha256_file(pending),
                sample.height - scrubbed.height,
            )
        )
    return plans, problems


def record_scrubs(con: duckdb.DuckDBPyConnection, plans: list[ArtifactScrub]) -> None:
    """Point the registry at the scrubbed files' sha256 (inside the erasure's transaction)."""
    for plan in plans:
        con.execute(
            f"update {REGISTRY_TABLE} set artifact_sha256 = ? "
            "where model_name = ? and model_version = ?",
            [plan.sha256, plan.model_name, plan.model_version],
        )


def swap_in_pending(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Move every scrubbed artifact whose sha256 the registry already holds over its original
    (after the commit, or on the next run if the process stopped in between); drop the others."""
    swapped = []
    for _name, _version, path, sha, _end in registry_rows(con):
        pending = Path(str(path) + PENDING_SUFFIX)
        if not pending.exists():
            continue
        if sha256_file(pending) == sha:
            os.replace(pending, path)
            swapped.append(Path(path))
        else:
            pending.unlink()
    return swapped


def discard_pending(plans: list[ArtifactScrub]) -> None:
    for plan in plans:
        plan.pending.unlink(missing_ok=True)


def ensure_flags_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ml")
    con.execute(
        f"""
        create table if not exists {FLAGS_TABLE} (
            model_name varchar not null,
            model_version varchar not null,
            erasure_id varchar not null,
            flagged_at timestamp not null,
            primary key (model_name, model_version, erasure_id)
        )
        """
    )


def flag_models(
    con: duckdb.DuckDBPyConnection, identity: Identity, erasure_id: str, now: datetime
) -> list[tuple[str, str]]:
    """Flag every registered version whose training data could hold the person: their first
    event came before the end of its data window (or the window is unknown)."""
    ensure_flags_table(con)
    if identity.first_event_at is None:
        return []
    first_day = identity.first_event_at.date()
    flagged = [
        (name, version)
        for name, version, _path, _sha, window_end in registry_rows(con)
        if window_end is None or first_day <= window_end
    ]
    for name, version in flagged:
        con.execute(
            f"insert into {FLAGS_TABLE} values (?, ?, ?, ?) on conflict do nothing",
            [name, version, erasure_id, now],
        )
    return flagged


def flagged_versions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Registered versions trained on data that held an erased person (latest flag first)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ml' "
        "and table_name = 'model_erasure_flags' and table_catalog = current_database()"
    ).fetchone()[0]
    if not exists:
        return pl.DataFrame(
            schema={"model_name": pl.String, "model_version": pl.String, "erasures": pl.Int64}
        )
    return con.execute(
        f"""
        select model_name, model_version, count(*) as erasures, max(flagged_at) as last_flagged_at
        from {FLAGS_TABLE} group by 1, 2 order by last_flagged_at desc, 1, 2
        """
    ).pl()
