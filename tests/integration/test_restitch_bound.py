"""Which devices an incremental run re-stitches (int_events_sessionized), against planted
device timelines: a device whose new events cannot move a stored event ("settled": one user
before and after, or new events after its last identified event naming no other user) gives
them its user from int_identity_stitched without reading its stored events; any other device
is re-stitched from its last identified event before its new events, looked for among the week
before them when they arrive late, else from its first event. Each planted device's events are
checked against the stitching rule (an anonymous event goes to the user of the nearest later
identified event on its device, else the nearest earlier one), and the tables against a full
build, with int_identity_stitched current (its summary read) and lagging (the summary computed
from int_events_sessionized)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import polars as pl
import pytest
from increments import assert_same_rows, read
from test_dbt_core import write_validated, write_validated_append

from python_models.dbt_runner import run_dbt

START = datetime(2024, 3, 1)
WITH_STATE = ["--select", "+fct_events +int_newest_sequence_rows +int_identity_stitched"]
# int_identity_stitched left behind: it lags
WITHOUT_STATE = ["--select", "+fct_events +int_newest_sequence_rows"]
RUN_COLUMNS = {"intermediate.int_events_sessionized": ["batch_id", "previous_user_id"]}
NEWEST = "features.int_newest_sequence_rows"
TABLES = ["intermediate.int_events_sessionized", "marts.fct_events", NEWEST]
STITCHED = "intermediate.int_identity_stitched"  # built only where current


def _timelines() -> tuple[list[dict], list[dict], list[dict]]:
    """(history, a batch between, new batch) raw.events_validated rows; event ids name their
    planted role."""
    history: list[dict] = []
    between: list[dict] = []
    new: list[dict] = []

    def add(rows, event_id, user, device, day, hours=10):
        ts = START + timedelta(days=day, hours=hours)
        rows.append(
            {
                "raw_id": f"restitch:{event_id}",
                "event_id": event_id,
                "user_id": user,
                "anonymous_id": device,
                "event_name": "page_view",
                "event_ts": ts,
                "received_at": ts + timedelta(seconds=5),
                "session_id": None,
                "properties": json.dumps({"page": "/p/1", "device": "desktop", "country": "US"}),
                "loaded_at": ts + timedelta(seconds=65),
            }
        )

    # settled, one user: a late anonymous event and a new login of the same user
    add(history, "one-a-0", "ann", "dev-one", 1)
    add(history, "one-anon-0", None, "dev-one", 3)
    add(history, "one-a-1", "ann", "dev-one", 20)
    add(new, "one-late-anon", None, "dev-one", 15)
    add(new, "one-new", "ann", "dev-one", 22)
    # settled, shared: after its last identified event (bob's), a new anonymous event and a new
    # login of bob; the stored anonymous tail stays bob's
    add(history, "shared-a-0", "amy", "dev-shared", 1)
    add(history, "shared-b-0", "bob", "dev-shared", 10)
    add(history, "shared-tail", None, "dev-shared", 11)
    add(new, "shared-new-anon", None, "dev-shared", 21)
    add(new, "shared-new-b", "bob", "dev-shared", 22)
    # one user, then another: the stored anonymous tail after the first user's last event moves
    # to the new user (its nearest later identified event)
    add(history, "switch-a-0", "cid", "dev-switch", 1)
    add(history, "switch-tail", None, "dev-switch", 2)
    add(new, "switch-new-d", "dan", "dev-switch", 21)
    # shared, a late login a week and more after the last identified event before it: the week
    # before it holds no identified event, so the device is re-stitched from its first event;
    # the anonymous events on both sides of the week's start move to the late login's user
    add(history, "late-e-0", "eve", "dev-late", 1)
    add(history, "late-anon-early", None, "dev-late", 2)
    add(history, "late-anon-week", None, "dev-late", 9)
    add(history, "late-f-0", "fay", "dev-late", 20)
    add(new, "late-g", "gus", "dev-late", 12)
    add(new, "late-new-f", "fay", "dev-late", 22)
    # shared, a late anonymous event before its last identified event: the next identified
    # event (stored) names its user, found within the week before it
    add(history, "near-h-0", "hal", "dev-near", 10)
    add(history, "near-i-0", "ivy", "dev-near", 14)
    add(history, "near-h-1", "hal", "dev-near", 16)
    add(new, "near-late-anon", None, "dev-near", 15)
    add(new, "near-new-h", "hal", "dev-near", 22)
    # never identified: new anonymous events stay the device's; another device is seen first
    add(history, "anon-0", None, "dev-anon", 2)
    add(new, "anon-new", None, "dev-anon", 22)
    add(new, "fresh-anon", None, "dev-fresh", 22, hours=9)
    add(new, "fresh-j", "jo", "dev-fresh", 22)
    add(between, "other-0", "zed", "dev-other", 21)
    return history, between, new


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col(c).cast(pl.Datetime("us")) for c in ["event_ts", "received_at", "loaded_at"]
    )


def _tables(path) -> dict[str, pl.DataFrame]:
    out = {}
    for name in [*TABLES, STITCHED]:
        frame = read(path, f"select * from {name}").drop(RUN_COLUMNS.get(name, []))
        out[name] = frame.sort(frame.columns)
    return out


@pytest.fixture(scope="module", params=["state", "lagging"])
def restitch(request, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp(f"restitch-{request.param}")
    path = tmp / "warehouse.duckdb"
    target = tmp / "target"
    history, between, new = _timelines()
    write_validated(path, _frame(history))
    run_dbt(["seed"], duckdb_path=path, quiet=True, target_path=target)
    run_dbt(["run", *WITH_STATE], duckdb_path=path, quiet=True, target_path=target)
    # a batch of someone else's, after which int_identity_stitched is current or lags
    select = WITH_STATE if request.param == "state" else WITHOUT_STATE
    write_validated_append(path, _frame(between))
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=target)
    stored = read(path, "select * from intermediate.int_events_sessionized")
    write_validated_append(path, _frame(new))
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=target)
    compiled = next(target.glob("compiled/**/int_events_sessionized.sql")).read_text()
    sessionized = read(path, "select * from intermediate.int_events_sessionized")
    incremental = _tables(path)
    full_path = tmp / "full.duckdb"
    shutil.copy(path, full_path)
    run_dbt(
        ["run", "--full-refresh", *WITH_STATE],
        duckdb_path=full_path,
        quiet=True,
        target_path=target,
    )
    return {
        "param": request.param,
        "compiled": compiled,
        "stored": stored,
        "sessionized": sessionized,
        "incremental": incremental,
        "full": _tables(full_path),
    }


@pytest.mark.parametrize("name", TABLES)
def test_incremental_equals_a_full_build(restitch, name):
    assert_same_rows(restitch["incremental"][name], restitch["full"][name], name)


def test_device_summaries_merged_equal_a_full_build(restitch):
    """int_identity_stitched's new events merged into stored summaries (a shared device gaining
    a user other than its last one recomputed whole)."""
    if restitch["param"] == "lagging":
        pytest.skip("int_identity_stitched is left behind on purpose")
    stitched = restitch["incremental"][STITCHED]
    assert_same_rows(stitched, restitch["full"][STITCHED], STITCHED)
    assert stitched.height == 8


def test_the_summary_is_read_only_when_current(restitch):
    reads_summary = "int_identity_stitched" in restitch["compiled"]
    assert reads_summary == (restitch["param"] == "state")


def _user(restitch, event_id: str, frame: str = "sessionized") -> str:
    rows = restitch[frame]
    return rows.filter(pl.col("event_id") == event_id)["user_id"].item()


def _rewritten(restitch) -> set[str]:
    latest = restitch["sessionized"]["batch_id"].max()
    return set(restitch["sessionized"].filter(pl.col("batch_id") == latest)["event_id"])


def test_settled_devices_give_their_user_and_keep_stored_events(restitch):
    ann, bob = _user(restitch, "one-a-0"), _user(restitch, "shared-b-0")
    assert [_user(restitch, e) for e in ["one-late-anon", "one-new"]] == [ann, ann]
    assert [_user(restitch, e) for e in ["shared-new-anon", "shared-new-b"]] == [bob, bob]
    assert _user(restitch, "shared-tail") == bob
    # a device never identified keeps its anonymous events; a new one is its user's
    assert _user(restitch, "anon-new") == _user(restitch, "anon-0")
    assert _user(restitch, "fresh-anon") == _user(restitch, "fresh-j")
    assert _user(restitch, "fresh-anon") != _user(restitch, "anon-0")


def test_a_new_user_takes_the_stored_anonymous_tail(restitch):
    cid, dan = _user(restitch, "switch-a-0"), _user(restitch, "switch-new-d")
    assert _user(restitch, "switch-tail", "stored") == cid
    assert _user(restitch, "switch-tail") == dan
    assert "switch-tail" in _rewritten(restitch)


def test_a_person_who_lost_their_later_events_keeps_their_newest_remaining_row(restitch):
    """int_newest_sequence_rows: cid's anonymous tail (day 2) moves to dan, so cid's newest
    row goes back to their login (day 1), before anything of theirs the batch rewrote."""
    cid, dan = _user(restitch, "switch-a-0"), _user(restitch, "switch-new-d")
    newest = restitch["incremental"][NEWEST]
    assert newest.filter(pl.col("user_id") == cid)["event_id"].to_list() == ["switch-a-0"]
    assert newest.filter(pl.col("user_id") == dan)["event_id"].to_list() == ["switch-new-d"]


def test_a_late_login_more_than_a_week_after_the_last_identified_event(restitch):
    gus, fay = _user(restitch, "late-g"), _user(restitch, "late-f-0")
    assert [_user(restitch, e, "stored") for e in ["late-anon-early", "late-anon-week"]] == [
        fay,
        fay,
    ]
    # both move to the late login, the one before the week's start too
    assert [_user(restitch, e) for e in ["late-anon-early", "late-anon-week"]] == [gus, gus]
    assert _user(restitch, "late-e-0") != gus


def test_a_late_anonymous_event_takes_the_next_identified_user(restitch):
    assert _user(restitch, "near-late-anon") == _user(restitch, "near-h-1")
    assert _user(restitch, "near-i-0") != _user(restitch, "near-h-1")
