"""The plain functions behind the Dagster checks and report assets, on tiny DuckDB tables."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from python_models.quality import check_raw_events, sample_table, suite_outcome
from python_models.reports import (
    draw_weekly_retention,
    markdown_counts,
    markdown_table,
    retention_matrix,
)


def _raw(con, loaded: int, valid: int, quarantined: int, runs: list[tuple], blocked=()) -> None:
    con.execute("create schema raw")
    for table, rows in (
        ("events", loaded),
        ("events_validated", valid),
        ("events_quarantine", quarantined),
    ):
        con.execute(f"create table raw.{table} as select range as raw_id from range({rows})")
    con.execute(
        "create table raw.gate_runs (run_id varchar, finished_at timestamp, success boolean, "
        "evaluated_expectations integer, rows_checked integer, rows_quarantined integer)"
    )
    for i, (success, evaluated, checked, run_quarantined) in enumerate(runs):
        con.execute(
            "insert into raw.gate_runs values (?, ?, ?, ?, ?, ?)",
            [f"r{i}", f"2025-01-0{i + 1}", success, evaluated, checked, run_quarantined],
        )
    # The gate's per-batch decisions (expectations/gate): (run_id, defective, checked) blocked.
    con.execute(
        "create table raw.gate_batches (load_id bigint, run_id varchar, source_file varchar, "
        "status varchar, rows_defective bigint, rows_checked bigint, max_quarantine_rate double)"
    )
    for load_id, (run_id, defective, checked) in enumerate(blocked, start=1):
        con.execute(
            "insert into raw.gate_batches values (?, ?, 'f.csv', 'blocked', ?, ?, 0.2)",
            [load_id, run_id, defective, checked],
        )


@pytest.mark.parametrize(
    ("counts", "runs", "blocked", "problem"),
    [
        ((10, 9, 1), [], [], "the gate has never run"),
        ((10, 9, 1), [(False, 5, 10, 1)], [], "the latest gate run failed"),
        ((10, 9, 1), [(True, 0, 10, 1)], [], "evaluated zero expectations"),
        (
            (10, 0, 10),
            [(True, 5, 10, 10)],
            [("r0", 8, 10)],
            "load 1 (f.csv) blocked as corrupt: 8/10 rows defective (> 20%)",
        ),
        ((10, 8, 1), [(True, 5, 10, 1)], [], "counts do not reconcile: 10 loaded != 8 + 1"),
        ((5, 0, 5), [(True, 5, 10, 1), (True, 5, 5, 1)], [], "no valid events"),
    ],
)
def test_raw_events_check_names_each_problem(counts, runs, blocked, problem):
    con = duckdb.connect()
    _raw(con, *counts, runs, blocked)
    outcome = check_raw_events(con)
    assert not outcome.passed
    assert problem in outcome.description
    assert outcome.metadata == dict(zip(("loaded", "valid", "quarantined"), counts, strict=True))


def test_raw_events_check_passes_a_clean_reconciled_batch():
    con = duckdb.connect()
    # only the latest run counts: a batch blocked by an earlier run no longer blocks
    _raw(con, 10, 9, 1, [(False, 0, 3, 3), (True, 5, 10, 1)], blocked=[("r0", 3, 3)])
    outcome = check_raw_events(con)
    assert outcome.passed, outcome.description


def test_sample_table_is_seeded_and_bounded():
    con = duckdb.connect()
    con.execute("create table t as select range as x from range(1000)")
    frame, rows = sample_table(con, "t", rows=100)
    again, _ = sample_table(con, "t", rows=100)
    assert rows == 1000 and len(frame) == 100
    assert frame["x"].tolist() == again["x"].tolist()
    small, rows = sample_table(con, "t", rows=5000)
    assert rows == 1000 and len(small) == 1000


def test_a_table_s_sample_is_the_whole_row_reservoir_s_rows_and_a_view_s_too():
    # Drawn over the row ids, a table's sample holds the rows the seeded reservoir draws from
    # whole rows (several row groups, two threads); a view (no row ids) is sampled whole.
    con = duckdb.connect()
    con.execute("set threads = 2")
    con.execute(
        "create table t as select range as x, md5(range::varchar) as h, range % 7 as k "
        "from range(300000)"
    )
    con.execute("create view v as select * from t where k < 5")
    whole = "select * from {} using sample reservoir(5000 rows) repeatable (42) order by x"
    for relation in ("t", "v"):
        frame, _ = sample_table(con, relation, rows=5000)
        expected = con.execute(whole.format(relation)).df()
        assert frame.sort_values("x").reset_index(drop=True).equals(expected)


def test_a_suite_that_evaluated_nothing_does_not_pass():
    class Validation:
        results = []
        statistics = {"evaluated_expectations": 0}
        success = True  # what GX reports for an empty suite

    outcome = suite_outcome(Validation(), table_rows=3)
    assert not outcome.passed and "zero expectations" in outcome.description


def test_a_suite_built_again_after_its_validation_writes_nothing_to_the_context(monkeypatch):
    """Every check builds its suite anew, and validate_frame registers each suite it runs in
    the process's GX context. Built one add_expectation at a time, a suite whose name is
    registered saved the registered suite again on every add (the feature mart's 207
    expectations: 13.7 s for each check after the first in a process, a Dagster run's or a
    test worker's). Built from their lists, the suites are built again without a write to
    the context's suite store, and the registered suites keep their expectations."""
    import pandas as pd
    from great_expectations.data_context.store import ExpectationsStore

    from expectations.gate.rules import GateRules
    from expectations.suites import ftr_user_features, gate_batches, score_tables
    from expectations.validation import gx_context, validate_frame
    from python_models.models import get_spec

    rules = GateRules()
    builders = [
        ftr_user_features.build_suite,
        lambda: score_tables.build_suite(get_spec("churn")),
        lambda: gate_batches.build_suite(rules),
        lambda: gate_batches.build_reconciliation_suite(rules),
    ]
    sizes = {}
    for build in builders:
        suite = build()
        validate_frame(pd.DataFrame({"user_id": ["u"]}), suite)  # fails, and registers it
        sizes[suite.name] = len(suite.expectations)
    writes = []
    for method in ("add", "update", "add_expectation", "update_expectation"):
        original = getattr(ExpectationsStore, method)

        def recorded(self, *args, _method=method, _original=original, **kwargs):
            writes.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ExpectationsStore, method, recorded)
    again = [build() for build in builders]
    assert writes == []
    assert {suite.name: len(suite.expectations) for suite in again} == sizes
    stored = {suite.name: len(gx_context().suites.get(suite.name).expectations) for suite in again}
    assert stored == sizes


def test_retention_matrix_places_each_cell_and_leaves_gaps_empty():
    frame = pl.DataFrame(
        {
            "cohort": ["2025-01-06", "2025-01-06", "2025-01-13"],
            "period_week": [0, 2, 0],
            "cohort_users": [10, 10, 4],
            "retention_exact": [1.0, 0.3, 1.0],
        }
    )
    cohorts, periods, matrix, sizes = retention_matrix(frame)
    assert cohorts == ["2025-01-06", "2025-01-13"] and periods == [0, 1, 2]
    assert sizes == [10, 4]
    assert matrix[0, 2] == 0.3 and matrix[1, 0] == 1.0
    assert pl.Series(matrix[:, 1]).is_nan().all()


def test_weekly_retention_heatmap_is_drawn_from_the_report(tmp_path):
    con = duckdb.connect()
    con.execute("create schema reports")
    con.execute(
        "create table reports.rpt_retention_weekly (cohort_week date, period_week integer, "
        "cohort_users integer, retention_exact double)"
    )
    empty = draw_weekly_retention(con, tmp_path / "none.png")
    assert empty.path is None and empty.cohorts == 0
    con.executemany(
        "insert into reports.rpt_retention_weekly values (?, ?, ?, ?)",
        [
            [date(2025, 1, 6), 0, 10, 1.0],
            [date(2025, 1, 6), 1, 10, 0.5],
            [date(2025, 1, 13), 0, 4, 1.0],
            [date(2025, 1, 13), 1, 4, 0.25],
        ],
    )
    heatmap = draw_weekly_retention(con, tmp_path / "retention.png")
    assert heatmap.cohorts == 2 and heatmap.mean_week1_retention == pytest.approx(0.375)
    assert heatmap.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_tables():
    frame = pl.DataFrame({"variant": ["a", None], "auc": [0.912345, 12345.6], "n": [3, 4]})
    assert markdown_table(frame).splitlines() == [
        "| variant | auc | n |",
        "|---|---|---|",
        "| a | 0.9123 | 3 |",
        "|  | 12345.6000 | 4 |",
    ]
    assert markdown_table(frame, ".4g", max_rows=1).splitlines()[2:] == ["| a | 0.9123 | 3 |"]
    assert markdown_counts({"b": 2, "a": 1}, "reason", "rows").splitlines()[2:] == [
        "| a | 1 |",
        "| b | 2 |",
    ]
    assert markdown_counts({}, "reason", "rows").endswith("| (none) | 0 |")
