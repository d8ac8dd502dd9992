"""Suite for raw.events, as seen by the gate: one expectation per quarantine reason code.

The gate (expectations/gate.py) validates a per-chunk frame that DuckDB derives from the raw
text columns: parsed timestamps, JSON checks, the duplicate flag. Every expectation carries
meta={"reason": <code>}; a row's reasons are the codes of the expectations it fails, in the
order of REASON_CODES (the order CONTRACTS.md lists them).
"""

from __future__ import annotations

import csv
from datetime import datetime
from functools import lru_cache

import great_expectations as gx
import great_expectations.expectations as gxe

from python_models.config import DBT_PROJECT_DIR

SUITE_NAME = "raw_events"
TAXONOMY_PATH = DBT_PROJECT_DIR / "seeds" / "event_taxonomy.csv"

REASON_CODES = (
    "unparseable_row",
    "missing_event_id",
    "missing_event_name",
    "unknown_event_name",
    "missing_identity",
    "invalid_event_ts",
    "invalid_received_at",
    "event_ts_out_of_range",
    "invalid_properties_json",
    "properties_too_large",
    "invalid_property_type",
    "duplicate_event_id",
)
EARLIEST_EVENT_TS = datetime(2000, 1, 1)
MAX_PROPERTIES_BYTES = 65_536
# Clock skew allowed between the device (event_ts) and the collector (received_at) or loader.
CLOCK_SKEW_DAYS = 1


@lru_cache(maxsize=1)
def known_event_names() -> tuple[str, ...]:
    """Event names from the tracking plan (dbt seed event_taxonomy.csv), the only list."""
    with TAXONOMY_PATH.open(newline="") as handle:
        names = tuple(row["event_name"].strip() for row in csv.DictReader(handle))
    if not names:
        raise ValueError(f"{TAXONOMY_PATH} lists no event names")
    return names


def build_suite() -> gx.ExpectationSuite:
    """Expectations over the gate frame (columns named in expectations.gate.GATE_FRAME_COLUMNS)."""
    suite = gx.ExpectationSuite(name=SUITE_NAME)

    def add(expectation: gxe.Expectation) -> None:
        suite.add_expectation(expectation)

    def at_most(column: str, bound_column: str, reason: str) -> gxe.Expectation:
        """column <= bound_column per row (a missing value is another expectation's job)."""
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=bound_column,
            column_B=column,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={"reason": reason},
        )

    add(gxe.ExpectColumnValuesToBeNull(column="load_error", meta={"reason": "unparseable_row"}))
    add(gxe.ExpectColumnValuesToNotBeNull(column="event_id", meta={"reason": "missing_event_id"}))
    add(
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_name", meta={"reason": "missing_event_name"}
        )
    )
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="event_name",
            value_set=list(known_event_names()),
            meta={"reason": "unknown_event_name"},
        )
    )
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="has_identity", value_set=[True], meta={"reason": "missing_identity"}
        )
    )
    add(gxe.ExpectColumnValuesToNotBeNull(column="event_ts", meta={"reason": "invalid_event_ts"}))
    add(
        gxe.ExpectColumnValuesToNotBeNull(
            column="received_at", meta={"reason": "invalid_received_at"}
        )
    )
    # A row cannot have been received after it was loaded (beyond clock skew).
    add(at_most("received_at", "received_at_upper_bound", "invalid_received_at"))
    add(
        gxe.ExpectColumnValuesToBeBetween(
            column="event_ts",
            min_value=EARLIEST_EVENT_TS,
            meta={"reason": "event_ts_out_of_range"},
        )
    )
    # Upper bound per row: min(received_at, loaded_at) + clock skew, so the verdict depends on
    # the data only, never on when the gate happens to run.
    add(at_most("event_ts", "event_ts_upper_bound", "event_ts_out_of_range"))
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="properties_is_json_object",
            value_set=[True],
            meta={"reason": "invalid_properties_json"},
        )
    )
    add(
        gxe.ExpectColumnValuesToBeBetween(
            column="properties_bytes",
            min_value=0,
            max_value=MAX_PROPERTIES_BYTES,
            meta={"reason": "properties_too_large"},
        )
    )
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="revenue_is_numeric", value_set=[True], meta={"reason": "invalid_property_type"}
        )
    )
    add(
        gxe.ExpectColumnValuesToBeInSet(
            column="is_duplicate", value_set=[False], meta={"reason": "duplicate_event_id"}
        )
    )
    return suite
