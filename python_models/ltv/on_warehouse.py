"""LTV on the warehouse: matured future-revenue labels, time split, fit, evaluate. Scoring is the
common newest-snapshot one (python_models.common.features.score_latest_snapshot)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import polars as pl

from python_models.common import plots
from python_models.common.features import (
    catalogue_feature_columns,
    label_horizon_days,
    load_labelled,
)
from python_models.common.metrics import regression_metrics
from python_models.common.splits import apply_split, time_split
from python_models.common.training import TrainingResult, reference_sample
from python_models.ltv.model import SERVED, LtvModel, beats_baseline
from python_models.ltv.params import LtvParams
from python_models.warehouse import Warehouse

LABEL = "label_future_revenue_usd"


def train(con: Warehouse, overrides: dict[str, Any] | None) -> TrainingResult:
    params = LtvParams.from_overrides(overrides)
    features = catalogue_feature_columns("ltv")
    unfitted = LtvModel(features, params)
    baseline_column = unfitted.baseline_feature()[0]
    columns = features + ([baseline_column] if baseline_column not in features else [])
    frame = load_labelled(con, columns, LABEL)
    if frame.height == 0:
        raise LookupError(
            f"no matured {LABEL} yet (the LTV horizon is longer than the data): nothing to train"
        )
    horizon = label_horizon_days(con, "ltv_horizon_days")
    split = time_split(frame["as_of_date"].unique().to_list(), horizon, purge=params.purge_split())
    print(f"[ltv] {frame.height} labelled rows; {split.describe()}", file=sys.stderr)
    fit_frame, valid_frame, holdout = apply_split(frame, split)
    model = LtvModel(features, params, horizon_days=horizon).fit(fit_frame, valid_frame)
    evaluation = model.evaluate(holdout)
    predictions = model.variant_scores(holdout)
    served = evaluation.filter(pl.col("variant") == SERVED).row(0, named=True)
    by_variant = dict(zip(evaluation["variant"], evaluation["spearman"], strict=True))
    gate_reason = (
        f"holdout Spearman {by_variant[SERVED]:.4f} vs historical average "
        f"{by_variant['historical_average']:.4f}"
    )
    actual = holdout["label"].cast(pl.Float64).to_numpy()

    def render(folder: Path) -> dict[str, Path]:
        return {
            "predicted_vs_actual": plots.predicted_vs_actual_plot(
                actual, predictions[SERVED], folder / "predicted_vs_actual.png"
            ),
            "feature_importance": plots.importance_plot(
                features, model.importance(), folder / "feature_importance.png"
            ),
        }

    def compare(bundle: dict[str, Any]) -> float:
        other: LtvModel = bundle["model"]
        if any(f not in holdout.columns for f in other.features):
            return float("-inf")
        return regression_metrics(actual, other.predict(holdout))["spearman"]

    metrics = {k: v for k, v in served.items() if k not in ("variant", "split")}
    metrics["baseline_spearman"] = by_variant["historical_average"]
    metrics["baseline_feature"] = model.baseline_feature_
    metrics["horizon_days"] = horizon
    metrics["purged_split"] = split.purged
    metrics["best_iteration"] = model.best_iteration_
    return TrainingResult(
        model_name="ltv",
        model=model,
        features=features,
        params=params.as_dict(),
        data_window=split.window,
        evaluation=evaluation,
        metrics=metrics,
        passes_gate=beats_baseline(evaluation),
        gate_reason=gate_reason,
        data_fingerprint={
            "rows": frame.height,
            "revenue": round(float(frame["label"].sum()), 2),
            "holdout": str(split.holdout_date),
        },
        reference_features=reference_sample(fit_frame, features, params.seed),
        reference_scores=predictions[SERVED],
        compare_metric=compare,
        primary_metric="spearman",
        render_plots=render,
    )
