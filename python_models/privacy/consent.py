"""Consent for Python readers (docs/privacy.md, "Consent").

The state per person and purpose is the dbt mart marts.dim_user_consent (has_<purpose>_consent).
Analytics consent is enforced in dbt (people without it leave the feature marts, so no model
trains on or scores them). Marketing consent is for outputs used to act on people (value at
risk, activation lists): pass their frame through `keep_consented(con, frame, "marketing")`,
or in SQL add `where {{ uba_has_consent('marketing') }}` (macros/uba_consent.sql). The
scoring service (`uba serve`) reads `consent_state` from the published copy: it scores nobody
without analytics consent and fires no trigger for someone without marketing consent.
"""

from __future__ import annotations

import duckdb
import polars as pl

from python_models.warehouse import as_warehouse, table_exists

CONSENT_TABLE = "marts.dim_user_consent"


def users_without_consent(con: duckdb.DuckDBPyConnection, purpose: str) -> pl.Series:
    """Person keys (user_id) whose current state denies `purpose`."""
    if not purpose.isidentifier():
        raise ValueError(f"purpose must be a plain name, got {purpose!r}")
    if not table_exists(con, CONSENT_TABLE):
        raise LookupError(f"{CONSENT_TABLE} does not exist yet: run `uba build` first")
    column = f"has_{purpose}_consent"
    if column not in as_warehouse(con).table_columns(CONSENT_TABLE):
        raise LookupError(
            f"{CONSENT_TABLE} has no {column}: add {purpose!r} to dbt var uba__consent_purposes"
        )
    return con.execute(f"select user_id from {CONSENT_TABLE} where not {column}").pl()["user_id"]


def keep_consented(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, purpose: str, user_column: str = "user_id"
) -> pl.DataFrame:
    """`frame` without the rows of people whose consent for `purpose` is denied (people the
    mart does not know keep their rows: their state is the var's default at the next build)."""
    denied = users_without_consent(con, purpose)
    return frame.filter(~pl.col(user_column).is_in(denied.to_list()))


def consent_state(con: duckdb.DuckDBPyConnection, user_id: str) -> dict[str, bool]:
    """{purpose: granted} for one person key from the consent mart on `con` (which must hold
    it); {} for a person the mart does not know (the var's defaults hold for them)."""
    cursor = con.execute(f"select * from {CONSENT_TABLE} where user_id = ?", [user_id])
    row = cursor.fetchone()
    if row is None:
        return {}
    return _purposes([d[0] for d in cursor.description], row)


def consent_states(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, bool]]:
    """{person key: {purpose: granted}} for every person of the consent mart on `con` (the
    scoring service holds them in memory per publication)."""
    cursor = con.execute(f"select * from {CONSENT_TABLE}")
    names = [d[0] for d in cursor.description]
    key = names.index("user_id")
    return {row[key]: _purposes(names, row) for row in cursor.fetchall()}


def _purposes(names: list[str], row: tuple) -> dict[str, bool]:
    return {
        name.removeprefix("has_").removesuffix("_consent"): bool(value)
        for name, value in zip(names, row, strict=True)
        if name.startswith("has_") and name.endswith("_consent")
    }


def consented_term(
    con: duckdb.DuckDBPyConnection, purpose: str, user_column: str = "user_id"
) -> str:
    """A SQL where-term keeping the rows of people not denied `purpose` (for a model that reads
    a mart outside the feature marts, which the dbt hook already filters); "true" before the
    first build has made the consent mart."""
    if not table_exists(con, CONSENT_TABLE):
        return "true"
    users_without_consent(con, purpose)  # checks the purpose exists
    return (
        f"{user_column} not in (select user_id from {CONSENT_TABLE} "
        f"where not has_{purpose}_consent)"
    )
