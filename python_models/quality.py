"""Data-quality checks as plain functions over a warehouse connection. Orchestration turns
each `CheckOutcome` into a blocking Dagster asset check; nothing here knows Dagster.

The suites are Great Expectations' (expectations/suites/), run on pandas frames read from
DuckDB (GX through SQLAlchemy on DuckDB is unreliable); large tables are sampled with a fixed
seed, and dbt's own tests still cover every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_models.common.features import FEATURES_TABLE
from python_models.common.spec import ModelSpec
from python_models.warehouse import Warehouse, as_warehouse, table_exists

VALIDATION_SAMPLE_ROWS = 200_000


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str  # what failed, or that all passed
    metadata: dict[str, Any] = field(default_factory=dict)


def sample_table(con: Warehouse, table: str, rows: int = VALIDATION_SAMPLE_ROWS) -> tuple[Any, int]:
    """(pandas frame of at most `rows` rows, seeded reservoir sample; the table's row count)."""
    count = con.execute(f"select count(*) from {table}").fetchone()[0]
    if count <= rows:
        return con.execute(f"select * from {table}").df(), count
    return con.execute(as_warehouse(con).sample_sql(table, rows)).df(), count


def suite_outcome(validation, table_rows: int) -> CheckOutcome:
    """A GX validation result as an outcome; zero evaluated expectations never passes."""
    failed = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
        + (f": {count:,} unexpected" if (count := (r.result or {}).get("unexpected_count")) else "")
        for r in validation.results
        if not r.success
    ]
    evaluated = int(validation.statistics.get("evaluated_expectations", 0))
    passed = bool(validation.success) and evaluated > 0 and not failed
    if evaluated == 0:
        failed.append("zero expectations were evaluated")
    return CheckOutcome(
        passed=passed,
        description="; ".join(failed[:20]) or "all expectations passed",
        metadata={
            "evaluated_expectations": evaluated,
            "failed_expectations": len(failed),
            "table_rows": table_rows,
        },
    )


def check_table(con: Warehouse, table: str, suite) -> CheckOutcome:
    from expectations.validation import validate_frame

    frame, rows = sample_table(con, table)
    # BASIC: each expectation's verdict and unexpected count, all an outcome says; GX's default
    # (SUMMARY) also counts the unexpected values (the 10M feature mart's 200k-row sample:
    # 1.06-1.21 -> 0.72 s)
    return suite_outcome(validate_frame(frame, suite, result_format="BASIC"), rows)


def check_feature_mart(con: Warehouse) -> CheckOutcome:
    """Training and scoring may only read a feature mart that meets its suite."""
    from expectations.suites.ftr_user_features import build_suite

    return check_table(con, FEATURES_TABLE, build_suite())


def check_score_table(con: Warehouse, spec: ModelSpec) -> CheckOutcome:
    """A score table is published only when it meets the suite its spec implies. A model that
    is not served (no champion) and was never scored has no table: nothing to check, nothing
    published for it."""
    from expectations.suites.score_tables import build_suite
    from python_models.common import registry

    if not table_exists(con, spec.score_table) and registry.get_champion(con, spec.name) is None:
        return CheckOutcome(
            passed=True,
            description=f"{spec.name} is not served (no champion): no score table to check",
            metadata={"table_rows": 0},
        )
    return check_table(con, spec.score_table, build_suite(spec))


def check_raw_events(con: Warehouse) -> CheckOutcome:
    """The latest gate run succeeded, evaluated at least one expectation, reconciled (loaded =
    valid + quarantined) and blocked no load batch as corrupt. Which batch is corrupt is the
    gate's own decision (expectations/gate/rules.py: UBA_MAX_QUARANTINE_RATE), read here from
    raw.gate_batches, so `uba gate` and Dagster apply one rule."""
    run = con.execute(
        """
        select run_id, success, evaluated_expectations
        from raw.gate_runs order by finished_at desc limit 1
        """
    ).fetchone()
    loaded, valid, quarantined = con.execute(
        """
        select (select count(*) from raw.events),
               (select count(*) from raw.events_validated),
               (select count(*) from raw.events_quarantine)
        """
    ).fetchone()
    problems = []
    if run is None:
        problems.append("the gate has never run")
    else:
        run_id, success, evaluated = run
        if not success:
            problems.append("the latest gate run failed")
        if evaluated == 0:
            problems.append("the latest gate run evaluated zero expectations")
        blocked = con.execute(
            """
            select load_id, source_file, rows_defective, rows_checked, max_quarantine_rate
            from raw.gate_batches where status = 'blocked' and run_id = ? order by load_id
            """,
            [run_id],
        ).fetchall()
        for load_id, source, defective, checked, limit in blocked:
            problems.append(
                f"load {load_id} ({source}) blocked as corrupt: {defective}/{checked} rows "
                f"defective (> {limit:.0%}); its rows are in raw.events_quarantine"
            )
    if loaded != valid + quarantined:
        problems.append(f"counts do not reconcile: {loaded} loaded != {valid} + {quarantined}")
    if valid == 0:
        problems.append("no valid events")
    return CheckOutcome(
        passed=not problems,
        description="; ".join(problems) or "gate passed and counts reconcile",
        metadata={"loaded": loaded, "valid": valid, "quarantined": quarantined},
    )
