"""`uba train` and `uba score`: train / batch-score the models and print what became of each.

    uba train                       # every model, each on its own: one failing stops no other
    uba train --model churn --param num_leaves=7
    uba train --model ltv --transactions orders.parquet [--calibration-end 2025-04-01] \\
        --horizon-days 90 [--output predictions.parquet] [--forecast forecast.parquet]
    uba score [--model M]           # models without a champion are skipped

Both end with one line per model (champion / challenger / rejected / failed, scored / skipped
/ failed, with the reason) and exit 1 only when a model failed.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import polars as pl

from python_models.models import model_names


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


def _add_model_argument(parser) -> None:
    names = model_names()
    parser.add_argument("--model", choices=names, help=f"one of {', '.join(names)} (default: all)")


def print_outcomes(command: str, outcomes: list) -> None:
    """One line per model: what became of it and why."""
    print(f"\n{command}:")
    width = max(len(o.model_name) for o in outcomes)
    for outcome in outcomes:
        if outcome.status == "scored":
            detail = (
                f"{outcome.rows:,} rows in {outcome.table} (model {outcome.model_version}, "
                f"as of {outcome.as_of_date})"
            )
        elif hasattr(outcome, "model_version"):
            detail = f"{outcome.model_version}: {outcome.reason}"
        else:
            detail = outcome.reason
        print(f"  {outcome.model_name:<{width}}  {outcome.status:<10}  {detail}")


def add_train_arguments(parser) -> None:
    _add_model_argument(parser)
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
    from python_models.ltv.forecast import evaluate_transactions, forecast_transactions
    from python_models.ltv.transactions import read_transactions, write_frame

    if args.model not in (None, "ltv"):
        print("--transactions only applies to --model ltv", file=sys.stderr)
        return 2
    transactions = read_transactions(args.transactions)
    result = evaluate_transactions(
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
    try:
        params = dict(_parse_param(p) for p in args.param)
        if args.transactions is not None:
            return _train_transactions(args, params)
    except (ValueError, LookupError, FileNotFoundError) as err:
        print(f"uba train: {err}", file=sys.stderr)
        return 1
    if params and args.model is None:
        print("--param needs --model (parameters differ per model)", file=sys.stderr)
        return 2
    from python_models.lifecycle import any_failed, train_each
    from python_models.warehouse import connect

    con = connect()
    try:
        names = [args.model] if args.model else list(model_names())
        outcomes = train_each(con, names, run_id=args.run_id, params=params or None)
    finally:
        con.close()
    for outcome in outcomes:
        if outcome.status == "failed":
            continue
        print(f"\n{outcome.model_name} {outcome.model_version}: {outcome.status}")
        _print_table(outcome.evaluation)
        for plot, path in outcome.plots.items():
            print(f"  plot {plot}: {path}")
    print_outcomes("uba train", outcomes)
    return 1 if any_failed(outcomes) else 0


def add_score_arguments(parser) -> None:
    _add_model_argument(parser)
    parser.add_argument("--run-id", default=None)


def run_score(args) -> int:
    from python_models.lifecycle import any_failed, score_each
    from python_models.warehouse import connect

    con = connect()
    try:
        outcomes = score_each(con, [args.model] if args.model else model_names(), args.run_id)
        for outcome in outcomes:
            if outcome.status != "scored":
                continue
            print(f"\n{outcome.model_name}: highest scores in {outcome.table}")
            _print_table(
                con.sql(
                    f"select * exclude (model_name, model_version, scored_at, run_id) "
                    f"from {outcome.table} order by score desc limit 5"
                ).pl()
            )
    finally:
        con.close()
    print_outcomes("uba score", outcomes)
    return 1 if any_failed(outcomes) else 0
