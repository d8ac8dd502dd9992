"""Transactions in (an order export, a billing table, a public purchase log): reading with ids kept
as text, validation with clear errors, and the per-customer summaries every LTV forecaster reads.

A purchase is a customer-day: several orders on one day count once (their revenue adds up), as
in the BG/NBD literature. Rows with negative revenue (refunds) lower that day's revenue but do not
make a purchase day on their own.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

REQUIRED_COLUMNS = ("user_id", "purchased_at", "revenue_usd")
# Names order exports use for the same three columns (first match wins; declared once here).
COLUMN_ALIASES = {
    "user_id": ("user_id", "customer_id"),
    "purchased_at": ("purchased_at",),
    "revenue_usd": ("revenue_usd", "revenue"),
}
# Unambiguous text formats tried after polars' ISO-8601 inference (CDNOW writes 19970101).
_EXTRA_TIMESTAMP_FORMATS = ("%Y%m%d",)


def read_transactions(path: str | Path) -> pl.DataFrame:
    """Read a Parquet or CSV file of transactions (by extension). CSV columns are read as text and
    typed by `validate_transactions`, so ids stay exactly as written ("00001", "007" vs "7")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"transactions file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    raise ValueError(f"transactions must be .parquet or .csv, got {path.name}")


def _rename_aliases(transactions: pl.DataFrame) -> pl.DataFrame:
    renames = {}
    for column, names in COLUMN_ALIASES.items():
        present = [n for n in names if n in transactions.columns]
        if present and present[0] != column:
            renames[present[0]] = column
    return transactions.rename(renames)


def _parse_timestamps(text: pl.Series) -> pl.Series:
    try:
        parsed = text.str.to_datetime(strict=False, time_zone="UTC")
    except pl.exceptions.ComputeError:  # no ISO format fits the first value
        parsed = pl.Series(text.name, [None] * len(text), dtype=pl.Datetime("us", "UTC"))
    for fmt in _EXTRA_TIMESTAMP_FORMATS:
        if not parsed.null_count():
            break
        other = text.str.to_datetime(fmt, strict=False, time_zone="UTC")
        parsed = parsed.fill_null(other)
    return parsed.dt.replace_time_zone(None)


def validate_transactions(transactions: pl.DataFrame) -> pl.DataFrame:
    """Typed copy (user_id text, purchased_at naive-UTC datetime, revenue_usd float); clear
    errors for missing columns, unparseable values and nulls (nothing is dropped silently).
    Integer ids from a typed source (Parquet, a database) become their decimal text."""
    transactions = _rename_aliases(transactions)
    missing = [c for c in REQUIRED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions lack columns {missing}; expected {list(REQUIRED_COLUMNS)} "
            f"(or customer_id / revenue), got {transactions.columns}"
        )
    frame = transactions.select(REQUIRED_COLUMNS)
    nulls = {c: n for c, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
    if nulls:
        raise ValueError(f"transactions have null values: {nulls} (per column)")
    user_id = frame["user_id"]
    if user_id.dtype == pl.String:
        if bool((user_id.str.strip_chars() == "").any()):
            raise ValueError("transactions have empty user_id values")
    elif not (user_id.dtype.is_integer() or user_id.dtype == pl.Categorical):
        # Floats would print "7.0" and merge ids that only look alike; refuse rather than guess.
        raise ValueError(f"user_id must be text or integer, got {user_id.dtype}")
    when = frame["purchased_at"]
    if when.dtype == pl.String:
        parsed = _parse_timestamps(when)
        bad = int(parsed.is_null().sum())
        if bad:
            example = when.filter(parsed.is_null())[0]
            raise ValueError(f"{bad} purchased_at values are not timestamps, e.g. {example!r}")
        when = parsed
    elif when.dtype == pl.Date:
        when = when.cast(pl.Datetime("us"))
    elif not isinstance(when.dtype, pl.Datetime):
        raise ValueError(f"purchased_at must be a timestamp or ISO string, got {when.dtype}")
    elif when.dtype.time_zone is not None:
        when = when.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    revenue = frame["revenue_usd"]
    if revenue.dtype == pl.String:
        revenue = revenue.str.strip_chars().cast(pl.Float64, strict=False)
        bad = int(revenue.is_null().sum())
        if bad:
            raise ValueError(f"{bad} revenue_usd values are not numbers")
    elif not revenue.dtype.is_numeric():
        raise ValueError(f"revenue_usd must be numeric, got {revenue.dtype}")
    revenue = revenue.cast(pl.Float64)
    if bool(revenue.is_nan().any()) or bool(revenue.is_infinite().any()):
        raise ValueError("revenue_usd holds NaN or infinite values")
    return pl.DataFrame(
        {
            "user_id": user_id.cast(pl.String),
            "purchased_at": when.cast(pl.Datetime("us")),
            "revenue_usd": revenue,
        }
    )


def purchase_days(transactions: pl.DataFrame) -> pl.DataFrame:
    """One row per customer-day with a purchase: user_id, day (date), revenue_usd (the day's sum,
    refunds included). Input: a validated frame."""
    return (
        transactions.with_columns(pl.col("purchased_at").dt.date().alias("day"))
        .group_by("user_id", "day")
        .agg(
            pl.col("revenue_usd").sum(),
            (pl.col("revenue_usd") >= 0).any().alias("is_purchase"),
        )
        .filter("is_purchase")
        .drop("is_purchase")
        .sort("user_id", "day")
    )


def as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def customer_summary(days: pl.DataFrame, cut: date) -> pl.DataFrame:
    """One row per customer whose first purchase is before `cut` (exclusive), from purchase days
    before it: frequency (repeat purchase days), recency (last - first, days), age (cut - first,
    days), repeat_value (mean revenue of the repeat days; 0 without one), and RFM extras for the
    learned model."""
    before = days.filter(pl.col("day") < cut)
    since = (pl.lit(cut) - pl.col("day")).dt.total_days().cast(pl.Float64)
    rank = pl.col("day").rank("ordinal").over("user_id")
    repeat_revenue = pl.col("revenue_usd").filter(rank > 1)
    return (
        before.group_by("user_id")
        .agg(
            (pl.len() - 1).cast(pl.Float64).alias("frequency"),
            ((pl.col("day").max() - pl.col("day").min()).dt.total_days())
            .cast(pl.Float64)
            .alias("recency"),
            since.max().alias("age"),
            repeat_revenue.mean().fill_null(0.0).alias("repeat_value"),
            pl.col("revenue_usd").sum().alias("total_revenue"),
            pl.col("revenue_usd").mean().alias("mean_value"),
            pl.col("revenue_usd").sort_by("day").last().alias("last_value"),
            pl.col("revenue_usd").sort_by("day").first().alias("first_value"),
            (since <= 30).sum().cast(pl.Float64).alias("purchases_30d"),
            (since <= 90).sum().cast(pl.Float64).alias("purchases_90d"),
            (since <= 180).sum().cast(pl.Float64).alias("purchases_180d"),
            pl.col("revenue_usd").filter(since <= 90).sum().alias("revenue_90d"),
        )
        .sort("user_id")
    )


def window_actuals(days: pl.DataFrame, customers: pl.Series, start: date, horizon_days: int):
    """Purchases and revenue of each listed customer in [start, start + horizon) (0 if none)."""
    end = start + timedelta(days=horizon_days)
    inside = (
        days.filter((pl.col("day") >= start) & (pl.col("day") < end))
        .group_by("user_id")
        .agg(
            pl.len().cast(pl.Float64).alias("actual_purchases"),
            pl.col("revenue_usd").sum().alias("actual_revenue_usd"),
        )
    )
    return (
        customers.to_frame("user_id")
        .join(inside, on="user_id", how="left")
        .with_columns(pl.col("actual_purchases", "actual_revenue_usd").fill_null(0.0))
    )


def train_from_transactions(transactions, calibration_end=None, horizon_days=90, params=None):
    """Evaluate every LTV forecaster on a time split (see `python_models.ltv.forecast`)."""
    from python_models.ltv.forecast import evaluate_transactions

    return evaluate_transactions(transactions, calibration_end, horizon_days, params=params)
