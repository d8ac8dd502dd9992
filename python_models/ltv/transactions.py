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
# Text timestamps: ISO 8601 (date, optional time and offset) or compact YYYYMMDD (CDNOW's).
# Anything else (01/02/2025: January or February?) is refused rather than guessed.
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_COMPACT_DATE = r"^\d{8}$"


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


def write_frame(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a frame as CSV or Parquet (by extension; Parquet when unsure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def _rename_aliases(transactions: pl.DataFrame) -> pl.DataFrame:
    renames = {}
    for column, names in COLUMN_ALIASES.items():
        present = [n for n in names if n in transactions.columns]
        if present and present[0] != column:
            renames[present[0]] = column
    return transactions.rename(renames)


def _parse_timestamps(text: pl.Series) -> pl.Series:
    """Naive-UTC datetimes; null where the text is not one of the two accepted forms."""
    text = text.str.strip_chars()
    iso = text.str.contains(_ISO_TIMESTAMP)
    compact = text.str.contains(_COMPACT_DATE)
    out = pl.Series(text.name, [None] * len(text), dtype=pl.Datetime("us", "UTC"))
    # polars infers one ISO layout from the first value; parse what is left with the next one.
    todo = iso
    while todo.any():
        parsed = text.filter(todo).str.to_datetime(strict=False, time_zone="UTC")
        if not parsed.is_not_null().any():
            break
        out = out.scatter(todo.arg_true(), parsed.cast(pl.Datetime("us", "UTC")))
        todo = todo & out.is_null()
    if compact.any():
        parsed = text.filter(compact).str.to_datetime("%Y%m%d", strict=False, time_zone="UTC")
        out = out.scatter(compact.arg_true(), parsed.cast(pl.Datetime("us", "UTC")))
    return out.dt.replace_time_zone(None)


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
            raise ValueError(
                f"{bad} purchased_at values are not timestamps (ISO 8601 or YYYYMMDD), "
                f"e.g. {example!r}"
            )
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
    before it: frequency (repeat purchase days), recency (last - first, days), age (last
    calibration day - first, days), repeat_value (mean revenue of the repeat days; 0 without
    one), and RFM extras for the learned model.

    Day d is time d, as in Fader & Hardie's CDNOW summaries: the calibration period ends at the
    last day before the cut (age 0 for a customer first seen that day), so a horizon of H days
    after it is exactly the days [cut, cut + H)."""
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
            (since.max() - 1).alias("age"),
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
