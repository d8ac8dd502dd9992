"""Transaction LTV end to end on the real CDNOW purchase log (the 2,357-customer sample shipped in
the lifetimes wheel on PyPI): `uba train --transactions` evaluates on the classic time split and
writes a forward forecast."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

CALIBRATION_END = date(1997, 10, 1)  # first holdout day: calibration is 1997-01-01..09-30
HOLDOUT_END = date(1998, 7, 1)
HORIZON_DAYS = 273


@pytest.fixture(scope="module")
def cdnow_csv(cdnow_sample, tmp_path_factory):
    """The log as an order export would have it: customer_id, YYYYMMDD text dates, revenue."""
    path = tmp_path_factory.mktemp("cdnow") / "orders.csv"
    cdnow_sample.select(
        pl.col("user_id").alias("customer_id"),
        pl.col("purchased_at").dt.strftime("%Y%m%d"),
        pl.col("revenue_usd").alias("revenue"),
    ).write_csv(path)
    return path


@pytest.mark.slow
def test_cli_evaluates_and_forecasts_cdnow(cdnow_sample, cdnow_csv, tmp_path, capsys):
    from python_models.cli import main

    holdout_path, forecast_path = tmp_path / "holdout.parquet", tmp_path / "forecast.csv"
    code = main(
        [
            "train",
            "--model",
            "ltv",
            "--transactions",
            str(cdnow_csv),
            "--calibration-end",
            CALIBRATION_END.isoformat(),
            "--horizon-days",
            str(HORIZON_DAYS),
            "--param",
            "bootstrap_fits=4",
            "--param",
            "draws=200",
            "--output",
            str(holdout_path),
            "--forecast",
            str(forecast_path),
        ]
    )
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    assert "served: " in out

    # The holdout actuals match an independent count from the raw log: purchase days and
    # dollars of each customer in [1997-10-01, 1998-07-01).
    holdout = pl.read_parquet(holdout_path).filter(pl.col("model") == "zero")
    assert holdout.height == 2357
    raw = cdnow_sample.filter(
        pl.col("purchased_at").dt.date().is_between(CALIBRATION_END, HOLDOUT_END, closed="left")
    )
    assert (
        holdout["actual_purchases"].sum()
        == raw.select(pl.struct("user_id", pl.col("purchased_at").dt.date()).n_unique()).item()
    )
    assert holdout["actual_revenue_usd"].sum() == pytest.approx(raw["revenue_usd"].sum())

    # Whatever is served beats predicting nothing and the customers' own past rates, on both
    # targets (the old transaction model lost to predicting $0 here).
    table = pl.read_parquet(holdout_path)
    mae = (
        table.group_by("model")
        .agg(
            (pl.col("purchases") - pl.col("actual_purchases")).abs().mean().alias("purchases"),
            (pl.col("revenue_usd") - pl.col("actual_revenue_usd")).abs().mean().alias("revenue"),
        )
        .rows_by_key("model", named=True, unique=True)
    )
    served = out.split("served: ")[1].split(" ")[0]
    for target in ("purchases", "revenue"):
        assert mae[served][target] < mae["zero"][target]
        assert mae[served][target] < mae["own_rate"][target]

    # The forward forecast covers every customer from the day after the log ends, ids as text.
    forecast = pl.read_csv(forecast_path, infer_schema=False)
    assert forecast.height == 2357
    assert forecast["as_of_date"].unique().to_list() == [HOLDOUT_END.isoformat()]
    assert forecast["user_id"].str.len_chars().unique().to_list() == [5]  # "00004", not "4"
    assert forecast["model"].unique().to_list() == [served]
