"""What BI readers and dbt users read about the tables Python writes.

The score tables (`ml_scores.*`) and the model registry (`ml.*`) are written by Python, not
dbt, so dbt knows them only as sources. Their column descriptions are declared here (the
columns every score table shares, and the registry's) and in each model's spec
(`ModelSpec.column_docs`: the score and label columns); from them come

- the dbt sources YAML `dbt_project/models/sources/_python__sources.yml` (lineage, `dbt docs`,
  exposures): `python -m python_models.bi_docs --write` regenerates it, and a test fails when
  the committed file differs from what the specs say;
- the warehouse comments on those tables in the published copy (python_models.publish).

dbt models get their comments from their own YAML through dbt's persist_docs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from python_models.common.spec import ModelSpec
from python_models.config import DBT_PROJECT_DIR
from python_models.models import MODELS

SOURCES_YAML = DBT_PROJECT_DIR / "models" / "sources" / "_python__sources.yml"

# Columns every score table has (python_models.common.spec.ModelSpec.score_columns).
SHARED_SCORE_COLUMNS: dict[str, str] = {
    "user_id": "The stitched pseudonymous person key (marts.dim_users.user_id); never a raw id.",
    "as_of_date": "The snapshot the score describes: its inputs use only data from before this "
    "date (a Monday of the feature grid).",
    "model_name": "The model that wrote the row.",
    "model_version": "The model version (ml.model_registry) that scored: the champion at "
    "scoring time.",
    "reasons": "Why, in plain words: up to three reasons, separated by '; '.",
    "holdout_group": "`treatment` or `holdout` (marts.dim_user_holdout_groups): holdout users "
    "are never acted on, so impact can be measured; null only for a user that table lacks.",
    "scored_at": "When the row was written (UTC).",
    "run_id": "The run that wrote it (the Dagster run id, or a random id for `uba score`).",
}

# The other tables Python writes (docs/CONTRACTS.md): `schema.table` -> (description, columns).
_MODEL_VERSION = "The model version (ml.model_registry)."
_ANALYZED_AT = "When the row was computed (UTC)."
_FAIRNESS_METRICS = {
    "selection_rate": "share selected (score >= the decision threshold: "
    "uba__fairness_decision_threshold, else the model version's own)",
    "false_positive_rate": "false positive rate",
    "false_negative_rate": "false negative rate",
    "mean_score": "mean score",
    "calibration": "calibration (observed rate / mean score)",
    "auc": "ROC AUC",
}
PYTHON_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "ml.model_registry": (
        "One row per trained model version: its data window, features, parameters, metrics "
        "and status (python_models.common.registry).",
        {
            "model_name": "The model (python_models/models.py).",
            "model_version": "Version id: <data window end>-<hash>.",
            "trained_at": "When it was trained (UTC).",
            "data_window_start": "First snapshot date of the training data.",
            "data_window_end": "Last snapshot date of the training data.",
            "feature_list_hash": "Hash of the feature list, to compare versions' inputs.",
            "features": "The features it reads (JSON list).",
            "params": "Its hyperparameters (JSON object).",
            "metrics": "Its holdout metrics, and its baselines' (JSON object).",
            "artifact_path": "Where its files are, under the models directory.",
            "artifact_sha256": "Checksum of its artifact (checked before scoring).",
            "status": "`champion` (scores), `challenger`, `rejected` (did not beat its "
            "baselines) or `retired` (a former champion).",
            "promoted_at": "When it became champion (UTC); null if never.",
            "run_id": "The run that trained it.",
        },
    ),
    "ml.model_evaluations": (
        "One row per model version, variant (the model or a baseline), split and metric: the "
        "evaluation behind each promotion decision.",
        {
            "model_name": "The model.",
            "model_version": "The version evaluated.",
            "variant": "The model's own variant name or the baseline compared with it.",
            "split": "The data split (`holdout`, `backtest`...).",
            "metric": "Metric name (roc_auc, spearman, silhouette...).",
            "value": "Metric value.",
            "evaluated_at": "When it was evaluated (UTC).",
            "run_id": "The run that evaluated it.",
        },
    ),
    "ml.scoring_runs": (
        "One row per model and scoring run: what was scored, when, from which inputs.",
        {
            "model_name": "The model.",
            "run_id": "The scoring run.",
            "model_version": "The champion that scored.",
            "scored_at": "When (UTC).",
            "as_of_date": "The snapshot scored.",
            "rows": "Rows written to the score table.",
            "input_fingerprint": "Content hash of the scored inputs (same inputs, same hash).",
        },
    ),
    "ml.drift_measurements": (
        "One row per model, scoring run and feature (`score` = prediction drift): PSI of the "
        "scored inputs against the champion's training window.",
        {
            "model_name": "The model.",
            "model_version": "The champion whose training window is the reference.",
            "run_id": "The scoring run measured.",
            "feature": "The feature, or `score` for the predictions.",
            "psi": "Population stability index (< 0.1 stable, 0.1-0.25 moderate, > 0.25 "
            "significant; UBA_DRIFT_PSI_THRESHOLD triggers retraining).",
            "is_compared": "False for features that grow with calendar time (not judged).",
            "note": "Why a feature was not compared, if it was not.",
            "reference_rows": "Rows in the reference sample.",
            "current_rows": "Rows scored.",
            "reference_fingerprint": "Content hash of the reference sample.",
            "current_fingerprint": "Content hash of the scored inputs.",
            "measured_at": "When (UTC).",
        },
    ),
    "ml.realized_performance": (
        "One row per model version, snapshot (null = all) and metric: how its scores did once "
        "the outcomes matured.",
        {
            "model_name": "The model.",
            "model_version": _MODEL_VERSION,
            "as_of_date": "The scored snapshot; null = every matured snapshot of the version.",
            "metric": "roc_auc, brier, mean_predicted, observed_rate, calibration_ratio (churn); "
            "mae, rmse, mean_predicted, mean_actual, bias (LTV).",
            "value": "Metric value.",
            "n_users": "Users with a matured outcome behind it.",
            "computed_at": "When (UTC).",
        },
    ),
    "ml.churn_eligibility": (
        "One row per matured snapshot of the newest churn training: who was in the population "
        "and which split it went to.",
        {
            "as_of_date": "The snapshot.",
            "split": "`fit`, `calibration`, `holdout` or `unused`.",
            "users_in_population": "Users still here (an event in the active window).",
            "positives": "Of them, users who churned.",
            "negatives": "Of them, users who stayed.",
            "users_inactive": "Users left out: no event in the active window.",
            "active_window_days": "The active window, in days.",
        },
    ),
    "ml.model_fairness": (
        "One row per model version, evaluation, attribute and group: outcome, score and error "
        "rates against the whole population, with disparity ratios and flags (docs/impact.md).",
        {
            "model_name": "The model.",
            "model_version": _MODEL_VERSION,
            "evaluated_on": "`training_holdout` (at training) or `matured_scores`.",
            "attribute": "The attribute compared (country, device, acquisition_channel...), or "
            "`overall`.",
            "group_value": "The group; `(unknown)` for nulls.",
            "n_users": "Users in the group.",
            "n_positive": "Of them, with a positive outcome.",
            "outcome_rate": "Share with a positive outcome.",
            "score_p10": "10th percentile of the score.",
            "score_p50": "Median score.",
            "score_p90": "90th percentile of the score.",
            **{metric: f"The group's {text}." for metric, text in _FAIRNESS_METRICS.items()},
            **{
                f"{metric}_ratio": f"Disparity: the group's {text} / the population's."
                for metric, text in _FAIRNESS_METRICS.items()
            },
            **{
                f"{metric}_p_value": f"p-value of the group against the rest on {text}."
                for metric, text in _FAIRNESS_METRICS.items()
            },
            "flagged_metrics": "Metrics on which the group is flagged (four-fifths rule, "
            "significant after Holm, large enough).",
            "is_flagged": "True when any metric is flagged.",
            "settings": "The settings the report used (JSON).",
            "recorded_at": "When (UTC).",
            "run_id": "The run that recorded it.",
        },
    ),
    "ml_scores.churn_lapsed_users": (
        "One row per user of the newest feature snapshot not scored for churn: inactive or "
        "already lapsed.",
        {
            "user_id": SHARED_SCORE_COLUMNS["user_id"],
            "as_of_date": "The snapshot.",
            "activity_status": "`inactive` (no event in the active window) or `lapsed` (none "
            "for longer than the churn horizon).",
            "days_since_last_event": "Days from the user's last event to the snapshot.",
            "last_active_date": "Day of the user's last event.",
            "active_window_days": "The active window, in days.",
            "churn_horizon_days": "The churn horizon, in days.",
        },
    ),
    "ml_scores.value_at_risk": (
        "One row per churn-scored user, ranked by value at risk: churn probability x expected "
        "revenue over the LTV horizon.",
        {
            "rank": "1 = most value at risk.",
            "user_id": SHARED_SCORE_COLUMNS["user_id"],
            "as_of_date": "The churn snapshot.",
            "churn_probability": "The churn score.",
            "expected_revenue_usd": "Expected revenue (USD) over the LTV horizon; 0 without a "
            "purchase.",
            "value_at_risk_usd": "churn_probability x expected_revenue_usd.",
            "p_alive": "Probability the customer is still active (LTV model).",
            "value_horizon_days": "The LTV horizon, in days.",
            "value_as_of_date": "The LTV forecast's first day.",
            "reasons": SHARED_SCORE_COLUMNS["reasons"],
            "holdout_group": SHARED_SCORE_COLUMNS["holdout_group"],
            "churn_model_version": "The churn model version.",
            "value_model_version": "The LTV model version.",
        },
    ),
    "impact.experiment_results": (
        "One row per experiment, metric and variant other than control (docs/impact.md).",
        {
            "experiment_key": "The experiment.",
            "metric_name": "The metric (uba__experiment_metrics).",
            "metric_kind": "`rate` or `mean`.",
            "control_variant": "The control.",
            "variant": "The variant compared with it.",
            "n_control": "Users in control.",
            "n_variant": "Users in the variant.",
            "mean_control": "Rate or mean in control.",
            "mean_variant": "Rate or mean in the variant.",
            "difference": "variant - control.",
            "relative_difference": "difference / control mean.",
            "ci_low": "Interval, low end.",
            "ci_high": "Interval, high end.",
            "p_value": "Two-sided p-value.",
            "is_significant": "p_value < uba__impact_alpha.",
            "minimum_detectable_effect": "Smallest difference this sample detects with the "
            "configured power.",
            "cuped_difference": "Variance-reduced difference (CUPED).",
            "cuped_ci_low": "CUPED interval, low end.",
            "cuped_ci_high": "CUPED interval, high end.",
            "cuped_p_value": "CUPED p-value.",
            "cuped_variance_reduction": "1 - (CUPED standard error / plain standard error)^2.",
            "n_immature_excluded": "Users left out: their window has not ended.",
            "n_multi_variant_excluded": "Users left out: exposed to several variants.",
            "is_sample_ratio_mismatch": "True when assignment looks broken: do not trust.",
            "confidence_level": "1 - uba__impact_alpha.",
            "power": "uba__impact_power.",
            "note": "Caveats, in words.",
            "analyzed_at": _ANALYZED_AT,
        },
    ),
    "impact.experiment_sample_ratio": (
        "One row per experiment and variant: observed against planned split.",
        {
            "experiment_key": "The experiment.",
            "variant": "The variant.",
            "n_users": "Users assigned.",
            "planned_share": "Planned share (uba__experiments, else equal).",
            "observed_share": "Observed share.",
            "chi_square": "Chi-square statistic against the plan.",
            "p_value": "Its p-value.",
            "is_sample_ratio_mismatch": "p_value < uba__srm_alpha, or a variant outside the plan.",
            "n_multi_variant_excluded": "Users left out: exposed to several variants.",
            "note": "Caveats, in words.",
            "analyzed_at": _ANALYZED_AT,
        },
    ),
    "impact.score_lift_by_decile": (
        "One row per model version and score decile (0 = everyone): treatment against holdout "
        "outcomes.",
        {
            "model_name": "The model.",
            "model_version": _MODEL_VERSION,
            "decile": "1 = lowest scores ... 10 = highest; 0 = all users.",
            "n_users": "Users in the decile.",
            "n_treatment": "Of them, in treatment.",
            "n_holdout": "Of them, held out.",
            "score_min": "Lowest score in the decile.",
            "score_max": "Highest score in the decile.",
            "outcome_kind": "`rate` (yes/no label) or `mean`.",
            "outcome_treatment": "Outcome in treatment.",
            "outcome_holdout": "Outcome in the holdout.",
            "difference": "treatment - holdout.",
            "ci_low": "Interval, low end.",
            "ci_high": "Interval, high end.",
            "p_value": "Two-sided p-value.",
            "confidence_level": "1 - uba__impact_alpha.",
            "note": "Caveats, in words.",
            "analyzed_at": _ANALYZED_AT,
        },
    ),
}


def _bounds(spec: ModelSpec) -> str:
    low, high = spec.score_bounds
    if low is None and high is None:
        return ""
    low_text = "-inf" if low is None else f"{low:g}"
    high_text = "inf" if high is None else f"{high:g}"
    return f" Range [{low_text}, {high_text}]."


def score_column_docs(spec: ModelSpec) -> dict[str, str]:
    """Column -> description for `spec`'s score table, in the table's column order; a column
    without one is left out (see `undocumented_score_columns`)."""
    docs = {**SHARED_SCORE_COLUMNS, **spec.column_docs}
    if "score" in docs:
        docs["score"] = docs["score"] + _bounds(spec)
    return {column: docs[column] for column in spec.score_columns if column in docs}


def undocumented_score_columns(models: tuple[ModelSpec, ...] = MODELS) -> list[str]:
    """`table.column` of every score column nobody described."""
    return [
        f"{spec.score_table}.{column}"
        for spec in models
        for column in spec.score_columns
        if column not in score_column_docs(spec)
    ]


def table_description(spec: ModelSpec) -> str:
    grain = " and ".join(", ".join(spec.key_columns).rsplit(", ", 1))
    return (
        f"Scores of the {spec.name} model: {spec.summary}. Reasons: {spec.reasons}. Replaced "
        f"whole at each scoring, with the champion version (one row per {grain})."
    )


def history_description(spec: ModelSpec) -> str:
    key = ", ".join(("run_id", *spec.key_columns))
    return (
        f"Every scoring run of the {spec.name} model, appended (one row per {key}); "
        f"{spec.score_table} is the newest run."
    )


def comment_docs(models: tuple[ModelSpec, ...] = MODELS) -> dict[str, tuple[str, dict[str, str]]]:
    """`schema.table` -> (table description, column descriptions) for every table declared here:
    the score tables, their histories and the other tables Python writes."""
    docs = {}
    for spec in models:
        columns = score_column_docs(spec)
        docs[spec.score_table] = (table_description(spec), columns)
        docs[f"{spec.score_table}_history"] = (history_description(spec), columns)
    for name, (description, columns) in PYTHON_TABLES.items():
        docs[name] = (description, dict(columns))
    return docs


# What reads the published copy, for dbt's lineage (`dbt docs`, `dbt ls --select +exposure:...`):
# the dbt models each one reads; the score tables they read follow from the model specs.
DASHBOARD_MODELS = (
    "rpt_active_users_daily",
    "rpt_retention_weekly",
    "rpt_funnel_conversion_daily",
    "rpt_funnel_incidents",
    "fct_user_activity_daily",
    "fct_funnel_attempts",
    "ftr_user_features",
)
SERVICE_MODELS = ("fct_events", "ftr_user_event_sequences")
DASHBOARD_PYTHON_TABLES = (
    ("ml_scores", "value_at_risk"),
    ("ml", "model_registry"),
    ("ml", "drift_measurements"),
)
OWNER = {"name": "uba maintainers"}


def exposures(models: tuple[ModelSpec, ...] = MODELS) -> list[dict]:
    """The dashboard and the scoring service as dbt exposures over the published tables."""
    every_score = [f"source('ml_scores', '{spec.table_name}')" for spec in models]
    user_scores = [
        f"source('ml_scores', '{spec.table_name}')"
        for spec in models
        if "user_id" in spec.key_columns
    ]
    health = [f"source('{schema}', '{name}')" for schema, name in DASHBOARD_PYTHON_TABLES]
    return [
        {
            "name": "uba_dashboard",
            "label": "uba dashboard",
            "type": "dashboard",
            "maturity": "medium",
            "url": "http://127.0.0.1:8050/",
            "description": "`uba dashboard` (python_models/dashboard): KPIs, retention, funnels, "
            "churn risk and value at risk, segments, anomalies, model health and Data Docs, read "
            "from the published copy.",
            "depends_on": [
                *(f"ref('{m}')" for m in DASHBOARD_MODELS),
                *every_score,
                *health,
            ],
            "owner": dict(OWNER),
        },
        {
            "name": "uba_scoring_service",
            "label": "uba serve (scoring service)",
            "type": "application",
            "maturity": "medium",
            "description": "`uba serve` (python_models/service): a user's scores over HTTP and "
            "trigger rules, from the published copy; posted events are scored with the feature "
            "mart's SQL.",
            "depends_on": [*(f"ref('{m}')" for m in SERVICE_MODELS), *user_scores],
            "owner": dict(OWNER),
        },
    ]


def _columns(columns: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "description": text} for name, text in columns.items()]


SOURCE_SCHEMAS = {
    "ml_scores": "Tables written by the Python models (python_models/<model>/spec.py): one "
    "score table per model (replaced whole at each scoring), its history (every run), and the "
    "tables built from the scores (python_models.models.DERIVED_TABLES).",
    "ml": "The model registry, scoring runs, drift, realized performance and fairness reports.",
    "impact": "Experiment results and score lift (python_models.impact, docs/impact.md).",
}


def sources_yaml(models: tuple[ModelSpec, ...] = MODELS) -> str:
    """The dbt sources YAML for the Python-written tables, with the exposures that read them."""
    specs = {spec.score_table: spec for spec in models}
    sources = []
    for schema, description in SOURCE_SCHEMAS.items():
        tables = []
        for name, (text, columns) in comment_docs(models).items():
            if name.split(".")[0] != schema:
                continue
            table = {"name": name.split(".")[1], "description": text}
            if name in specs:
                table["meta"] = {"model": specs[name].name, "written_by": "python_models.lifecycle"}
            tables.append({**table, "columns": _columns(columns)})
        sources.append({"name": schema, "description": description, "schema": schema,
                        "tables": tables})  # fmt: skip
    header = (
        "# Generated by `python -m python_models.bi_docs --write` from the model specs\n"
        "# (python_models/<model>/spec.py) and python_models/bi_docs.py: edit those, not this.\n"
        "# tests/unit/test_bi_docs.py fails when this file is out of date.\n"
    )
    body = yaml.safe_dump(
        {"version": 2, "sources": sources, "exposures": exposures(models)},
        sort_keys=False,
        width=100,
        allow_unicode=True,
    )
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check the generated sources YAML.")
    parser.add_argument("--write", action="store_true", help=f"write {SOURCES_YAML}")
    args = parser.parse_args(argv)
    wanted = sources_yaml()
    path = Path(SOURCES_YAML)
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted)
        print(f"wrote {path}")
        return 0
    if not path.exists() or path.read_text() != wanted:
        print(f"{path} is stale: run python -m python_models.bi_docs --write", file=sys.stderr)
        return 1
    print(f"{path} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
