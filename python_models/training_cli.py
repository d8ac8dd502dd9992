"""`uba train` and `uba score`: train / batch-score the models and print the evaluation tables.

    uba train                       # all four models on the warehouse's feature marts
    uba train --model churn --param num_leaves=7
    uba train --model ltv --transactions orders.parquet [--calibration-end 2025-04-01] \
        --horizon-days 90 [--output predictions.parquet] [--forecast forecast.parquet]
    uba score [--model M]
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import polars as pl

MODEL_CHOICES = ("churn", "ltv", "segmentation", "anomaly")


def _print_table(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_width_chars=160, float_precision=4):
        print(frame)


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ValueError(f"--param expects NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_train_arguments(parser) -> None:
    parser.add_argument("--model", choices=MODEL_CHOICES, help="one model (default: all four)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a parameter"
    )
    parser.add_argument("--run-id", default=None)
    parser.add_argument(
        "--transactions",
        type=Path,
        help="LTV from a transactions file (user_id, purchased_at, revenue_usd; .parquet/.csv)",
    )
    parser.add_argument(
        "--calibration-end",
        type=date.fromisoformat,
        help="YYYY-MM-DD first holdout day (default: the latest cut whose holdout has matured)",
    )
    parser.add_argument("--horizon-days", type=int, default=90, help="LTV target horizon")
    parser.add_argument("--output", type=Path, help="write transaction-LTV predictions here")
    parser.add_argument(
        "--forecast", type=Path, help="write the served model's forecast after the last date here"
    )


def _train_transactions(args, params: dict) -> int:
    from python_models.ltv.forecast import forecast_transactions
    from python_models.ltv.transactions import (
        read_transactions,
        train_from_transactions,
        write_frame,
    )

    if args.model not in (None, "ltv"):
        print("--transactions only applies to --model ltv", file=sys.stderr)
        return 2
    transactions = read_transactions(args.transactions)
    result = train_from_transactions(
        transactions, args.calibration_end, args.horizon_days, params=params
    )
    print(f"LTV from {transactions.height:,} transactions: {result.describe()}")
    _print_table(result.evaluation)
    print(f"served: {result.served_model} ({result.decision})")
    if args.output:
        out = write_frame(result.predictions, args.output)
        print(f"holdout predictions: {out} ({result.predictions.height:,} rows)")
    if args.forecast:
        forecast = forecast_transactions(
            transactions, args.horizon_days, result.served_model, params=params
        )
        out = write_frame(forecast, args.forecast)
        print(f"forecast from {forecast['as_of_date'][0]}: {out} ({forecast.height:,} customers)")
    return 0


def run_train(args) -> int:
    from python_models.common.artifacts import ArtifactIntegrityError
    from python_models.common.registry import RegistryError

    try:
        params = dict(_parse_param(p) for p in args.param)
        if args.transactions is not None:
            return _train_transactions(args, params)
        from python_models.jobs import MODEL_NAMES, train_model
        from python_models.warehouse import connect

        if params and args.model is None:
            print("--param needs --model (parameters differ per model)", file=sys.stderr)
            return 2
        con = connect()
        try:
            for name in [args.model] if args.model else MODEL_NAMES:
                outcome = train_model(con, name, run_id=args.run_id, params=params or None)
                print(f"\n{name} {outcome.model_version}: {outcome.status} ({outcome.reason})")
                _print_table(outcome.evaluation)
                for plot, path in outcome.plots.items():
                    print(f"  plot {plot}: {path}")
        finally:
            con.close()
    except (
        ValueError,
        LookupError,
        FileNotFoundError,
        RegistryError,
        ArtifactIntegrityError,
    ) as err:
        print(f"uba train: {err}", file=sys.stderr)
        return 1
    return 0


def add_score_arguments(parser) -> None:
    parser.add_argument("--model", choices=MODEL_CHOICES, help="one model (default: all four)")
    parser.add_argument("--run-id", default=None)


def run_score(args) -> int:
    from python_models.common.artifacts import ArtifactIntegrityError
    from python_models.common.registry import RegistryError
    from python_models.jobs import MODEL_NAMES, score_model
    from python_models.warehouse import connect

    con = connect()
    try:
        for name in [args.model] if args.model else MODEL_NAMES:
            outcome = score_model(con, name, run_id=args.run_id)
            print(
                f"{name}: {outcome.rows:,} rows in {outcome.table} "
                f"(model {outcome.model_version}, as of {outcome.as_of_date})"
            )
            _print_table(
                con.sql(
                    f"select * exclude (model_name, model_version, scored_at, run_id) "
                    f"from {outcome.table} order by score desc limit 5"
                ).pl()
            )
    except (LookupError, RegistryError, ArtifactIntegrityError) as err:
        print(f"uba score: {err}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0
