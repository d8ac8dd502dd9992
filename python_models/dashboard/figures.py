"""Plotly figures for the dashboard, each a pure function of a frame from dashboard.data."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from python_models.dashboard.data import retention_matrix

LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "template": "plotly_white"}


def _figure(title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=title, **LAYOUT)
    return figure


def active_users(frame: pd.DataFrame) -> go.Figure:
    figure = _figure("Active users (DAU, 7-day WAU, 28-day MAU)")
    for column, name in (
        ("daily_active_users", "DAU"),
        ("weekly_active_users", "WAU"),
        ("monthly_active_users", "MAU"),
    ):
        figure.add_trace(
            go.Scatter(x=frame["activity_date"], y=frame[column], mode="lines", name=name)
        )
    figure.update_yaxes(title="users", rangemode="tozero")
    return figure


def retention_heatmap(frame: pd.DataFrame) -> go.Figure:
    """Weekly cohorts (rows, newest on top) by weeks since acquisition; blank = not observed."""
    matrix = retention_matrix(frame)
    figure = _figure("Weekly retention: share of each cohort active N weeks later")
    if matrix.empty:
        return figure
    sizes = frame.groupby("cohort_week")["cohort_users"].first()
    labels = [f"{pd.Timestamp(c):%Y-%m-%d} ({int(sizes[c])})" for c in matrix.index]
    z = matrix.to_numpy()
    text = [[("" if pd.isna(v) else f"{v:.0%}") for v in row] for row in z]
    figure.add_trace(
        go.Heatmap(
            z=z,
            x=[int(c) for c in matrix.columns],
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "retained", "tickformat": ".0%"},
            hovertemplate="cohort %{y}<br>week %{x}: %{z:.1%}<extra></extra>",
        )
    )
    figure.update_xaxes(title="weeks since acquisition", dtick=1)
    figure.update_yaxes(title="cohort week (users)", autorange="reversed", type="category")
    figure.update_layout(height=max(420, 28 * len(labels) + 120))
    return figure


def funnel_over_time(frame: pd.DataFrame) -> go.Figure:
    figure = _figure("Funnel conversion by day (user level, step 1 to the last step)")
    for funnel, rows in frame.groupby("funnel_name", sort=True):
        figure.add_trace(
            go.Scatter(
                x=rows["period_start"],
                y=rows["conversion_from_first_step"],
                mode="lines+markers",
                name=str(funnel),
                customdata=rows[["attempts_started", "attempts_converted"]].to_numpy(),
                hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} "
                "(%{customdata[1]} of %{customdata[0]} attempts)<extra>%{fullData.name}</extra>",
            )
        )
    figure.update_yaxes(title="converted", tickformat=".0%", rangemode="tozero")
    return figure


def churn_histogram(frame: pd.DataFrame) -> go.Figure:
    figure = _figure("Churn probability of the scored users")
    figure.add_trace(
        go.Bar(
            x=[f"{b:.1f}-{b + 0.1:.1f}" for b in frame["score_bin"]],
            y=frame["users"],
            name="users",
        )
    )
    figure.update_xaxes(title="churn probability")
    figure.update_yaxes(title="users")
    return figure


def value_at_risk(frame: pd.DataFrame) -> go.Figure:
    top = frame.head(20)
    figure = _figure("Value at risk: expected revenue lost to churn (top 20 users, USD)")
    figure.add_trace(go.Bar(x=top["value_at_risk_usd"], y=top["user_id"].str[:10], orientation="h"))
    figure.update_yaxes(autorange="reversed", title="user")
    figure.update_xaxes(title="USD")
    return figure


def segment_sizes(frame: pd.DataFrame) -> go.Figure:
    figure = _figure("Users per segment")
    figure.add_trace(go.Bar(x=frame["segment_name"], y=frame["users"], name="users"))
    figure.update_yaxes(title="users")
    return figure


def segment_profiles(frame: pd.DataFrame) -> go.Figure:
    """Feature means per segment, standardized across segments (z), so columns compare."""
    figure = _figure("Segment profiles: feature means across segments (standardized)")
    values = frame.drop(columns=["segment_name"])
    spread = values.std(ddof=0).replace(0, 1)
    z = ((values - values.mean()) / spread).to_numpy()
    figure.add_trace(
        go.Heatmap(
            z=z,
            x=list(values.columns),
            y=list(frame["segment_name"]),
            customdata=values.to_numpy(),
            colorscale="RdBu",
            zmid=0,
            hovertemplate="%{y}<br>%{x}: mean %{customdata:.2f} (z=%{z:.1f})<extra></extra>",
        )
    )
    figure.update_layout(height=max(360, 60 * len(frame) + 160))
    return figure


def anomalies_per_day(frame: pd.DataFrame) -> go.Figure:
    figure = _figure("Anomaly alerts per activity day")
    figure.add_trace(go.Bar(x=frame["activity_date"], y=frame["alerts"], name="alerts"))
    figure.update_yaxes(title="alerts")
    return figure


def model_metrics(frame: pd.DataFrame, model_name: str) -> go.Figure:
    """One line per metric across the model's versions, in training order."""
    rows = frame[frame["model_name"] == model_name]
    figure = _figure(f"{model_name}: holdout metrics by version")
    for metric, points in rows.groupby("metric", sort=True):
        figure.add_trace(
            go.Scatter(
                x=points["model_version"],
                y=points["value"],
                mode="lines+markers",
                name=str(metric),
                text=points["status"],
                hovertemplate="%{x} (%{text}): %{y:.4f}<extra>%{fullData.name}</extra>",
            )
        )
    figure.update_xaxes(title="version (oldest first)", type="category")
    return figure


def drift(frame: pd.DataFrame, threshold: float | None = None) -> go.Figure:
    figure = _figure("Drift per scoring run (PSI)")
    for (model, kind), points in (
        frame.melt(
            id_vars=["model_name", "run_id", "measured_at"],
            value_vars=["prediction_psi", "max_feature_psi"],
        )
        .dropna(subset=["value"])
        .groupby(["model_name", "variable"], sort=True)
    ):
        figure.add_trace(
            go.Scatter(
                x=points["measured_at"],
                y=points["value"],
                mode="lines+markers",
                name=f"{model}: {kind.replace('_', ' ')}",
            )
        )
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dash", annotation_text="retrain threshold")
    figure.update_yaxes(title="PSI", rangemode="tozero")
    return figure


def drift_now(frame: pd.DataFrame, threshold: float | None = None) -> go.Figure:
    figure = _figure("Drift now: PSI against each champion's training window")
    for column, name in (("prediction_psi", "prediction"), ("max_feature_psi", "worst feature")):
        figure.add_trace(go.Bar(x=frame["model_name"], y=frame[column], name=name))
    if threshold is not None:
        figure.add_hline(y=threshold, line_dash="dash", annotation_text="retrain threshold")
    figure.update_layout(barmode="group")
    figure.update_yaxes(title="PSI", rangemode="tozero")
    return figure
