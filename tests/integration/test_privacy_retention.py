"""Retention windows on a real gated and built warehouse (the session sample): PII properties
purged from the raw layer, old raw events rolled into daily counts then deleted, a second run
changing nothing; and the Dagster jobs erase_people / apply_retention run in process."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import duckdb
from conftest import copy_warehouse

from python_models.privacy.files import files_containing

CUTOFF = datetime(2025, 3, 1)
RAW_TABLES = ("raw.events", "raw.events_validated", "raw.events_quarantine")


def _snapshot(path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "loaded_at": con.execute("select max(loaded_at) from raw.events").fetchone()[0],
            "expected_rollup": con.execute(
                """
                select cast(event_ts as date) as event_date, event_name,
                    count(*) as count_events, count(user_id) as count_identified_events,
                    coalesce(sum(try_cast(properties ->> 'revenue' as double)), 0) as revenue_usd
                from raw.events_validated where event_ts < ? group by 1, 2 order by 1, 2
                """,
                [CUTOFF],
            ).pl(),
            "expired_raw_ids": con.execute(
                "select count(*) from raw.events where raw_id in "
                "(select raw_id from raw.events_validated where event_ts < ?)",
                [CUTOFF],
            ).fetchone()[0],
            "counts": {
                t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in (*RAW_TABLES, "marts.fct_events")
            },
            "emails": [
                row[0]
                for row in con.execute(
                    "select distinct properties ->> 'email' from raw.events_validated "
                    "where properties ->> 'email' is not null order by 1 limit 20"
                ).fetchall()
            ],
            "pii_rows": sum(
                con.execute(
                    f"select count(*) from {t} where regexp_matches(properties, "
                    '\'"(email|ip)"\\s*:\\s*"\')'
                ).fetchone()[0]
                for t in RAW_TABLES
            ),
        }
    finally:
        con.close()


def test_retention_purges_pii_and_rolls_up_then_deletes_old_events(built_warehouse, tmp_path):
    from python_models.privacy.retention import ROLLUP_TABLE, apply_retention

    path = copy_warehouse(built_warehouse, tmp_path)
    before = _snapshot(path)
    assert before["pii_rows"] > 100 and len(before["emails"]) == 20
    assert set(files_containing([path], before["emails"])[path]) == set(before["emails"])
    # Every row was loaded 31 days before `now`: PII (30 days) goes everywhere; events before
    # CUTOFF are older than the raw window.
    now = datetime.combine(before["loaded_at"].date() + timedelta(days=32), datetime.min.time())
    raw_days = (now - CUTOFF).days
    result = apply_retention(path, now=now, pii_days=30, raw_days=raw_days)
    after = _snapshot(path)

    assert result.raw_cutoff == CUTOFF and result.compacted
    assert after["pii_rows"] == 0
    assert sum(result.pii_rows_purged.values()) == before["pii_rows"]
    assert files_containing([path], before["emails"]) == {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        nulled = con.execute(
            "select count(*) from raw.events_validated where properties like '%\"email\":null%'"
        ).fetchone()[0]
        oldest = con.execute("select min(event_ts) from raw.events_validated").fetchone()[0]
        rollup = con.execute(
            f"select event_date, event_name, count_events, count_identified_events, revenue_usd "
            f"from {ROLLUP_TABLE} order by 1, 2"
        ).pl()
    finally:
        con.close()
    assert nulled > 0 and oldest >= CUTOFF
    expected = before["expected_rollup"]
    assert expected.height > 50
    assert rollup.drop("revenue_usd").equals(expected.drop("revenue_usd"))
    assert (rollup["revenue_usd"] - expected["revenue_usd"]).abs().max() < 1e-6
    deleted_valid = int(expected["count_events"].sum())
    assert result.raw_rows_deleted["raw.events_validated"] == deleted_valid
    assert result.raw_rows_deleted["raw.events"] == before["expired_raw_ids"]
    assert after["counts"]["raw.events_validated"] == (
        before["counts"]["raw.events_validated"] - deleted_valid
    )
    # Quarantined rows were loaded recently: they stay; staging and marts keep their rows.
    assert after["counts"]["raw.events_quarantine"] == before["counts"]["raw.events_quarantine"]
    assert after["counts"]["marts.fct_events"] == before["counts"]["marts.fct_events"]

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    again = apply_retention(path, now=now, pii_days=30, raw_days=raw_days)
    assert not again.changed and not again.compacted and again.rolled_up_events == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_privacy_jobs_run_in_dagster(built_warehouse, tmp_path):
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.resources import WarehouseResource

    path = copy_warehouse(built_warehouse, tmp_path)
    resources = {"warehouse": WarehouseResource(duckdb_path=str(path))}
    erase_job = defs.resolve_job_def("erase_people")
    result = erase_job.execute_in_process(
        run_config={"ops": {"erase_people_op": {"config": {"ids": ["nobody-has-this-id"]}}}},
        instance=DagsterInstance.ephemeral(),
        resources=resources,
    )
    assert result.success
    assert "not found" in result.output_for_node("erase_people_op")

    con = duckdb.connect(str(path), read_only=True)
    try:
        valid = con.execute("select count(*) from raw.events_validated").fetchone()[0]
    finally:
        con.close()
    retention_job = defs.resolve_job_def("apply_retention")
    result = retention_job.execute_in_process(
        instance=DagsterInstance.ephemeral(), resources=resources
    )
    assert result.success
    outputs = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.event_type_value == "STEP_OUTPUT"
    ]
    # The sample's events are from 2025: older than the default 395-day window by the clock.
    assert outputs and outputs[0]["deleted/raw.events_validated"].value == valid
    assert [s.name for s in defs.schedules if s.job_name == "apply_retention"]
