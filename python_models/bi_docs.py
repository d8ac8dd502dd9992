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
    "scored_at": "When the row was written (UTC).",
    "run_id": "The run that wrote it (the Dagster run id, or a random id for `uba score`).",
}

# The registry tables (python_models.common.registry), read by the dashboard's model health.
REGISTRY_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "model_registry": (
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
    "model_evaluations": (
        "One row per model version, variant (the model or a baseline), split and metric: the "
        "evaluation behind each promotion decision.",
        {
            "model_name": "The model.",
            "model_version": "The version evaluated.",
            "variant": "`model`, or the baseline compared with it.",
            "split": "The data split (`validation`, `holdout`...).",
            "metric": "Metric name (roc_auc, spearman, silhouette...).",
            "value": "Metric value.",
            "evaluated_at": "When it was evaluated (UTC).",
            "run_id": "The run that evaluated it.",
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


def comment_docs(models: tuple[ModelSpec, ...] = MODELS) -> dict[str, tuple[str, dict[str, str]]]:
    """`schema.table` -> (table description, column descriptions) for every table declared here."""
    docs = {spec.score_table: (table_description(spec), score_column_docs(spec)) for spec in models}
    for name, (description, columns) in REGISTRY_TABLES.items():
        docs[f"ml.{name}"] = (description, dict(columns))
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
OWNER = {"name": "uba maintainers"}


def exposures(models: tuple[ModelSpec, ...] = MODELS) -> list[dict]:
    """The dashboard and the scoring service as dbt exposures over the published tables."""
    every_score = [f"source('ml_scores', '{spec.table_name}')" for spec in models]
    user_scores = [
        f"source('ml_scores', '{spec.table_name}')"
        for spec in models
        if "user_id" in spec.key_columns
    ]
    registry = [f"source('ml', '{name}')" for name in REGISTRY_TABLES]
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
                *registry,
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


def sources_yaml(models: tuple[ModelSpec, ...] = MODELS) -> str:
    """The dbt sources YAML for the Python-written tables, with the exposures that read them."""
    sources = [
        {
            "name": "ml_scores",
            "description": "Score tables written by the Python models (python_models/<model>/"
            "spec.py), one per model; a model's scores replace its table whole.",
            "schema": "ml_scores",
            "tables": [
                {
                    "name": spec.table_name,
                    "description": table_description(spec),
                    "meta": {"model": spec.name, "written_by": "python_models.lifecycle"},
                    "columns": _columns(score_column_docs(spec)),
                }
                for spec in models
            ],
        },
        {
            "name": "ml",
            "description": "The model registry (python_models.common.registry).",
            "schema": "ml",
            "tables": [
                {"name": name, "description": description, "columns": _columns(columns)}
                for name, (description, columns) in REGISTRY_TABLES.items()
            ],
        },
    ]
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
