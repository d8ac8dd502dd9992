"""Churn on the warehouse, for users who are still here.

The population (as GA4's churn probability): users with an event in the `active_window_days`
before the snapshot. Training, evaluation and scoring all use it; users quiet for longer are not
scored as risks (ml_scores.churn_lapsed_users says who is inactive and who is past the horizon).

Before training, an eligibility report (ml.churn_eligibility: positives and negatives per
snapshot and split) is written, and training refuses below `min_class_examples` of each.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.churn.model import SERVED, ChurnModel, beats_baselines
from python_models.churn.params import ChurnParams
from python_models.common import catalogue, plots, registry
from python_models.common.artifacts import ArtifactIntegrityError
from python_models.common.drift import age_bound_features
from python_models.common.features import (
    LABELS_TABLE,
    catalogue_feature_columns,
    label_horizon_days,
    load_labelled,
    load_snapshot,
)
from python_models.common.metrics import classification_metrics
from python_models.common.splits import apply_split, time_split
from python_models.common.training import BelowMinimumError, TrainingResult
from python_models.warehouse import replace_table, table_exists

LABEL = "label_churned"
ELIGIBILITY_TABLE = "ml.churn_eligibility"
LAPSED_TABLE = "ml_scores.churn_lapsed_users"


def _columns(features: list[str], params: ChurnParams) -> list[str]:
    return features + ([params.recency_feature] if params.recency_feature not in features else [])


def in_population(params: ChurnParams) -> pl.Expr:
    """Active in the window before the snapshot: the last event at most N days before it."""
    return pl.col(params.recency_feature) <= params.active_window_days


def in_population_sql(params: ChurnParams) -> str:
    """in_population as a condition on the feature row `f`, for the warehouse to apply."""
    return f'f."{params.recency_feature}" <= {int(params.active_window_days)}'


def _check_window(params: ChurnParams, horizon: int) -> None:
    if params.active_window_days >= horizon:
        raise ValueError(
            f"active_window_days ({params.active_window_days}) must be shorter than the churn "
            f"horizon ({horizon} days, uba__churn_horizon_days): the scored users must still "
            "be here"
        )


def eligibility_report(frame: pl.DataFrame, params: ChurnParams, split) -> pl.DataFrame:
    """One row per matured snapshot: its split, users in the population, positives (churned),
    negatives (returned) and users left out as inactive."""
    role = (
        pl.when(pl.col("as_of_date") == split.holdout_date)
        .then(pl.lit("holdout"))
        .when(pl.col("as_of_date") == split.calibration_date)
        .then(pl.lit("calibration"))
        .when(pl.col("as_of_date").is_in(split.fit_dates))
        .then(pl.lit("fit"))
        .otherwise(pl.lit("unused"))
    )
    active = in_population(params)
    return (
        frame.group_by("as_of_date")
        .agg(
            active.sum().cast(pl.Int64).alias("users_in_population"),
            (active & pl.col("label")).sum().cast(pl.Int64).alias("positives"),
            (active & ~pl.col("label")).sum().cast(pl.Int64).alias("negatives"),
            (~active).sum().cast(pl.Int64).alias("users_inactive"),
        )
        .with_columns(
            role.alias("split"),
            pl.lit(params.active_window_days).alias("active_window_days"),
        )
        .sort("as_of_date")
        .select(
            "as_of_date",
            "split",
            "users_in_population",
            "positives",
            "negatives",
            "users_inactive",
            "active_window_days",
        )
    )


def check_eligibility(report: pl.DataFrame, params: ChurnParams) -> str:
    """One line on the classes in the population; raises BelowMinimumError below the bar."""
    used = report.filter(pl.col("split") != "unused")
    positives, negatives = int(used["positives"].sum()), int(used["negatives"].sum())
    line = (
        f"{positives:,} churned and {negatives:,} returning user-snapshots of users active "
        f"in the {params.active_window_days} days before each of {used.height} snapshots"
    )
    if min(positives, negatives) < params.min_class_examples:
        raise BelowMinimumError(
            f"churn: only {line}; training needs at least {params.min_class_examples:,} of "
            "each (GA4's bar is 1,000): collect more data, or set the churn parameter "
            "min_class_examples lower to train on this sample anyway",
            report,
        )
    return line


def train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = ChurnParams.from_overrides(overrides)
    features = catalogue_feature_columns("churn")
    horizon = label_horizon_days(con, "churn_horizon_days")
    _check_window(params, horizon)
    lifetime = [f.name for f in catalogue.load_catalogue() if f.window_days is None]
    lifetime_features = [f for f in features if f in lifetime]
    # Every matured user-snapshot, narrow (the eligibility report counts the inactive ones, the
    # age-bound check reads the lifetime features), then every feature only for the population:
    # the inactive rows' features were most of training's memory (10.7 GB of RSS at 100M
    # events, every feature of every matured user-snapshot read, then filtered in polars).
    # The narrow frame is done with before the wide one is read, and the eligibility checked
    # before it.
    labelled = load_labelled(con, _columns(lifetime_features, params), LABEL)
    dates = labelled.filter(in_population(params))["as_of_date"].unique().to_list()
    split = time_split(dates, horizon, purge=params.purge)
    report = eligibility_report(labelled, params, split)
    replace_table(con, ELIGIBILITY_TABLE, report.to_arrow())
    eligible = check_eligibility(report, params)
    print(f"[churn] {eligible}; {split.describe()}", file=sys.stderr)
    age_bound = age_bound_features(labelled, lifetime_features)
    del labelled
    frame = load_labelled(
        con, _columns(features, params), LABEL, population=in_population_sql(params)
    )
    fit_frame, calibration_frame, holdout = apply_split(frame, split)
    # What the result keeps of the population frame, taken now so that it is freed before the
    # fit (it is a copy of what the split copied again: 2.7 GB at 100M).
    fingerprint = {
        "rows": frame.height,
        "positives": int(frame["label"].cast(pl.Int64).sum()),
        "holdout": str(split.holdout_date),
    }
    del frame
    model = ChurnModel(features, params).fit(fit_frame, calibration_frame)
    scores = model.variant_scores(holdout)  # each variant's holdout scores, computed once
    evaluation = model.evaluate(holdout, scores)
    served = evaluation.filter(pl.col("variant") == SERVED).row(0, named=True)
    by_variant = dict(zip(evaluation["variant"], evaluation["roc_auc"], strict=True))
    gate_reason = (
        f"holdout ROC AUC {by_variant[SERVED]:.4f} vs recency rule "
        f"{by_variant['recency_rule']:.4f} and logistic regression "
        f"{by_variant['logistic_regression']:.4f} (users active in the last "
        f"{params.active_window_days} days)"
    )
    y_holdout = holdout["label"].cast(pl.Int8).to_numpy()

    def render(folder: Path) -> dict[str, Path]:
        return {
            "roc": plots.roc_plot(y_holdout, scores, folder / "roc.png"),
            "calibration": plots.calibration_plot(
                y_holdout,
                {k: scores[k] for k in ("lightgbm", SERVED, "logistic_regression")},
                folder / "calibration.png",
            ),
            "feature_importance": plots.importance_plot(
                features, model.importance(), folder / "feature_importance.png"
            ),
        }

    def compare(bundle: dict[str, Any]) -> float:
        other: ChurnModel = bundle["model"]
        if any(f not in holdout.columns for f in other.features):
            return float("-inf")  # the champion's features no longer exist: it cannot compete
        return classification_metrics(y_holdout, other.predict(holdout))["roc_auc"]

    metrics = {k: v for k, v in served.items() if k not in ("variant", "split")}
    metrics |= {
        f"baseline_{v}_roc_auc": by_variant[v] for v in ("recency_rule", "logistic_regression")
    }
    metrics["best_iteration"] = model.best_iteration_
    # What predicted_label means for this version, and how it did on the holdout.
    flagged = scores[SERVED] >= model.decision_threshold  # model.predict(holdout)
    metrics["decision_threshold"] = model.decision_threshold
    metrics["holdout_precision_at_threshold"] = float(
        y_holdout[flagged].mean() if flagged.any() else 0
    )
    metrics["holdout_recall_at_threshold"] = float(flagged[y_holdout == 1].mean())
    metrics["active_window_days"] = params.active_window_days
    metrics["positives"] = int(report.filter(pl.col("split") != "unused")["positives"].sum())
    metrics["negatives"] = int(report.filter(pl.col("split") != "unused")["negatives"].sum())
    return TrainingResult(
        model_name="churn",
        model=model,
        features=features,
        params=params.as_dict(),
        data_window=split.window,
        evaluation=evaluation,
        metrics=metrics,
        passes_gate=beats_baselines(evaluation),
        gate_reason=gate_reason,
        data_fingerprint=fingerprint,
        reference_features=pl.DataFrame(),
        reference_scores=None,
        compare_metric=compare,
        primary_metric="roc_auc",
        render_plots=render,
        age_bound_features=age_bound,
        holdout_predictions=holdout.select("user_id", "as_of_date", "label").with_columns(
            pl.Series("score", scores[SERVED])
        ),
        reports={"eligibility": report},
    )


def population(con: duckdb.DuckDBPyConnection, model: ChurnModel) -> pl.DataFrame:
    """The newest snapshot's users who are still here (the scoring population)."""
    snapshot = load_snapshot(con, _columns(model.features, model.params))
    return snapshot.filter(in_population(model.params))


def score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    model: ChurnModel = bundle["model"]
    return model.predict_frame(population(con, model))


def latest_features(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    return population(con, bundle["model"])


def outcomes(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
    """label_churned of the scored (user_id, as_of_date) pairs whose horizon has matured."""
    if keys.height == 0 or not table_exists(con, LABELS_TABLE):
        return pl.DataFrame(
            schema={"user_id": pl.String, "as_of_date": pl.Date, "outcome": pl.Boolean}
        )
    wanted = keys.select("user_id", "as_of_date").unique()
    dates = sorted(wanted["as_of_date"].unique().to_list())
    marks = ", ".join("?" for _ in dates)
    labels = con.execute(
        f"""
        select user_id, as_of_date, {LABEL} as outcome from {LABELS_TABLE}
        where {LABEL} is not null and as_of_date in ({marks})
        """,
        dates,
    ).pl()
    # joined here, not in SQL: the keys are a frame in this process, on any engine
    return labels.join(wanted, on=["user_id", "as_of_date"], how="inner").select(
        "user_id", "as_of_date", "outcome"
    )


def _champion_params(con: duckdb.DuckDBPyConnection) -> ChurnParams:
    champion = registry.get_champion(con, "churn")
    if champion is None:
        return ChurnParams()
    try:
        return ChurnParams.from_overrides(champion.params)
    except (ValueError, ArtifactIntegrityError):
        return ChurnParams()


def lapsed_users(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The newest snapshot's users who are not scored: `inactive` (no event in the active
    window, but within the churn horizon) or `lapsed` (quiet for longer than the horizon:
    churned by definition, a win-back list rather than a risk)."""
    params = _champion_params(con)
    horizon = label_horizon_days(con, "churn_horizon_days")
    snapshot = load_snapshot(con, [params.recency_feature])
    quiet = pl.col(params.recency_feature)
    return snapshot.filter(~in_population(params)).select(
        pl.col("user_id").cast(pl.String),
        pl.col("as_of_date").cast(pl.Date),
        pl.when(quiet > horizon)
        .then(pl.lit("lapsed"))
        .otherwise(pl.lit("inactive"))
        .alias("activity_status"),
        quiet.cast(pl.Int64).alias("days_since_last_event"),
        (pl.col("as_of_date") - pl.duration(days=quiet)).cast(pl.Date).alias("last_active_date"),
        pl.lit(params.active_window_days, dtype=pl.Int64).alias("active_window_days"),
        pl.lit(horizon, dtype=pl.Int64).alias("churn_horizon_days"),
    )


__all__ = [
    "ELIGIBILITY_TABLE",
    "LAPSED_TABLE",
    "lapsed_users",
    "latest_features",
    "outcomes",
    "score",
    "train",
]
