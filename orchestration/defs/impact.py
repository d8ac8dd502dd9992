"""Impact assets: experiment results, lift by score decile, fairness report (docs/impact.md).

Thin wrappers over python_models.impact; each writes its tables, then attaches a markdown
table and a PNG. The experiment asset also reports a sample-ratio check (warn severity).
"""

import dagster as dg

from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings
from python_models.impact.config import load_impact_config

GROUP = "impact"
EXPOSURES = dg.AssetKey(["marts", "fct_experiment_exposures"])
USER_METRICS = dg.AssetKey(["marts", "fct_experiment_user_metrics"])
LABELS = dg.AssetKey(["features", "ftr_user_labels"])
HOLDOUT_GROUPS = dg.AssetKey(["marts", "dim_user_holdout_groups"])
AUDIT_ATTRIBUTES = dg.AssetKey(["marts", "dim_user_audit_attributes"])
SAMPLE_RATIO_CHECK = "sample_ratio_matches_plan"
MAX_TABLE_ROWS = 40


def _score_keys() -> list[dg.AssetKey]:
    """The scoring assets of uba__impact_models' models (each writes its score history), or
    the key of an explicitly named scores_table."""
    from orchestration.defs.ml import score_key
    from python_models.models import get_spec

    return [
        dg.AssetKey(m.scores_table.split("."))
        if m.scores_table
        else score_key(get_spec(m.model_name))
        for m in load_impact_config().models
    ]


def _markdown(frame, columns: list[str]) -> dg.MetadataValue:
    from python_models.reports import markdown_table

    shown = frame.select([c for c in columns if c in frame.columns])
    return dg.MetadataValue.md(markdown_table(shown, ".4g", MAX_TABLE_ROWS))


@dg.asset(
    key=dg.AssetKey(["impact", "experiment_results"]),
    deps=[EXPOSURES, USER_METRICS],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"python", "statsmodels"},
    check_specs=[
        dg.AssetCheckSpec(
            SAMPLE_RATIO_CHECK,
            asset=dg.AssetKey(["impact", "experiment_results"]),
            description="Users per variant match the planned split (chi-square, uba__srm_alpha).",
        )
    ],
    description="impact.experiment_results and impact.experiment_sample_ratio: per experiment, "
    "metric and variant, difference vs control with interval, p-value, minimum detectable "
    "effect and the CUPED estimate.",
)
def experiment_results(warehouse: WarehouseResource):
    from python_models.impact.experiments import run_experiment_analysis
    from python_models.impact.plots import experiment_plot

    with warehouse.connect() as con:
        analysis = run_experiment_analysis(con)
    results, ratio = analysis.results, analysis.sample_ratio
    metadata = {
        "experiments": int(ratio["experiment_key"].n_unique()),
        "result_rows": results.height,
        "significant": int(results["is_significant"].sum()) if results.height else 0,
        "results": _markdown(
            results,
            [
                "experiment_key",
                "metric_name",
                "variant",
                "n_control",
                "n_variant",
                "mean_control",
                "mean_variant",
                "difference",
                "ci_low",
                "ci_high",
                "p_value",
                "minimum_detectable_effect",
                "cuped_difference",
                "note",
            ],
        ),
    }
    if results.height:
        path = experiment_plot(results, get_settings().reports_dir / "experiment_results.png")
        metadata["plot"] = image(path)
    yield dg.MaterializeResult(metadata=metadata)
    mismatched = sorted(
        ratio.filter(ratio["is_sample_ratio_mismatch"])["experiment_key"].unique().to_list()
    )
    yield dg.AssetCheckResult(
        check_name=SAMPLE_RATIO_CHECK,
        passed=not mismatched,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "mismatched_experiments": ", ".join(mismatched) or "none",
            "split": _markdown(
                ratio,
                [
                    "experiment_key",
                    "variant",
                    "n_users",
                    "planned_share",
                    "observed_share",
                    "p_value",
                ],
            ),
        },
    )


@dg.asset(
    key=dg.AssetKey(["impact", "score_lift_by_decile"]),
    deps=[*_score_keys(), LABELS, HOLDOUT_GROUPS],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"python", "statsmodels"},
    description="impact.score_lift_by_decile: per model version and score decile, the matured "
    "outcome of treatment vs holdout users with an interval (uba__impact_models).",
)
def score_lift_by_decile(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from python_models.impact.lift import ALL_DECILES, run_lift
    from python_models.impact.plots import lift_plot

    with warehouse.connect() as con:
        outcome = run_lift(con)
    table = outcome.table
    metadata = {
        "rows": table.height,
        "lift": _markdown(
            table,
            [
                "model_name",
                "model_version",
                "decile",
                "n_treatment",
                "n_holdout",
                "outcome_treatment",
                "outcome_holdout",
                "difference",
                "ci_low",
                "ci_high",
                "p_value",
            ],
        ),
    }
    overall = table.filter(table["decile"] == ALL_DECILES)
    for row in overall.iter_rows(named=True):
        metadata[f"difference_{row['model_name']}"] = row["difference"]
    if table.height:
        metadata["plot"] = image(lift_plot(table, get_settings().reports_dir / "score_lift.png"))
    for model, note in outcome.notes.items():
        metadata[f"note_{model}"] = note
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=dg.AssetKey(["impact", "fairness_report"]),
    deps=[*_score_keys(), LABELS, AUDIT_ATTRIBUTES],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"python", "matplotlib"},
    description="ml.model_fairness rows evaluated on matured scores: per model version and "
    "user attribute, score distribution, calibration, AUC, FPR/FNR and disparity ratios, "
    "flagged past uba__fairness_disparity_threshold.",
)
def fairness_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from python_models.impact.fairness import run_fairness

    plots_dir = get_settings().reports_dir / "fairness"
    with warehouse.connect() as con:
        outcome = run_fairness(con, plots_dir, run_id=context.run_id)
    metadata = {"reports": len(outcome.reports)}
    for (model, version), report in outcome.reports.items():
        flagged = report.filter(report["is_flagged"])
        metadata[f"{model}_{version}_flagged"] = (
            _markdown(flagged, ["attribute", "group_value", "n_users", "flagged_metrics"])
            if flagged.height
            else dg.MetadataValue.md("no group flagged")
        )
        metadata[f"{model}_{version}"] = _markdown(
            report,
            [
                "attribute",
                "group_value",
                "n_users",
                "outcome_rate",
                "mean_score",
                "auc",
                "false_positive_rate",
                "false_negative_rate",
                "selection_rate_ratio",
                "false_positive_rate_ratio",
                "false_negative_rate_ratio",
                "is_flagged",
            ],
        )
    for name, path in outcome.plots.items():
        metadata[f"plot_{name}"] = image(path)
    for model, note in outcome.notes.items():
        metadata[f"note_{model}"] = note
    return dg.MaterializeResult(metadata=metadata)


impact_assets = [experiment_results, score_lift_by_decile, fairness_report]
