"""Holdout groups: who may be acted on from the scores (`treatment`) and who never is (`holdout`).

dbt publishes the groups as `marts.dim_user_holdout_groups` (one row per person key). The
assignment is a pure function of the raw identifier and the holdout key (var uba__holdout_key),
computed in staging where raw ids still exist:

    bucket = int(sha256(key | "holdout" | namespace | raw_id)[:8], 16) % 10000
    group  = "holdout" if bucket < round(share * 10000) else "treatment"

So it is stable across runs, adding users moves nobody, and rotating the pseudonymization salt
(UBA_PSEUDONYM_SALT) changes every person key but no group. Changing the holdout key reshuffles
everyone on purpose; bump uba__holdout_key_version and uba__holdout_key_effective_from with it.

Score tables say which group a user is in through `with_holdout_group` (Python) or
`holdout_join_sql` (SQL); the column is `holdout_group`.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl

from python_models.warehouse import table_exists

HOLDOUT_TABLE = "marts.dim_user_holdout_groups"
HOLDOUT_GROUP_COLUMN = "holdout_group"
HOLDOUT_KEY_VERSION_COLUMN = "holdout_key_version"
GROUPS = ("treatment", "holdout")
BUCKETS = 10_000
NAMESPACES = ("user", "anon")


def holdout_bucket(raw_id: str, namespace: str, key: str) -> int:
    """The bucket 0..9999 of a raw identifier; matches the dbt macro uba_holdout_bucket."""
    if namespace not in NAMESPACES:
        raise ValueError(f"namespace must be one of {NAMESPACES}, got {namespace!r}")
    digest = hashlib.sha256(f"{key}|holdout|{namespace}|{raw_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def holdout_threshold(share: float) -> int:
    """Buckets below this are in the holdout (same rounding as the dbt macro)."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"holdout share must be in [0, 1), got {share}")
    return round(share * BUCKETS)


def holdout_group(raw_id: str, namespace: str, key: str, share: float) -> str:
    """`holdout` or `treatment` for a raw identifier."""
    return (
        "holdout"
        if holdout_bucket(raw_id, namespace, key) < holdout_threshold(share)
        else ("treatment")
    )


def holdout_join_sql(scores_relation: str, alias: str = "scores") -> str:
    """SQL selecting every column of `scores_relation` plus holdout_group and
    holdout_key_version, joined on user_id (left join: a row is never dropped)."""
    return (
        f"select {alias}.*, groups.{HOLDOUT_GROUP_COLUMN}, groups.{HOLDOUT_KEY_VERSION_COLUMN}\n"
        f"from {scores_relation} as {alias}\n"
        f"left join {HOLDOUT_TABLE} as groups on {alias}.user_id = groups.user_id"
    )


def with_holdout_group(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` (with user_id) plus holdout_group and holdout_key_version, row order kept.

    Raises a one-line error when the groups table has not been built yet (run `uba build`).
    A user_id unknown to the table (not in dim_users) gets nulls.
    """
    if "user_id" not in frame.columns:
        raise ValueError("with_holdout_group needs a user_id column")
    if not table_exists(con, HOLDOUT_TABLE):
        raise LookupError(f"{HOLDOUT_TABLE} does not exist yet: run `uba build` first")
    groups = con.execute(
        f"select user_id, {HOLDOUT_GROUP_COLUMN}, {HOLDOUT_KEY_VERSION_COLUMN} from {HOLDOUT_TABLE}"
    ).pl()
    return frame.join(
        groups.with_columns(pl.col("user_id").cast(frame.schema["user_id"])),
        on="user_id",
        how="left",
        maintain_order="left",
    )
