"""Score tables keep every run (ml_scores.<table>_history), the newest is current, each run is
recorded in ml.scoring_runs; re-running a run id replaces its rows; a failed write changes
nothing. On in-memory DuckDB with the churn spec's columns."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from python_models.churn.spec import SPEC as churn
from python_models.common.scores import SCORING_RUNS_TABLE, score_frame, write_scores


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
        """Passes everything to DuckDB but fails at the rename, mid-transaction."""

        def __getattr__(self, name):
            return getattr(con, name)

        def execute(self, sql, *args):
            if "rename to" in sql:
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
