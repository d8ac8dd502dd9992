"""Suites for the ml_scores tables: what BI tools may assume before they are published.

Derived from the model's spec (python_models/<model>/spec.py): the columns, the label columns
that must be filled and the score bounds are the spec's, so a new model gets its suite free.
"""

from __future__ import annotations

from expectations.gx_import import gx
from python_models.common.spec import HOLDOUT_COLUMN, ModelSpec
from python_models.impact.holdout import GROUPS


def build_suite(spec: ModelSpec) -> gx.ExpectationSuite:
    expectations = [gx.expectations.ExpectTableRowCountToBeBetween(min_value=1)]
    for column in spec.score_columns:
        if column == HOLDOUT_COLUMN:  # null for a user the groups table does not know
            continue
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    if HOLDOUT_COLUMN in spec.score_columns:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInSet(
                column=HOLDOUT_COLUMN, value_set=list(GROUPS)
            )
        )
    # One score per key: user and snapshot (anomaly alerts: user and activity date; the load
    # forecast: origin, metric and hour).
    expectations.append(
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key_columns))
    )
    low, high = spec.score_bounds
    if low is not None or high is not None:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="score", min_value=low, max_value=high
            )
        )
    return gx.ExpectationSuite(name=spec.table_name, expectations=expectations)
