"""The daily increment: history built, then one new day (with late-arriving events) run
incrementally, equals a full build of the same data, row for row, for the models that replay
only what changed: funnel attempts (and their steps), event transitions, event sequences, and
the funnel conversion reports (rebuilt from the first period a replayed attempt can touch).

Real DuckDB, real dbt, the shared generated sample (conftest's gated_warehouse): the rows
received on its last day are held back as the new day, together with a seeded 3% of the
events of the week before (received late: they land before sessions and attempts already
stored, so stored sessions are re-cut, attempts re-opened and sequences replayed).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from increments import assert_same_rows, hold_back, read, release_held_back, sorted_table

from python_models.dbt_runner import DbtError, run_dbt
from python_models.warehouse import connect

DAILY_MODELS = [
    "marts.fct_funnel_attempts",
    "marts.fct_funnel_attempt_steps",
    "marts.fct_event_transitions",
    "features.ftr_user_event_sequences",
    "features.int_newest_sequence_rows",
    "features.ftr_user_day_activity",
    "intermediate.int_user_first_seen",
    "intermediate.int_user_value_counts",
    "marts.dim_users",
    "features.int_feature_user_days",
    "features.int_feature_user_day_items",
    "features.int_feature_user_weeks",
    "features.int_feature_windowed_activity",
    "features.int_feature_diversity",
    "features.int_feature_lifetime_totals",
    "features.int_feature_session_stats",
    "features.ftr_user_features",
    "features.ftr_user_labels",
    "reports.int_event_paths_counted",
    "reports.rpt_event_transitions",
    "reports.rpt_path_ngrams",
    "reports.rpt_funnel_conversion_daily",
    "reports.rpt_funnel_conversion_weekly",
    "reports.rpt_active_users_daily",
    "reports.rpt_load_hourly",
    "marts.fct_user_lifecycle_weekly",
    "staging.stg_app__user_holdout_buckets",
    "marts.dim_user_holdout_groups",
    "staging.stg_app__event_audit_properties",
    "marts.dim_user_audit_attributes",
]
# Bookkeeping columns that say which run wrote a row: a full build writes every row at once.
RUN_COLUMNS = {"marts.fct_event_transitions": ["batch_id"]}
SELECT = [
    "--select",
    "+fct_event_transitions +ftr_user_event_sequences +int_newest_sequence_rows",
    "+ftr_user_day_activity",
    "+rpt_funnel_conversion_daily +rpt_funnel_conversion_weekly +rpt_active_users_daily",
    "+rpt_event_transitions +rpt_path_ngrams",
    "+int_feature_windowed_activity +int_feature_diversity +ftr_user_features +ftr_user_labels",
    "+rpt_load_hourly",
    "+fct_user_lifecycle_weekly +dim_user_holdout_groups +dim_users +dim_user_audit_attributes",
    "+fct_sessions",  # the sessions reconciliation
]


@pytest.fixture(scope="module")
def daily_increment(gated_warehouse, tmp_path_factory) -> dict:
    """History built in full, then the held-back day run incrementally; the tables after the
    increment, and the warehouse to full-refresh."""
    tmp = tmp_path_factory.mktemp("daily")
    path = tmp / "warehouse.duckdb"
    shutil.copy(gated_warehouse, path)
    cut = read(path, "select cast(max(received_at) as date) as cut from raw.events_validated")[
        "cut"
    ][0]
    # the last day, and 3% of the week before it arriving late with it
    hold_back(
        path,
        "received_at >= ? or (event_ts >= cast(? as timestamp) - interval 7 day "
        "and hash(event_id || 'late') % 100 < 3)",
        [cut, cut],
    )
    late = read(path, "select count(*) as n from raw.held_back where received_at < ?", [cut])
    late = late["n"][0]
    target = tmp / "target"
    run_dbt(["seed"], duckdb_path=path, quiet=True, target_path=target)
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    history = {name: sorted_table(path, name) for name in DAILY_MODELS}
    release_held_back(path)
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    incremental = {name: sorted_table(path, name) for name in DAILY_MODELS}
    after_increment = tmp / "after_increment.duckdb"
    shutil.copy(path, after_increment)
    run_dbt(["run", "--full-refresh", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    full = {name: sorted_table(path, name) for name in DAILY_MODELS}
    return {
        "cut": cut,
        "late": late,
        "history": history,
        "incremental": incremental,
        "full": full,
        "after_increment": after_increment,
        "warehouse": path,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", DAILY_MODELS)
def test_one_new_day_incrementally_equals_a_full_build(daily_increment, name):
    run_columns = RUN_COLUMNS.get(name, [])
    incremental, full = (
        daily_increment[build][name].drop(run_columns) for build in ("incremental", "full")
    )
    assert_same_rows(incremental.sort(incremental.columns), full.sort(full.columns), name)


def _a_week_later(daily_increment: dict, tmp_path: Path) -> Path:
    """A copy of the warehouse after the increment with a few of the last day's events again,
    a week later, as a new load batch (no late event: all after the stored ones)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    con = connect(path)
    try:
        con.execute(
            "insert into raw.events_validated select * replace ("
            "raw_id || '-next' as raw_id, event_id || '-next' as event_id,"
            " event_ts + interval 7 day as event_ts, received_at + interval 7 day as received_at,"
            " (select max(load_id) + 1 from raw.events_validated) as load_id)"
            " from raw.events_validated where received_at >= ? and hash(event_id) % 10 = 0",
            [daily_increment["cut"]],
        )
    finally:
        con.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize("build", ["history", "incremental"])
def test_the_newest_sequence_rows_are_each_person_s_newest_event(daily_increment, build):
    """int_newest_sequence_rows (what next action scores) holds, per person of the sequence
    mart, the row of their latest event (ties: the largest event_id), without the label; after
    the history and after the new day, whose late events and re-stitched people change some
    persons' newest rows and not others'."""
    sequences = daily_increment[build]["features.ftr_user_event_sequences"]
    newest = daily_increment[build]["features.int_newest_sequence_rows"]
    expected = (
        sequences.sort("user_id", "event_ts", "event_id")
        .group_by("user_id", maintain_order=True)
        .last()
        .drop("next_event_name")
    )
    assert newest.columns == expected.columns
    assert_same_rows(newest.sort("user_id"), expected.sort("user_id"), build)
    if build == "incremental":  # the day moved some persons' newest rows, not everyone's
        before = daily_increment["history"]["features.int_newest_sequence_rows"]
        moved = newest.join(before, on=["user_id", "event_id"], how="anti").height
        assert 0 < moved < newest.height


@pytest.mark.slow
def test_lifecycle_of_a_day_in_a_new_week_equals_a_full_build(daily_increment, tmp_path):
    """A day that starts a new week: everyone whose last active week was the stored latest week
    gets the 'dormant' row a full build gives them, though their events did not change (the
    fixture's new day is in the history's last week, so it does not test this)."""
    path = _a_week_later(daily_increment, tmp_path)
    select = ["--select", "+fct_user_lifecycle_weekly"]
    name = "marts.fct_user_lifecycle_weekly"
    before = sorted_table(path, name)
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=tmp_path / "target")
    incremental = sorted_table(path, name)
    run_dbt(
        ["run", "--full-refresh", *select],
        duckdb_path=path,
        quiet=True,
        target_path=tmp_path / "target",
    )
    full = sorted_table(path, name)
    assert_same_rows(incremental, full, name)
    # the new week reached people whose events did not change: new dormant rows
    weeks = incremental.filter(pl.col("lifecycle_status") == "dormant")["lifecycle_week"]
    assert (
        weeks.max() > before.filter(pl.col("lifecycle_status") == "dormant")["lifecycle_week"].max()
    )


@pytest.mark.slow
def test_load_hourly_of_a_later_day_recounts_from_the_stored_last_hour(daily_increment, tmp_path):
    """A day with no late event (a week later), so rpt_load_hourly recounts from its stored last
    hour: that hour becomes complete, the empty hours up to the new ones are zero-filled, the
    hours before keep their rows, and the table equals a full build and a recount of fct_events
    per hour."""
    path = _a_week_later(daily_increment, tmp_path)
    select = ["--select", "+rpt_load_hourly"]
    name = "reports.rpt_load_hourly"
    before = sorted_table(path, name)
    stored_last = before.filter(~pl.col("is_complete"))["hour_ts"][0]
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=tmp_path / "target")
    incremental = sorted_table(path, name)
    recount = read(
        path,
        "select date_trunc('hour', event_ts) as hour_ts, count(*) as count_events,"
        " count(distinct user_id) as count_active_users from marts.fct_events group by 1",
    )
    run_dbt(
        ["run", "--full-refresh", *select],
        duckdb_path=path,
        quiet=True,
        target_path=tmp_path / "target",
    )
    assert_same_rows(incremental, sorted_table(path, name), name)
    # the hours before the stored last one are the stored rows; that one is complete now
    assert_same_rows(
        incremental.filter(pl.col("hour_ts") < stored_last),
        before.filter(pl.col("hour_ts") < stored_last),
        name,
    )
    assert incremental.filter(pl.col("hour_ts") == stored_last)["is_complete"][0]
    assert incremental.filter(~pl.col("is_complete"))["hour_ts"][0] > stored_last
    counted = incremental.join(recount, on="hour_ts", how="left", suffix="_recount")
    assert (counted["count_events"] == counted["count_events_recount"].fill_null(0)).all()
    assert (
        counted["count_active_users"] == counted["count_active_users_recount"].fill_null(0)
    ).all()
    zero_filled = incremental.filter(
        (pl.col("hour_ts") > stored_last) & (pl.col("count_events") == 0)
    )
    assert zero_filled.height > 0


@pytest.mark.slow
def test_the_new_day_reopens_stored_attempts_and_sessions(daily_increment):
    """The sample really exercises the replay: late events, attempts still open at the cut
    that the new day converts or extends, and event sequences whose label was open."""
    cut = daily_increment["cut"]
    assert daily_increment["late"] > 50
    before = daily_increment["history"]["marts.fct_funnel_attempts"]
    after = daily_increment["full"]["marts.fct_funnel_attempts"]
    keys = ["funnel_name", "funnel_level", "attempt_id"]
    changed = before.join(after, on=keys, suffix="_after").filter(
        pl.col("steps_completed") != pl.col("steps_completed_after")
    )
    assert changed.height > 0, "no stored attempt progressed with the new day"
    assert (after["started_date"] < cut).sum() > (before["started_date"] < cut).sum(), (
        "late events started no attempt before the cut"
    )
    # sequence rows stored before the increment keep their event and gain labels or change
    sequences_before = daily_increment["history"]["features.ftr_user_event_sequences"]
    assert sequences_before["next_event_name"].null_count() > 0


def _data_tests(path: Path, tmp_path: Path, *extra: str) -> None:
    run_dbt(
        ["test", "--select", "fct_funnel_attempts,test_type:data", *extra],
        duckdb_path=path,
        quiet=True,
        target_path=tmp_path / "target",
    )


# The people the latest batch touched (its events' users).
TOUCHED = (
    "select user_id from intermediate.int_events_sessionized "
    "where batch_id = (select max(batch_id) from intermediate.int_events_sessionized)"
)


def _null_one_funnel_name(path, membership: str) -> int:
    """Blank funnel_name on one attempt of a person the latest batch touched ("in") or did not
    ("not in"); the rows changed."""
    con = connect(path)
    try:
        return con.execute(
            f"update marts.fct_funnel_attempts set funnel_name = null where attempt_id = ("
            f"select min(attempt_id) from marts.fct_funnel_attempts "
            f"where user_id {membership} ({TOUCHED}))"
        ).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_data_tests_check_the_rows_of_the_latest_batch(daily_increment, tmp_path):
    """After a daily run, a model's data tests read only the rows of the people that run
    touched (uba_test_scope): a broken row of someone else passes the daily tests and fails
    the weekly whole-table ones; a broken row of a touched person fails the daily ones."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    touched = TOUCHED
    assert _null_one_funnel_name(path, "not in") == 1
    _data_tests(path, tmp_path)
    with pytest.raises(DbtError, match="not_null_fct_funnel_attempts_funnel_name"):
        _data_tests(path, tmp_path, "--vars", "{uba__full_data_tests: true}")

    con = connect(path)
    try:
        con.execute(
            f"update marts.fct_funnel_attempts set funnel_name = null where attempt_id = ("
            f"select min(attempt_id) from marts.fct_funnel_attempts where user_id in ({touched}))"
        )
    finally:
        con.close()
    with pytest.raises(DbtError, match="not_null_fct_funnel_attempts_funnel_name"):
        _data_tests(path, tmp_path)


@pytest.mark.slow
def test_a_first_build_checks_whole_tables(daily_increment, tmp_path):
    """While int_events_sessionized holds a full build's rows only (batch 1: a first build, here
    the fixture's full refresh), the latest-batch scopes give way to whole tables: an attempt
    with no person, which no person-scoped test can see (its key is in no batch), fails its
    not_null test; after an increment the same row passes the daily (scoped) tests."""
    path = tmp_path / "warehouse.duckdb"
    for state, whole in (("warehouse", True), ("after_increment", False)):
        shutil.copy(daily_increment[state], path)
        batches = read(path, "select max(batch_id) as b from intermediate.int_events_sessionized")
        assert (batches["b"][0] == 1) == whole, state
        con = connect(path)
        try:
            con.execute(
                "update marts.fct_funnel_attempts set user_id = null "
                "where attempt_id = (select min(attempt_id) from marts.fct_funnel_attempts)"
            )
        finally:
            con.close()
        if whole:
            with pytest.raises(DbtError, match="not_null_fct_funnel_attempts_user_id"):
                _data_tests(path, tmp_path)
        else:
            _data_tests(path, tmp_path)


SCOPED_SINGULAR_TESTS = "assert_event_sequence_labels_match_transitions"
# A broken row per scoped singular test: (table, key column, where it is broken, the rows a
# daily run checks: the transition rows it wrote).
BROKEN_ROWS = {
    "assert_event_sequence_labels_match_transitions": (
        "features.ftr_user_event_sequences",
        "event_id",
        "next_event_name = 'bogus_event'",
        "select event_id from marts.fct_event_transitions "
        "where batch_id = (select max(batch_id) from marts.fct_event_transitions)",
    ),
}


def _singular_tests(path: Path, tmp_path: Path, *extra: str) -> None:
    run_dbt(
        ["test", "--select", SCOPED_SINGULAR_TESTS, *extra],
        duckdb_path=path,
        quiet=True,
        target_path=tmp_path / "target",
    )


def _break_rows(path: Path, checked_daily: bool) -> None:
    con = connect(path)
    try:
        for table, key, broken, daily_rows in BROKEN_ROWS.values():
            membership = "in" if checked_daily else "not in"
            changed = con.execute(
                f"update {table} set {broken} where {key} = (select min({key}) from {table} "
                f"where {key} {membership} ({daily_rows}))"
            ).fetchone()[0]
            assert changed == 1, table
    finally:
        con.close()


@pytest.mark.slow
def test_singular_tests_check_what_the_daily_run_wrote(daily_increment, tmp_path):
    """The singular test that joins two whole event-grain marts checks, after a daily run, the
    transition rows it wrote: a broken row elsewhere passes the daily run and fails the weekly
    whole-table one; a broken row in that scope fails both."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    _singular_tests(path, tmp_path)  # the increment itself passes
    _break_rows(path, checked_daily=False)
    _singular_tests(path, tmp_path)
    with pytest.raises(DbtError) as weekly:
        _singular_tests(path, tmp_path, "--vars", "{uba__full_data_tests: true}")
    for name in BROKEN_ROWS:
        assert name in str(weekly.value)

    shutil.copy(daily_increment["after_increment"], path)
    _break_rows(path, checked_daily=True)
    with pytest.raises(DbtError) as daily:
        _singular_tests(path, tmp_path)
    for name in BROKEN_ROWS:
        assert name in str(daily.value)


@pytest.mark.slow
def test_scoped_unique_test_catches_a_touched_duplicate_and_streams_the_table(
    daily_increment, tmp_path
):
    """A duplicated funnel step of a person the latest batch touched fails the daily unique
    test, one of an untouched person does not (it is the weekly run's); and the scoped query
    keeps the tested table out of every hash join's build side (macros/uba_test_scope.sql: a
    semi join built on the whole table ran out of memory on a 10M history)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    batch = "(select max(batch_id) from intermediate.int_events_sessionized)"
    touched = f"select user_id from intermediate.int_events_sessionized where batch_id = {batch}"
    steps = "marts.fct_funnel_attempt_steps"
    con = connect(path)
    try:
        for scope in ("in", "not in"):
            con.execute(
                f"insert into {steps} select * from {steps} where attempt_id = ("
                f"select min(attempt_id) from {steps} where user_id {scope} ({touched})) "
                "and step_number = 1"
            )
    finally:
        con.close()
    target = tmp_path / "target"
    name = "uba_unique_combination_of_columns_fct_funnel_attempt_steps_attempt_id__step_number"
    with pytest.raises(DbtError, match=name):
        run_dbt(["test", "--select", name], duckdb_path=path, quiet=True, target_path=target)
    results = json.loads((target / "run_results.json").read_text())["results"]
    (result,) = [r for r in results if r["unique_id"].startswith("test.")]
    assert result["failures"] == 1, "the daily test must find the touched person's copy only"

    node = json.loads((target / "manifest.json").read_text())["nodes"][result["unique_id"]]
    sql = node["compiled_code"]
    con = connect(path, read_only=True)
    try:
        plan = json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1])
    finally:
        con.close()
    tested = "warehouse.marts.fct_funnel_attempt_steps"
    assert tested in json.dumps(plan)
    assert not [tables for tables in _hash_join_build_tables(plan) if tested in tables]


@pytest.mark.slow
@pytest.mark.parametrize("written", [True, False])
def test_the_sequences_unique_event_test_checks_the_events_the_latest_batch_wrote(
    daily_increment, tmp_path, written
):
    """ftr_user_event_sequences' daily unique test on event_id is scoped to the events the
    latest batch wrote (the rows a run replaces): a copied row of such an event fails it, a
    copied row of an event the batch did not write, even of a person it touched, is the weekly
    run's."""
    rows = f"select {{}} from {SESSIONIZED} where batch_id = {LATEST_BATCH}"
    chosen = (
        f"event_id in ({rows.format('event_id')})"
        if written
        else f"user_id in ({rows.format('user_id')}) "
        f"and event_id not in ({rows.format('event_id')})"
    )
    _copy_a_row_then_test(
        daily_increment["after_increment"],
        tmp_path,
        "features.ftr_user_event_sequences",
        f"event_id = (select min(event_id) from features.ftr_user_event_sequences where {chosen})",
        "unique_ftr_user_event_sequences_event_id",
        daily_fails=written,
    )


@pytest.mark.slow
@pytest.mark.parametrize("written", [True, False])
def test_the_user_day_unique_test_checks_the_days_the_latest_batch_wrote(
    daily_increment, tmp_path, written
):
    """fct_user_activity_daily's daily tests are scoped to the days the latest batch's events
    fall on (__latest_batch_days__ on its activity_date): a copied row on such a day fails the
    unique test, a copied row of an earlier day is the weekly run's."""
    first_day = (
        f"(select min(cast(event_ts as date)) from {SESSIONIZED} where batch_id = {LATEST_BATCH})"
    )
    table = "marts.fct_user_activity_daily"
    day = f"(select {'max' if written else 'min'}(activity_date) from {table})"
    assert read(daily_increment["after_increment"], f"select {day} >= {first_day} as in_scope")[
        "in_scope"
    ].to_list() == [written]
    _copy_a_row_then_test(
        daily_increment["after_increment"],
        tmp_path,
        table,
        f"activity_date = {day} and user_id = "
        f"(select min(user_id) from {table} where activity_date = {day})",
        "uba_unique_combination_of_columns_fct_user_activity_daily_user_id__activity_date",
        daily_fails=written,
    )


SESSIONIZED = "intermediate.int_events_sessionized"
LATEST_BATCH = f"(select max(batch_id) from {SESSIONIZED})"


def _copy_a_row_then_test(
    warehouse: Path, tmp_path: Path, table: str, row: str, test: str, daily_fails: bool
) -> None:
    """On a copy of `warehouse`, store the `row` of `table` twice, then run `test` as a day's
    run does (it fails when `daily_fails`) and, when it passes, as the weekly run does (every
    row: it fails)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, path)
    con = connect(path)
    try:
        copied = con.execute(f"insert into {table} select * from {table} where {row}").fetchone()
        assert copied == (1,), f"{row} chose {copied} rows of {table}, not one"
    finally:
        con.close()
    target = tmp_path / "target"
    select = ["test", "--select", test]
    if daily_fails:
        with pytest.raises(DbtError, match=test):
            run_dbt(select, duckdb_path=path, quiet=True, target_path=target)
        return
    run_dbt(select, duckdb_path=path, quiet=True, target_path=target)
    with pytest.raises(DbtError, match=test):  # the weekly run checks every row
        run_dbt(
            [*select, "--vars", "{uba__full_data_tests: true}"],
            duckdb_path=path,
            quiet=True,
            target_path=target,
        )


def _hash_join_build_tables(plan: list[dict]) -> list[set[str]]:
    """The tables under each hash join's build side (DuckDB builds on the second child), but
    not below a window: on DuckDB a unique test's re-check (uba_repeated_by_digest) builds on
    the digests that its sorted digests (a window) show twice, not on the rows; the joins
    below the window are walked as any other."""
    found: list[set[str]] = []

    def tables(node: dict) -> set[str]:
        if node.get("name") == "WINDOW":
            return set()
        own = {node.get("extra_info", {}).get("Table", "")} - {""}
        return own.union(*(tables(child) for child in node.get("children", [])))

    def walk(node: dict) -> None:
        if node.get("name") == "HASH_JOIN":
            found.append(tables(node["children"][1]))
        for child in node.get("children", []):
            walk(child)

    for root in plan:
        walk(root)
    return found


@pytest.mark.slow
def test_the_active_users_report_recounts_every_day_when_it_reads_everything(
    daily_increment, tmp_path
):
    """rpt_active_users_daily with no consumed batch recorded (a table an earlier version built
    in full, or the bookkeeping reset) re-reads everything: its incremental run recounts every
    day, the same rows as before."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    name = "reports.rpt_active_users_daily"
    before = sorted_table(path, name)
    con = connect(path)
    try:
        con.execute(
            "delete from main.uba_consumed_batches where consumer = 'rpt_active_users_daily'"
        )
    finally:
        con.close()
    select = ["run", "--select", "rpt_active_users_daily"]
    run_dbt(select, duckdb_path=path, quiet=True, target_path=tmp_path / "target")
    assert before.height > 100
    assert_same_rows(sorted_table(path, name), before, name)


@pytest.mark.slow
def test_rolling_active_users_recount_the_events(daily_increment):
    """rpt_active_users_daily (running sums of per-user spans) equals a plain recount from
    fct_events: distinct users with an event in the 1 / 7 / 28 days ending each day."""
    path = daily_increment["warehouse"]
    report = read(path, "select * from reports.rpt_active_users_daily").sort("activity_date")
    user_days = read(path, "select distinct user_id, event_date from marts.fct_events")
    spread = user_days.with_columns(pl.int_ranges(0, 28).alias("offset")).explode("offset")
    spread = spread.with_columns(
        (pl.col("event_date") + pl.duration(days=pl.col("offset"))).alias("activity_date")
    )
    expected = (
        spread.group_by("activity_date")
        .agg(
            pl.col("user_id").filter(pl.col("offset") == 0).n_unique().alias("dau"),
            pl.col("user_id").filter(pl.col("offset") < 7).n_unique().alias("wau"),
            pl.col("user_id").n_unique().alias("mau"),
        )
        .filter(pl.col("activity_date") <= user_days["event_date"].max())
    )
    joined = report.join(expected, on="activity_date", how="full", coalesce=True).with_columns(
        pl.col("dau", "wau", "mau").fill_null(0)
    )
    assert (
        joined.height
        == report.height
        == (user_days["event_date"].max() - user_days["event_date"].min()).days + 1
    )
    for ours, theirs in [
        ("daily_active_users", "dau"),
        ("weekly_active_users", "wau"),
        ("monthly_active_users", "mau"),
    ]:
        assert (joined[ours] == joined[theirs]).all(), ours
    assert report["monthly_active_users"].max() > report["daily_active_users"].max()


@pytest.mark.slow
def test_daily_data_tests_from_compiled_sql_pass_and_fail_as_their_nodes(
    daily_increment, tmp_path, monkeypatch
):
    """`uba refresh` runs the data tests from the SQL dbt compiled for them
    (python_models/dbt_daily_tests.py): after a daily run they pass as the nodes do, keep the
    nodes' scope (a broken row of an untouched person passes, as in dbt), and a broken row
    of a touched person fails, naming the test and showing the failing row."""
    from python_models import dbt_daily_tests

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(daily_increment["after_increment"], path)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    _data_tests(path, tmp_path)  # the nodes pass and compile their SQL into manifest.json
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    # a run that did not compile every test gives no plan: a refresh would miss tests
    assert dbt_daily_tests.compiled_tests(manifest) is None
    assert dbt_daily_tests.save_plan("fingerprint") == 0
    assert dbt_daily_tests.load_plan("fingerprint") is None
    plan = dbt_daily_tests.compiled_tests(manifest, require_all=False)
    names = {test["name"] for test in plan}
    # The plan is replayed on later days: its SQL must not hold this day's batch number.
    con = connect(path)
    try:
        (latest,) = con.execute(
            "select max(batch_id) from intermediate.int_events_sessionized"
        ).fetchone()
    finally:
        con.close()
    pinned = re.compile(rf"batch_id\s*(=|>=|>)\s*{latest}\b")
    assert not [test["name"] for test in plan if pinned.search(test["sql"])]
    assert "not_null_fct_funnel_attempts_funnel_name" in names and len(plan) >= 5

    def run_plan() -> dbt_daily_tests.TestsOutcome:
        con = connect(path)
        try:
            return dbt_daily_tests.run_plan(con, plan)
        finally:
            con.close()

    outcome = run_plan()
    assert outcome.failed == [] and outcome.passed + len(outcome.warned) == len(plan)

    for membership, fails in (("not in", False), ("in", True)):
        assert _null_one_funnel_name(path, membership) == 1
        outcome = run_plan()
        if not fails:
            assert outcome.failed == []
            continue
        assert len(outcome.failed) == 1
        assert outcome.failed[0].startswith(
            "not_null_fct_funnel_attempts_funnel_name: 1 failing rows; first: (None,)"
        )


NEW_KEY_TESTS = {
    "unique_stg_app__events_event_id": ("staging.stg_app__events", "event_id"),
    "source_unique_app_events_validated_raw_id": ("raw.events_validated", "raw_id"),
}


def _newest_and_oldest_load(con) -> tuple[int, int]:
    """The load batch the daily run sessionized last (the new day's) and the history's."""
    (new_load,) = con.execute(
        "select max(load_id) from intermediate.int_events_sessionized "
        "where batch_id = (select max(batch_id) from intermediate.int_events_sessionized)"
    ).fetchone()
    (old_load,) = con.execute("select min(load_id) from raw.events_validated").fetchone()
    return new_load, old_load


def _test_results(path: Path, target: Path, names, *extra: str) -> list[dict]:
    """Run the data tests `names` as dbt's nodes (a failure is a result, not an error); their
    run results."""
    try:
        run_dbt(
            ["test", "--select", " ".join(names), *extra],
            duckdb_path=path,
            quiet=True,
            target_path=target,
        )
    except DbtError:
        pass
    results = json.loads((target / "run_results.json").read_text())["results"]
    results = [r for r in results if r["unique_id"].startswith("test.")]  # not the hooks
    assert {r["unique_id"].split(".")[2] for r in results} == set(names)
    return results


def _compiled_tests(target: Path) -> list[dict]:
    """The tests the last dbt run in `target` compiled, as the daily replay keeps them."""
    from python_models import dbt_daily_tests

    manifest = json.loads((target / "manifest.json").read_text())
    return dbt_daily_tests.compiled_tests(manifest, require_all=False)


def _unique_key_tests(path: Path, target: Path, *extra: str) -> list[dict]:
    """Run the two unique tests scoped to the newest load batches' keys; their results."""
    return _test_results(path, target, NEW_KEY_TESTS, *extra)


@pytest.mark.slow
def test_new_keys_are_checked_against_every_stored_row(daily_increment, tmp_path, monkeypatch):
    """The unique tests on the staged events and on the gate's output check the newest load
    batches' keys against the whole table (__new_load_keys__): a stored key re-sent in the new
    day fails, in dbt and in the replay of the saved SQL (with the batch written in when it
    runs); a duplicate among old rows only is left to the whole-table run."""
    from python_models import dbt_daily_tests

    path = tmp_path / "warehouse.duckdb"
    target = tmp_path / "target"
    for in_new_day in (False, True):
        shutil.copy(daily_increment["after_increment"], path)
        con = connect(path)
        try:
            new_load, old_load = _newest_and_oldest_load(con)
            assert new_load != old_load
            for table, key in NEW_KEY_TESTS.values():
                # a copy of a history row, stamped with the new day's load batch or its own
                con.execute(
                    f"insert into {table} select * replace ({new_load if in_new_day else 'load_id'}"
                    f" as load_id) from {table} where {key} = (select min({key}) from {table} "
                    f"where load_id = {old_load})"
                )
        finally:
            con.close()
        results = _unique_key_tests(path, target)
        assert {r["unique_id"].split(".")[2] for r in results} == set(NEW_KEY_TESTS)
        assert [r["failures"] for r in results] == [1 if in_new_day else 0] * 2
        plan = _compiled_tests(target)
        assert len(plan) == 2 and all("uba:run_time" in test["sql"] for test in plan)
        con = connect(path)
        try:
            outcome = dbt_daily_tests.run_plan(con, plan)
        finally:
            con.close()
        assert sorted(f.split(":")[0] for f in outcome.failed) == (
            sorted(NEW_KEY_TESTS) if in_new_day else []
        )
        # Each reads its table once: the day's keys are found by a scan of the whole table,
        # and the rows holding them are grouped by the key as they are found, not scanned for
        # again (digests, then the repeats: twice the table's rows).
        con = connect(path)
        try:
            for (test,), query in dbt_daily_tests._queries(
                dbt_daily_tests.run_time_values(con, plan)
            ):
                table = NEW_KEY_TESTS[test["name"]][0]
                (rows,) = con.execute(f"select count(*) from {table}").fetchone()
                assert _rows_scanned(con, query, tmp_path) < 1.5 * rows, test["name"]
        finally:
            con.close()
        if not in_new_day:  # the weekly whole-table run finds the old rows' duplicates
            full = _unique_key_tests(path, target, "--vars", "{uba__full_data_tests: true}")
            assert [r["failures"] for r in full] == [1, 1]


def _rows_scanned(con, query: str, folder: Path) -> int:
    """Rows `query` read from every table it scanned, as DuckDB's profiler counts them."""
    profile = folder / "query_profile.json"
    con.execute("set enable_profiling = 'json'")
    con.execute(f"set profiling_output = '{profile}'")
    try:
        con.execute(query).fetchall()
    finally:
        con.execute("set enable_profiling = 'no_output'")
    return int(json.loads(profile.read_text())["cumulative_rows_scanned"])


def _reconcile_test(path: Path, target: Path, *extra: str) -> int:
    """Failures of assert_fct_events_reconcile_with_source run by dbt (0: it passed)."""
    (result,) = _test_results(path, target, ["assert_fct_events_reconcile_with_source"], *extra)
    return result["failures"]


@pytest.mark.slow
@pytest.mark.parametrize("in_new_day", [False, True])
def test_events_reconcile_with_the_source_for_the_newest_loads(
    daily_increment, tmp_path, in_new_day
):
    """The daily reconciliation of fct_events with the gate's output counts the newest load
    batches' events only: one of them lost from fct_events fails, in dbt and in the replay of
    the saved SQL; a lost history event is left to the whole-table run, which fails."""
    from python_models import dbt_daily_tests

    shutil.copy(daily_increment["after_increment"], tmp_path / "warehouse.duckdb")
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        lost_from = _newest_and_oldest_load(con)[0 if in_new_day else 1]
        con.execute(  # fct_events is a view over int_events_sessionized
            "delete from intermediate.int_events_sessionized where event_id = (select "
            f"min(event_id) from raw.events_validated where load_id = {lost_from})"
        )
    finally:
        con.close()
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    assert _reconcile_test(warehouse, target) == (1 if in_new_day else 0)
    (test,) = _compiled_tests(target)
    assert "uba:run_time" in test["sql"] and "count(distinct" not in test["sql"]
    con = connect(warehouse)
    try:
        outcome = dbt_daily_tests.run_plan(con, [test])
    finally:
        con.close()
    assert [f.split(":")[0] for f in outcome.failed] == (
        ["assert_fct_events_reconcile_with_source"] if in_new_day else []
    )
    if not in_new_day:
        assert _reconcile_test(warehouse, target, "--vars", "{uba__full_data_tests: true}") == 1


SESSIONS_RECONCILE = "assert_sessions_reconcile_with_events"


@pytest.mark.slow
@pytest.mark.parametrize("in_new_day", [True, False])
def test_sessions_reconcile_with_events_from_the_latest_batch_s_earliest_event(
    daily_increment, tmp_path, in_new_day
):
    """The daily reconciliation of fct_sessions with fct_events checks the sessions starting
    at or after the earliest event of int_events_sessionized's latest batch: a miscounted one
    fails, in dbt and in the replay (the bound written in as a literal); a session that began
    before the bound with events after it is left out whole, not half counted (one is
    planted, consistent in both tables: counting its later events alone would fail); a
    miscounted history session is left to the whole-table run, which fails."""
    from python_models import dbt_daily_tests

    path, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    shutil.copy(daily_increment["after_increment"], path)
    con = connect(path)
    try:
        (bound,) = con.execute(
            "select min(event_ts) from intermediate.int_events_sessionized "
            "where batch_id = (select max(batch_id) from intermediate.int_events_sessionized)"
        ).fetchone()
        # the last session to start before the bound gets one more event after it
        (spanning, started) = con.execute(
            "select session_id, session_started_at from marts.fct_sessions "
            "where session_started_at < ? order by session_started_at desc limit 1",
            [bound],
        ).fetchone()
        assert started > bound - timedelta(days=1)  # within a session's maximum length
        con.execute(  # into the table under the fct_events view
            "insert into intermediate.int_events_sessionized select * replace ("
            "'spanning-' || event_id as event_id, ?::timestamp as event_ts, "
            "cast(?::timestamp as date) as event_date) "
            "from intermediate.int_events_sessionized where session_id = ? limit 1",
            [bound, bound, spanning],
        )
        con.execute(
            "update marts.fct_sessions set count_events = count_events + 1 where session_id = ?",
            [spanning],
        )
        planted = con.execute(
            "update marts.fct_sessions set count_events = count_events + 1 where session_id = ("
            "select min(session_id) from marts.fct_sessions where session_started_at "
            + (">= ?)" if in_new_day else "< ? - interval 2 day)"),
            [bound],
        ).fetchone()[0]
        assert planted == 1
    finally:
        con.close()
    failing = _scoped_tests(path, target, [SESSIONS_RECONCILE])
    assert failing == ({SESSIONS_RECONCILE} if in_new_day else set())
    (test,) = _compiled_tests(target)
    con = connect(path)
    try:
        (written,) = dbt_daily_tests.run_time_values(con, [test])
        outcome = dbt_daily_tests.run_plan(con, [test])
    finally:
        con.close()
    assert "uba:" not in written["sql"] and "cast('" in written["sql"]
    assert {f.split(":")[0] for f in outcome.failed} == failing
    if not in_new_day:
        full = _scoped_tests(
            path, target, [SESSIONS_RECONCILE], "--vars", "{uba__full_data_tests: true}"
        )
        assert full == {SESSIONS_RECONCILE}


# The tests whose daily scope is bounded by load batch or by day (macros/uba_test_scope.sql:
# __new_loads__, __latest_batch_days__, the day bound of __latest_batch_events__): a change
# that breaks one row, planted in a row the day wrote ({new}) or in a history row out of the
# scope ({old}); {new_load}, {old_load}, {first_day}: the new day's and the history's load
# batch, the latest batch's first event day.
BOUNDED_SCOPES = {
    "not_null_stg_app__events_revenue_usd": (
        "update staging.stg_app__events set revenue_usd = null where event_id = ("
        "select min(event_id) from staging.stg_app__events where load_id = {load})"
    ),
    "uba_unique_combination_of_columns_int_feature_user_day_items_user_id__event_date__"
    "available_date__event_name__feature": (
        "insert into features.int_feature_user_day_items "
        "select * from features.int_feature_user_day_items where event_date {day} limit 1"
    ),
    "unique_fct_events_event_id": (  # into the table under the view
        "insert into intermediate.int_events_sessionized select * from "
        "intermediate.int_events_sessionized where event_id = (select min(event_id) from "
        "marts.fct_events where event_date {day} and event_id in (select event_id from "
        "intermediate.int_events_sessionized where batch_id {batch}))"
    ),
}


def _scoped_tests(path: Path, target: Path, names, *extra: str) -> set[str]:
    """The failing tests among `names` run as dbt's nodes."""
    results = _test_results(path, target, names, *extra)
    return {r["unique_id"].split(".")[2] for r in results if r["status"] == "fail"}


@pytest.mark.slow
@pytest.mark.parametrize("in_new_day", [True, False])
def test_tests_bounded_by_load_or_day_fail_on_the_new_rows_as_their_nodes(
    daily_increment, tmp_path, in_new_day
):
    """A broken row the day wrote fails each test scoped by the newest loads or the latest
    batch's days, in dbt and in the replay of the saved SQL (the bound written in as a
    literal, which DuckDB uses to skip the older row groups); a broken history row outside
    the bound passes both daily and fails the whole-table run."""
    from python_models import dbt_daily_tests

    path, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    shutil.copy(daily_increment["after_increment"], path)
    con = connect(path)
    try:
        new_load, old_load = _newest_and_oldest_load(con)
        (first_day,) = con.execute(
            "select min(cast(event_ts as date)) from intermediate.int_events_sessionized "
            "where batch_id = (select max(batch_id) from intermediate.int_events_sessionized)"
        ).fetchone()
        (latest,) = con.execute(
            "select max(batch_id) from intermediate.int_events_sessionized"
        ).fetchone()
        for sql in BOUNDED_SCOPES.values():
            planted = sql.format(
                load=new_load if in_new_day else old_load,
                day=f">= date '{first_day}'" if in_new_day else f"< date '{first_day}'",
                batch=f"= {latest}" if in_new_day else f"< {latest}",
            )
            assert con.execute(planted).fetchone()[0] == 1, planted
    finally:
        con.close()
    failing = _scoped_tests(path, target, BOUNDED_SCOPES)
    assert failing == (set(BOUNDED_SCOPES) if in_new_day else set())
    plan = _compiled_tests(target)
    con = connect(path)
    try:
        written = dbt_daily_tests.run_time_values(con, plan)
        outcome = dbt_daily_tests.run_plan(con, plan)
    finally:
        con.close()
    assert not [t["name"] for t in written if "uba:" in t["sql"] or "coalesce(load_id" in t["sql"]]
    assert {f.split(":")[0] for f in outcome.failed} == failing
    if not in_new_day:  # the weekly whole-table run finds them
        full = _scoped_tests(path, target, BOUNDED_SCOPES, "--vars", "{uba__full_data_tests: true}")
        assert full == set(BOUNDED_SCOPES)


def test_the_not_null_columns_of_contract_models_are_implied_by_their_constraints(
    daily_increment, tmp_path
):
    """A model with an enforced contract declares NOT NULL on each column that must not be
    null, and one uba_not_null_columns test checks them all (macros/uba_generic_tests.sql). On
    a full build and after the increment the warehouse refuses a null where it would be
    written (the run fails at the model instead of at the test), so the daily replay counts
    each such test as passed without reading the table (dbt_daily_tests.implied_tests); a
    column the yml leaves nullable keeps its table's test a scan."""
    import duckdb

    from python_models import dbt_daily_tests

    manifest = json.loads(
        (daily_increment["warehouse"].parent / "target" / "manifest.json").read_text()
    )
    tested = {}  # table -> the columns the yml declares NOT NULL
    for node in manifest["nodes"].values():
        if (node.get("test_metadata") or {}).get("name") != dbt_daily_tests.NOT_NULL_COLUMNS:
            continue
        model = manifest["nodes"][node["attached_node"]]
        assert model["config"]["contract"]["enforced"], model["name"]
        tested[(model["schema"], model["alias"])] = dbt_daily_tests.not_null_constrained(
            model["columns"].values()
        )
    assert len(tested[("features", "ftr_user_event_sequences")]) > 30
    assert len(tested[("features", "ftr_user_features")]) > 50

    def plan(tables) -> list[dict]:
        return [
            {
                "name": f"{dbt_daily_tests.NOT_NULL_COLUMNS}_{table}",
                "kind": dbt_daily_tests.NOT_NULL_COLUMNS,
                "table": [schema, table],
                "columns": columns,
                "where": None,
                "severity": "error",
                "limit": None,
                "fail_calc": "count(*)",
                "warn_if": "!= 0",
                "error_if": "!= 0",
            }
            for (schema, table), columns in tested.items()
            if (schema, table) in tables
        ]

    for build in ("after_increment", "warehouse"):  # after the increment; a full refresh
        path = tmp_path / f"{build}.duckdb"
        shutil.copy(daily_increment[build], path)
        con = connect(path)
        try:
            built = set(
                con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
            )
            tests = plan(built)
            assert len(tests) >= 6, build  # the feature marts, fct_sessions, dim_users ...
            assert dbt_daily_tests.implied_tests(con, tests) == {t["name"] for t in tests}, build
            with pytest.raises(duckdb.ConstraintException):
                con.execute(
                    "update features.ftr_user_features set count_events_lifetime = null "
                    "where user_id = (select max(user_id) from features.ftr_user_features)"
                )
            # one column short of the table's constraints: read, not implied
            (sequences,) = [t for t in tests if t["table"][1] == "ftr_user_event_sequences"]
            sequences = sequences | {"columns": [*sequences["columns"], "next_event_name"]}
            assert not dbt_daily_tests.implied_tests(con, [sequences]), build
        finally:
            con.close()


@pytest.mark.slow
def test_a_null_the_engine_lets_through_fails_the_models_one_not_null_test(
    daily_increment, tmp_path
):
    """Where the warehouse does not refuse a null (Spark's non-Delta tables; here DuckDB with the
    constraint dropped, and fct_events, a view, whose table declares none), uba_not_null_columns
    fails for each model holding one, with one row per null column naming it: as dbt's node
    and in the daily replay of its compiled SQL, which does not count it as implied."""
    from python_models import dbt_daily_tests

    path, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    shutil.copy(daily_increment["warehouse"], path)
    planted = {  # test -> (table, column, the row given a null)
        "uba_not_null_columns_ftr_user_features_": (
            "features.ftr_user_features",
            "count_events_lifetime",
            "as_of_date = (select max(as_of_date) from features.ftr_user_features)",
        ),
        "uba_not_null_columns_fct_sessions_": (
            "marts.fct_sessions",
            "session_duration_seconds",
            "session_id = (select max(session_id) from marts.fct_sessions)",
        ),
        "uba_not_null_columns_fct_events_": (  # the view's null comes from its table
            "intermediate.int_events_sessionized",
            "revenue_usd",
            "event_ts = (select max(event_ts) from intermediate.int_events_sessionized)",
        ),
    }
    con = connect(path)
    try:
        for table, column, row in planted.values():
            # (the view's table declares none: there the drop changes nothing)
            con.execute(f"alter table {table} alter column {column} drop not null")
            (changed,) = con.execute(
                f"update {table} set {column} = null where {row} and "
                f"user_id = (select min(user_id) from {table} where {row})"
            ).fetchone()
            assert changed == 1
    finally:
        con.close()
    results = _test_results(path, target, [*planted, "uba_not_null_columns_dim_users_"])
    assert {r["unique_id"].split(".")[2]: r["failures"] for r in results} == {
        **dict.fromkeys(planted, 1),
        "uba_not_null_columns_dim_users_": 0,
    }
    plan = _compiled_tests(target)
    con = connect(path)
    try:
        implied = dbt_daily_tests.implied_tests(con, plan)
        outcome = dbt_daily_tests.run_plan(con, plan)
    finally:
        con.close()
    assert implied == {"uba_not_null_columns_dim_users_"}
    assert sorted(outcome.failed) == sorted(
        f"{test}: 1 failing rows; first: ('{column}', 1)"
        for test, (_, column, _) in planted.items()
    )


def _statements_by_node(log: str) -> dict[str, list[str]]:
    """The SQL dbt ran for each node, from its debug log: `On <node>: <sql>` and the lines
    after it up to the next log record."""
    statements: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in log.splitlines():
        record = re.match(r".*?\d\d:\d\d:\d\d\.\d+ \[\w+\s*\] \[[^\]]*\]: (.*)", line)
        if record is None:
            if current is not None:
                current.append(line)
            continue
        on = re.match(r"On (\S+): (.*)", record[1])
        current = [on[2]] if on else None
        if on:
            statements.setdefault(on[1], []).append(current)
    return {
        node: [re.sub(r"/\*.*?\*/", "", " ".join(parts)).strip() for parts in runs]
        for node, runs in statements.items()
    }


@pytest.mark.slow
def test_a_daily_run_writes_only_the_comments_that_differ(daily_increment, tmp_path, monkeypatch):
    """persist_docs on an incremental run (macros/uba_persist_docs.sql): a table whose stored
    comments are its YAML's gets none written again, one whose comment differs (as a
    description edited since leaves it) is commented again, and after the run every
    incremental model's comments are its YAML's. Each consumer reads its batch figures once
    a run (macro uba_run_cache: its SQL, hooks and materialization share them)."""
    path = _a_week_later(daily_increment, tmp_path)
    con = connect(path)
    try:
        con.execute("comment on table marts.fct_event_transitions is 'stale'")
        con.execute("comment on column features.ftr_user_event_sequences.event_name is 'stale'")
    finally:
        con.close()
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    target = tmp_path / "target"
    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)

    manifest = json.loads((target / "manifest.json").read_text())
    statements = _statements_by_node((tmp_path / "logs" / "dbt.log").read_text())
    incremental = {
        node["name"]: node
        for uid, node in manifest["nodes"].items()
        if uid in statements
        and node["resource_type"] == "model"
        and node["config"]["materialized"] == "incremental"
    }
    assert len(incremental) > 15
    commented = {
        name
        for name, node in incremental.items()
        if any(sql.lower().startswith("comment on") for sql in statements[node["unique_id"]])
    }
    assert commented == {"fct_event_transitions", "ftr_user_event_sequences"}
    con = connect(path)
    try:
        for name, node in incremental.items():
            where = [node["schema"], name]
            (stored,) = con.execute(
                "select comment from duckdb_tables() where schema_name = ? and table_name = ?",
                where,
            ).fetchone()
            assert stored == node["description"], name
            columns = dict(
                con.execute(
                    "select column_name, coalesce(comment, '') from duckdb_columns() "
                    "where schema_name = ? and table_name = ?",
                    where,
                ).fetchall()
            )
            documented = {column: doc["description"] for column, doc in node["columns"].items()}
            assert {column: columns[column] for column in documented} == documented, name
    finally:
        con.close()
    # one figures query per producer a consumer reads, though its SQL and hooks all use them
    figures = {
        name: [
            re.search(r"producer = '(\w+)'", sql)[1]
            for sql in statements[node["unique_id"]]
            if sql.startswith("select consumed, greatest(consumed")
        ]
        for name, node in incremental.items()
    }
    for name, producers in figures.items():
        assert len(producers) == len(set(producers)), (name, producers)
    assert sum(len(producers) for producers in figures.values()) >= 15
