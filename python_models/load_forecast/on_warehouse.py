"""The load forecast on the warehouse: hourly load from the dbt report, a rolling-origin
backtest against seasonal-naive, a fit on all complete hours and the forecast after them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.common import plots
from python_models.common.training import TrainingResult
from python_models.load_forecast.hourly import METRICS, load_hourly, to_wide
from python_models.load_forecast.model import (
    BASELINE,
    SERVED,
    WEEK_HOURS,
    LoadForecaster,
    beats_baseline,
)
from python_models.load_forecast.params import LoadForecastParams

PLOT_HISTORY_WEEKS = 4


def train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = LoadForecastParams.from_overrides(overrides)
    metrics = list(METRICS)
    history = load_hourly(con, metrics)
    if history.height == 0:
        raise LookupError("reports.rpt_load_hourly has no complete hour: nothing to forecast")
    first, last = history["hour_ts"].min(), history["hour_ts"].max()
    print(
        f"[load_forecast] {history.height // len(metrics)} hours {first}..{last}; backtest "
        f"{params.backtest_origins} origins x {params.horizon_hours} h",
        file=sys.stderr,
    )
    model = LoadForecaster(metrics, params)
    evaluation = model.evaluate(history)
    model.fit(history)
    forecast = model.forecast()
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    result_metrics: dict[str, Any] = {"horizon_hours": params.horizon_hours}
    for metric in metrics:
        result_metrics[f"mape_{metric}"] = by_variant[SERVED][f"mape_{metric}"]
        result_metrics[f"baseline_mape_{metric}"] = by_variant[BASELINE][f"mape_{metric}"]
        result_metrics[f"coverage_{metric}"] = by_variant[SERVED][f"coverage_{metric}"]
    result_metrics["backtest_origins"] = by_variant[SERVED]["origins"]
    gate_reason = "backtest MAPE " + ", ".join(
        f"{m} {by_variant[SERVED][f'mape_{m}']:.3f} vs seasonal-naive "
        f"{by_variant[BASELINE][f'mape_{m}']:.3f}"
        for m in metrics
    )
    recent = history.filter(
        pl.col("hour_ts") > last - pl.duration(hours=PLOT_HISTORY_WEEKS * WEEK_HOURS)
    )

    def render(folder: Path) -> dict[str, Path]:
        return {
            "forecast": plots.forecast_plot(
                recent, forecast, folder / "forecast.png", "Hourly load and forecast"
            )
        }

    reference = to_wide(history).tail(params.training_weeks * WEEK_HOURS)
    return TrainingResult(
        model_name="load_forecast",
        model=model,
        features=metrics,
        params=params.as_dict(),
        data_window=(first.date(), last.date()),
        evaluation=evaluation,
        metrics=result_metrics,
        passes_gate=beats_baseline(evaluation, metrics),
        gate_reason=gate_reason,
        data_fingerprint={
            "hours": history.height // len(metrics),
            "totals": {
                m: float(history.filter(pl.col("metric") == m)["value"].sum()) for m in metrics
            },
        },
        reference_features=reference.select(metrics),
        reference_scores=forecast["score"].to_numpy(),
        # A forecaster fitted on newer hours replaces the old one whenever it beats
        # seasonal-naive: an older fit has not seen the latest hours, so no comparison.
        compare_metric=None,
        render_plots=render,
    )


def score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    """The champion's forecast for the horizon after the newest complete hour."""
    model: LoadForecaster = bundle["model"]
    return model.predict_frame(load_hourly(con, model.features))


def latest_features(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    """The last week of hourly load, one column per metric (drift)."""
    model: LoadForecaster = bundle["model"]
    return to_wide(load_hourly(con, model.features)).tail(WEEK_HOURS).select(model.features)
