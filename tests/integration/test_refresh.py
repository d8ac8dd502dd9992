"""`uba refresh` against planted changes: a run with no new data touches nothing; a new day's
file rescores exactly the users whose features it changes.

A module-scoped copy of the built sample warehouse gets churn and next action (row-wise
scoring) and LTV (a ranked score, rescored in full when an input changes) trained, then one
refresh. A new file
then plants, for five users, a late event on the watermark's day, received that day but loaded
only now (inside the newest snapshot, so their features change) and, for five others, an event
on the new day (after the snapshot: their features cannot change).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import assert_equals_a_full_publish, shifted_stamps

from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow

TEST_SALT = "test-salt"  # the salt tests/conftest.py sets for the session
SCHEMAS = ("raw", "staging", "intermediate", "marts", "features", "reports", "ml", "ml_scores")


@pytest.fixture(scope="module")
def warehouse(built_warehouse, sample_data, tmp_path_factory):
    """(data dir, sample events dir) with settings pointed at a private trained copy."""
    from python_models.commands.refresh import record_build, refresh
    from python_models.config import reload_settings
    from python_models.lifecycle import train_model
    from python_models.warehouse import connect

    root = tmp_path_factory.mktemp("refresh")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UBA_DATA_DIR", str(root / "data"))
        patch.setenv("UBA_DUCKDB_PATH", str(root / "data" / "warehouse.duckdb"))
        # dbt's artifacts of this warehouse's builds (its saved daily data tests among them)
        patch.setenv("DBT_TARGET_PATH", str(root / "dbt-target"))
        # The sample's event tables count as big: published by changed days (python_models.publish).
        patch.setattr("python_models.publish.DIFF_MIN_ROWS", 1_000)
        (root / "data").mkdir()
        shutil.copy(built_warehouse, root / "data" / "warehouse.duckdb")
        reload_settings()
        con = connect()
        try:
            record_build(con)  # built_warehouse is fresh from `dbt build`: no rebuild needed
            # The sample is small: churn's bar of 1,000 examples per class is lowered.
            trained = (
                ("churn", {"min_class_examples": 50}),
                ("ltv", None),
                ("next_action", None),
                ("anomaly", None),
            )
            for name, params in trained:
                assert train_model(con, name, run_id="train", params=params).status == "champion"
        finally:
            con.close()
        first = refresh([str(sample_data.events_dir)], data_docs=False, say=print)
        assert not first.nothing_new and not first.failed
        assert "dbt" not in [name for name, *_ in first.steps]
        yield root / "data", sample_data.events_dir
    reload_settings()


def _snapshot(con) -> dict[str, pl.DataFrame]:
    """Every table's rows, sorted, for an exact before/after comparison."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in ({', '.join(repr(s) for s in SCHEMAS)}) order by 1, 2"
    ).fetchall()
    out = {}
    for schema, name in tables:
        frame = con.execute(f'select * from "{schema}"."{name}"').pl()
        out[f"{schema}.{name}"] = frame.sort(frame.columns, nulls_last=True)
    return out


def _published_files(data_dir: Path) -> dict[str, tuple[int, int]]:
    published = data_dir / "published"
    return {
        str(p.relative_to(published)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in published.rglob("*")
        if p.is_file()
    }


def test_a_run_without_new_data_does_nothing_and_changes_no_table(warehouse):
    from python_models.commands.refresh import refresh
    from python_models.warehouse import connect

    data_dir, events_dir = warehouse
    con = connect(read_only=True)
    before = _snapshot(con)
    con.close()
    files = _published_files(data_dir)

    result = refresh([str(events_dir)], data_docs=False, say=print)

    assert result.nothing_new
    assert [name for name, *_ in result.steps] == ["load"]  # no gate, dbt, scoring, publish
    con = connect(read_only=True)
    after = _snapshot(con)
    con.close()
    assert after.keys() == before.keys()
    for table, frame in before.items():
        assert after[table].equals(frame), table
    assert _published_files(data_dir) == files


def _plant_day(events_dir: Path, scores: pl.DataFrame, out: Path) -> tuple[set[str], set[str]]:
    """A new event file: a late event for five scored users, a new-day event for five others.
    Returns their pseudonymized ids (late, new_day)."""
    events = pl.read_parquet(str(events_dir / "*.parquet")).filter(pl.col("user_id").is_not_null())
    last = events.sort("event_ts").group_by("user_id").last()
    last = last.with_columns(
        pl.col("user_id")
        .map_elements(lambda u: pseudonymize(u, "user", TEST_SALT), pl.String)
        .alias("hashed")
    )
    scored = last.join(scores.select(pl.col("user_id").alias("hashed")), on="hashed")
    scored = scored.filter(pl.col("event_name") == "page_view").sort("user_id")
    assert scored.height >= 10, "the sample has too few recently active users to plant"
    as_of = scores["as_of_date"].max()
    watermark_day = datetime.combine(as_of - timedelta(days=1), time(12))
    new_day = datetime.combine(as_of, time(12))

    def rows(chosen: pl.DataFrame, at: datetime) -> pl.DataFrame:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        # Received minutes later: the late rows reached the collector before the snapshot's
        # midnight (so the snapshot may use them), only their file was loaded late.
        received = (at + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ids = [
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"refresh-{u}-{stamp}")) for u in chosen["user_id"]
        ]
        return chosen.select(events.columns).with_columns(
            pl.Series("event_id", ids),
            pl.lit(stamp).alias("event_ts"),
            pl.lit(received).alias("received_at"),
        )

    late, fresh = scored.head(5), scored.slice(5, 5)
    out.mkdir()
    pl.concat([rows(late, watermark_day), rows(fresh, new_day)]).write_parquet(
        out / "day-new.parquet"
    )
    return set(late["hashed"]), set(fresh["hashed"])


def _newest_sequence_rows(con) -> pl.DataFrame:
    """Each user's newest row of the next-action mart, every column (label included; doubles
    to 9 decimals, as the refresh compares them)."""
    rows = con.execute(
        """select * from features.ftr_user_event_sequences
        qualify row_number() over (partition by user_id order by event_ts desc, event_id desc) = 1
        """
    ).pl()
    return rows.with_columns(pl.col(pl.Float64).round(9))


def _user_days(con) -> pl.DataFrame:
    """Every row of the anomaly model's mart (doubles to 9 decimals, as the refresh compares)."""
    rows = con.execute("select * from features.ftr_user_day_activity").pl()
    return rows.with_columns(pl.col(pl.Float64).round(9))


_ALERT = ["user_id", "as_of_date", "score", "predicted_label", "reasons"]


def _assert_anomaly_rescored_the_changed_user_days(
    outcome, days_before: pl.DataFrame, alerts_before: pl.DataFrame, planted: pl.DataFrame
) -> None:
    """The run scored exactly the user-days whose mart rows the day changed (the `planted`
    user_id, as_of_date among them), and the alerts table equals a full rescore: the changed
    days' alerts replaced or removed, the others' rows untouched (their run and scored_at)."""
    from python_models.anomaly.daily import user_day_activity
    from python_models.lifecycle import load_champion
    from python_models.warehouse import connect

    con = connect(read_only=True)
    try:
        days_after = _user_days(con)
        alerts = con.execute("select * from ml_scores.anomaly_alerts").pl()
        history = con.execute(
            "select user_id, as_of_date from ml_scores.anomaly_alerts_history where run_id = ?",
            [outcome.run_id],
        ).pl()
        model = load_champion(con, "anomaly")[1]["model"]
        full = model.predict_frame(user_day_activity(con, baseline_days=model.params.baseline_days))
    finally:
        con.close()
    changed = days_after.join(days_before, on=days_after.columns, how="anti", nulls_equal=True)
    changed = changed.select("user_id", pl.col("activity_date").alias("as_of_date"))
    assert (outcome.status, outcome.mode) == ("scored", "changed")
    assert outcome.rows_scored == changed.height  # the changed user-days, no more
    assert planted.join(changed, on=["user_id", "as_of_date"], how="anti").is_empty()
    assert 0 < changed.height < days_after.height / 10
    assert alerts.select(_ALERT).sort(_ALERT).equals(full.select(_ALERT).sort(_ALERT))
    # this run's rows are the changed days' alerts; every other alert is the row it was
    rescored = alerts.filter(pl.col("run_id") == outcome.run_id)
    assert history.height == outcome.rows == rescored.height
    assert rescored.join(changed, on=["user_id", "as_of_date"], how="anti").is_empty()
    kept = alerts.filter(pl.col("run_id") != outcome.run_id).sort(_ALERT)
    unchanged = alerts_before.join(changed, on=["user_id", "as_of_date"], how="anti")
    assert kept.equals(unchanged.sort(_ALERT))


def test_a_new_day_rescores_only_the_users_whose_features_changed(warehouse, tmp_path, monkeypatch):
    from python_models.commands.refresh import refresh
    from python_models.warehouse import connect

    data_dir, events_dir = warehouse
    con = connect(read_only=True)
    before = con.execute("select * from ml_scores.churn_scores").pl()
    ltv_before = con.execute("select distinct run_id from ml_scores.ltv_scores").pl()
    actions_before = con.execute("select * from ml_scores.next_action_scores").pl()
    labelled_before = _newest_sequence_rows(con)
    newest_before = labelled_before.drop("next_event_name")  # what the scores read
    days_before = _user_days(con)
    alerts_before = con.execute("select * from ml_scores.anomaly_alerts").pl()
    con.close()
    late, new_day = _plant_day(events_dir, before, tmp_path / "day")
    files_before = _published_files(data_dir)
    # LTV's inputs are published tables: compared by the figures the publish takes anyway
    # (one scan a day, of the days the build wrote), never hashed whole on their own.
    from python_models.common import scores

    hashed, fingerprint = [], scores.table_fingerprint
    monkeypatch.setattr(
        scores, "table_fingerprint", lambda con, t: hashed.append(t) or fingerprint(con, t)
    )

    result = refresh([str(events_dir), str(tmp_path / "day")], data_docs=False, say=print)
    assert hashed == []

    assert not result.nothing_new and not result.failed
    assert [name for name, *_ in result.steps] == ["load", "gate", "dbt", "score", "publish"]
    # the first build for this code ran dbt's test nodes and saved their compiled SQL, which
    # the next daily builds run instead of the nodes (python_models/dbt_daily_tests.py)
    from python_models import dbt_daily_tests
    from python_models.dbt_runner import dbt_env

    plan = dbt_daily_tests.load_plan(dbt_daily_tests.code_fingerprint(dbt_env()))
    assert plan and len(plan) > 100 and "data tests saved" in result.steps[2][2]
    churn = result.scored["churn"]
    assert (churn.status, churn.mode) == ("scored", "changed")
    con = connect(read_only=True)
    after = con.execute("select * from ml_scores.churn_scores").pl()
    ltv_after = con.execute("select distinct run_id from ml_scores.ltv_scores").pl()
    history = con.execute(
        "select user_id from ml_scores.churn_scores_history where run_id = ?", [churn.run_id]
    ).pl()
    con.close()
    assert set(history["user_id"]) == late and history.height == len(late)  # the run, no more
    rescored = set(after.filter(pl.col("run_id") == churn.run_id)["user_id"])
    assert rescored == late  # not the new-day users, whose snapshot features cannot change
    assert not rescored & new_day
    assert after.height == before.height
    kept = after.filter(pl.col("run_id") != churn.run_id).sort("user_id")
    assert kept.equals(before.filter(~pl.col("user_id").is_in(list(late))).sort("user_id"))
    # LTV ranks users against each other: an input changed, so it was rescored in full.
    assert result.scored["ltv"].mode == "full"
    assert ltv_after["run_id"].to_list() != ltv_before["run_id"].to_list()
    published = result.published
    assert "ml_scores.churn_scores" in published.copied
    assert len(published.copied) < len(published.tables)
    con = connect(data_dir / "published" / "warehouse.duckdb", read_only=True)
    try:
        served = con.execute("select user_id, run_id from ml_scores.churn_scores").pl()
    finally:
        con.close()
    assert served.sort("user_id").equals(after.select("user_id", "run_id").sort("user_id"))
    _assert_equals_a_full_publish(data_dir, tmp_path / "fresh", published.copied, files_before)

    # Next action scores each user's newest event: the planted users (a new newest event, or
    # a late one that changes what precedes it) and users whose newest row's features the new
    # data changed otherwise are rescored, nobody else: not those whose newest row only got
    # its label (its session now known to have ended; the scores read no label).
    actions = result.scored["next_action"]
    assert (actions.status, actions.mode) == ("scored", "changed")
    con = connect(read_only=True)
    actions_after = con.execute("select * from ml_scores.next_action_scores").pl()
    labelled_after = _newest_sequence_rows(con)
    newest_after = labelled_after.drop("next_event_name")
    con.close()
    moved = newest_after.join(newest_before, on=newest_after.columns, how="anti", nulls_equal=True)[
        "user_id"
    ]
    rescored = set(actions_after.filter(pl.col("run_id") == actions.run_id)["user_id"])
    assert late | new_day <= rescored
    assert rescored == set(moved) and len(rescored) < actions_before.height / 10
    on = labelled_after.columns
    labelled = labelled_after.join(labelled_before, on=on, how="anti", nulls_equal=True)
    assert set(labelled["user_id"]) - rescored  # only a label filled: not rescored
    kept = actions_after.filter(pl.col("run_id") != actions.run_id).sort("user_id")
    unchanged = actions_before.filter(~pl.col("user_id").is_in(list(rescored)))
    assert kept.equals(unchanged.sort("user_id"))
    assert actions_after.height == actions_before.height

    # Anomaly: the planted users' days (the late event's, the new day's) and the days after a
    # late one whose baselines include it are rescored, and the alerts equal a full rescore.
    as_of = before["as_of_date"].max()
    planted_days = pl.DataFrame(
        [(u, as_of - timedelta(days=1)) for u in late] + [(u, as_of) for u in new_day],
        schema={"user_id": pl.String, "as_of_date": pl.Date},
        orient="row",
    )
    _assert_anomaly_rescored_the_changed_user_days(
        result.scored["anomaly"], days_before, alerts_before, planted_days
    )

    again = refresh([str(events_dir), str(tmp_path / "day")], data_docs=False, say=print)
    assert again.nothing_new

    # The next day takes the daily path: dbt builds the models, the data tests run from the
    # saved SQL, and the seed and views the plan's build wrote from this code are left out
    # (they are still there for the tests and readers).
    next_day = tmp_path / "next"
    next_day.mkdir()
    later = shifted_stamps("1d")
    planted = pl.read_parquet(tmp_path / "day" / "day-new.parquet")
    # and a late event a minute after one of a person's events at least ten days back: a day
    # the last publication holds, whose session (and the previous event's transition and
    # sequence label) changes without changing its day's row count
    stamps = pl.col("event_ts").str.to_datetime(time_zone="UTC", strict=False)
    before = planted.select(stamps).min().item() - timedelta(days=10)
    earlier = (
        pl.read_parquet(str(events_dir / "*.parquet"))
        .filter((pl.col("user_id") == planted["user_id"][0]) & (stamps < before))
        .select(stamps)
    )
    assert earlier.height, "the first planted person has no event ten days back"
    old_day = earlier.max().item() + timedelta(minutes=1)

    def renamed(prefix: str) -> pl.Expr:
        return pl.col("event_id").map_elements(
            lambda e: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}-{e}")), pl.String
        )

    pl.concat(
        [
            planted.with_columns(renamed("next"), **later),
            planted.head(1)
            .with_columns(renamed("old"), **later)
            .with_columns(pl.lit(old_day.strftime("%Y-%m-%dT%H:%M:%S.000Z")).alias("event_ts")),
        ]
    ).write_parquet(next_day / "day-next.parquet")
    files_before = _published_files(data_dir)
    con = connect(read_only=True)
    days_before = _user_days(con)
    alerts_before = con.execute("select * from ml_scores.anomaly_alerts").pl()
    con.close()
    bounds = []
    from python_models import days_written

    known = days_written.unchanged_before
    monkeypatch.setattr(
        days_written, "unchanged_before", lambda *a: bounds.append(known(*a)) or bounds[-1]
    )
    # The late event is far older than the gate's lateness window (UBA_LATE_WINDOW_DAYS): the
    # rule is off for this run, as for a deliberate backfill, so the old day does change.
    from python_models.config import reload_settings

    monkeypatch.setenv("UBA_LATE_WINDOW_DAYS", "0")
    reload_settings()
    said: list[str] = []
    try:
        daily = refresh(
            [str(next_day)], data_docs=False, say=lambda line: print(line) or said.append(line)
        )
    finally:
        monkeypatch.delenv("UBA_LATE_WINDOW_DAYS")
        reload_settings()
    assert not daily.failed and "from their compiled SQL" in daily.steps[2][2]
    # Each scored model's line says its time, each within the score step's, and (two models
    # scored side by side: UBA_MODEL_THREADS) together within twice it.
    took = {
        line.split()[0]: float(re.search(r"\((\d+\.\d) s\)$", line).group(1))
        for line in said
        if line.startswith(" " * 11) and " -> ml_scores." in line
    }
    assert set(took) == {name for name, o in daily.scored.items() if o.status == "scored"}
    score_seconds = next(seconds for name, seconds, _ in daily.steps if name == "score")
    assert 0 < max(took.values()) <= score_seconds + 0.05
    assert sum(took.values()) <= 2 * score_seconds + 0.05 * len(took)
    # the late event's day ten days back, and the planted person's later days whose trailing
    # baselines hold it, are rescored (anomaly), besides the new day's
    old_person = pseudonymize(planted["user_id"][0], "user", TEST_SALT)
    old_days = pl.DataFrame(
        {"user_id": [old_person], "as_of_date": [old_day.date()]},
        schema={"user_id": pl.String, "as_of_date": pl.Date},
    )
    _assert_anomaly_rescored_the_changed_user_days(
        daily.scored["anomaly"], days_before, alerts_before, old_days
    )
    # The publish hashed only the days the build can have written (python_models.days_written):
    # for the event tables, from the earliest event the day re-cut on (at or before the late
    # event: its person is re-cut from a session boundary before it), not the whole history,
    # and still equals a full publish.
    con = connect(read_only=True)
    try:
        (history_from,) = con.execute("select min(event_date) from marts.fct_events").fetchone()
    finally:
        con.close()
    events_from = bounds[0]["marts.fct_events"] if bounds else None
    assert events_from is not None and history_from < events_from <= old_day.date()
    assert bounds[0]["features.ftr_user_event_sequences"] == events_from - timedelta(days=1)
    _assert_equals_a_full_publish(
        data_dir, tmp_path / "fresh-daily", daily.published.copied, files_before
    )
    from python_models.config import dbt_target_dir

    target = dbt_target_dir()
    static = dbt_daily_tests.static_nodes(json.loads((target / "manifest.json").read_text()))
    built = {
        r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]
    }
    assert {"seed.uba.event_taxonomy", "model.uba.fct_churn_scores"} <= {
        node["unique_id"] for node in static
    }
    assert "model.uba.ftr_user_event_sequences" in built
    assert not built & {node["unique_id"] for node in static}
    con = connect(read_only=True)
    try:
        assert dbt_daily_tests.unchanged_static_nodes(
            con, dbt_daily_tests.code_fingerprint(dbt_env())
        ) == [node["name"] for node in static]
    finally:
        con.close()

    # A day whose every event is after the newest one published: its sequences' post-hook
    # ends the sessions that were open at that newest event (rows of days before this one's
    # first event), which the publish's bound reaches back to (days_written).
    quiet_day = tmp_path / "quiet"
    quiet_day.mkdir()
    planted.with_columns(renamed("quiet"), **shifted_stamps("3d")).write_parquet(
        quiet_day / "quiet.parquet"
    )
    files_before = _published_files(data_dir)
    con = connect(read_only=True)
    try:
        (newest_before,) = con.execute("select max(event_date) from marts.fct_events").fetchone()
    finally:
        con.close()
    bounds.clear()
    quiet = refresh([str(quiet_day)], data_docs=False, say=print)
    assert not quiet.failed and bounds
    # (at or before the newest published day: the people it re-cut may start earlier)
    assert bounds[0]["features.ftr_user_event_sequences"] < newest_before
    _assert_equals_a_full_publish(
        data_dir, tmp_path / "fresh-quiet", quiet.published.copied, files_before, False
    )


def _assert_equals_a_full_publish(
    data_dir: Path, fresh: Path, copied, files_before, old_days_changed: bool = True
) -> None:
    """The refreshed publication holds, row for row, what a full publish of the warehouse
    does; the files of the tables it did not copy are the old ones, and the big event table
    kept the Parquet files of the months the day did not touch (`old_days_changed`: and
    wrote some of the files it had)."""
    assert_equals_a_full_publish(data_dir / "published", fresh)
    files_after = _published_files(data_dir)
    for name, identity in files_before.items():
        table = name.split("/")[1] if name.startswith("parquet/") else None
        if table is not None and table not in copied:
            assert files_after[name] == identity, name
    events = [name for name in files_before if name.startswith("parquet/marts.fct_events/")]
    kept = [name for name in events if files_after.get(name) == files_before[name]]
    assert "marts.fct_events" in copied and 0 < len(kept) <= len(events)
    assert len(kept) < len(events) or not old_days_changed
