"""A tiny seeded purchase log: customers buy at their own rate until they drop out."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from python_models.common.spec import Example
from python_models.ltv.model import TRANSACTION_COLUMNS

START = datetime(2025, 1, 6)
DAYS = 210


def purchase_log(seed: int, customers: int = 150) -> pl.DataFrame:
    """user_id, purchased_at, revenue_usd plus the planted `truth_rate` (purchases per day
    while alive) and `truth_spend` (mean spend per purchase) of each row's customer."""
    rng = np.random.default_rng(seed)
    birth = rng.uniform(0, 90, customers)
    rate = rng.gamma(1.5, 1 / 30, customers)
    dropout = rng.beta(1.0, 6.0, customers)
    spend = rng.gamma(4.0, 10.0, customers)
    rows: dict[str, list] = {k: [] for k in ("user_id", "day", "revenue_usd", "rate", "spend")}
    for i in range(customers):
        day = birth[i]
        while day < DAYS:
            rows["user_id"].append(f"cust-{i:04d}")
            rows["day"].append(day)
            rows["revenue_usd"].append(round(float(rng.gamma(4.0, spend[i] / 4.0)), 2))
            rows["rate"].append(rate[i])
            rows["spend"].append(spend[i])
            if rng.random() < dropout[i]:
                break
            day += rng.exponential(1 / rate[i])
    return pl.DataFrame(rows).select(
        "user_id",
        (pl.lit(START) + pl.duration(seconds=(pl.col("day") * 86400).round(0).cast(pl.Int64)))
        .cast(pl.Datetime("us"))
        .alias("purchased_at"),
        "revenue_usd",
        pl.col("rate").alias("truth_rate"),
        pl.col("spend").alias("truth_spend"),
    )


def example(seed: int) -> Example:
    # Few refits and draws: the checks fit it several times beside other work.
    return Example(
        list(TRANSACTION_COLUMNS),
        purchase_log(seed),
        params={"bootstrap_fits": 3, "draws": 100, "num_threads": 1},
    )
