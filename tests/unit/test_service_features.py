"""The scoring service's sequence features (python_models/service/features.py) against the
warehouse's own dbt-compiled SQL, on generated timelines built to sit on every edge of the
session rule: gaps of exactly the timeout and just over it, timestamp ties ordered by event id,
windows of exactly the max length, end events, local midnights across a DST change.

The mart reads its sessions from int_events_sessionized, so the SQL run is that chain: the
planted events as the staged table, int_events_sessionized's compiled SQL over them (the
sessions of every mart), then the mart's over its output. Both are compiled with every session
option switched on (vars overridden for the compile), and the service reads the same
overrides: the two must give the same rows, every column. Each overridden var, changed on the
service's side alone, must change some row: the timelines are sensitive to every setting, so
a definition that drifts fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from python_models.common.feature_events import project_vars
from python_models.config import DBT_PROJECT_DIR
from python_models.service.features import (
    EVENT_COLUMNS,
    LABEL_COLUMNS,
    FeatureDefinitionError,
    SequenceFeatures,
    SequenceSettings,
)

OVERRIDES = {
    "uba__session_timeout_minutes": 20,
    "uba__session_max_length_minutes": 60,
    "uba__session_end_events": ["logout"],
    "uba__session_split_at_midnight": True,
    "uba__session_time_zone": "America/New_York",
    "uba__sequence_length": 4,
}
TIMEOUT = timedelta(minutes=20)
MAX_LENGTH = timedelta(minutes=60)
NAMES = ["page_view", "click", "search", "login", "logout", "purchase", "add_to_cart", "signup"]


def _timelines() -> pl.DataFrame:
    """Five people's events, seeded; each gap drawn from the rule's edges."""
    rng = np.random.default_rng(17)
    tick = timedelta(microseconds=1)
    gaps = [
        timedelta(0),  # a tie: ordered by event id
        TIMEOUT,  # exactly the timeout: same session
        TIMEOUT + tick,  # just over: a new session
        timedelta(minutes=15),  # chains of these reach the max length
        timedelta(minutes=15),
        timedelta(hours=5),
        timedelta(seconds=7, microseconds=123_457),
    ]
    rows = []
    for person in range(5):
        # Around local midnight in New York, the week of the DST change (10 March 2024).
        ts = datetime(2024, 3, 8 + person, 4, 10, 0, 250_000)
        for number in range(70):
            rows.append((f"u{person}", f"e{rng.integers(10**6):06d}-{number}", ts))
            ts += gaps[rng.integers(len(gaps))]
    # Exactly the max length after a stretch's first event stays in its first window.
    start = datetime(2024, 3, 20, 12, 0)
    for number, minutes in enumerate([0, 15, 30, 45, 60, 60, 75, 90, 105, 120, 120.5]):
        rows.append(("u5", f"m{number:02d}", start + timedelta(minutes=minutes)))
    return pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event_id": [r[1] for r in rows],
            "event_name": rng.choice(NAMES, len(rows)).tolist(),
            "event_ts": [r[2] for r in rows],
        },
        schema=EVENT_COLUMNS,
    ).sort("user_id", "event_ts", "event_id")


@pytest.fixture(scope="module")
def chain_sql(tmp_path_factory) -> tuple[str, str]:
    """(int_events_sessionized reading the table `staged`, ftr_user_event_sequences reading
    the table `sessionized`), full builds compiled with OVERRIDES."""
    from python_models.dbt_runner import run_dbt

    work = tmp_path_factory.mktemp("compile")
    run_dbt(
        ["compile", "--select", "int_events_sessionized", "ftr_user_event_sequences"],
        duckdb_path=work / "compile.duckdb",
        dbt_vars=OVERRIDES,
        quiet=True,
        target_path=work / "target",
    )
    nodes = json.loads((work / "target" / "manifest.json").read_text())["nodes"]

    def compiled(model: str, parent: str, name: str) -> str:
        sql = nodes[f"model.uba.{model}"]["compiled_code"]
        relation = nodes[f"model.uba.{parent}"]["relation_name"]
        assert relation in sql
        sql = sql.replace(relation, name)
        assert '"compile".' not in sql, f"{model} reads more than {parent}"
        return sql

    return (
        compiled("int_events_sessionized", "stg_app__events", "staged"),
        compiled("ftr_user_event_sequences", "int_events_sessionized", "sessionized"),
    )


def _staged(timelines: pl.DataFrame, sessionize_sql: str) -> pl.DataFrame:
    """The planted events as stg_app__events rows: identified (user_hash = the person), no
    device, received when they happened; the other staged columns int_events_sessionized
    passes through (those it names as staged.<column>) null."""
    planted = {
        "event_id": timelines["event_id"],
        "user_hash": timelines["user_id"],
        "anonymous_hash": pl.repeat(None, timelines.height, dtype=pl.String, eager=True),
        "event_name": timelines["event_name"],
        "event_ts": timelines["event_ts"],
        "received_at": timelines["event_ts"],
    }
    passed = dict.fromkeys(re.findall(r"\bstaged\.(\w+)", sessionize_sql))
    assert set(planted) - {"anonymous_hash"} <= set(passed)
    return pl.DataFrame(
        [
            planted[c].alias(c)
            if c in planted
            else pl.repeat(None, timelines.height, dtype=pl.String, eager=True).alias(c)
            for c in {**planted, **passed}
        ]
    )


@pytest.fixture(scope="module")
def timelines() -> pl.DataFrame:
    return _timelines()


@pytest.fixture(scope="module")
def mart_rows(chain_sql, timelines) -> pl.DataFrame:
    sessionize_sql, mart_sql = chain_sql
    con = duckdb.connect(":memory:")
    try:
        con.register("staged", _staged(timelines, sessionize_sql).to_arrow())
        con.execute(f"create table sessionized as {sessionize_sql}")
        rows = con.execute(mart_sql).pl()
    finally:
        con.close()
    return rows.drop(LABEL_COLUMNS).sort("user_id", "event_ts", "event_id")


def _service_rows(settings: SequenceSettings, timelines: pl.DataFrame) -> pl.DataFrame:
    features = SequenceFeatures(settings)
    return pl.concat(
        features.frame(events) for _, events in timelines.group_by("user_id", maintain_order=True)
    )


@pytest.mark.slow  # one `dbt compile` (~10 s) for the module
def test_the_service_computes_the_marts_rows_with_every_session_option(timelines, mart_rows):
    settings = SequenceSettings.from_vars({**project_vars(), **OVERRIDES})
    settings.check_columns(mart_rows.columns)
    got = _service_rows(settings, timelines)
    assert got.columns == mart_rows.columns
    differing = {c: int((got[c] != mart_rows[c]).sum()) for c in got.columns}
    assert got.equals(mart_rows), {c: n for c, n in differing.items() if n}
    # Sessions start after gaps over the timeout and, by the other rules, after shorter ones
    # (each rule's own part is shown by the drift test below).
    starts = mart_rows.filter(
        (pl.col("session_event_number") == 1) & (pl.col("count_previous_sessions") > 0)
    )["seconds_since_previous_event_1"]
    timeout = TIMEOUT.total_seconds()
    assert (starts > timeout).sum() >= 10 and (starts <= timeout).sum() >= 10


@pytest.mark.slow
@pytest.mark.parametrize(
    "drift",
    [
        {"timeout_seconds": TIMEOUT.total_seconds() + 1},
        {"max_length_seconds": MAX_LENGTH.total_seconds() - 1},
        {"end_events": ()},
        {"split_at_midnight": False},
        {"time_zone": "UTC"},
        {"sequence_length": 3},
    ],
    ids=lambda drift: next(iter(drift)),
)
def test_a_setting_changed_on_one_side_changes_some_row(timelines, mart_rows, drift):
    settings = replace(SequenceSettings.from_vars({**project_vars(), **OVERRIDES}), **drift)
    got = _service_rows(settings, timelines)
    assert got.columns != mart_rows.columns or not got.equals(mart_rows)


def test_a_mart_with_other_columns_is_refused_in_one_line():
    settings = SequenceSettings.from_project()
    settings.check_columns([*settings.columns, *LABEL_COLUMNS])
    with pytest.raises(FeatureDefinitionError, match="not computed by the service: .'extra'"):
        settings.check_columns([*settings.columns, "extra"])
    with pytest.raises(FeatureDefinitionError, match="not in the mart: .'day_of_week'"):
        settings.check_columns(settings.columns[:-1])
    with pytest.raises(FeatureDefinitionError, match="another order"):
        settings.check_columns(settings.columns[::-1])


def test_the_service_gives_the_rows_of_the_marts_dbt_unit_test():
    """The mart's own dbt unit test (models/features/_features__models.yml): its fixture
    events (the service cuts their sessions itself: the fixture's planted sessions must be
    the service's too), its vars, its expected rows (but the label)."""
    catalogue = DBT_PROJECT_DIR / "models" / "features" / "_features__models.yml"
    (case,) = [
        t
        for t in yaml.safe_load(catalogue.read_text())["unit_tests"]
        if t["model"] == "ftr_user_event_sequences"
    ]
    (given,) = [g["rows"] for g in case["given"] if g["input"] == "ref('int_events_sessionized')"]
    events = (
        pl.DataFrame(given)
        .select(list(EVENT_COLUMNS))
        .with_columns(pl.col("event_ts").str.to_datetime("%Y-%m-%d %H:%M:%S"))
    )
    settings = SequenceSettings.from_vars({**project_vars(), **case["overrides"]["vars"]})
    features = SequenceFeatures(settings)
    rows = {
        row["event_id"]: row
        for _, person in events.group_by("user_id", maintain_order=True)
        for row in features.rows(person.cast(EVENT_COLUMNS).sort("event_ts", "event_id"))
    }
    expected = case["expect"]["rows"]
    assert len(expected) == len(rows) == 5
    for want in expected:
        got = rows[want["event_id"]]
        assert {c: got[c] for c in want if c not in LABEL_COLUMNS} == {
            c: v for c, v in want.items() if c not in LABEL_COLUMNS
        }
