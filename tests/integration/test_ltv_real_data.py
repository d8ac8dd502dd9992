"""Transaction LTV end to end on the real CDNOW purchase log (the 2,357-customer sample shipped in
the lifetimes wheel on PyPI): `uba train --transactions` evaluates on the classic time split and
writes a forward forecast; `uba score --transactions` forecasts into ml_scores.ltv_scores with
pseudonymous ids and holdout groups, the served forecaster recorded in the registry."""

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


@pytest.fixture
def own_warehouse(tmp_path, monkeypatch):
    from python_models.config import reload_settings

    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UBA_DUCKDB_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    yield reload_settings()
    monkeypatch.undo()
    reload_settings()


@pytest.mark.slow
def test_cli_evaluates_and_forecasts_cdnow(
    cdnow_sample, cdnow_csv, tmp_path, capsys, own_warehouse
):
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

    # Through the warehouse: the served forecaster is the registered champion's, and scoring
    # the file writes every customer with a pseudonym (never the raw id) and a holdout group.
    code = main(["score", "--model", "ltv", "--transactions", str(cdnow_csv), "--run-id", "r1"])
    assert code == 0, capsys.readouterr().err
    import duckdb

    from python_models.impact.config import load_impact_config
    from python_models.privacy import pseudonymize

    con = duckdb.connect(str(own_warehouse.duckdb_path), read_only=True)
    try:
        scores = con.sql("select * from ml_scores.ltv_scores").pl()
        metrics = con.execute(
            "select metrics from ml.model_registry where model_name = 'ltv' and status = 'champion'"
        ).fetchone()[0]
        history = con.execute("select count(*) from ml_scores.ltv_scores_history").fetchone()[0]
    finally:
        con.close()
    assert f'"served_model": "{served}"' in metrics and '"source": "transactions"' in metrics
    assert scores.height == history == 2357
    raw = cdnow_sample["user_id"].unique()
    assert scores.join(raw.to_frame("user_id"), on="user_id").height == 0
    salt = own_warehouse.pseudonym_salt
    expected = {pseudonymize(u, "user", salt) for u in raw.to_list()}
    assert set(scores["user_id"]) == expected
    share = (scores["holdout_group"] == "holdout").mean()
    planned = load_impact_config().holdout_share
    assert abs(share - planned) < 4 * (planned * (1 - planned) / scores.height) ** 0.5
    assert scores["as_of_date"].unique().to_list() == [HOLDOUT_END]
    assert (scores["predicted_revenue_usd_low"] <= scores["score"]).all()
