"""The dashboard: a Dash app over the published copy (`uba dashboard`).

Dash (Plotly's Flask-based framework) was chosen over Streamlit and Panel: pages are plain
request/response (no per-session script re-runs or websocket state), every chart is a Plotly
figure built by a pure function (python_models.dashboard.figures) and drawn as SVG, whose data a
browser test can read back, and Flask serves the Data Docs folder beside the pages. Each page
is rendered on request from a fresh read-only connection, so a new publication shows on reload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dash import Dash, Input, Output, dash_table, dcc, html
from flask import abort, send_from_directory

from python_models.dashboard import data, figures

DATA_DOCS_ROUTE = "/data-docs/"
# Features the segment profiles show (the first ones the segmentation model reads).
PROFILE_FEATURES = 12


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    render: Callable[[data.Source], list]


def _graph(name: str, figure) -> dcc.Graph:
    return dcc.Graph(id=f"graph-{name}", figure=figure, config={"displaylogo": False})


def _table(name: str, frame: pd.DataFrame, page_size: int = 15) -> dash_table.DataTable:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M")
        elif shown[column].dtype == object:
            shown[column] = shown[column].map(lambda v: v if v is None else str(v))
    return dash_table.DataTable(
        id=f"table-{name}",
        data=shown.to_dict("records"),
        columns=[{"name": c, "id": c} for c in shown.columns],
        page_size=page_size,
        sort_action="native",
        style_cell={"textAlign": "left", "whiteSpace": "normal", "maxWidth": "520px"},
        style_header={"fontWeight": "bold"},
    )


def _missing(what: str) -> html.P:
    return html.P(f"{what}: not in the published copy yet.", className="missing")


def _kpi(label: str, value, fmt: str, name: str) -> html.Div:
    text = "n/a" if value is None or pd.isna(value) else format(value, fmt)
    return html.Div(
        [html.Div(label, className="kpi-label"), html.Div(text, className="kpi-value")],
        id=f"kpi-{name}",
        className="kpi",
    )


def overview(source: data.Source) -> list:
    with source.connect() as con:
        kpis = data.kpis(con)
        active = data.active_users(con)
    return [
        html.P(f"Latest activity day: {kpis['as_of']}"),
        html.Div(
            [
                _kpi("Daily active users", kpis["dau"], ",.0f", "dau"),
                _kpi("Weekly active users", kpis["wau"], ",.0f", "wau"),
                _kpi("Monthly active users", kpis["mau"], ",.0f", "mau"),
                _kpi("Revenue, last 28 days (USD)", kpis["revenue_28d"], ",.0f", "revenue"),
                _kpi(
                    "Purchase conversion, 28 days",
                    kpis["purchase_conversion_28d"],
                    ".1%",
                    "conversion",
                ),
                _kpi("Churn risk share", kpis["churn_risk_share"], ".1%", "churn-risk"),
                _kpi("Value at risk (USD)", kpis["value_at_risk_usd"], ",.0f", "value-at-risk"),
            ],  # fmt: skip
            className="kpis",
        ),
        _graph("active-users", figures.active_users(active)),
    ]


def retention(source: data.Source) -> list:
    with source.connect() as con:
        frame = data.weekly_retention(con)
    return [_graph("retention", figures.retention_heatmap(frame))]


def funnels(source: data.Source) -> list:
    with source.connect() as con:
        daily = data.funnel_daily(con)
        incidents = data.funnel_incidents(con)
    parts = [_graph("funnel", figures.funnel_over_time(daily))]
    if incidents is not None and len(incidents):
        parts += [html.H3("Funnel incidents"), _table("funnel-incidents", incidents)]
    return parts


def churn(source: data.Source) -> list:
    with source.connect() as con:
        risk = data.churn_risk(con)
        histogram = data.churn_scores_histogram(con)
        at_risk = data.value_at_risk(con)
    if risk is None:
        return [_missing("Churn scores")]
    parts = [
        _graph("churn-histogram", figures.churn_histogram(histogram)),
        html.H3("Highest churn risk, with the model's reasons"),
        _table("churn-risk", risk),
    ]
    if at_risk is None:
        parts.append(_missing("Value at risk (ml_scores.value_at_risk)"))
    else:
        parts += [
            html.H3("Value at risk"),
            _graph("value-at-risk", figures.value_at_risk(at_risk)),
            _table("value-at-risk", at_risk),
        ]
    return parts


def segments(source: data.Source) -> list:
    from python_models.common.catalogue import CatalogueError, feature_columns

    try:
        features = feature_columns("segmentation")[:PROFILE_FEATURES]
    except CatalogueError:
        features = []
    with source.connect() as con:
        sizes = data.segments(con)
        profiles = data.segment_profiles(con, features)
    if sizes is None:
        return [_missing("Segments")]
    parts = [_graph("segments", figures.segment_sizes(sizes)), _table("segments", sizes)]
    if profiles is not None and len(profiles):
        parts.append(_graph("segment-profiles", figures.segment_profiles(profiles)))
    return parts


def anomalies(source: data.Source) -> list:
    with source.connect() as con:
        alerts = data.anomaly_alerts(con)
        daily = data.anomaly_alerts_daily(con)
    if alerts is None:
        return [_missing("Anomaly alerts")]
    return [
        _graph("anomalies", figures.anomalies_per_day(daily)),
        html.H3("Strongest alerts, with reasons"),
        _table("anomalies", alerts),
    ]


def model_health(source: data.Source) -> list:
    with source.connect() as con:
        versions = data.model_versions(con)
        metrics = data.model_metrics(con)
        history = data.drift(con)
    if versions is None:
        return [_missing("The model registry")]
    parts = [html.H3("Versions"), _table("model-versions", versions)]
    if metrics is not None and len(metrics):
        for model in sorted(metrics["model_name"].unique()):
            parts.append(_graph(f"metrics-{model}", figures.model_metrics(metrics, model)))
    parts.append(html.H3("Drift"))
    if history is not None and len(history):
        # Measured by every scoring run (ml.drift_measurements).
        parts += [_graph("drift", figures.drift(history)), _table("drift", history)]
        return parts
    now, threshold, note = data.current_drift(source.published_path)
    if now is None:
        parts.append(html.P(note, className="missing"))
    else:
        parts += [_graph("drift", figures.drift_now(now, threshold)), _table("drift", now)]
    return parts


def data_quality(source: data.Source) -> list:
    runs = data.data_docs_runs(source.data_docs_dir)
    parts = [
        html.P(
            [
                "Great Expectations Data Docs of the quality gate: ",
                html.A(
                    "open the Data Docs site",
                    href=DATA_DOCS_ROUTE + "index.html",
                    id="data-docs-link",
                    target="_blank",
                ),
                " (every gate run's batch and reconciliation suites).",
            ]  # fmt: skip
        )
    ]
    if not runs:
        parts.append(_missing("Data Docs (run the gate: `uba gate` or the pipeline)"))
        return parts
    rows = [
        html.Tr(
            [
                html.Td(run.run_name),
                html.Td(run.suite),
                html.Td(run.run_time),
                html.Td("n/a" if run.success is None else ("passed" if run.success else "FAILED")),
                html.Td(run.evaluated_expectations),
                html.Td(html.A("open", href=DATA_DOCS_ROUTE + run.page, target="_blank")),
            ]
        )
        for run in runs
    ]
    header = html.Tr(
        [html.Th(h) for h in ("gate run", "suite", "validated at", "outcome", "expectations", "")]
    )
    parts.append(html.Table([html.Thead(header), html.Tbody(rows)], id="data-docs-runs"))
    with source.connect() as con:
        manifest = data.published_manifest(con)
    if manifest is not None:
        parts += [html.H3("What the published copy holds"), _table("manifest", manifest, 40)]
    return parts


PAGES = (
    Page("/", "Overview", overview),
    Page("/retention", "Retention", retention),
    Page("/funnels", "Funnels", funnels),
    Page("/churn", "Churn risk", churn),
    Page("/segments", "Segments", segments),
    Page("/anomalies", "Anomalies", anomalies),
    Page("/models", "Model health", model_health),
    Page("/quality", "Data quality", data_quality),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1f2933; }
.nav { background: #1f2933; padding: 10px 16px; }
.nav a { color: #e4e7eb; margin-right: 18px; text-decoration: none; }
.nav a:hover { text-decoration: underline; }
main { padding: 12px 24px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.kpi { border: 1px solid #cbd2d9; border-radius: 6px; padding: 10px 14px; min-width: 170px; }
.kpi-label { font-size: 12px; color: #52606d; }
.kpi-value { font-size: 24px; font-weight: 600; }
.missing { color: #8a6d3b; }
table#data-docs-runs td, table#data-docs-runs th { padding: 4px 10px; text-align: left; }
"""


def render_page(source: data.Source, pathname: str | None) -> list:
    """The page at `pathname`: its title and panels, or a one-line reason it cannot show."""
    page = next((p for p in PAGES if p.path == (pathname or "/")), None)
    if page is None:
        return [html.H2("Not found"), html.P(f"No page at {pathname}.")]
    try:
        body = page.render(source)
    except data.NoPublication as err:
        body = [html.P(str(err), id="no-publication")]
    except Exception as err:  # one broken panel must not leave the page blank
        logging.getLogger(__name__).exception("page %s failed", page.path)
        body = [html.P(f"This page could not be drawn: {err}", id="page-error")]
    return [html.H2(page.title, id="page-title"), *body]


def create_app(source: data.Source) -> Dash:
    app = Dash(__name__, title="uba dashboard", update_title=None)
    app.index_string = app.index_string.replace("</head>", f"<style>{STYLE}</style></head>")
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Nav([dcc.Link(p.title, href=p.path) for p in PAGES], className="nav"),
            html.Main(id="page"),
        ]
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def _render(pathname):
        return render_page(source, pathname)

    docs_dir = Path(source.data_docs_dir).resolve()

    @app.server.route(DATA_DOCS_ROUTE, defaults={"path": "index.html"})
    @app.server.route(DATA_DOCS_ROUTE + "<path:path>")
    def _data_docs(path: str):
        if not (docs_dir / path).is_file():
            abort(404)
        return send_from_directory(docs_dir, path)

    return app
