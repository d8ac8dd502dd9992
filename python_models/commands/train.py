"""`uba train` and `uba score`: train / batch-score the models and print what became of each.

    uba train                       # every model, each on its own: one failing stops no other
    uba train --model churn --param num_leaves=7
    uba train --param churn.min_class_examples=200      # MODEL.NAME: no --model needed
    uba train --model ltv --transactions orders.parquet [--calibration-end 2025-04-01] \\
        --horizon-days 90 [--output predictions.parquet] [--forecast forecast.parquet]
    uba score [--model M]           # models without a champion are skipped
    uba score --model ltv --transactions orders.parquet   # forecasts into ml_scores.ltv_scores

Both end with one line per model (champion / challenger / rejected / failed, scored / skipped
/ failed, with the reason; `uba score` also the tables built from the scores) and exit 1 only
when a model failed.
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
        raise ValueError(f"--param expects NAME=VALUE or MODEL.NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def params_by_model(texts: list[str], model: str | None) -> dict[str, dict]:
    """--param values per model: NAME=VALUE applies to --model, MODEL.NAME=VALUE to MODEL."""
    names = model_names()
    out: dict[str, dict] = {}
    for text in texts:
        name, value = _parse_param(text)
        target, _, short = name.rpartition(".")
        if not target:
            if model is None:
                raise ValueError(
                    f"--param {name} needs --model, or name the model: --param MODEL.{name}=..."
                )
            target, short = model, name
        if target not in names:
            raise ValueError(f"--param {text!r}: unknown model {target!r}; choose from {names}")
        if model is not None and target != model:
            raise ValueError(f"--param {text!r} is for {target}, but --model is {model}")
        out.setdefault(target, {})[short] = value
    return out


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
        elif outcome.status == "built":
            detail = f"{outcome.rows:,} rows"
        elif hasattr(outcome, "model_version"):
            detail = f"{outcome.model_version}: {outcome.reason}"
        else:
            detail = outcome.reason
        print(f"  {outcome.model_name:<{width}}  {outcome.status:<10}  {detail}")


def add_train_arguments(parser) -> None:
    _add_model_argument(parser)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[MODEL.]NAME=VALUE",
        help="override a parameter (of --model, or of MODEL)",
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
    from python_models.lifecycle import train_model
    from python_models.ltv.transactions import read_transactions, write_frame
    from python_models.warehouse import connect

    transactions = read_transactions(args.transactions)
    con = connect()
    try:
        outcome = train_model(
            con,
            args.model or "ltv",
            run_id=args.run_id,
            params=params or None,
            transactions=transactions,
            horizon_days=args.horizon_days,
            calibration_end=args.calibration_end,
        )
        model = registry_model(con, outcome)
    finally:
        con.close()
    print(f"LTV from {transactions.height:,} transactions: {model.split_}")
    _print_table(model.evaluation_)
    print(f"served: {model.served_model_} ({model.decision_})")
    print(f"registered: ltv {outcome.model_version} ({outcome.status})")
    if args.output:
        predictions = outcome.reports["holdout_predictions"]
        out = write_frame(predictions, args.output)
        print(f"holdout predictions: {out} ({predictions.height:,} rows)")
    if args.forecast:
        forecast = model.forecast(transactions)
        out = write_frame(forecast, args.forecast)
        print(f"forecast from {forecast['as_of_date'][0]}: {out} ({forecast.height:,} customers)")
    print("score it into ml_scores.ltv_scores: uba score --model ltv --transactions FILE")
    return 0


def registry_model(con, outcome):
    """The fitted model object of a registered version."""
    from python_models.common import registry

    return registry.get_entry(con, outcome.model_name, outcome.model_version).load()["model"]


def run_train(args) -> int:
    try:
        params = params_by_model(args.param, args.model)
        if args.transactions is not None:
            if args.model not in (None, "ltv"):
                print("--transactions only applies to --model ltv", file=sys.stderr)
                return 2
            return _train_transactions(args, params.get("ltv", {}))
    except (ValueError, LookupError, FileNotFoundError) as err:
        print(f"uba train: {err}", file=sys.stderr)
        return 1
    from python_models.lifecycle import any_failed, train_each
    from python_models.warehouse import connect

    con = connect()
    try:
        names = [args.model] if args.model else list(model_names())
        outcomes = train_each(con, names, run_id=args.run_id, params=params)
    finally:
        con.close()
    for outcome in outcomes:
        if outcome.status == "failed":
            continue
        print(f"\n{outcome.model_name} {outcome.model_version}: {outcome.status}")
        _print_table(outcome.evaluation)
        for name, report in outcome.reports.items():
            print(f"  {name}:")
            _print_table(report)
        for plot, path in outcome.plots.items():
            print(f"  plot {plot}: {path}")
    print_outcomes("uba train", outcomes)
    return 1 if any_failed(outcomes) else 0


def add_score_arguments(parser) -> None:
    _add_model_argument(parser)
    parser.add_argument("--run-id", default=None, help="re-using a run id replaces its rows")
    parser.add_argument(
        "--transactions",
        type=Path,
        help="LTV: forecast the customers of this transactions file (after training on it)",
    )


def run_score(args) -> int:
    from python_models.lifecycle import any_failed, build_derived, refresh_realized, score_each
    from python_models.warehouse import connect

    transactions = None
    if args.transactions is not None:
        if args.model not in (None, "ltv"):
            print("--transactions only applies to --model ltv", file=sys.stderr)
            return 2
        from python_models.ltv.transactions import read_transactions

        try:
            transactions = read_transactions(args.transactions)
        except (ValueError, FileNotFoundError) as err:
            print(f"uba score: {err}", file=sys.stderr)
            return 1
    con = connect()
    try:
        if transactions is not None:
            names = ["ltv"]
        else:
            names = [args.model] if args.model else list(model_names())
        outcomes = score_each(con, names, args.run_id, transactions=transactions)
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
        scored = [o.model_name for o in outcomes if o.status == "scored"]
        after = build_derived(con, scored) if scored else []
        if scored:
            refresh_realized(con)
    finally:
        con.close()
    print_outcomes("uba score", [*outcomes, *after])
    return 1 if any_failed([*outcomes, *after]) else 0
