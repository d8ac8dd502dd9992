"""Suite for features.ftr_user_features: what training and scoring may assume of the mart."""

from __future__ import annotations

from expectations.gx_import import gx
from python_models.common.catalogue import load_catalogue

SUITE_NAME = "ftr_user_features"


def build_suite() -> gx.ExpectationSuite:
    expectations = [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        *(
            gx.expectations.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("user_id", "as_of_date")
        ),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "as_of_date"]),
    ]
    for spec in load_catalogue():
        expectations.append(gx.expectations.ExpectColumnToExist(column=spec.name))
        expectations.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=spec.name))
        if spec.name.startswith(("count_", "sum_", "days_since_")):
            # Counts, sums and recencies can never be negative; a negative value means a
            # window or a join went wrong upstream.
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeBetween(column=spec.name, min_value=0)
            )
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
