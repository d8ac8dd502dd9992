"""What lift and fairness read from the warehouse (documented in docs/impact.md, "Inputs").

- each model's score history (ml_scores.<table>_history, named by the model's spec; or the
  `scores_table` of var uba__impact_models when given): user_id, as_of_date, model_name,
  model_version, score;
- features.ftr_user_labels: the matured label named by `outcome` (e.g. label_churned), joined
  on (user_id, as_of_date); rows whose label has not matured are left out;
- marts.dim_user_holdout_groups: holdout_group per user_id;
- marts.dim_user_audit_attributes: country, device and the declared property attributes.
"""

from __future__ import annotations

import duckdb
import polars as pl

from python_models.impact.config import ModelOutcome
from python_models.impact.holdout import HOLDOUT_GROUP_COLUMN, HOLDOUT_TABLE
from python_models.warehouse import as_warehouse, table_exists

LABELS_TABLE = "features.ftr_user_labels"
ATTRIBUTES_TABLE = "marts.dim_user_audit_attributes"
SCORED_OUTCOME_COLUMNS = (
    "model_name",
    "model_version",
    "user_id",
    "as_of_date",
    "score",
    HOLDOUT_GROUP_COLUMN,
    "outcome",
)


def _columns(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    # the engine's own catalog (Spark has no information_schema)
    return as_warehouse(con).table_columns(qualified)


def scores_table_of(model: ModelOutcome) -> str:
    """The table lift and fairness read for `model`: the var's `scores_table` when given,
    else the score history the model's spec names (so the table is declared once)."""
    if model.scores_table:
        return model.scores_table
    from python_models.models import get_spec

    return get_spec(model.model_name).history_table


def scored_outcomes(
    con: duckdb.DuckDBPyConnection, model: ModelOutcome
) -> tuple[pl.DataFrame, str]:
    """(frame with SCORED_OUTCOME_COLUMNS, note). The note says why the frame is empty."""
    empty = pl.DataFrame(
        schema={
            "model_name": pl.String,
            "model_version": pl.String,
            "user_id": pl.String,
            "as_of_date": pl.Date,
            "score": pl.Float64,
            HOLDOUT_GROUP_COLUMN: pl.String,
            "outcome": pl.Float64,
        }
    )
    scores_table = scores_table_of(model)
    for table in (scores_table, LABELS_TABLE, HOLDOUT_TABLE):
        if not table_exists(con, table):
            return empty, f"{table} does not exist yet"
    if model.outcome not in _columns(con, LABELS_TABLE):
        raise LookupError(f"{LABELS_TABLE} has no column {model.outcome!r} (uba__impact_models)")
    frame = con.execute(
        f"""
        select scores.model_name, scores.model_version, scores.user_id, scores.as_of_date,
            cast(scores.score as double precision) as score, groups.{HOLDOUT_GROUP_COLUMN},
            labels."{model.outcome}" as outcome
        from {scores_table} as scores
        inner join {LABELS_TABLE} as labels
            on scores.user_id = labels.user_id and scores.as_of_date = labels.as_of_date
        left join {HOLDOUT_TABLE} as groups
            on scores.user_id = groups.user_id
        where labels."{model.outcome}" is not null
        order by scores.model_version, scores.as_of_date, scores.user_id
        """
    ).pl()
    if frame.is_empty():
        return empty, (
            f"no {scores_table} row has a matured {model.outcome} yet (labels mature after "
            "their horizon: the history's older runs are judged once they do)"
        )
    return frame, ""


def with_attributes(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, attributes: tuple[str, ...]
) -> pl.DataFrame:
    """`frame` plus the requested attribute columns of marts.dim_user_audit_attributes (those
    `frame` does not already carry). A declared attribute found in neither is an error."""
    wanted = [a for a in attributes if a not in frame.columns]
    if not wanted:
        return frame
    if not table_exists(con, ATTRIBUTES_TABLE):
        raise LookupError(f"{ATTRIBUTES_TABLE} does not exist yet: run `uba build` first")
    available = _columns(con, ATTRIBUTES_TABLE)
    missing = [a for a in wanted if a not in available]
    if missing:
        raise LookupError(
            f"fairness attributes {missing} are neither in the scored frame nor in "
            f"{ATTRIBUTES_TABLE}; declare them in uba__audit_property_attributes"
        )
    select = ", ".join(f'"{a}"' for a in wanted)
    attrs = con.execute(f"select user_id, {select} from {ATTRIBUTES_TABLE}").pl()
    return frame.join(
        attrs.with_columns(pl.col("user_id").cast(frame.schema["user_id"])),
        on="user_id",
        how="left",
        maintain_order="left",
    )
