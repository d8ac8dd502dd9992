"""Lift by score decile: does acting on the scores change outcomes?

Per model version and score decile (10 = highest scores), the matured outcome in the treatment
group (may be acted on) against the holdout (never acted on), with a confidence interval for
the difference. For churn, a negative difference in the top deciles is the model earning its
keep: high-risk users who could be contacted churned less than high-risk users who could not.

`lift_by_decile` is pure (a frame of user_id, score, holdout_group, outcome in, the table
out); `run_lift` reads the inputs listed in python_models.impact.inputs and writes
`impact.score_lift_by_decile`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import polars as pl

from python_models.impact.config import ImpactConfig, load_impact_config
from python_models.impact.holdout import HOLDOUT_GROUP_COLUMN
from python_models.impact.inputs import scored_outcomes
from python_models.impact.stats import compare_means, compare_proportions
from python_models.warehouse import replace_table

LIFT_TABLE = "impact.score_lift_by_decile"
ALL_DECILES = 0  # the decile value of the row that pools every decile

LIFT_SCHEMA = {
    "model_name": pl.String,
    "model_version": pl.String,
    "decile": pl.Int32,
    "n_users": pl.Int64,
    "n_treatment": pl.Int64,
    "n_holdout": pl.Int64,
    "score_min": pl.Float64,
    "score_max": pl.Float64,
    "outcome_kind": pl.String,
    "outcome_treatment": pl.Float64,
    "outcome_holdout": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,
    "confidence_level": pl.Float64,
    "note": pl.String,
    "analyzed_at": pl.Datetime("us"),
}


def assign_deciles(
    frame: pl.DataFrame, bins: int = 10, within: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Add `decile` (1 = lowest scores, `bins` = highest) by rank within `within` groups.
    Ties are broken by user_id, so the split is deterministic."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    ordered = frame.sort([*within, "score", "user_id"])
    over = list(within) or None
    rank = pl.int_range(pl.len()).over(over) if over else pl.int_range(pl.len())
    size = pl.len().over(over) if over else pl.len()
    return ordered.with_columns(decile=(rank * bins // size + 1).cast(pl.Int32))


def _outcome_kind(series: pl.Series) -> str:
    if series.dtype == pl.Boolean:
        return "rate"
    values = series.drop_nulls().cast(pl.Float64).unique()
    return "rate" if values.is_in([0.0, 1.0]).all() else "mean"


def lift_by_decile(
    frame: pl.DataFrame,
    bins: int = 10,
    alpha: float = 0.05,
    by: tuple[str, ...] = ("model_name", "model_version"),
    analyzed_at: datetime | None = None,
) -> pl.DataFrame:
    """The lift table. `frame`: user_id, score, holdout_group (`treatment`/`holdout`), outcome
    (boolean or 0/1 for a rate, a number for a mean), plus the `by` columns when present and
    as_of_date when several snapshots are pooled (deciles are cut per snapshot).
    difference = outcome_treatment - outcome_holdout."""
    analyzed_at = analyzed_at or datetime.now(UTC).replace(tzinfo=None)
    missing = [c for c in ("user_id", "score", HOLDOUT_GROUP_COLUMN, "outcome") if c not in frame]
    if missing:
        raise ValueError(f"lift_by_decile needs columns {missing}")
    by = tuple(c for c in by if c in frame.columns)
    frame = frame.filter(pl.col("outcome").is_not_null() & pl.col("score").is_not_null())
    known = frame.filter(pl.col(HOLDOUT_GROUP_COLUMN).is_in(["treatment", "holdout"]))
    unknown, frame = frame.height - known.height, known
    if frame.is_empty():
        return pl.DataFrame(schema=LIFT_SCHEMA)
    kind = _outcome_kind(frame["outcome"])
    compare = compare_proportions if kind == "rate" else compare_means
    within = (*by, "as_of_date") if "as_of_date" in frame.columns else by
    frame = assign_deciles(frame.with_columns(pl.col("outcome").cast(pl.Float64)), bins, within)

    rows = []
    groups = frame.group_by(list(by), maintain_order=True) if by else [((), frame)]
    for keys, part in groups:
        labels = dict(zip(by, keys, strict=True))
        for decile in [ALL_DECILES, *range(1, bins + 1)]:
            cell = part if decile == ALL_DECILES else part.filter(pl.col("decile") == decile)
            treated = cell.filter(pl.col(HOLDOUT_GROUP_COLUMN) == "treatment")["outcome"]
            held = cell.filter(pl.col(HOLDOUT_GROUP_COLUMN) == "holdout")["outcome"]
            result = compare(treated.to_numpy(), held.to_numpy(), alpha=alpha)
            note = result.note
            if decile == ALL_DECILES and unknown:
                note = "; ".join(filter(None, [note, f"{unknown} rows without a holdout group"]))
            rows.append(
                {
                    "model_name": labels.get("model_name"),
                    "model_version": labels.get("model_version"),
                    "decile": decile,
                    "n_users": cell.height,
                    "n_treatment": treated.len(),
                    "n_holdout": held.len(),
                    "score_min": cell["score"].min() if cell.height else None,
                    "score_max": cell["score"].max() if cell.height else None,
                    "outcome_kind": kind,
                    "outcome_treatment": result.mean_treated,
                    "outcome_holdout": result.mean_reference,
                    "difference": result.difference,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "confidence_level": 1 - alpha,
                    "note": note,
                    "analyzed_at": analyzed_at,
                }
            )
    out = pl.DataFrame(rows, schema=LIFT_SCHEMA, orient="row")
    return out.with_columns(pl.col(pl.Float64).fill_nan(None))


@dataclass
class LiftOutcome:
    table: pl.DataFrame
    notes: dict[str, str] = field(default_factory=dict)


def run_lift(con: duckdb.DuckDBPyConnection, config: ImpactConfig | None = None) -> LiftOutcome:
    """Lift for every model in uba__impact_models; replaces impact.score_lift_by_decile."""
    config = config or load_impact_config()
    parts, notes = [], {}
    for model in config.models:
        frame, note = scored_outcomes(con, model)
        if note:
            notes[model.model_name] = note
            print(f"[impact] lift {model.model_name}: {note}", file=sys.stderr)
            continue
        parts.append(lift_by_decile(frame, config.lift_bins, config.alpha))
    table = pl.concat(parts) if parts else pl.DataFrame(schema=LIFT_SCHEMA)
    replace_table(con, LIFT_TABLE, table.to_arrow())
    return LiftOutcome(table, notes)
