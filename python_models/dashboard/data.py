"""What the dashboard shows, read from the published copy: one function per panel, each a
plain query returning a pandas frame (Plotly and Dash tables take pandas).

Every page opens the file read-only for the duration of one render, so a new publication
(swapped in with a rename by python_models.publish) shows at the next page load and the
dashboard never holds a lock the pipeline waits for. Panels over tables that another step may
not have written yet (value at risk, drift) return None when the table is absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from expectations.data_docs import results_dir

# Rows a list shows; the full tables are in the published copy.
LIST_ROWS = 50
# Recent activity the overview and funnel pages show.
RECENT_DAYS = 90
RETENTION_COHORTS = 16
RETENTION_PERIODS = 13
# Registry metrics that count or configure rather than measure quality: not plotted.
NOT_QUALITY_METRICS = frozenset(
    {"n", "best_iteration", "classes", "holdout_events", "horizon_days", "horizon_hours",
     "backtest_origins", "user_days", "alerts", "active_users", "k", "threshold", "base_rate",
     "mean_actual", "mean_predicted"}
)  # fmt: skip


class NoPublication(RuntimeError):
    """There is no published copy to read yet."""


@dataclass(frozen=True)
class Source:
    """Where the dashboard reads: the published DuckDB file and the Data Docs folder."""

    published_path: Path
    data_docs_dir: Path

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.published_path.exists():
            raise NoPublication(
                f"no published warehouse at {self.published_path} yet: run `uba demo` (or the "
                "Dagster job full_pipeline) to publish one"
            )
        con = duckdb.connect(str(self.published_path), read_only=True)
        try:
            yield con
        finally:
            con.close()


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row[0])


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def active_users(con: duckdb.DuckDBPyConnection, days: int = RECENT_DAYS) -> pd.DataFrame:
    """DAU, WAU, MAU and stickiness for the last `days` days (reports.rpt_active_users_daily)."""
    return _frame(
        con,
        """
        select activity_date, daily_active_users, weekly_active_users, monthly_active_users,
            stickiness_dau_mau
        from reports.rpt_active_users_daily
        where activity_date > (select max(activity_date) from reports.rpt_active_users_daily)
            - cast(? as integer)
        order by activity_date
        """,
        [days],
    )


def kpis(con: duckdb.DuckDBPyConnection) -> dict[str, float | None]:
    """The headline numbers: the latest DAU / WAU / MAU, revenue and purchases of the last 28
    days, the purchase funnel's conversion over them, the churn risk share, value at risk."""
    out: dict[str, float | None] = {}
    row = con.execute(
        """
        select activity_date, daily_active_users, weekly_active_users, monthly_active_users
        from reports.rpt_active_users_daily order by activity_date desc limit 1
        """
    ).fetchone()
    out["as_of"] = row[0] if row else None
    out["dau"], out["wau"], out["mau"] = (row[1], row[2], row[3]) if row else (None,) * 3
    revenue = con.execute(
        """
        select sum(revenue_usd), sum(count_purchases) from marts.fct_user_activity_daily
        where activity_date > (select max(activity_date) from marts.fct_user_activity_daily) - 28
        """
    ).fetchone()
    out["revenue_28d"], out["purchases_28d"] = revenue
    conversion = con.execute(
        """
        select avg(case when is_converted then 1.0 else 0.0 end)
        from marts.fct_funnel_attempts
        where funnel_name = 'purchase' and funnel_level = 'user'
            and started_date > (select max(started_date) from marts.fct_funnel_attempts) - 28
        """
    ).fetchone()
    out["purchase_conversion_28d"] = conversion[0]
    out["churn_risk_share"] = None
    if has_table(con, "ml_scores.churn_scores"):
        out["churn_risk_share"] = con.execute(
            "select avg(case when predicted_label then 1.0 else 0.0 end) "
            "from ml_scores.churn_scores"
        ).fetchone()[0]
    out["value_at_risk_usd"] = None
    at_risk = _value_at_risk_sql(con)
    if at_risk is not None:
        out["value_at_risk_usd"] = con.execute(
            f"select sum(value_at_risk_usd) from ({at_risk})"
        ).fetchone()[0]
    return out


def weekly_retention(
    con: duckdb.DuckDBPyConnection,
    cohorts: int = RETENTION_COHORTS,
    periods: int = RETENTION_PERIODS,
) -> pd.DataFrame:
    """The newest `cohorts` weekly cohorts' first `periods` weeks (reports.rpt_retention_weekly)."""
    return _frame(
        con,
        """
        with recent as (
            select distinct cohort_week from reports.rpt_retention_weekly
            order by cohort_week desc limit ?
        )
        select cohort_week, period_week, cohort_users, retention_exact
        from reports.rpt_retention_weekly
        where cohort_week in (select cohort_week from recent) and period_week < ?
        order by cohort_week, period_week
        """,
        [cohorts, periods],
    )


def retention_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Cohort (rows, newest first) x week since acquisition (columns) retention; NaN where the
    week is not observed yet."""
    if frame.empty:
        return pd.DataFrame()
    matrix = frame.pivot(index="cohort_week", columns="period_week", values="retention_exact")
    return matrix.sort_index(ascending=False)


def funnel_daily(con: duckdb.DuckDBPyConnection, days: int = RECENT_DAYS) -> pd.DataFrame:
    """Per day and funnel: attempts started and the share that converted (last step, user
    level, all users) from reports.rpt_funnel_conversion_daily."""
    return _frame(
        con,
        """
        with last_steps as (
            select funnel_name, max(step_number) as step_number
            from reports.rpt_funnel_conversion_daily group by 1
        )
        select report.period_start, report.funnel_name, report.attempts_started,
            report.attempts_converted, report.conversion_from_first_step, report.is_complete
        from reports.rpt_funnel_conversion_daily as report
        join last_steps using (funnel_name, step_number)
        where report.funnel_level = 'user' and report.breakdown = 'all'
            and report.period_start > (
                select max(period_start) from reports.rpt_funnel_conversion_daily
            ) - cast(? as integer)
        order by report.funnel_name, report.period_start
        """,
        [days],
    )


def funnel_incidents(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_table(con, "reports.rpt_funnel_incidents"):
        return None
    return _frame(con, "select * from reports.rpt_funnel_incidents order by 1 desc limit 50")


def churn_risk(con: duckdb.DuckDBPyConnection, limit: int = LIST_ROWS) -> pd.DataFrame | None:
    """The users most at risk of churning, with the model's reasons."""
    if not has_table(con, "ml_scores.churn_scores"):
        return None
    return _frame(
        con,
        """
        select user_id, as_of_date, round(score, 3) as churn_probability, predicted_label,
            reasons, model_version
        from ml_scores.churn_scores order by score desc, user_id limit ?
        """,
        [limit],
    )


def churn_scores_histogram(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_table(con, "ml_scores.churn_scores"):
        return None
    return _frame(
        con,
        """
        select least(floor(score * 10), 9) / 10 as score_bin, count(*) as users
        from ml_scores.churn_scores group by 1 order by 1
        """,
    )


def _value_at_risk_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """Value at risk per user (ml_scores.value_at_risk: churn probability x expected revenue,
    python_models.models.DERIVED_TABLES); None before a run has written it."""
    if not has_table(con, "ml_scores.value_at_risk"):
        return None
    return (
        "select user_id, churn_probability, expected_revenue_usd, value_at_risk_usd, reasons "
        "from ml_scores.value_at_risk"
    )


def value_at_risk(con: duckdb.DuckDBPyConnection, limit: int = LIST_ROWS) -> pd.DataFrame | None:
    """The users with the most expected revenue at risk of churn (see _value_at_risk_sql)."""
    at_risk = _value_at_risk_sql(con)
    if at_risk is None:
        return None
    return _frame(
        con,
        f"""
        select user_id, round(churn_probability, 3) as churn_probability,
            round(expected_revenue_usd, 2) as expected_revenue_usd,
            round(value_at_risk_usd, 2) as value_at_risk_usd, reasons
        from ({at_risk}) order by value_at_risk_usd desc, user_id limit ?
        """,
        [limit],
    )


def segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Users per segment with the segment's reasons (its distinguishing features)."""
    if not has_table(con, "ml_scores.user_segments"):
        return None
    return _frame(
        con,
        """
        select segment_id, segment_name, count(*) as users, any_value(reasons) as profile
        from ml_scores.user_segments group by 1, 2 order by 1
        """,
    )


def segment_profiles(con: duckdb.DuckDBPyConnection, features: list[str]) -> pd.DataFrame | None:
    """Mean of each feature per segment (users' features at their scored snapshot)."""
    if not has_table(con, "ml_scores.user_segments") or not features:
        return None
    available = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'features' and table_name = 'ftr_user_features'"
        ).fetchall()
    }
    chosen = [f for f in features if f in available]
    if not chosen:
        return None
    means = ", ".join(f'avg(f."{c}") as "{c}"' for c in chosen)
    return _frame(
        con,
        f"""
        select s.segment_name, {means}
        from ml_scores.user_segments as s
        join features.ftr_user_features as f using (user_id, as_of_date)
        group by 1 order by 1
        """,
    )


def anomaly_alerts(con: duckdb.DuckDBPyConnection, limit: int = LIST_ROWS) -> pd.DataFrame | None:
    if not has_table(con, "ml_scores.anomaly_alerts"):
        return None
    return _frame(
        con,
        """
        select user_id, as_of_date as activity_date, round(score, 2) as score, reasons
        from ml_scores.anomaly_alerts order by score desc, user_id limit ?
        """,
        [limit],
    )


def anomaly_alerts_daily(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_table(con, "ml_scores.anomaly_alerts"):
        return None
    return _frame(
        con,
        "select as_of_date as activity_date, count(*) as alerts from ml_scores.anomaly_alerts "
        "group by 1 order by 1",
    )


def model_versions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Every registered version: model, version, trained_at, status and its holdout metrics."""
    if not has_table(con, "ml.model_registry"):
        return None
    frame = _frame(
        con,
        """
        select model_name, model_version, trained_at, status, metrics
        from ml.model_registry order by model_name, trained_at, model_version
        """,
    )
    frame["metrics"] = frame["metrics"].map(_short_metrics)
    return frame


def _short_metrics(text: str | None) -> str:
    """The registry's metrics JSON as `name=value` pairs of its top-level numbers."""
    try:
        metrics = json.loads(text or "{}")
    except json.JSONDecodeError:
        return text or ""
    pairs = [f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, int | float)]
    return ", ".join(pairs[:6])


def model_metrics(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Each version's own holdout metrics (the registry's top-level numbers, baselines left
    out), in training order: one row per model, version and metric."""
    if not has_table(con, "ml.model_registry"):
        return None
    rows = []
    registry = con.execute(
        "select model_name, model_version, trained_at, status, metrics from ml.model_registry "
        "order by model_name, trained_at, model_version"
    ).fetchall()
    for model_name, version, trained_at, status, text in registry:
        try:
            metrics = json.loads(text or "{}")
        except json.JSONDecodeError:
            continue
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if metric.startswith("baseline_") or metric in NOT_QUALITY_METRICS:
                continue
            rows.append((model_name, version, trained_at, status, metric, float(value)))
    return pd.DataFrame(
        rows,
        columns=["model_name", "model_version", "trained_at", "status", "metric", "value"],
    )


def drift(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Prediction and largest feature drift (PSI) per model and scoring run
    (ml.drift_measurements), when that table exists."""
    if not has_table(con, "ml.drift_measurements"):
        return None
    return _frame(
        con,
        """
        select model_name, run_id, min(measured_at) as measured_at,
            max(case when feature = 'score' then psi end) as prediction_psi,
            max(case when feature <> 'score' and coalesce(is_compared, true) then psi end)
                as max_feature_psi
        from ml.drift_measurements group by 1, 2 order by 1, 3
        """,
    )


def current_drift(published_path: Path) -> tuple[pd.DataFrame | None, float | None, str]:
    """Drift now, measured on the published copy against each champion's training window
    (python_models.common.drift): (frame, retrain threshold, note). That reads the champions'
    artifacts, so it needs the pipeline's settings; without them the frame is None and the
    note says why."""
    from python_models.common.artifacts import ArtifactIntegrityError
    from python_models.common.drift import measure_drift
    from python_models.config import SettingsError, get_settings
    from python_models.models import MODELS

    try:
        threshold = get_settings().drift_psi_threshold
        summaries = [measure_drift(published_path, spec) for spec in MODELS]
    except SettingsError as err:
        return None, None, f"Current drift needs the pipeline's settings: {err}"
    except (ArtifactIntegrityError, OSError, ValueError, duckdb.Error) as err:
        return None, None, f"Current drift could not be measured: {err}"
    frame = pd.DataFrame(
        [
            {
                "model_name": s.model_name,
                "prediction_psi": round(s.prediction_psi, 3),
                "max_feature_psi": round(s.max_feature_psi, 3),
                "worst_features": ", ".join(
                    f"{name} ({psi:.2f})" for name, psi in list(s.worst_features.items())[:3]
                ),
            }
            for s in summaries
        ]
    )
    return frame, threshold, ""


def published_manifest(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_table(con, "docs.published_tables"):
        return None
    return _frame(
        con,
        "select table_schema, table_name, row_count, column_count, description "
        "from docs.published_tables order by 1, 2",
    )


@dataclass(frozen=True)
class DataDocsRun:
    run_name: str
    suite: str
    run_time: str
    page: str  # path under the Data Docs folder
    success: bool | None
    evaluated_expectations: int | None


def data_docs_runs(docs_dir: Path) -> list[DataDocsRun]:
    """Every validation page in the Data Docs site, newest first, with its outcome (from the
    results GX keeps beside the site: expectations.validation.results_dir)."""
    pages = sorted(Path(docs_dir).glob("validations/*/*/*/*.html"))
    runs = []
    for page in pages:
        suite, run_name, run_time = page.parts[-4:-1]
        result = results_dir(docs_dir) / suite / run_name / run_time / (page.stem + ".json")
        success, evaluated = None, None
        if result.exists():
            try:
                payload = json.loads(result.read_text())
                success = bool(payload.get("success"))
                evaluated = payload.get("statistics", {}).get("evaluated_expectations")
            except (json.JSONDecodeError, OSError):
                pass
        runs.append(
            DataDocsRun(
                run_name=run_name,
                suite=suite,
                run_time=run_time,
                page=str(page.relative_to(docs_dir)),
                success=success,
                evaluated_expectations=evaluated,
            )
        )
    return sorted(runs, key=lambda r: (r.run_time, r.suite), reverse=True)
