"""The gate's lateness rule (event_too_late) and the release of late rows, on DuckDB and on a
throwaway PostgreSQL (skipped where the server binaries are missing).

An event stamped more than UBA_LATE_WINDOW_DAYS before the newest event time the warehouse
already holds is quarantined; the window is relative to the warehouse, never to the wall clock
(the fixture events are from 2025, gated in a later year), and an empty warehouse accepts its
whole history. `release_late` lets a batch's late rows in as a new load batch.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta

import pytest

from expectations.gate import GateError, GateRules, run_gate
from python_models.ingest.remote import load_into

NEWEST = datetime(2025, 3, 1, 10, 0, 0)
RULES = GateRules()  # the default corrupt-batch threshold: late rows are not defects


def event(event_id: str, at: datetime, /, **changes) -> str:
    """One JSON line; received a minute after the event unless said otherwise."""
    fields = {
        "event_id": event_id,
        "user_id": "u1",
        "anonymous_id": "a1",
        "event_name": "page_view",
        "event_ts": f"{at:%Y-%m-%dT%H:%M:%S}Z",
        "received_at": f"{at + timedelta(minutes=1):%Y-%m-%dT%H:%M:%S}Z",
        "properties": '{"page": "/home"}',
    }
    return json.dumps(fields | changes)


def write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    """An empty warehouse on each engine the gate's SQL is written for."""
    from python_models.config import reload_settings
    from python_models.warehouse import connect

    if request.param == "duckdb":
        con = connect(tmp_path / "warehouse.duckdb")
        yield con
        con.close()
        return
    from pg_server import NoPostgres, pg_environment, throwaway_postgres

    server = throwaway_postgres()
    try:
        port = server.__enter__()
    except NoPostgres as err:
        pytest.skip(str(err))
    saved = dict(os.environ)
    os.environ.update(pg_environment(port))
    reload_settings()
    con = connect()
    try:
        assert con.engine == "postgres"
        yield con
    finally:
        con.close()
        os.environ.clear()
        os.environ.update(saved)
        reload_settings()
        server.__exit__(None, None, None)


def verdicts(con, source_file) -> dict[str, str | None]:
    """event_id -> reasons (None when validated) for the raw rows of one file's first load."""
    rows = con.execute(
        """
        select e.event_id, q.reasons
        from raw.events as e
        left join raw.events_quarantine as q on q.raw_id = e.raw_id
        where e.source_file = ? and e.file_sha256 not like 'late-release%'
        """,
        [str(source_file)],
    ).fetchall()
    return dict(rows)


def reconciles(con) -> bool:
    raw, valid, quarantined = con.execute(
        """select (select count(*) from raw.events), (select count(*) from raw.events_validated),
            (select count(*) from raw.events_quarantine)"""
    ).fetchone()
    return raw == valid + quarantined


def test_a_first_load_accepts_its_whole_history(warehouse, tmp_path):
    history = write(tmp_path / "history.jsonl", [
        event("h-1990", datetime(1990, 6, 1)),
        event("h-2015", datetime(2015, 1, 1)),
        event("h-new", NEWEST),
    ])  # fmt: skip
    load_into(warehouse, history, progress=False)

    result = run_gate(warehouse, rules=RULES)

    assert result.rows_valid == 3
    assert verdicts(warehouse, history) == {"h-1990": None, "h-2015": None, "h-new": None}


def test_rows_older_than_the_window_before_the_newest_accepted_event_are_quarantined(
    warehouse, tmp_path
):
    first = write(tmp_path / "first.jsonl", [event("f-1", NEWEST - timedelta(days=30)),
                                             event("f-2", NEWEST)])  # fmt: skip
    load_into(warehouse, first, progress=False)
    run_gate(warehouse, rules=RULES)
    # received today (the next day's file): lateness counts from the event time only
    day = write(tmp_path / "day.jsonl", [
        event("d-inside", NEWEST - timedelta(days=7) + timedelta(minutes=1)),
        event("d-outside", NEWEST - timedelta(days=7) - timedelta(minutes=1)),
        event("d-year", NEWEST - timedelta(days=365), received_at="2025-03-02T08:00:00Z"),
        event("d-1990", datetime(1990, 1, 2), received_at="2025-03-02T08:00:00Z"),
        event("d-fresh", NEWEST + timedelta(hours=5)),
        # another defect as well: both reasons, in matrix order
        event("d-late-bad-json", NEWEST - timedelta(days=10), properties="{oops"),
        # two copies of one id, the late one received first: the copy without a reason is kept
        event("d-copy", NEWEST - timedelta(days=20), received_at="2025-03-01T11:00:00Z"),
        event("d-copy", NEWEST + timedelta(hours=1), received_at="2025-03-01T12:00:00Z"),
    ])  # fmt: skip
    load_into(warehouse, day, progress=False)

    result = run_gate(warehouse, rules=RULES)

    copies = warehouse.execute(
        "select e.event_ts, q.reasons from raw.events as e left join raw.events_quarantine as q"
        " on q.raw_id = e.raw_id where e.event_id = 'd-copy' order by e.row_number"
    ).fetchall()
    assert [reasons for _, reasons in copies] == ["event_too_late;duplicate_event_id", None]
    assert verdicts(warehouse, day) | {"d-copy": None} == {
        "d-inside": None,
        "d-outside": "event_too_late",
        "d-year": "event_too_late",
        "d-1990": "event_too_late",
        "d-fresh": None,
        "d-late-bad-json": "event_too_late;invalid_properties_json",
        "d-copy": None,
    }
    assert result.reasons == {"event_too_late": 5}  # the first reason of each row
    # 5 of 8 rows late, one also malformed: a late row is not a defect, the batch passes
    (batch,) = result.batches
    assert (batch.status, batch.rows_defective) == ("passed", 1)
    details = dict(
        warehouse.execute(
            "select event_id, detail from raw.events_quarantine where event_ts like '2024%'"
            " or event_ts like '1990%'"
        ).fetchall()
    )
    # how late (days before the newest accepted event, computed here), the setting, the way out
    load_id = result.batches[0].load_id
    for event_id, at in (
        ("d-year", NEWEST - timedelta(days=365)),
        ("d-1990", datetime(1990, 1, 2)),
    ):
        days = (NEWEST - at).total_seconds() / 86400
        assert re.search(rf"\b{days:.1f} days before the newest accepted event time "
                         r"2025-03-01 10:00:00", details[event_id]), details[event_id]  # fmt: skip
        assert "UBA_LATE_WINDOW_DAYS = 7" in details[event_id]
        assert f"--release-late {load_id}" in details[event_id]
    assert reconciles(warehouse)


def test_the_window_is_a_setting_and_zero_turns_the_rule_off(warehouse, tmp_path, monkeypatch):
    from python_models.config import reload_settings

    load_into(warehouse, write(tmp_path / "a.jsonl", [event("a", NEWEST)]), progress=False)
    run_gate(warehouse, rules=RULES)
    old = [event("b-3d", NEWEST - timedelta(days=3)), event("b-9d", NEWEST - timedelta(days=9))]
    narrow = write(tmp_path / "b.jsonl", old)
    load_into(warehouse, narrow, progress=False)
    monkeypatch.setenv("UBA_LATE_WINDOW_DAYS", "2")
    reload_settings()
    try:
        run_gate(warehouse, rules=GateRules.from_settings(max_quarantine_rate=1.0))
    finally:
        monkeypatch.delenv("UBA_LATE_WINDOW_DAYS")
        reload_settings()
    assert verdicts(warehouse, narrow) == {"b-3d": "event_too_late", "b-9d": "event_too_late"}

    off = write(tmp_path / "c.jsonl", [event("c-1990", datetime(1990, 1, 2))])
    load_into(warehouse, off, progress=False)
    run_gate(warehouse, rules=GateRules(max_quarantine_rate=1.0, late_window_days=0))
    assert verdicts(warehouse, off) == {"c-1990": None}


def test_late_rows_released_by_load_id_are_gated_again_as_a_new_batch(warehouse, tmp_path):
    load_into(warehouse, write(tmp_path / "a.jsonl", [event("a", NEWEST)]), progress=False)
    run_gate(warehouse, rules=RULES)
    day = write(tmp_path / "day.jsonl", [
        event("late-1", NEWEST - timedelta(days=40)),
        event("late-2", NEWEST - timedelta(days=400)),
        event("late-dup", NEWEST - timedelta(days=40), event_id="a"),  # accepted already
        event("late-bad", NEWEST - timedelta(days=40), event_name=""),
        event("fresh", NEWEST + timedelta(hours=1)),
    ])  # fmt: skip
    load_into(warehouse, day, progress=False)
    gated = run_gate(warehouse, rules=RULES)
    load_id = gated.batches[0].load_id
    assert gated.rows_valid == 1
    with pytest.raises(GateError, match="no rows quarantined as event_too_late alone"):
        run_gate(warehouse, rules=RULES, release_late=[1])

    released = run_gate(warehouse, rules=RULES, release_late=[load_id])

    # Only the rows quarantined for lateness alone, as a new batch, without the lateness rule.
    (batch,) = released.batches
    assert batch.load_id > load_id
    assert (batch.status, batch.rows_checked, batch.rows_valid) == ("passed", 2, 2)
    accepted = warehouse.execute(
        "select event_id, load_id, event_ts from raw.events_validated order by event_id"
    ).fetchall()
    assert [(e, i) for e, i, _ in accepted] == [
        ("a", 1), ("fresh", load_id), ("late-1", batch.load_id), ("late-2", batch.load_id)
    ]  # fmt: skip
    assert accepted[3][2] == NEWEST - timedelta(days=400)
    # The original quarantine rows stay (what happened), the copies reconcile.
    assert sorted(verdicts(warehouse, day).items()) == [
        ("a", "event_too_late;duplicate_event_id"),
        ("fresh", None),
        ("late-1", "event_too_late"),
        ("late-2", "event_too_late"),
        ("late-bad", "missing_event_name;event_too_late"),
    ]
    assert warehouse.execute(
        "select released_from, rows_released from raw.gate_late_releases"
    ).fetchall() == [(load_id, 2)]
    assert reconciles(warehouse)
    with pytest.raises(GateError, match=f"released already, as load_id {batch.load_id}"):
        run_gate(warehouse, rules=RULES, release_late=[load_id])


def test_uba_gate_says_how_to_let_late_rows_in_and_releases_once(tmp_path, monkeypatch, capsys):
    from python_models.cli import main
    from python_models.config import reload_settings

    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("UBA_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    reload_settings()
    try:
        first = write(tmp_path / "first.jsonl", [event("f", NEWEST)])
        day = write(tmp_path / "day.jsonl", [event("old", datetime(1990, 1, 2)),
                                            event("new", NEWEST + timedelta(hours=1))])  # fmt: skip
        assert main(["load", str(first)]) == 0 and main(["gate", "--no-docs"]) == 0
        assert main(["load", str(day)]) == 0
        capsys.readouterr()
        assert main(["gate", "--no-docs"]) == 0  # a late row is no failure
        said = capsys.readouterr().out
        assert "event_too_late                   1" in said
        assert "1 event(s) stamped more than 7 days before the newest accepted event" in said
        assert "uba gate --release-late LOAD_ID" in said

        assert main(["gate", "--no-docs", "--release-late", "2"]) == 0
        assert "valid                              1" in capsys.readouterr().out
        assert main(["gate", "--no-docs", "--release-late", "2"]) == 1
        assert "released already, as load_id 3" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        reload_settings()
