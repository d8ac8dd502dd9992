"""Suites for the ml_scores tables: what BI tools may assume before they are published."""

from __future__ import annotations

import great_expectations as gx

COMMON_COLUMNS = ("user_id", "as_of_date", "model_name", "model_version", "scored_at", "run_id")

# table -> (score bounds, extra non-null columns)
SCORE_TABLES: dict[str, tuple[tuple[float | None, float | None], tuple[str, ...]]] = {
    "churn_scores": ((0.0, 1.0), ("reasons", "predicted_label")),
    "ltv_scores": ((0.0, None), ("reasons",)),
    "user_segments": ((None, None), ("segment_id", "segment_name")),
    "anomaly_alerts": ((None, None), ("reasons",)),
}


def build_suite(table: str) -> gx.ExpectationSuite:
    if table not in SCORE_TABLES:
        raise ValueError(f"no suite for score table {table!r}; known: {sorted(SCORE_TABLES)}")
    (low, high), extra = SCORE_TABLES[table]
    suite = gx.ExpectationSuite(name=table)
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    for column in (*COMMON_COLUMNS, "score", *extra):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    if table != "anomaly_alerts":
        # One score per user and snapshot; alerts may hold several days per user.
        suite.add_expectation(
            gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "as_of_date"])
        )
    if low is not None or high is not None:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="score", min_value=low, max_value=high
            )
        )
    return suite
