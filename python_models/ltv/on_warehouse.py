"""LTV on the warehouse, or on a transactions file.

Event path: purchases are marts.fct_events rows whose event_name is `purchase_event` (user_id,
event_ts, revenue_usd); the horizon is the labels mart's `ltv_horizon_days`
(uba__ltv_horizon_days). Training evaluates the forecasters on a time split, records the
served one and fits it on every purchase up to the newest event; scoring applies that fit to
every customer's state the day after the newest event (no refit).

Transaction path (`uba train|score --model ltv --transactions FILE`): the same on a file's
rows. Ids in such a file are raw customer ids: the score rows carry their pseudonyms (the
staging macro's, so they join the event path's users) and the holdout group computed from the
raw id, as dbt does.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from python_models.common.artifacts import stable_hash
from python_models.common.features import label_horizon_days
from python_models.common.spec import HOLDOUT_COLUMN
from python_models.common.training import TrainingResult
from python_models.ltv.model import TRANSACTION_COLUMNS, LtvForecaster, wide_evaluation
from python_models.ltv.params import LtvParams
from python_models.ltv.transactions import (
    customer_summary,
    purchase_days,
    validate_transactions,
    window_actuals,
)
from python_models.privacy.consent import consented_term
from python_models.warehouse import table_exists

EVENTS_TABLE = "marts.fct_events"
# RFM state the drift measurement compares (the age-bound ones grow by construction).
STATE_COLUMNS = (
    "frequency",
    "recency",
    "age",
    "days_since_last",
    "repeat_value",
    "mean_value",
    "purchases_90d",
    "revenue_90d",
)
AGE_BOUND = ("frequency", "recency", "age")


def purchases(con: duckdb.DuckDBPyConnection, purchase_event: str) -> pl.DataFrame:
    """Purchase events of the marts as transactions (user_id, purchased_at, revenue_usd), of
    people with analytics consent (docs/privacy.md: no training or scoring without it)."""
    if not table_exists(con, EVENTS_TABLE):
        raise LookupError(f"{EVENTS_TABLE} does not exist: run `uba build` first")
    consented = consented_term(con, "analytics")
    # revenue as a float on the Python side: the type's name differs between engines
    return (
        con.execute(
            f"""
            select user_id, event_ts as purchased_at, revenue_usd
            from {EVENTS_TABLE}
            where event_name = ? and user_id is not null and {consented}
            order by user_id, event_ts
            """,
            [purchase_event],
        )
        .pl()
        .with_columns(pl.col("revenue_usd").cast(pl.Float64))
    )


def _newest_event_day(con: duckdb.DuckDBPyConnection) -> date:
    latest = con.execute(f"select max(event_date) from {EVENTS_TABLE}").fetchone()[0]
    if latest is None:
        raise LookupError(f"{EVENTS_TABLE} is empty: nothing to forecast from")
    return latest


def _forecast_start(con: duckdb.DuckDBPyConnection) -> date:
    """The day LTV forecasts from, in training (where the served fit ends) and in scoring: the
    day after the newest event."""
    return _newest_event_day(con) + timedelta(days=1)


def _horizon(con: duckdb.DuckDBPyConnection) -> int:
    return label_horizon_days(con, "ltv_horizon_days")


def _result(
    model: LtvForecaster,
    frame: pl.DataFrame,
    params: LtvParams,
    source: str,
    fingerprint: dict[str, Any],
) -> TrainingResult:
    evaluation = model.evaluation_
    served = evaluation.filter(pl.col("served"))
    metrics: dict[str, Any] = {"served_model": model.served_model_, "decision": model.decision_}
    for row in evaluation.iter_rows(named=True):
        metrics[f"{row['model']}_mae_{row['target']}"] = row["mae"]
    for row in served.iter_rows(named=True):
        metrics[f"mae_{row['target']}"] = row["mae"]
        metrics[f"mae_vs_zero_{row['target']}"] = row["mae_vs_zero"]
        metrics[f"interval_coverage_{row['target']}"] = row["interval_coverage"]
    metrics |= {
        "horizon_days": model.horizon_days,
        "calibration_end": str(model.calibration_end_),
        "customers": model.customers_,
        "source": source,
    }
    print(
        f"[ltv] {model.split_}\n[ltv] served: {model.served_model_} ({model.decision_})",
        file=sys.stderr,
    )
    days = frame["purchased_at"].cast(pl.Date)
    holdout_end = model.calibration_end_ + timedelta(days=model.horizon_days - 1)
    return TrainingResult(
        model_name="ltv",
        model=model,
        features=list(model.features),
        params=params.as_dict(),
        data_window=(days.min(), holdout_end),
        evaluation=wide_evaluation(evaluation),
        metrics=metrics,
        # The served forecaster is the candidate only when it beats every baseline, else the
        # best baseline: what is served always holds its own against the others.
        passes_gate=True,
        gate_reason=model.decision_,
        data_fingerprint=fingerprint,
        reference_features=pl.DataFrame(),
        reference_scores=np.array([]),
        age_bound_features=list(AGE_BOUND),
    )


def train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = LtvParams.from_overrides(overrides)
    frame = purchases(con, params.purchase_event)
    if frame.height == 0:
        raise LookupError(
            f"no {params.purchase_event!r} events in {EVENTS_TABLE}: LTV has nothing to learn"
        )
    as_of = _forecast_start(con)  # the served fit ends where scoring starts today
    model = LtvForecaster(TRANSACTION_COLUMNS, params, _horizon(con), as_of=as_of).fit(frame)
    fingerprint = {
        "rows": frame.height,
        "revenue": round(float(frame["revenue_usd"].sum()), 2),
        "last": str(frame["purchased_at"].max()),
    }
    return _result(model, frame, params, "events", fingerprint)


def _scoring_input(
    con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]
) -> tuple[LtvForecaster, pl.DataFrame, date]:
    """(the champion, the purchases, the day after the newest event) a scoring reads."""
    model: LtvForecaster = bundle["model"]
    if bundle.get("source", "events") != "events":
        raise ValueError(
            "the LTV champion was trained on a transactions file: score it with "
            "`uba score --model ltv --transactions FILE`, or retrain on the warehouse"
        )
    frame = purchases(con, model.params.purchase_event)
    return model, frame, _forecast_start(con)


def score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    """Forward forecasts from the day after the newest event, for every customer."""
    model, frame, as_of = _scoring_input(con, bundle)
    return model.predict_frame(frame, as_of=as_of)


def score_with_state(
    con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """score's rows and latest_features' state from one read of the purchases (a read takes
    0.13-0.3 s at 10M events)."""
    model, frame, as_of = _scoring_input(con, bundle)
    return model.predict_frame(frame, as_of=as_of), customer_state(frame, as_of)


def customer_state(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The RFM state of every customer at `as_of` (what the forecasters read): drift input."""
    days = purchase_days(validate_transactions(frame))
    return (
        customer_summary(days, as_of)
        .with_columns(
            (pl.col("age") - pl.col("recency")).alias("days_since_last"),
            pl.lit(as_of).alias("as_of_date"),
        )
        .select("user_id", "as_of_date", *STATE_COLUMNS)
    )


def latest_features(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    model: LtvForecaster = bundle["model"]
    frame = purchases(con, model.params.purchase_event)
    return customer_state(frame, _forecast_start(con))


def outcomes(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
    """Realized revenue over each scored row's horizon, for rows whose horizon has passed
    (keys: user_id, as_of_date, horizon_days)."""
    empty = pl.DataFrame(
        schema={"user_id": pl.String, "as_of_date": pl.Date, "outcome": pl.Float64}
    )
    if keys.height == 0 or not table_exists(con, EVENTS_TABLE):
        return empty
    newest = _newest_event_day(con)
    horizon = keys["horizon_days"] if "horizon_days" in keys.columns else None
    if horizon is None:
        return empty
    matured = keys.filter(
        pl.col("as_of_date") + pl.duration(days=pl.col("horizon_days"))
        <= newest + timedelta(days=1)
    )
    if matured.height == 0:
        return empty
    params = LtvParams()
    days = purchase_days(validate_transactions(purchases(con, params.purchase_event)))
    parts = []
    for (as_of, horizon_days), group in matured.group_by(
        "as_of_date", "horizon_days", maintain_order=True
    ):
        actual = window_actuals(days, group["user_id"], as_of, int(horizon_days))
        parts.append(
            actual.select(
                "user_id",
                pl.lit(as_of).cast(pl.Date).alias("as_of_date"),
                pl.col("actual_revenue_usd").alias("outcome"),
            )
        )
    return pl.concat(parts) if parts else empty


# --- the transactions-file path -----------------------------------------------------------------


def file_fingerprint(frame: pl.DataFrame) -> dict[str, Any]:
    typed = validate_transactions(frame)
    return {
        "rows": typed.height,
        "revenue": round(float(typed["revenue_usd"].sum()), 2),
        "last": str(typed["purchased_at"].max()),
        "ids": stable_hash(sorted(typed["user_id"].unique().to_list())[:1000], length=10),
    }


def train_from_file(
    frame: pl.DataFrame,
    overrides: dict[str, Any] | None,
    horizon_days: int,
    calibration_end: date | None = None,
) -> TrainingResult:
    params = LtvParams.from_overrides(overrides)
    model = LtvForecaster(TRANSACTION_COLUMNS, params, horizon_days, calibration_end).fit(frame)
    typed = validate_transactions(frame)
    result = _result(model, typed, params, "transactions", file_fingerprint(frame))
    result.reports["holdout_predictions"] = model.holdout_predictions()
    return result


def score_from_file(frame: pl.DataFrame, bundle: dict[str, Any]) -> pl.DataFrame:
    """Forward forecasts for every customer of a transactions file, from the day after its
    last purchase. user_id becomes the pseudonym dbt's staging gives the same raw id, and the
    holdout group is computed from the raw id with the holdout key (docs/impact.md)."""
    from python_models.config import get_settings
    from python_models.impact.config import load_impact_config
    from python_models.impact.holdout import holdout_group
    from python_models.privacy import pseudonymize

    model: LtvForecaster = bundle["model"]
    rows = model.predict_frame(frame)
    salt = get_settings().pseudonym_salt
    config = load_impact_config()
    raw = rows["user_id"].to_list()
    return rows.with_columns(
        pl.Series("user_id", [pseudonymize(u, "user", salt) for u in raw], dtype=pl.String),
        pl.Series(
            HOLDOUT_COLUMN,
            [holdout_group(u, "user", config.holdout_key, config.holdout_share) for u in raw],
            dtype=pl.String,
        ),
    )
