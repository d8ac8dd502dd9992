"""The Dagster raw layer on real DuckDB files: the drift check warns on new columns and keys,
and the gate's blocking check fails on a corrupt batch with the gate's own rule and counts."""

from __future__ import annotations

import json

import dagster as dg

from orchestration.defs.ingest import (
    SCHEMA_DRIFT_CHECK,
    RawFilesConfig,
    check_raw_events_quality,
    events_validated,
    raw_events,
)
from orchestration.resources import WarehouseResource

GOOD = {
    "user_id": "u1",
    "event_name": "page_view",
    "event_ts": "2025-03-01T10:00:00Z",
    "received_at": "2025-03-01T10:00:02Z",
    "properties": {"page": "/home"},
}


def _materialize(tmp_path, lines: list[dict]):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return dg.materialize(
        [raw_events, events_validated, check_raw_events_quality],
        resources={"warehouse": WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb"))},
        run_config=dg.RunConfig({"raw__events": RawFilesConfig(path=str(path))}),
        raise_on_error=False,
    )


def _checks(result) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_schema_drift_warns_and_the_gate_passes(tmp_path):
    lines = [{"event_id": f"e{i}", **GOOD} for i in range(5)]
    lines[0] = {**lines[0], "app_version": "2.0", "properties": {"page": "/", "coupon": "X"}}

    result = _materialize(tmp_path, lines)

    checks = _checks(result)
    drift = checks[SCHEMA_DRIFT_CHECK]
    assert drift.passed is False and drift.severity == dg.AssetCheckSeverity.WARN
    text = drift.metadata["pending"].value
    assert "new_column: app_version" in text and "new_property_key: coupon on page_view" in text
    assert checks["check_raw_events_quality"].passed is True
    assert result.success


def test_a_corrupt_batch_fails_the_blocking_check_with_counts(tmp_path):
    lines = [{"event_id": f"c{i}", **GOOD, "event_ts": "garbage"} for i in range(9)]
    lines.append({"event_id": "ok", **GOOD})

    result = _materialize(tmp_path, lines)

    quality = _checks(result)["check_raw_events_quality"]
    assert quality.passed is False
    assert "blocked as corrupt: 9/10 rows defective (> 20%)" in quality.description
    materialized = result.asset_materializations_for_node("raw__events_validated")[0]
    assert materialized.metadata["batches_blocked"].value == 1


def test_the_load_asset_starts_the_gate_s_gx_import_when_it_finds_a_new_file(tmp_path, monkeypatch):
    """As `uba refresh`'s load: the gate, the run's next step in this process, finds Great
    Expectations imported beside the load (load_path calls it before the file's rows:
    tests/unit/test_ingest.py); a file loaded already starts nothing."""
    from expectations import preload

    started = []
    monkeypatch.setattr(preload, "start_suites_import", lambda: started.append("import"))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"event_id": f"e{i}", **GOOD}) + "\n" for i in range(3)))
    for _ in range(2):
        assert dg.materialize(
            [raw_events],
            resources={"warehouse": WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb"))},
            run_config=dg.RunConfig({"raw__events": RawFilesConfig(path=str(path))}),
        ).success
    assert started == ["import"]
