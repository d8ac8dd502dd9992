"""Suite for features.ftr_user_features: what training and scoring may assume of the mart."""

from __future__ import annotations

from expectations.gx_import import gx
from python_models.common.catalogue import load_catalogue

SUITE_NAME = "ftr_user_features"


def build_suite() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    for column in ("user_id", "as_of_date"):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "as_of_date"])
    )
    for spec in load_catalogue():
        suite.add_expectation(gx.expectations.ExpectColumnToExist(column=spec.name))
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=spec.name))
        if spec.name.startswith(("count_", "sum_", "days_since_")):
            # Counts, sums and recencies can never be negative; a negative value means a
            # window or a join went wrong upstream.
            suite.add_expectation(
                gx.expectations.ExpectColumnValuesToBeBetween(column=spec.name, min_value=0)
            )
    return suite
