"""Score tables keep every run (ml_scores.<table>_history), the newest is current, each run is
recorded in ml.scoring_runs; re-running a run id replaces its rows; a failed write changes
nothing; an incremental run of an alerts-only model (anomaly) replaces or removes the changed
rows' alerts and keeps the others. On in-memory DuckDB with the churn and anomaly specs."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from python_models.anomaly.spec import SPEC as anomaly
from python_models.churn.spec import SPEC as churn
from python_models.common.scores import (
    SCORED_ROWS,
    SCORING_RUNS_TABLE,
    changed_rows,
    merge_scores,
    newest_scores,
    record_score_state,
    score_frame,
    stage_latest_rows,
    write_scores,
)
from python_models.next_action.spec import SPEC as next_action


def _rows(users: list[str], score: float, as_of=date(2025, 1, 6)) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": users,
            "as_of_date": [as_of] * len(users),
            "score": [score] * len(users),
            "predicted_label": [score >= 0.5] * len(users),
            "reasons": ["r"] * len(users),
            "holdout_group": ["treatment"] * len(users),
        }
    )


def _write(con, run_id: str, users: list[str], score: float, fingerprint="f") -> int:
    frame = score_frame(churn, "v1", run_id, _rows(users, score))
    return write_scores(con, churn, frame, input_fingerprint=fingerprint)


def _count(con, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def test_every_run_is_kept_and_the_newest_is_current():
    con = duckdb.connect()
    _write(con, "r1", ["a", "b"], 0.2, "f1")
    _write(con, "r2", ["a", "b", "c"], 0.7, "f2")
    history = con.sql(
        f"select run_id, count(*) from {churn.history_table} group by 1 order by 1"
    ).fetchall()
    assert history == [("r1", 2), ("r2", 3)]
    current = con.sql(f"select distinct run_id, score from {churn.score_table}").fetchall()
    assert current == [("r2", 0.7)]
    runs = con.sql(
        f"select run_id, rows, input_fingerprint from {SCORING_RUNS_TABLE} order by scored_at"
    ).fetchall()
    assert runs == [("r1", 2, "f1"), ("r2", 3, "f2")]
    assert tuple(c[0] for c in con.execute(f"describe {churn.history_table}").fetchall()) == (
        churn.score_columns
    )


def test_rerunning_a_run_id_replaces_its_rows():
    con = duckdb.connect()
    _write(con, "r1", ["a", "b"], 0.2)
    _write(con, "r1", ["a", "b"], 0.9)
    assert _count(con, f"select count(*) from {churn.history_table}") == 2
    assert _count(con, f"select count(*) from {SCORING_RUNS_TABLE}") == 1
    assert con.sql(f"select distinct score from {churn.history_table}").fetchall() == [(0.9,)]


def test_a_history_from_an_older_contract_gets_the_new_columns():
    con = duckdb.connect()
    con.execute("create schema ml_scores")
    con.execute(
        f"create table {churn.history_table} as select 'old' as user_id, "
        "date '2024-12-30' as as_of_date, 'churn' as model_name, 'v0' as model_version, "
        "0.5 as score, true as predicted_label, 'r' as reasons, "
        "timestamp '2024-12-30' as scored_at, 'r0' as run_id"
    )
    _write(con, "r1", ["a"], 0.2)
    rows = con.sql(
        f"select run_id, holdout_group from {churn.history_table} order by run_id"
    ).fetchall()
    assert rows == [("r0", None), ("r1", "treatment")]


def test_a_failed_write_keeps_history_current_and_runs():
    con = duckdb.connect()
    _write(con, "r1", ["a", "b"], 0.2)

    class FailingSwap:
        """Passes everything to DuckDB but fails at the last statement, recording the run,
        after history and current table were written in the same transaction."""

        def __getattr__(self, name):
            return getattr(con, name)

        def execute(self, sql, *args):
            if sql.startswith(f"insert into {SCORING_RUNS_TABLE}"):
                raise duckdb.IOException("disk went away during the swap")
            return con.execute(sql, *args)

    second = score_frame(churn, "v2", "r2", _rows(["a", "b", "c"], 0.9))
    with pytest.raises(duckdb.IOException):
        write_scores(FailingSwap(), churn, second)
    assert con.sql(f"select distinct run_id from {churn.history_table}").fetchall() == [("r1",)]
    assert con.sql(f"select distinct run_id from {churn.score_table}").fetchall() == [("r1",)]
    assert _count(con, f"select count(*) from {SCORING_RUNS_TABLE}") == 1


def test_a_write_holds_one_run():
    con = duckdb.connect()
    frame = pl.concat(
        [
            score_frame(churn, "v1", "r1", _rows(["a"], 0.1)),
            score_frame(churn, "v1", "r2", _rows(["b"], 0.1)),
        ]
    )
    with pytest.raises(ValueError, match="exactly one run id"):
        write_scores(con, churn, frame)


def _alerts(users: list[str], run_id: str) -> pl.DataFrame:
    rows = _rows(users, 3.0, as_of=date(2025, 1, 1)).with_columns(
        pl.lit("anomalous").alias("predicted_label")
    )
    return score_frame(anomaly, "v1", run_id, rows)


def _merge_changed(con, alerts: list[str], run_id: str) -> list[str]:
    """Stage every user-day, merge the alerts among the changed ones; the changed users."""
    stage_latest_rows(con, ("true", []), anomaly)
    changed, _ = changed_rows(con, anomaly)
    merge_scores(con, anomaly, _alerts(alerts, run_id), run_id, "v1")
    return sorted(changed["user_id"])


def test_a_changed_alerts_only_run_replaces_or_removes_the_changed_rows_alerts():
    """Users a, b, c have one user-day each; a and b were alerts. a's and c's rows change:
    rescored, c passes and a no longer does (its alert is not in the run's frame); then b's
    row changes and passes no more (a run with no alert), and c's row leaves the mart."""
    con = duckdb.connect()
    con.execute("create schema features")
    con.execute(
        "create table features.ftr_user_day_activity as select * from (values "
        "('a', date '2025-01-01', 1.0), ('b', date '2025-01-01', 2.0), "
        "('c', date '2025-01-01', 3.0)) as t(user_id, activity_date, z_events)"
    )
    stage_latest_rows(con, ("true", []), anomaly)
    write_scores(con, anomaly, _alerts(["a", "b"], "r1"))
    record_score_state(con, anomaly, "v1", "r1", None)

    def current() -> list[tuple[str, str]]:
        return con.sql(f"select user_id, run_id from {anomaly.score_table} order by 1").fetchall()

    con.execute("update features.ftr_user_day_activity set z_events = 9 where user_id <> 'b'")
    assert _merge_changed(con, ["c"], "r2") == ["a", "c"]
    assert current() == [("b", "r1"), ("c", "r2")]
    con.execute("update features.ftr_user_day_activity set z_events = 0 where user_id = 'b'")
    assert _merge_changed(con, [], "r3") == ["b"]
    assert current() == [("c", "r2")]
    assert _count(con, f"select rows from {SCORING_RUNS_TABLE} where run_id = 'r3'") == 0
    con.execute("delete from features.ftr_user_day_activity where user_id = 'c'")
    assert _merge_changed(con, [], "r4") == []
    assert current() == []
    # what was recorded is every staged row as scored: nothing reads as changed now
    stage_latest_rows(con, ("true", []), anomaly)
    assert changed_rows(con, anomaly)[0].is_empty()
    assert con.sql(f"select user_id from {SCORED_ROWS} order by 1").fetchall() == [("a",), ("b",)]


def test_a_rescored_row_replaces_its_recorded_row_whatever_its_date():
    """The recorded rows of the rescored keys are deleted from the earliest rescored date on
    (a literal bound DuckDB skips the older row groups by): a late change on an old day and a
    change on the newest day each replace their recorded row, once; the other rows stay."""
    con = duckdb.connect()
    con.execute("create schema features")
    con.execute(
        "create table features.ftr_user_day_activity as select 'u' || (i % 5) as user_id, "
        "date '2025-01-01' + cast(i // 5 as integer) as activity_date, "
        "cast(i as double) as z_events from range(50) as t(i)"
    )
    stage_latest_rows(con, ("true", []), anomaly)
    write_scores(con, anomaly, _alerts(["u0"], "r1"))
    record_score_state(con, anomaly, "v1", "r1", None)
    before = con.sql(f"select user_id, as_of_date, row_hash from {SCORED_ROWS}").pl()
    con.execute(
        "update features.ftr_user_day_activity set z_events = -1 where "
        "(user_id = 'u1' and activity_date = date '2025-01-03') "
        "or (user_id = 'u2' and activity_date = date '2025-01-10')"
    )
    assert _merge_changed(con, [], "r2") == ["u1", "u2"]
    after = con.sql(f"select user_id, as_of_date, row_hash from {SCORED_ROWS}").pl()
    assert after.height == 50 and after.select("user_id", "as_of_date").is_unique().all()
    moved = after.join(before, on=after.columns, how="anti").sort("user_id")
    assert moved.select("user_id", "as_of_date").rows() == [
        ("u1", date(2025, 1, 3)),
        ("u2", date(2025, 1, 10)),
    ]
    stage_latest_rows(con, ("true", []), anomaly)
    assert changed_rows(con, anomaly)[0].is_empty()


def test_next_action_s_changed_rows_come_from_its_scored_rows_table():
    """Next action's rows are staged and read from its scored_rows table (each user's newest
    sequence row), keyed by the mart's grain (user_id + event_id): of the rows whose values
    changed, only the newest ones (the staged keys) are rescored."""
    con = duckdb.connect()
    con.execute("create schema features")
    table = next_action.scored_rows
    con.execute(
        f"create table {table} as select * from (values "
        "('a', 'e1', date '2025-01-05', 1.0, 'x'), ('a', 'e2', date '2025-01-06', 2.0, 'y'), "
        "('b', 'e3', date '2025-01-06', 3.0, 'z'), ('c', 'e4', date '2025-01-04', 4.0, 'w')) "
        "as t(user_id, event_id, event_date, count_events_so_far, note)"
    )
    newest = pl.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "as_of_date": [date(2025, 1, 6), date(2025, 1, 6), date(2025, 1, 4)],
            "event_id": ["e2", "e3", "e4"],
        }
    )
    stage_latest_rows(con, newest, next_action)
    rows = (
        _rows(["a", "b", "c"], 0.3)
        .drop("as_of_date")
        .join(newest.select("user_id", "as_of_date"), on="user_id")
    )
    details = [
        c for c in (*next_action.label_columns, *next_action.detail_columns) if c not in rows
    ]
    rows = rows.with_columns(
        pl.lit("view" if c.startswith("next_action") else 0.5).alias(c) for c in details
    )
    scored = score_frame(next_action, "v1", "r1", rows)
    write_scores(con, next_action, scored)
    record_score_state(con, next_action, "v1", "r1", None)
    con.execute(f"update {table} set count_events_so_far = 9 where event_id in ('e1', 'e2', 'e4')")
    stage_latest_rows(con, newest, next_action)
    from_mart, stale = changed_rows(con, next_action)
    assert list(from_mart["event_id"]) == ["e2", "e4"]  # e1 is not a newest row
    assert stale == 0


def test_the_newest_score_of_each_version_and_key_is_picked_in_the_warehouse():
    """newest_scores (realized performance's input): per model version and (user, snapshot),
    the last run's score, whatever older runs stored; another version keeps its own; a column
    the history lacks is left out; no history, no rows."""
    con = duckdb.connect()
    assert newest_scores(con, churn, ("user_id", "score")).is_empty()
    _write(con, "r1", ["a", "b"], 0.2)
    _write(con, "r2", ["a", "b", "c"], 0.7)
    _write(con, "r3", ["c"], 0.9)
    frame = score_frame(churn, "v2", "r4", _rows(["a"], 0.4))
    write_scores(con, churn, frame)
    newest = newest_scores(con, churn, ("model_version", "user_id", "score", "no_such_column"))
    assert newest.columns == ["model_version", "user_id", "score"]
    assert sorted(newest.rows()) == [
        ("v1", "a", 0.7),
        ("v1", "b", 0.7),
        ("v1", "c", 0.9),
        ("v2", "a", 0.4),
    ]
