"""Experiment analysis: sample-ratio check and results per experiment, metric and variant.

Inputs (dbt, marts/experiments): `marts.fct_experiment_exposures` (one row per experiment and
person) and `marts.fct_experiment_user_metrics` (one row per experiment, person and metric, for
people who saw one variant). Outputs (schema `impact`, replaced atomically):

- `impact.experiment_sample_ratio`: one row per (experiment_key, variant): users, planned and
  observed share, chi-square statistic and p-value of the whole split, `is_sample_ratio_mismatch`
  (p < uba__srm_alpha), and the people excluded for seeing several variants;
- `impact.experiment_results`: one row per (experiment_key, metric_name, variant) for every
  variant except the control: estimate per variant, difference with confidence interval,
  p-value, minimum detectable effect for the sample at hand, and the CUPED estimate.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import polars as pl
from scipy import stats as scipy_stats

from python_models.impact.config import ImpactConfig, load_impact_config
from python_models.impact.stats import compare_means, compare_proportions, cuped_compare
from python_models.warehouse import replace_table, table_exists

EXPOSURES_TABLE = "marts.fct_experiment_exposures"
USER_METRICS_TABLE = "marts.fct_experiment_user_metrics"
RESULTS_TABLE = "impact.experiment_results"
SAMPLE_RATIO_TABLE = "impact.experiment_sample_ratio"

RESULT_SCHEMA = {
    "experiment_key": pl.String,
    "metric_name": pl.String,
    "metric_kind": pl.String,
    "control_variant": pl.String,
    "variant": pl.String,
    "n_control": pl.Int64,
    "n_variant": pl.Int64,
    "mean_control": pl.Float64,
    "mean_variant": pl.Float64,
    "difference": pl.Float64,
    "relative_difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,
    "is_significant": pl.Boolean,
    "minimum_detectable_effect": pl.Float64,
    "cuped_difference": pl.Float64,
    "cuped_ci_low": pl.Float64,
    "cuped_ci_high": pl.Float64,
    "cuped_p_value": pl.Float64,
    "cuped_variance_reduction": pl.Float64,
    "n_immature_excluded": pl.Int64,
    "n_multi_variant_excluded": pl.Int64,
    "is_sample_ratio_mismatch": pl.Boolean,
    "confidence_level": pl.Float64,
    "power": pl.Float64,
    "note": pl.String,
    "analyzed_at": pl.Datetime("us"),
}
SAMPLE_RATIO_SCHEMA = {
    "experiment_key": pl.String,
    "variant": pl.String,
    "n_users": pl.Int64,
    "planned_share": pl.Float64,
    "observed_share": pl.Float64,
    "chi_square": pl.Float64,
    "p_value": pl.Float64,
    "is_sample_ratio_mismatch": pl.Boolean,
    "n_multi_variant_excluded": pl.Int64,
    "note": pl.String,
    "analyzed_at": pl.Datetime("us"),
}


def control_for(variants: list[str], declared: str | None = None) -> str:
    """The declared control, else a variant named `control`, else the first by name."""
    if declared is not None:
        if declared not in variants:
            raise ValueError(f"control variant {declared!r} has no exposed users ({variants})")
        return declared
    return "control" if "control" in variants else sorted(variants)[0]


@dataclass(frozen=True)
class SampleRatio:
    chi_square: float
    p_value: float
    is_mismatch: bool
    planned: dict[str, float]
    note: str = ""


def sample_ratio_check(
    counts: dict[str, int], planned: dict[str, float] | None = None, alpha: float = 0.001
) -> SampleRatio:
    """Chi-square goodness of fit of the observed users per variant to the planned split
    (equal shares when none is declared). A variant outside the plan is a mismatch."""
    variants = sorted(counts)
    planned = planned or {v: 1.0 / len(variants) for v in variants}
    unplanned = [v for v in variants if v not in planned]
    if unplanned:
        return SampleRatio(
            float("nan"), 0.0, True, planned, f"variants not in the plan: {unplanned}"
        )
    observed = np.array([counts.get(v, 0) for v in planned], dtype=float)
    if observed.sum() == 0 or len(planned) < 2:
        return SampleRatio(float("nan"), float("nan"), False, planned, "no users to check")
    expected = np.array(list(planned.values())) * observed.sum()
    result = scipy_stats.chisquare(observed, expected)
    p_value = float(result.pvalue)
    return SampleRatio(float(result.statistic), p_value, p_value < alpha, planned)


def analyze_metric(
    frame: pl.DataFrame,
    kind: str,
    control: str,
    alpha: float = 0.05,
    power: float = 0.8,
) -> list[dict]:
    """One dict per non-control variant. `frame`: variant, metric_value, pre_period_value
    (mature rows of one experiment and metric)."""
    compare = compare_proportions if kind in ("conversion", "retention") else compare_means
    values = {
        v: (g["metric_value"].to_numpy(), g["pre_period_value"].to_numpy())
        for (v,), g in frame.group_by("variant")
    }
    reference, reference_pre = values.get(control, (np.array([]), np.array([])))
    rows = []
    for variant in sorted(v for v in values if v != control):
        treated, treated_pre = values[variant]
        plain = compare(treated, reference, alpha=alpha, power=power)
        cuped = cuped_compare(treated, reference, treated_pre, reference_pre, alpha=alpha)
        relative = plain.difference / plain.mean_reference if plain.mean_reference else None
        rows.append(
            {
                "variant": variant,
                "n_control": plain.n_reference,
                "n_variant": plain.n_treated,
                "mean_control": plain.mean_reference,
                "mean_variant": plain.mean_treated,
                "difference": plain.difference,
                "relative_difference": relative,
                "ci_low": plain.ci_low,
                "ci_high": plain.ci_high,
                "p_value": plain.p_value,
                "is_significant": bool(plain.p_value < alpha)
                if np.isfinite(plain.p_value)
                else False,
                "minimum_detectable_effect": plain.mde,
                "cuped_difference": cuped.difference if cuped else None,
                "cuped_ci_low": cuped.ci_low if cuped else None,
                "cuped_ci_high": cuped.ci_high if cuped else None,
                "cuped_p_value": cuped.p_value if cuped else None,
                "cuped_variance_reduction": cuped.variance_reduction if cuped else None,
                "note": plain.note
                or ("" if cuped else "CUPED not applied: no pre-period variation"),
            }
        )
    return rows


def experiment_results(
    user_metrics: pl.DataFrame,
    exposures: pl.DataFrame,
    config: ImpactConfig,
    analyzed_at: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(results, sample_ratio) frames from the two marts (pure: no warehouse access).

    `exposures`: experiment_key, user_id, variant, is_multi_variant.
    `user_metrics`: experiment_key, user_id, metric_name, metric_kind, variant, metric_value,
    pre_period_value, is_mature.
    """
    analyzed_at = analyzed_at or datetime.now(UTC).replace(tzinfo=None)
    alpha, power = config.alpha, config.power
    results, ratios = [], []
    for key in sorted(exposures["experiment_key"].unique().to_list()):
        spec = config.experiment(key)
        exposed = exposures.filter(pl.col("experiment_key") == key)
        single = exposed.filter(~pl.col("is_multi_variant"))
        n_multi = exposed.height - single.height
        counts = dict(single.group_by("variant").len().iter_rows())
        variants = sorted(counts)
        srm = sample_ratio_check(counts, spec.split, config.srm_alpha)
        for variant in sorted(set(variants) | set(srm.planned)):
            n = counts.get(variant, 0)
            ratios.append(
                {
                    "experiment_key": key,
                    "variant": variant,
                    "n_users": n,
                    "planned_share": srm.planned.get(variant),
                    "observed_share": n / single.height if single.height else None,
                    "chi_square": srm.chi_square,
                    "p_value": srm.p_value,
                    "is_sample_ratio_mismatch": srm.is_mismatch,
                    "n_multi_variant_excluded": n_multi,
                    "note": srm.note,
                    "analyzed_at": analyzed_at,
                }
            )
        if not variants:
            continue
        control = control_for(variants, spec.control)
        metrics_of_key = user_metrics.filter(pl.col("experiment_key") == key)
        for metric in config.metrics:
            rows = metrics_of_key.filter(pl.col("metric_name") == metric.name)
            mature = rows.filter(pl.col("is_mature"))
            for row in analyze_metric(mature, metric.kind, control, alpha, power):
                note = row.pop("note")
                if srm.is_mismatch:
                    note = "; ".join(filter(None, ["sample ratio mismatch: do not trust", note]))
                results.append(
                    {
                        "experiment_key": key,
                        "metric_name": metric.name,
                        "metric_kind": metric.kind,
                        "control_variant": control,
                        **row,
                        "n_immature_excluded": rows.height - mature.height,
                        "n_multi_variant_excluded": n_multi,
                        "is_sample_ratio_mismatch": srm.is_mismatch,
                        "confidence_level": 1 - alpha,
                        "power": power,
                        "note": note,
                        "analyzed_at": analyzed_at,
                    }
                )
    return (
        pl.DataFrame(results, schema=RESULT_SCHEMA, orient="row")
        if results
        else pl.DataFrame(schema=RESULT_SCHEMA),
        pl.DataFrame(ratios, schema=SAMPLE_RATIO_SCHEMA, orient="row")
        if ratios
        else pl.DataFrame(schema=SAMPLE_RATIO_SCHEMA),
    )


@dataclass(frozen=True)
class ExperimentAnalysis:
    results: pl.DataFrame
    sample_ratio: pl.DataFrame


def run_experiment_analysis(
    con: duckdb.DuckDBPyConnection, config: ImpactConfig | None = None
) -> ExperimentAnalysis:
    """Read the experiment marts, write impact.experiment_results and
    impact.experiment_sample_ratio (each replaced atomically), return both frames."""
    config = config or load_impact_config()
    for table in (EXPOSURES_TABLE, USER_METRICS_TABLE):
        if not table_exists(con, table):
            raise LookupError(f"{table} does not exist yet: run `uba build` first")
    exposures = con.execute(
        f"select experiment_key, user_id, variant, is_multi_variant from {EXPOSURES_TABLE}"
    ).pl()
    user_metrics = con.execute(
        f"""select experiment_key, user_id, metric_name, metric_kind, variant, metric_value,
            pre_period_value, is_mature from {USER_METRICS_TABLE}"""
    ).pl()
    print(
        f"[impact] {exposures['experiment_key'].n_unique()} experiment(s), "
        f"{exposures.height} exposed people, {user_metrics.height} metric rows",
        file=sys.stderr,
    )
    results, sample_ratio = experiment_results(user_metrics, exposures, config)
    replace_table(con, RESULTS_TABLE, results.to_arrow())
    replace_table(con, SAMPLE_RATIO_TABLE, sample_ratio.to_arrow())
    return ExperimentAnalysis(results, sample_ratio)
