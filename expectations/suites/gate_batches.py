"""Suites for the gate's load batches: one row per batch (raw.gate_batches), never per event.

Row verdicts are computed in SQL (expectations/gate); Great Expectations judges each batch as a
whole, where it adds what SQL alone does not: a declared, documented rule per check, Data Docs,
and the guard that a suite evaluating nothing fails.

- `build_suite(rules)` runs before anything is written, on the batch's verdict counts. Each
  expectation's meta["action"] says what a failure does: "block" keeps the whole batch out of
  raw.events_validated (the corrupt-batch rule), "warn" records a warning.
- `build_reconciliation_suite(rules)` runs after the writes, inside the same transaction: any
  failure ("abort") rolls the whole gate run back.
"""

from __future__ import annotations

from expectations.gate.rules import GateRules
from expectations.gx_import import gx, gxe

SUITE_NAME = "gate_batches"
RECONCILIATION_SUITE_NAME = "gate_batches_reconciliation"
# Distribution sanity is judged only on batches big enough for a share to mean something.
SANITY_MIN_ROWS = 1_000
MAX_DUPLICATE_SHARE = 0.5
MAX_UNPLANNED_SHARE = 0.5
MIN_DISTINCT_EVENT_TS_SHARE = 0.001


def build_suite(rules: GateRules) -> gx.ExpectationSuite:
    """Over columns load_id, rows_checked, rows_valid, defect_rate, duplicate_share,
    unplanned_share, distinct_event_ts_share (expectations.gate.run.batch_frame)."""
    sanity = {"row_condition": f"rows_valid>={SANITY_MIN_ROWS}", "condition_parser": "pandas"}
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(
            column="defect_rate",
            min_value=0.0,
            max_value=rules.max_quarantine_rate,
            meta={
                "action": "block",
                "why": "share of rows quarantined for a defect (duplicates excluded) above "
                "UBA_MAX_QUARANTINE_RATE: the batch looks corrupt",
            },
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="duplicate_share",
            max_value=MAX_DUPLICATE_SHARE,
            meta={"action": "warn", "why": "most rows re-send events already accepted"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="unplanned_share",
            max_value=MAX_UNPLANNED_SHARE,
            meta={
                "action": "warn",
                "why": "most valid events are not in the tracking plan: is the plan current?",
            },
            **sanity,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="distinct_event_ts_share",
            min_value=MIN_DISTINCT_EVENT_TS_SHARE,
            meta={
                "action": "warn",
                "why": "almost every valid event has the same timestamp: a default value?",
            },
            **sanity,
        ),
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def build_reconciliation_suite(rules: GateRules) -> gx.ExpectationSuite:
    """Over columns rows_raw, rows_accounted, validated_missing_required,
    min/max_event_ts_epoch and the bounds' epochs. (An event_id is validated once by
    construction: a copy is kept only when no earlier one was, and one copy per repeat.)"""
    abort = {"action": "abort"}
    expectations = [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="rows_raw",
            column_B="rows_accounted",
            meta={**abort, "why": "every raw row is in exactly one of validated / quarantine"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="validated_missing_required",
            min_value=0,
            max_value=0,
            meta={**abort, "why": "a validated row lacks a required field"},
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="min_event_ts_epoch",
            column_B="earliest_epoch",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={**abort, "why": "a validated event is before the earliest event date"},
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ceiling_epoch",
            column_B="max_event_ts_epoch",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={**abort, "why": "a validated event is later than its load plus clock skew"},
        ),
    ]
    return gx.ExpectationSuite(name=RECONCILIATION_SUITE_NAME, expectations=expectations)
