"""Late events through the whole daily path: the gate keeps them out (event_too_late), a
release lets them in as a new load batch, and the incremental models then hold exactly what a
full build of the accepted rows holds.

Real DuckDB, real dbt, the shared gated sample: the history is built, then a new file brings
events of known users stamped 30 and 200 days before the newest accepted event (received now,
as from a device whose clock or queue was off) with a few fresh ones. The daily models run
incrementally after the gate and again after `release_late`; then a full build of the same
warehouse is the reference (the models and bookkeeping of tests/integration/
test_daily_increment.py).
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta

import pytest
from increments import assert_same_rows, read, sorted_table
from test_daily_increment import DAILY_MODELS, RUN_COLUMNS, SELECT

from expectations.gate import run_gate
from python_models.dbt_runner import run_dbt
from python_models.ingest import load_path
from python_models.warehouse import connect

pytestmark = pytest.mark.slow


def _late_file(path, out) -> tuple[set[str], set[str]]:
    """Events of 12 known users: 8 late (30 or 200 days before the newest accepted event),
    4 fresh. Returns (late event ids, fresh event ids)."""
    newest = read(path, "select max(event_ts) as t from raw.events_validated")["t"][0]
    people = read(
        path,
        """select user_id, anonymous_id, event_name, properties from raw.events_validated
        where user_id is not null and anonymous_id is not null and event_name = 'page_view'
        qualify row_number() over (partition by user_id order by event_id) = 1
        order by user_id limit 12""",
    )
    lines, late, fresh = [], set(), set()
    for i, person in enumerate(people.iter_rows(named=True)):
        at = newest + timedelta(hours=1) if i >= 8 else newest - timedelta(days=(30, 200)[i % 2])
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"late-release-{i}"))
        (late if i < 8 else fresh).add(event_id)
        lines.append(json.dumps(person | {
            "event_id": event_id,
            "event_ts": f"{at:%Y-%m-%dT%H:%M:%S}.000Z",
            "received_at": f"{newest + timedelta(hours=2):%Y-%m-%dT%H:%M:%S}.000Z",
            "session_id": None,
        }))  # fmt: skip
    out.write_text("\n".join(lines) + "\n")
    return late, fresh


def _sessionized(path, event_ids: set[str]) -> set[str]:
    listed = ", ".join(f"'{e}'" for e in sorted(event_ids))
    found = read(
        path,
        f"select event_id from intermediate.int_events_sessionized where event_id in ({listed})",
    )
    return set(found["event_id"])


def test_released_late_events_flow_through_like_any_other(gated_warehouse, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(gated_warehouse, path)
    target = tmp_path / "target"
    run_dbt(["seed"], duckdb_path=path, quiet=True, target_path=target)
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    late, fresh = _late_file(path, tmp_path / "late.jsonl")

    con = connect(path)
    try:
        load_path(con, tmp_path / "late.jsonl", progress=False)
        gated = run_gate(con)
    finally:
        con.close()
    (batch,) = gated.batches
    assert (gated.rows_valid, gated.reasons) == (4, {"event_too_late": 8})
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    assert _sessionized(path, late | fresh) == fresh

    con = connect(path)
    try:
        released = run_gate(con, release_late=[batch.load_id])
    finally:
        con.close()
    assert (released.rows_checked, released.rows_valid) == (8, 8)
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    assert _sessionized(path, late | fresh) == late | fresh
    incremental = {name: sorted_table(path, name) for name in DAILY_MODELS}

    run_dbt(["run", "--full-refresh", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    for name in DAILY_MODELS:
        got, expected = (
            frame.drop(RUN_COLUMNS.get(name, []))
            for frame in (incremental[name], sorted_table(path, name))
        )
        assert_same_rows(got.sort(got.columns), expected.sort(expected.columns), name)
