"""Where an incremental run re-cuts a person's sessions (int_events_sessionized, and the replay of
ftr_user_event_sequences), against planted timelines: a returning person's new event more than
the session timeout after their last one starts the re-cut at itself, leaving their earlier
rows as stored; a gap of the timeout or less, a late event inside an old gap, a long session
that the maximum length splits, and a device newly linked to a person with older events
re-cut from the right place. Each planted person's rewritten events and session numbers are
checked against what the timelines say, and every table against a full build."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import polars as pl
import pytest
from increments import assert_same_rows, read
from test_dbt_core import MAX_LENGTH_S, TIMEOUT_S, write_validated, write_validated_append

from python_models.dbt_runner import run_dbt

START = datetime(2024, 3, 1)
SELECT = ["--select", "+fct_event_transitions +ftr_user_event_sequences"]
# run-bookkeeping columns: which run wrote a row, and the person it moved from in that run
RUN_COLUMNS = {
    "intermediate.int_events_sessionized": ["batch_id", "previous_user_id"],
    "marts.fct_event_transitions": ["batch_id"],
}
TABLES = [
    "intermediate.int_events_sessionized",
    "marts.fct_events",
    "marts.fct_event_transitions",
    "features.ftr_user_event_sequences",
]


def _timelines() -> tuple[list[dict], list[dict]]:
    """(history, new batch) raw.events_validated rows; event ids name their planted role."""
    history: list[dict] = []
    new: list[dict] = []

    def add(rows, event_id, user, device, ts, name="page_view"):
        rows.append(
            {
                "raw_id": f"recut:{event_id}",
                "event_id": event_id,
                "user_id": user,
                "anonymous_id": device,
                "event_name": name,
                "event_ts": ts,
                "received_at": ts + timedelta(seconds=5),
                "session_id": None,
                "properties": json.dumps({"page": "/p/1", "device": "desktop", "country": "US"}),
                "loaded_at": ts + timedelta(seconds=65),
            }
        )

    day = timedelta(days=1)
    # returning / just under / exactly the timeout after the last stored event
    for who, gap in [("over", TIMEOUT_S + 1), ("under", TIMEOUT_S - 1), ("exact", TIMEOUT_S)]:
        first = START + day + timedelta(hours=10)
        for i, minutes in enumerate([0, 5, 10]):
            add(history, f"{who}-h1-{i}", who, None, first + timedelta(minutes=minutes))
        last = START + 20 * day + timedelta(hours=10)
        for i, minutes in enumerate([0, 5]):
            add(history, f"{who}-h2-{i}", who, None, last + timedelta(minutes=minutes))
        add(new, f"{who}-new", who, None, last + timedelta(minutes=5, seconds=gap))
    # a 30-hour stretch (events 25 minutes apart) that the 24-hour maximum length splits; the
    # new event 25 minutes after its last joins it ("long"), or comes just over the timeout
    # after it ("long-over")
    for who, gap in [("long", 25 * 60), ("long-over", TIMEOUT_S + 1)]:
        add(history, f"{who}-h0", who, None, START + 2 * day)
        stretch = START + 5 * day
        steps = 30 * 60 // 25
        for i in range(steps + 1):
            add(history, f"{who}-s-{i:03d}", who, None, stretch + timedelta(minutes=25 * i))
        add(new, f"{who}-new", who, None, stretch + timedelta(minutes=25 * steps, seconds=gap))
    # late events: into a gap of days ("gap"), and 29 minutes after an old session ("near")
    for who, late_after in [("gap", timedelta(days=1)), ("near", timedelta(minutes=29))]:
        for d, label in [(1, "a"), (4, "b"), (21, "c")]:
            for i in range(2):
                ts = START + d * day + timedelta(hours=9, minutes=10 * i)
                add(history, f"{who}-{label}-{i}", who, None, ts)
        session_end = START + day + timedelta(hours=9, minutes=10)
        add(new, f"{who}-late", who, None, session_end + late_after)
        add(new, f"{who}-new", who, None, START + 21 * day + timedelta(hours=12))
    # a device first seen anonymously, linked to "linked" only in the new batch
    add(history, "linked-own-0", "linked", "dev-linked-1", START + day + timedelta(hours=8))
    add(history, "linked-own-1", "linked", "dev-linked-1", START + 21 * day)
    for i in range(2):
        ts = START + 3 * day + timedelta(hours=8, minutes=5 * i)
        add(history, f"linked-anon-{i}", None, "dev-linked-2", ts)
    add(new, "linked-login", "linked", "dev-linked-2", START + 21 * day + timedelta(hours=2))
    return history, new


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col(c).cast(pl.Datetime("us")) for c in ["event_ts", "received_at", "loaded_at"]
    )


def _tables(path) -> dict[str, pl.DataFrame]:
    out = {}
    for name in TABLES:
        frame = read(path, f"select * from {name}").drop(RUN_COLUMNS.get(name, []))
        out[name] = frame.sort(frame.columns)
    return out


@pytest.fixture(scope="module")
def recut(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("recut")
    path = tmp / "warehouse.duckdb"
    target = tmp / "target"
    history, new = _timelines()
    write_validated(path, _frame(history))
    run_dbt(["seed"], duckdb_path=path, quiet=True, target_path=target)
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    stored = read(path, "select * from intermediate.int_events_sessionized")
    write_validated_append(path, _frame(new))
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    sessionized = read(path, "select * from intermediate.int_events_sessionized")
    incremental = _tables(path)
    full_path = tmp / "full.duckdb"
    shutil.copy(path, full_path)
    run_dbt(
        ["run", "--full-refresh", *SELECT], duckdb_path=full_path, quiet=True, target_path=target
    )
    return {
        "stored": stored,
        "sessionized": sessionized,
        "incremental": incremental,
        "full": _tables(full_path),
    }


@pytest.mark.parametrize("name", TABLES)
def test_incremental_equals_a_full_build(recut, name):
    assert_same_rows(recut["incremental"][name], recut["full"][name], name)


def _rewritten(recut) -> set[str]:
    """Event ids the incremental run wrote (its batch), stored or new."""
    latest = recut["sessionized"]["batch_id"].max()
    return set(recut["sessionized"].filter(pl.col("batch_id") == latest)["event_id"])


def _row(recut, event_id: str) -> dict:
    return recut["sessionized"].filter(pl.col("event_id") == event_id).row(0, named=True)


def test_a_returning_person_is_re_cut_from_the_new_event(recut):
    rewritten = _rewritten(recut)
    # more than the timeout after the last stored event: only the new event is written, and
    # it opens the person's third session, its gap carried from the stored event
    assert {e for e in rewritten if e.startswith("over-")} == {"over-new"}
    row = _row(recut, "over-new")
    assert (row["session_index"], row["event_index_in_session"]) == (3, 1)
    assert row["is_stretch_start"] and row["seconds_since_previous"] == TIMEOUT_S + 1
    # the timeout or less: the new event joins the last session, re-cut from its start
    for who in ["under", "exact"]:
        assert {e for e in rewritten if e.startswith(f"{who}-")} == {
            f"{who}-h2-0",
            f"{who}-h2-1",
            f"{who}-new",
        }
        row = _row(recut, f"{who}-new")
        assert (row["session_index"], row["event_index_in_session"]) == (2, 3)


def test_a_long_session_split_by_the_maximum_length(recut):
    rewritten = _rewritten(recut)
    steps = 30 * 60 // 25
    stretch = {f"long-s-{i:03d}" for i in range(steps + 1)}
    # joining the 30-hour stretch: re-cut from the stretch's start, not from the max-length
    # split; the new event lies in the stretch's second 24-hour window (session 3)
    assert {e for e in rewritten if e.startswith("long-") and "over" not in e} == stretch | {
        "long-new"
    }
    row = _row(recut, "long-new")
    split = steps * 25 * 60 // MAX_LENGTH_S  # whole windows before the new event: one
    assert (row["session_index"], row["is_stretch_start"]) == (2 + split, False)
    # just over the timeout after it: a new stretch, nothing stored rewritten
    assert {e for e in rewritten if e.startswith("long-over-")} == {"long-over-new"}
    assert _row(recut, "long-over-new")["session_index"] == 4


def test_a_late_event_in_an_old_gap(recut):
    rewritten = _rewritten(recut)
    stored = recut["stored"]
    # a day into a gap of days: re-cut from the late event; the later sessions move up one
    assert {e for e in rewritten if e.startswith("gap-")} == {
        "gap-late",
        "gap-b-0",
        "gap-b-1",
        "gap-c-0",
        "gap-c-1",
        "gap-new",
    }
    assert _row(recut, "gap-late")["session_index"] == 2
    for event_id in ["gap-b-0", "gap-c-1"]:
        before = stored.filter(pl.col("event_id") == event_id)["session_index"].item()
        assert _row(recut, event_id)["session_index"] == before + 1
    # 29 minutes after an old session: joins it, re-cut from that session's start
    assert {"near-a-0", "near-a-1", "near-late"} <= rewritten
    near = [_row(recut, e)["session_index"] for e in ["near-late", "near-b-0"]]
    assert near == [1, 2]


def test_a_device_newly_linked_to_a_person_with_older_events(recut):
    rewritten = _rewritten(recut)
    linked = _row(recut, "linked-own-0")["user_id"]
    # the device's anonymous events move to the person, between their two stored sessions:
    # re-cut from the first moved event; the earlier session stays as stored
    assert "linked-own-0" not in rewritten
    assert {"linked-anon-0", "linked-anon-1", "linked-own-1", "linked-login"} <= rewritten
    indexes = [
        (_row(recut, e)["user_id"], _row(recut, e)["session_index"])
        for e in ["linked-anon-0", "linked-own-1", "linked-login"]
    ]
    assert indexes == [(linked, 2), (linked, 3), (linked, 4)]
    moved = _row(recut, "linked-anon-0")["previous_user_id"]
    assert moved is not None and moved != linked
