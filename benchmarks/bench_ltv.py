"""Transaction LTV on the real CDNOW purchase log: holdout MAE per model and timings.

    python benchmarks/bench_ltv.py [--which master|sample|both] [--bootstrap-fits 20]

Classic split (Fader, Hardie & Lee 2005): calibration 1997-01-01..1997-09-30, holdout
1997-10-01..1998-06-30 (273 days). The data comes from the lifetimes 0.11.3 wheel on PyPI
(downloaded once into ~/.cache/uba/public_data; see python_models/ltv/public_data.py).
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from python_models.ltv.forecast import evaluate_transactions, forecast_transactions
from python_models.ltv.public_data import cdnow_transactions

CALIBRATION_END = "1997-10-01"  # first holdout day
HORIZON_DAYS = 273


def run(which: str, params: dict) -> None:
    transactions = cdnow_transactions(which).drop("cds")
    started = time.perf_counter()
    result = evaluate_transactions(transactions, CALIBRATION_END, HORIZON_DAYS, params=params)
    evaluated = time.perf_counter() - started
    started = time.perf_counter()
    forecast = forecast_transactions(transactions, HORIZON_DAYS, result.served_model, params=params)
    forecasted = time.perf_counter() - started
    print(f"\nCDNOW {which}: {transactions.height:,} transactions; {result.describe()}")
    wide = result.evaluation.pivot(on="target", index=["model", "role"], values="mae").join(
        result.evaluation.pivot(on="target", index="model", values="interval_coverage"),
        on="model",
        suffix="_coverage",
    )
    with pl.Config(tbl_rows=20, tbl_cols=10, tbl_width_chars=140, float_precision=4):
        print(wide.rename({"purchases": "mae_purchases", "revenue_usd": "mae_revenue_usd"}))
    print(f"served: {result.served_model} ({result.decision})")
    print(
        f"evaluate {evaluated:.1f} s; forward forecast of {forecast.height:,} customers from "
        f"{forecast['as_of_date'][0]} in {forecasted:.1f} s; expected revenue over those days "
        f"${forecast['expected_revenue_usd'].sum():,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--which", choices=("master", "sample", "both"), default="both")
    parser.add_argument("--bootstrap-fits", type=int, default=20)
    parser.add_argument("--draws", type=int, default=400)
    args = parser.parse_args()
    params = {"bootstrap_fits": args.bootstrap_fits, "draws": args.draws}
    for which in ("sample", "master") if args.which == "both" else (args.which,):
        run(which, params)


if __name__ == "__main__":
    main()
