"""Fairness report per model version: how a model's scores and errors differ between groups of
users (country, device, acquisition channel, and any attribute declared in configuration).

For every attribute and group, and for the whole population (attribute `overall`): size,
outcome rate, score distribution (mean, p10, p50, p90), calibration (observed outcome rate /
mean score), ROC AUC, selection rate (score >= decision threshold), false positive and false
negative rates, and each metric's disparity ratio = group value / population value.

A group is flagged on a metric when (1) it has at least `min_group_size` users, (2) the ratio
falls outside [threshold, 1 / threshold] (the four-fifths rule at 0.8), and (3) the group
differs significantly from the rest of the population after a Holm correction over every test
in the report (AUC, which has no test here, needs (1) and (2) and 10 users of each class).
(3) keeps small, noisy groups from being flagged by chance.

`fairness_report` is pure; `record_fairness_report` stores a report with its model version in
`ml.model_fairness` (the registry calls it at training; the Dagster asset on matured scores).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import test_proportions_2indep

from python_models.impact.config import ImpactConfig, load_impact_config
from python_models.warehouse import as_warehouse

FAIRNESS_TABLE = "ml.model_fairness"
OVERALL = "overall"
UNKNOWN_GROUP = "(unknown)"
MIN_CLASS_FOR_AUC = 10
# metric -> (column in the report, how it is tested against the rest of the population)
DISPARITY_METRICS = {
    "selection_rate": "proportion_all",
    "false_positive_rate": "proportion_negatives",
    "false_negative_rate": "proportion_positives",
    "mean_score": "welch_score",
    "calibration": "welch_residual",
    "auc": None,
}

REPORT_SCHEMA = {
    "attribute": pl.String,
    "group_value": pl.String,
    "n_users": pl.Int64,
    "n_positive": pl.Int64,
    "outcome_rate": pl.Float64,
    "mean_score": pl.Float64,
    "score_p10": pl.Float64,
    "score_p50": pl.Float64,
    "score_p90": pl.Float64,
    "calibration": pl.Float64,
    "auc": pl.Float64,
    "selection_rate": pl.Float64,
    "false_positive_rate": pl.Float64,
    "false_negative_rate": pl.Float64,
    **{f"{m}_ratio": pl.Float64 for m in DISPARITY_METRICS},
    **{f"{m}_p_value": pl.Float64 for m in DISPARITY_METRICS if DISPARITY_METRICS[m]},
    "flagged_metrics": pl.String,
    "is_flagged": pl.Boolean,
}


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def _group_metrics(score: np.ndarray, label: np.ndarray, threshold: float) -> dict:
    predicted = score >= threshold
    positives, negatives = label == 1, label == 0
    n_pos, n_neg = int(positives.sum()), int(negatives.sum())
    outcome_rate = _rate(n_pos, label.size)
    auc = float("nan")
    if n_pos and n_neg:
        auc = float(roc_auc_score(label, score))
    mean_score = float(score.mean()) if score.size else float("nan")
    p10, p50, p90 = np.quantile(score, [0.1, 0.5, 0.9]) if score.size else (np.nan,) * 3
    return {
        "n_users": int(label.size),
        "n_positive": n_pos,
        "outcome_rate": outcome_rate,
        "mean_score": mean_score,
        "score_p10": float(p10),
        "score_p50": float(p50),
        "score_p90": float(p90),
        "calibration": outcome_rate / mean_score if mean_score else float("nan"),
        "auc": auc,
        "selection_rate": _rate(int(predicted.sum()), label.size),
        "false_positive_rate": _rate(int((predicted & negatives).sum()), n_neg),
        "false_negative_rate": _rate(int((~predicted & positives).sum()), n_pos),
    }


def _proportion_p(in_group: np.ndarray, rest: np.ndarray) -> float:
    """Two-sided p-value that a 0/1 rate differs between the group and the rest."""
    if in_group.size < 2 or rest.size < 2:
        return float("nan")
    c1, c2 = int(in_group.sum()), int(rest.sum())
    if c1 + c2 in (0, in_group.size + rest.size):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        test = test_proportions_2indep(c1, in_group.size, c2, rest.size, method="score")
    return float(test.pvalue)


def _welch_p(in_group: np.ndarray, rest: np.ndarray) -> float:
    if in_group.size < 2 or rest.size < 2 or (np.var(in_group) == 0 and np.var(rest) == 0):
        return float("nan")
    return float(scipy_stats.ttest_ind(in_group, rest, equal_var=False).pvalue)


def _p_values(score, label, predicted, member) -> dict[str, float]:
    rest = ~member
    negatives, positives = label == 0, label == 1
    tests = {
        "proportion_all": lambda: _proportion_p(predicted[member], predicted[rest]),
        "proportion_negatives": lambda: _proportion_p(
            predicted[member & negatives], predicted[rest & negatives]
        ),
        "proportion_positives": lambda: _proportion_p(
            ~predicted[member & positives], ~predicted[rest & positives]
        ),
        "welch_score": lambda: _welch_p(score[member], score[rest]),
        "welch_residual": lambda: _welch_p(
            label[member] - score[member], label[rest] - score[rest]
        ),
    }
    return {m: tests[kind]() for m, kind in DISPARITY_METRICS.items() if kind}


def fairness_report(
    frame: pl.DataFrame,
    attributes: tuple[str, ...] | list[str],
    threshold: float = 0.8,
    min_group_size: int = 50,
    alpha: float = 0.05,
    decision_threshold: float = 0.5,
    score_column: str = "score",
    label_column: str = "label",
) -> pl.DataFrame:
    """One row per (attribute, group) plus the `overall` row (schema REPORT_SCHEMA).

    `frame`: one row per scored user with a matured binary outcome: `score_column` (a
    probability), `label_column` (boolean or 0/1) and one column per attribute (nulls become
    the group `(unknown)`)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"disparity threshold must be in (0, 1], got {threshold}")
    missing = [c for c in (score_column, label_column, *attributes) if c not in frame.columns]
    if missing:
        raise ValueError(f"fairness_report: frame lacks columns {missing}")
    frame = frame.filter(pl.col(label_column).is_not_null() & pl.col(score_column).is_not_null())
    score = frame[score_column].cast(pl.Float64).to_numpy()
    label = frame[label_column].cast(pl.Int8).to_numpy()
    if not np.isin(label, [0, 1]).all():
        raise ValueError(f"fairness_report: {label_column} must be boolean or 0/1")
    predicted = score >= decision_threshold
    overall = _group_metrics(score, label, decision_threshold)
    rows = [{"attribute": OVERALL, "group_value": "all", **overall}]
    p_values = []
    for attribute in attributes:
        values = frame[attribute].cast(pl.String).fill_null(UNKNOWN_GROUP).to_numpy()
        for value in sorted(set(values)):
            member = values == value
            metrics = _group_metrics(score[member], label[member], decision_threshold)
            tested = (
                _p_values(score, label, predicted, member) if member.sum() < len(member) else {}
            )
            row = {"attribute": attribute, "group_value": value, **metrics}
            for metric in DISPARITY_METRICS:
                base = overall[metric]
                row[f"{metric}_ratio"] = metrics[metric] / base if base else float("nan")
                if DISPARITY_METRICS[metric]:
                    row[f"{metric}_p_value"] = tested.get(metric, float("nan"))
                    p_values.append((len(rows), metric, row[f"{metric}_p_value"]))
            rows.append(row)

    # Holm over every finite p-value of the report: many groups x metrics are tested at once.
    finite = [(i, m, p) for i, m, p in p_values if np.isfinite(p)]
    adjusted = {}
    if finite:
        _, corrected, _, _ = multipletests([p for _, _, p in finite], alpha=alpha, method="holm")
        adjusted = {(i, m): q for (i, m, _), q in zip(finite, corrected, strict=True)}
    upper = 1.0 / threshold
    for i, row in enumerate(rows):
        flagged = []
        if row["attribute"] != OVERALL and row["n_users"] >= min_group_size:
            for metric, test in DISPARITY_METRICS.items():
                ratio = row[f"{metric}_ratio"]
                if not np.isfinite(ratio) or threshold <= ratio <= upper:
                    continue
                if test is None:
                    n_pos = row["n_positive"]
                    enough = min(n_pos, row["n_users"] - n_pos) >= MIN_CLASS_FOR_AUC
                    if enough:
                        flagged.append(metric)
                elif adjusted.get((i, metric), 1.0) < alpha:
                    flagged.append(metric)
        row["flagged_metrics"] = ",".join(flagged)
        row["is_flagged"] = bool(flagged)
    report = pl.DataFrame(rows, schema=REPORT_SCHEMA, orient="row")
    return report.with_columns(pl.col(pl.Float64).fill_nan(None))


def flagged_groups(report: pl.DataFrame) -> list[tuple[str, str, str]]:
    """(attribute, group_value, flagged_metrics) of every flagged row."""
    rows = report.filter(pl.col("is_flagged"))
    return list(rows.select("attribute", "group_value", "flagged_metrics").iter_rows())


def ensure_fairness_table(con: duckdb.DuckDBPyConnection) -> None:
    w = as_warehouse(con)
    t = w.types  # the engine's spelling (Spark has no varchar without a length)
    w.create_schema("ml")
    columns = ",\n".join(f"{name} {w.column_type(dtype)}" for name, dtype in REPORT_SCHEMA.items())
    w.execute(
        f"""
        create table if not exists {FAIRNESS_TABLE} (
            model_name {t.text} not null,
            model_version {t.text} not null,
            evaluated_on {t.text} not null,
            {columns},
            settings {t.text},
            recorded_at {t.timestamp} not null,
            run_id {t.text}
        )
        """
    )


def record_fairness_report(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    model_version: str,
    report: pl.DataFrame,
    evaluated_on: str,
    settings: dict | None = None,
    run_id: str | None = None,
) -> int:
    """Store `report` for (model_name, model_version, evaluated_on) in ml.model_fairness,
    replacing an earlier report of the same key in one transaction. `evaluated_on` says which
    data it was computed on (e.g. `training_holdout`, `matured_scores`). Returns rows written."""
    ensure_fairness_table(con)
    rows = report.select(list(REPORT_SCHEMA)).with_columns(
        pl.lit(model_name).alias("model_name"),
        pl.lit(model_version).alias("model_version"),
        pl.lit(evaluated_on).alias("evaluated_on"),
        pl.lit(json.dumps(settings or {}, sort_keys=True)).alias("settings"),
        pl.lit(datetime.now(UTC).replace(tzinfo=None)).cast(pl.Datetime("us")).alias("recorded_at"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
    )
    order = [
        "model_name",
        "model_version",
        "evaluated_on",
        *REPORT_SCHEMA,
        "settings",
        "recorded_at",
        "run_id",
    ]
    as_warehouse(con).replace_rows(
        FAIRNESS_TABLE,
        "model_name = ? and model_version = ? and evaluated_on = ?",
        [model_name, model_version, evaluated_on],
        rows.select(order),
    )
    return rows.height


def for_version(config: ImpactConfig, version_metrics: dict | None) -> ImpactConfig:
    """`config` with its decision threshold resolved for one model version: the configured
    one, else the version's own (a churn model learns its threshold), else 0.5."""
    if config.decision_threshold is not None:
        return config
    threshold = (version_metrics or {}).get("decision_threshold", 0.5)
    return replace(config, decision_threshold=float(threshold))


def report_settings(config: ImpactConfig) -> dict:
    return {
        "attributes": list(config.fairness_attributes),
        "disparity_threshold": config.disparity_threshold,
        "min_group_size": config.min_group_size,
        "alpha": config.alpha,
        "decision_threshold": config.decision_threshold,
    }


def configured_report(
    frame: pl.DataFrame,
    config: ImpactConfig,
    score_column: str = "score",
    label_column: str = "label",
) -> pl.DataFrame:
    """fairness_report with the attributes and thresholds of the uba__fairness_* vars."""
    config = for_version(config, None)
    return fairness_report(
        frame,
        config.fairness_attributes,
        threshold=config.disparity_threshold,
        min_group_size=config.min_group_size,
        alpha=config.alpha,
        decision_threshold=config.decision_threshold,
        score_column=score_column,
        label_column=label_column,
    )


def report_for_version(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    model_version: str,
    frame: pl.DataFrame,
    evaluated_on: str = "training_holdout",
    config: ImpactConfig | None = None,
    run_id: str | None = None,
    score_column: str = "score",
    label_column: str = "label",
    version_metrics: dict | None = None,
) -> pl.DataFrame:
    """The registry's entry point: report on `frame` (user_id, score, label; attributes are
    joined from marts.dim_user_audit_attributes when absent), record it with the model version
    in ml.model_fairness, and return it. `version_metrics` (the version's registry metrics)
    give its decision threshold unless uba__fairness_decision_threshold sets one."""
    from python_models.impact.inputs import with_attributes

    config = for_version(config or load_impact_config(), version_metrics)
    frame = with_attributes(con, frame, config.fairness_attributes)
    report = configured_report(frame, config, score_column, label_column)
    record_fairness_report(
        con, model_name, model_version, report, evaluated_on, report_settings(config), run_id
    )
    return report


def _version_metrics(con, model_name: str, model_version: str) -> dict | None:
    from python_models.common.registry import RegistryError, get_entry

    try:
        return get_entry(con, model_name, model_version).metrics
    except RegistryError:  # scores of a version no longer in the registry
        return None


@dataclass
class FairnessOutcome:
    reports: dict[tuple[str, str], pl.DataFrame] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def run_fairness(
    con: duckdb.DuckDBPyConnection,
    plots_dir: Path,
    config: ImpactConfig | None = None,
    run_id: str | None = None,
) -> FairnessOutcome:
    """Reports on matured scores for every model in uba__impact_models with a binary outcome,
    one per model version (recorded as `matured_scores`), plus one PNG per attribute."""
    from python_models.impact.inputs import scored_outcomes, with_attributes
    from python_models.impact.plots import fairness_plot

    config = config or load_impact_config()
    outcome = FairnessOutcome()
    for model in config.models:
        frame, note = scored_outcomes(con, model)
        if note:
            outcome.notes[model.model_name] = note
            print(f"[impact] fairness {model.model_name}: {note}", file=sys.stderr)
            continue
        if frame["outcome"].dtype != pl.Boolean:
            outcome.notes[model.model_name] = f"{model.outcome} is not a yes/no outcome"
            continue
        frame = with_attributes(con, frame, config.fairness_attributes)
        for (version,), part in frame.group_by("model_version", maintain_order=True):
            version_config = for_version(config, _version_metrics(con, model.model_name, version))
            report = configured_report(part, version_config, label_column="outcome")
            record_fairness_report(
                con,
                model.model_name,
                version,
                report,
                "matured_scores",
                report_settings(version_config),
                run_id,
            )
            outcome.reports[(model.model_name, version)] = report
            for attribute in config.fairness_attributes:
                name = f"{model.model_name}_{version}_{attribute}"
                outcome.plots[name] = fairness_plot(
                    part, report, attribute, plots_dir / f"{name}.png"
                )
    return outcome
