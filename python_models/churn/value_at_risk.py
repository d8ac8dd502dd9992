"""Value at risk: who to act on first. Churn risk x the value the user is expected to bring.

One row per user of the current churn scores (users still here): `value_at_risk_usd` =
churn probability x expected revenue over the LTV horizon (the BG/NBD + Gamma-Gamma mean,
which adds up to totals; the served point forecast is a median and is 0 for most customers).
A user with no purchase yet has no forecast and an expected value of 0. Ranked by value at
risk, then by churn risk; the reasons say both sides in words. `holdout_group` comes with the
churn row: a campaign acts on `treatment` users only (docs/impact.md).
"""

from __future__ import annotations

import duckdb
import polars as pl

from python_models.common.spec import HOLDOUT_COLUMN
from python_models.warehouse import table_exists


def value_at_risk(
    con: duckdb.DuckDBPyConnection, risk_table: str, value_table: str
) -> pl.DataFrame:
    """The ranked table from the current churn scores (`risk_table`) and LTV forecasts
    (`value_table`, with expected_revenue_usd, p_alive and horizon_days)."""
    for table in (risk_table, value_table):
        if not table_exists(con, table):
            raise LookupError(f"{table} does not exist yet: score the models first (`uba score`)")
    frame = con.execute(
        f"""
        select
            risk.user_id,
            risk.as_of_date,
            risk.score as churn_probability,
            coalesce(value.expected_revenue_usd, 0.0) as expected_revenue_usd,
            risk.score * coalesce(value.expected_revenue_usd, 0.0) as value_at_risk_usd,
            value.p_alive,
            value.horizon_days as value_horizon_days,
            value.as_of_date as value_as_of_date,
            risk.reasons as churn_reasons,
            risk.{HOLDOUT_COLUMN},
            risk.model_version as churn_model_version,
            value.model_version as value_model_version
        from {risk_table} as risk
        left join {value_table} as value on risk.user_id = value.user_id
        """
    ).pl()
    ranked = frame.sort(
        ["value_at_risk_usd", "churn_probability", "user_id"], descending=[True, True, False]
    )
    value_words = (
        pl.when(pl.col("value_horizon_days").is_null())
        .then(pl.lit("no purchase yet"))
        .otherwise(
            pl.concat_str(
                pl.lit("expected $"),
                pl.col("expected_revenue_usd").round(0).cast(pl.Int64).cast(pl.String),
                pl.lit(" in the next "),
                pl.col("value_horizon_days").cast(pl.String),
                pl.lit(" days"),
            )
        )
    )
    return ranked.select(
        pl.int_range(1, ranked.height + 1, dtype=pl.Int64).alias("rank"),
        "user_id",
        "as_of_date",
        "churn_probability",
        "expected_revenue_usd",
        "value_at_risk_usd",
        "p_alive",
        pl.col("value_horizon_days").cast(pl.Int64),
        "value_as_of_date",
        pl.concat_str(
            pl.lit("churn risk "),
            (pl.col("churn_probability") * 100).round(0).cast(pl.Int64).cast(pl.String),
            pl.lit("% ("),
            pl.col("churn_reasons"),
            pl.lit("); "),
            value_words,
        ).alias("reasons"),
        HOLDOUT_COLUMN,
        "churn_model_version",
        "value_model_version",
    )
