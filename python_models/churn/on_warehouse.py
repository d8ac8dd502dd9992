"""Churn on the warehouse: read the feature mart, split by time, fit, evaluate. Scoring is the
common newest-snapshot one (python_models.common.features.score_latest_snapshot)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import polars as pl

from python_models.churn.model import SERVED, ChurnModel, beats_baselines
from python_models.churn.params import ChurnParams
from python_models.common import plots
from python_models.common.features import (
    catalogue_feature_columns,
    label_horizon_days,
    load_labelled,
)
from python_models.common.metrics import classification_metrics
from python_models.common.splits import apply_split, time_split
from python_models.common.training import TrainingResult, reference_sample
from python_models.warehouse import Warehouse

LABEL = "label_churned"


def _columns(features: list[str], params: ChurnParams) -> list[str]:
    return features + ([params.recency_feature] if params.recency_feature not in features else [])


def train(con: Warehouse, overrides: dict[str, Any] | None) -> TrainingResult:
    params = ChurnParams.from_overrides(overrides)
    features = catalogue_feature_columns("churn")
    frame = load_labelled(con, _columns(features, params), LABEL)
    horizon = label_horizon_days(con, "churn_horizon_days")
    split = time_split(frame["as_of_date"].unique().to_list(), horizon, purge=params.purge)
    print(f"[churn] {frame.height} labelled rows; {split.describe()}", file=sys.stderr)
    fit_frame, calibration_frame, holdout = apply_split(frame, split)
    model = ChurnModel(features, params).fit(fit_frame, calibration_frame)
    evaluation = model.evaluate(holdout)
    scores = model.variant_scores(holdout)
    served = evaluation.filter(pl.col("variant") == SERVED).row(0, named=True)
    by_variant = dict(zip(evaluation["variant"], evaluation["roc_auc"], strict=True))
    gate_reason = (
        f"holdout ROC AUC {by_variant[SERVED]:.4f} vs recency rule "
        f"{by_variant['recency_rule']:.4f} and logistic regression "
        f"{by_variant['logistic_regression']:.4f}"
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
        data_fingerprint={
            "rows": frame.height,
            "positives": int(frame["label"].cast(pl.Int64).sum()),
            "holdout": str(split.holdout_date),
        },
        reference_features=reference_sample(fit_frame, features, params.seed),
        reference_scores=scores[SERVED],
        compare_metric=compare,
        primary_metric="roc_auc",
        render_plots=render,
    )
