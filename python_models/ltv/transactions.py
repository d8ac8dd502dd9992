"""LTV from transactions alone (user_id, purchased_at, revenue_usd): RFM features before a
calibration cut, revenue in [cut, cut + horizon) as the target. For data that never went
through the event pipeline (an order export, a billing table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from python_models.common.metrics import regression_metrics
from python_models.ltv.model import fit_booster
from python_models.ltv.params import LtvParams

REQUIRED_COLUMNS = ("user_id", "purchased_at", "revenue_usd")
RFM_FEATURES = [
    "count_purchases",
    "days_since_last_purchase",
    "days_since_first_purchase",
    "sum_revenue_usd",
    "avg_revenue_usd_per_purchase",
    "sum_revenue_usd_30d",
    "sum_revenue_usd_90d",
    "count_purchases_90d",
]


@dataclass
class TransactionLtvResult:
    calibration_end: date
    horizon_days: int
    evaluation: pl.DataFrame
    metrics: dict[str, float]
    predictions: pl.DataFrame  # user_id, split, predicted_revenue_usd, baseline, actual
    booster_text: str
    params: dict[str, Any]
    features: list[str] = field(default_factory=lambda: list(RFM_FEATURES))


def read_transactions(path: str | Path) -> pl.DataFrame:
    """Read a Parquet or CSV file of transactions (by extension)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"transactions file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=True)
    raise ValueError(f"transactions must be .parquet or .csv, got {path.name}")


def validate_transactions(transactions: pl.DataFrame) -> pl.DataFrame:
    """Typed copy (user_id string, purchased_at datetime, revenue_usd float); clear errors for
    missing columns, unparseable values and nulls (nothing is dropped silently)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions lack columns {missing}; expected {list(REQUIRED_COLUMNS)}, "
            f"got {transactions.columns}"
        )
    frame = transactions.select(REQUIRED_COLUMNS)
    nulls = {c: n for c, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
    if nulls:
        raise ValueError(f"transactions have null values: {nulls} (per column)")
    when = frame["purchased_at"]
    if when.dtype == pl.String:
        parsed = when.str.to_datetime(strict=False, time_zone="UTC").dt.replace_time_zone(None)
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
        revenue = revenue.cast(pl.Float64, strict=False)
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
            "user_id": frame["user_id"].cast(pl.String),
            "purchased_at": when.cast(pl.Datetime("us")),
            "revenue_usd": revenue,
        }
    )


def rfm_features(transactions: pl.DataFrame, calibration_end: date) -> pl.DataFrame:
    """One row per user with a purchase before the cut: recency, frequency, monetary value."""
    cut = datetime.combine(calibration_end, datetime.min.time())
    before = transactions.filter(pl.col("purchased_at") < cut)
    days_before = (pl.lit(cut) - pl.col("purchased_at")).dt.total_seconds() / 86_400
    return (
        before.group_by("user_id")
        .agg(
            pl.len().cast(pl.Float64).alias("count_purchases"),
            days_before.min().alias("days_since_last_purchase"),
            days_before.max().alias("days_since_first_purchase"),
            pl.col("revenue_usd").sum().alias("sum_revenue_usd"),
            pl.col("revenue_usd").mean().alias("avg_revenue_usd_per_purchase"),
            pl.col("revenue_usd").filter(days_before <= 30).sum().alias("sum_revenue_usd_30d"),
            pl.col("revenue_usd").filter(days_before <= 90).sum().alias("sum_revenue_usd_90d"),
            (days_before <= 90).sum().cast(pl.Float64).alias("count_purchases_90d"),
        )
        .sort("user_id")
    )


def future_revenue(transactions: pl.DataFrame, calibration_end: date, horizon_days: int):
    cut = datetime.combine(calibration_end, datetime.min.time())
    end = cut + timedelta(days=horizon_days)
    return (
        transactions.filter((pl.col("purchased_at") >= cut) & (pl.col("purchased_at") < end))
        .group_by("user_id")
        .agg(pl.col("revenue_usd").sum().alias("label"))
    )


def train_from_transactions(
    transactions: pl.DataFrame,
    calibration_end: date | str,
    horizon_days: int,
    params: dict[str, Any] | None = None,
) -> TransactionLtvResult:
    """Fit and evaluate tweedie LightGBM vs the spend-rate baseline on a seeded user split."""
    settings = LtvParams.from_overrides(params)
    if isinstance(calibration_end, str):
        calibration_end = date.fromisoformat(calibration_end)
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    frame = validate_transactions(transactions)
    first, last = frame["purchased_at"].min(), frame["purchased_at"].max()
    cut = datetime.combine(calibration_end, datetime.min.time())
    if first is None or first >= cut:
        raise ValueError(f"no transactions before calibration_end {calibration_end}")
    if last < cut + timedelta(days=horizon_days) - timedelta(days=1):
        raise ValueError(
            f"transactions end {last:%Y-%m-%d}, before calibration_end + horizon "
            f"({calibration_end + timedelta(days=horizon_days)}): the target has not matured; "
            "move --calibration-end earlier or shorten --horizon-days"
        )
    features = rfm_features(frame, calibration_end)
    data = features.join(
        future_revenue(frame, calibration_end, horizon_days), on="user_id", how="left"
    ).with_columns(pl.col("label").fill_null(0.0))
    if data.height < 20:
        raise ValueError(f"only {data.height} users bought before the cut; need at least 20")
    rng = np.random.default_rng(settings.seed)
    is_holdout = rng.random(data.height) < settings.holdout_fraction
    data = data.with_columns(pl.Series("split", np.where(is_holdout, "holdout", "train")))
    train = data.filter(pl.col("split") == "train")
    # Early stopping on a seeded slice of the training users, never on the holdout.
    is_valid = np.random.default_rng(settings.seed + 1).random(train.height) < 0.2
    fit_part, valid_part = train.filter(~pl.Series(is_valid)), train.filter(pl.Series(is_valid))
    x = lambda f: f.select(RFM_FEATURES).to_numpy().astype(float)  # noqa: E731
    booster, best = fit_booster(
        x(fit_part),
        fit_part["label"].to_numpy(),
        x(valid_part),
        valid_part["label"].to_numpy(),
        RFM_FEATURES,
        settings,
    )
    predicted = booster.predict(x(data), num_iteration=best)
    tenure = np.maximum(data["days_since_first_purchase"].to_numpy(), 1.0)
    baseline = data["sum_revenue_usd"].to_numpy() / tenure * horizon_days
    predictions = data.select("user_id", "split", "label").with_columns(
        pl.Series("predicted_revenue_usd", predicted),
        pl.Series("baseline_revenue_usd", baseline),
    )
    hold = predictions.filter(pl.col("split") == "holdout")
    rows = [
        {"variant": variant, "split": "holdout", **regression_metrics(hold["label"], hold[col])}
        for variant, col in (
            ("historical_average", "baseline_revenue_usd"),
            ("lightgbm", "predicted_revenue_usd"),
        )
    ]
    evaluation = pl.DataFrame(rows)
    metrics = {k: v for k, v in rows[1].items() if k not in ("variant", "split")}
    metrics["baseline_spearman"] = rows[0]["spearman"]
    metrics["best_iteration"] = best
    return TransactionLtvResult(
        calibration_end=calibration_end,
        horizon_days=horizon_days,
        evaluation=evaluation,
        metrics=metrics,
        predictions=predictions.rename({"label": "actual_revenue_usd"}),
        booster_text=booster.model_to_string(num_iteration=best),
        params=settings.as_dict(),
    )
