"""The daily data tests run from dbt's compiled SQL (python_models/dbt_daily_tests.py): each
test passes, warns or fails as dbt's get_test_sql judges it; the not_null tests of one model,
counted together in one scan, still give each column's own count and name."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb

from python_models.dbt_daily_tests import compiled_tests, run_plan

MODEL = '"memory"."main"."events"'


def _node(name: str, sql: str, kind: str | None, severity: str = "ERROR") -> dict:
    config = {"severity": severity, "fail_calc": "count(*)", "warn_if": "!= 0", "error_if": "!= 0"}
    return {
        "unique_id": f"test.uba.{name}",
        "name": name,
        "resource_type": "test",
        "config": config,
        "test_metadata": {"name": kind} if kind else None,
        "compiled_code": sql,
    }


def _not_null(column: str, severity: str = "ERROR") -> dict:
    # as dbt 1.11 compiles its not_null test (default__test_not_null)
    sql = f"\n    \n    \n\n\n\nselect {column}\nfrom {MODEL}\nwhere {column} is null\n\n\n"
    return _node(f"not_null_events_{column}", sql, "not_null", severity)


def test_folded_not_null_and_single_tests_judge_each_test_on_planted_rows():
    con = duckdb.connect()
    con.execute(
        "create table events as select * from (values "
        "(1, 'a', 10, null), (2, null, 20, 'x'), (3, null, null, 'y'), (3, 'd', 40, 'z')) "
        "as t(event_id, user_id, amount, device)"
    )
    unique_ids = (
        f"select event_id as unique_field, count(*) as n_records from {MODEL} "
        "where event_id is not null group by event_id having count(*) > 1"
    )
    manifest = {
        "nodes": {
            node["unique_id"]: node
            for node in [
                _not_null("event_id"),
                _not_null("user_id"),  # two planted nulls
                _not_null("amount"),  # one planted null
                _not_null("device", severity="warn"),  # one null: a warning only
                _node("unique_events_event_id", unique_ids, "unique"),  # event 3 twice
                _node("model_node_is_not_a_test", "select 1", None) | {"resource_type": "model"},
            ]
        }
    }
    plan = compiled_tests(manifest)
    assert len(plan) == 5
    outcome = run_plan(con, plan)
    assert run_plan(con, plan, threads=2) == outcome  # two queries at a time: the same verdicts
    assert outcome.passed == 1  # not_null_events_event_id
    assert outcome.warned == ["not_null_events_device: 1 rows"]
    assert sorted(outcome.failed) == [
        "not_null_events_amount: 1 failing rows; first: (None,)",
        "not_null_events_user_id: 2 failing rows; first: (None,); (None,)",
        "unique_events_event_id: 1 failing rows; first: (3, 2)",
    ]
    # each test's verdict by its node, as dbt's status and failure count (Dagster's checks)
    assert outcome.results == {
        "test.uba.not_null_events_event_id": ("pass", 0),
        "test.uba.not_null_events_user_id": ("fail", 2),
        "test.uba.not_null_events_amount": ("fail", 1),
        "test.uba.not_null_events_device": ("warn", 1),
        "test.uba.unique_events_event_id": ("fail", 1),
    }
    con.execute("update events set user_id = 'b', amount = 0 where user_id is null")
    con.execute("delete from events where event_id = 3 and device = 'z'")
    assert run_plan(con, plan).failed == []


def test_a_manifest_with_an_uncompiled_test_gives_no_plan():
    nodes = [_not_null("event_id"), _not_null("user_id") | {"compiled_code": None}]
    manifest = {"nodes": {node["unique_id"]: node for node in nodes}}
    assert compiled_tests(manifest) is None
    assert [t["name"] for t in compiled_tests(manifest, require_all=False)] == [
        "not_null_events_event_id"
    ]


def test_the_saved_plan_is_for_one_code_salt_and_warehouse(tmp_path, monkeypatch):
    """A plan is used only with the code, profile, warehouse and salt it was compiled for."""
    from python_models import dbt_daily_tests as daily

    project = tmp_path / "dbt_project"
    (project / "macros").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: uba\n")
    (project / "macros" / "scope.sql").write_text("{% macro m() %}1{% endmacro %}\n")
    (tmp_path / "profiles.yml").write_text("uba: {}\n")
    monkeypatch.setattr(daily, "DBT_PROJECT_DIR", project)
    monkeypatch.setattr(daily, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    (tmp_path / "target").mkdir()
    env = {"UBA_DBT_TARGET": "duckdb", "UBA_DUCKDB_PATH": "/w.duckdb", "UBA_PSEUDONYM_SALT": "a"}
    fingerprint = daily.code_fingerprint(env)
    manifest = {"nodes": {"test.uba.t": _not_null("event_id")}}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    assert daily.save_plan(fingerprint) == 1
    assert [t["name"] for t in daily.load_plan(daily.code_fingerprint(dict(env)))] == [
        "not_null_events_event_id"
    ]
    for changed in ({"UBA_PSEUDONYM_SALT": "b"}, {"UBA_DUCKDB_PATH": "/other.duckdb"}):
        assert daily.load_plan(daily.code_fingerprint(env | changed)) is None
    (project / "macros" / "scope.sql").write_text("{% macro m() %}2{% endmacro %}\n")
    assert daily.load_plan(daily.code_fingerprint(env)) is None


def test_static_nodes_are_left_out_only_while_the_plan_holds_and_they_exist(tmp_path, monkeypatch):
    """Seeds, views and models reading no other node are written from the code alone: with a
    plan saved for this code, the daily build may leave them out, but only while each of their
    relations is in the warehouse; a table fed by a source or model is always built."""
    from python_models import dbt_daily_tests as daily

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path))

    def model(name: str, materialized: str, parents: list[str]) -> dict:
        return {
            "unique_id": f"model.uba.{name}",
            "name": name,
            "resource_type": "model",
            "schema": "reference" if materialized == "seed" else "marts",
            "alias": name,
            "config": {"materialized": materialized},
            "depends_on": {"nodes": parents},
        }

    nodes = [
        model("time_spine", "table", []),
        model("scores_view", "view", ["source.uba.ml_scores.churn_scores"]),
        model("fct_from_source", "table", ["source.uba.app.events_validated"]),
        model("fct_incremental", "incremental", ["model.uba.fct_from_source"]),
        model("taxonomy", "seed", []) | {"unique_id": "seed.uba.taxonomy", "resource_type": "seed"},
        _not_null("event_id"),
    ]
    manifest = {"nodes": {node["unique_id"]: node for node in nodes}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert daily.save_plan("code-a") == 1
    con = duckdb.connect()
    con.execute("create schema marts; create schema reference")
    for name in ("time_spine", "fct_from_source", "fct_incremental"):
        con.execute(f"create table marts.{name} (x int)")
    con.execute("create view marts.scores_view as select 1 as x")
    assert daily.unchanged_static_nodes(con, "code-a") == []  # the seed's table is missing
    con.execute("create table reference.taxonomy (x int)")
    assert daily.unchanged_static_nodes(con, "code-a") == ["scores_view", "time_spine", "taxonomy"]
    assert daily.unchanged_static_nodes(con, "code-b") == []  # no plan for other code


def _scoped_unique(latest_batch: str) -> dict:
    # a unique test scoped to the latest batch (macros/uba_test_scope.sql, __latest_batch__)
    sql = (
        "select event_id as unique_field, count(*) as n_records from (select * from "
        f"{MODEL} where batch_id = {latest_batch}) dbt_subquery "
        "where event_id is not null group by event_id having count(*) > 1"
    )
    return _node("unique_events_event_id", sql, "unique")


def test_a_scope_compiled_once_tests_each_later_days_rows_with_the_batch_written_in():
    """The scope's marked subquery (uba_run_time_value) is evaluated when the saved plan runs,
    not when it was compiled: on each later day the plan tests that day's rows (a duplicate
    in an earlier batch is out of scope; one in the new day fails), and the query DuckDB runs
    compares batch_id with a literal, never the subquery."""
    from python_models.dbt_daily_tests import run_time_values

    con = duckdb.connect()
    con.execute(
        "create table events as select * from (values (1, 1), (1, 1), (2, 2)) "
        "as t(event_id, batch_id)"
    )  # event 1 twice in the history (batch 1): not the latest batch's rows
    marked = f"(/* uba:run_time */ select max(batch_id) from {MODEL} /* uba:end */)"
    plan = compiled_tests({"nodes": {"t": _scoped_unique(marked)}})
    (substituted,) = run_time_values(con, plan)
    assert "uba:run_time" not in substituted["sql"] and "batch_id = 2)" in substituted["sql"]
    assert run_plan(con, plan).failed == []

    con.execute("insert into events values (3, 3), (4, 3)")  # a later day, clean
    assert "batch_id = 3)" in run_time_values(con, plan)[0]["sql"]
    assert run_plan(con, plan).failed == []
    con.execute("insert into events values (5, 4), (5, 4)")  # the next day holds a duplicate
    assert run_plan(con, plan).failed == ["unique_events_event_id: 1 failing rows; first: (5, 2)"]
    # the same test with the plain subquery agrees (what dbt's node runs)
    plain = compiled_tests(
        {"nodes": {"t": _scoped_unique(marked.replace("/* uba:run_time */ ", ""))}}
    )
    assert run_plan(con, plain).failed == run_plan(con, plan).failed


def test_run_time_values_write_dates_timestamps_and_nulls_as_literals():
    from python_models.dbt_daily_tests import run_time_values

    con = duckdb.connect()
    queries = [
        "select cast('2025-06-02' as date) - interval 28 day",
        "select cast('2025-06-02' as date) - 28",
        "select cast(null as bigint)",
    ]
    tests = [{"sql": f"select ((/* uba:run_time */ {q} /* uba:end */)) as v"} for q in queries]
    values = [con.execute(t["sql"]).fetchone()[0] for t in run_time_values(con, tests)]
    assert values == [con.execute(q).fetchone()[0] for q in queries]


def test_a_key_set_compiled_once_is_written_in_as_each_later_days_values():
    """A marked key set (uba_run_time_values, here "the newest load", holding a marked scalar
    as __new_load_keys__' does) is written in as a list when the plan runs: each later day's
    test counts that day's keys against every stored row (a key re-sent in the new load
    fails, a duplicate among old loads only is out of scope), agreeing with the plain
    subquery dbt's node runs; an empty key set selects no row, as the empty subquery."""
    from python_models.dbt_daily_tests import run_time_values

    con = duckdb.connect()
    con.execute(
        "create table events as select * from (values (1, 1), (1, 1), (2, 1), (3, 2)) "
        "as t(event_id, load_id)"
    )  # event 1 twice within the history's load; load 2 the newest
    newest = (
        f"select load_id from {MODEL} where load_id = "
        f"(/* uba:run_time */ select max(load_id) from {MODEL} /* uba:end */)"
    )
    marked = f"/* uba:run_time_list */ {newest} /* uba:end_list */"
    sql = (
        "select event_id as unique_field, count(*) as n_records from (select * from "
        f"{MODEL} where coalesce(event_id in (select event_id from {MODEL} where "
        f"coalesce(load_id in ({marked}), false)), false)) dbt_subquery "
        "where event_id is not null group by event_id having count(*) > 1"
    )
    plan = compiled_tests({"nodes": {"t": _node("unique_events_event_id", sql, "unique")}})
    plain = compiled_tests(
        {"nodes": {"t": _node("unique_events_event_id", sql.replace("/* uba:", "/* "), "unique")}}
    )
    (substituted,) = run_time_values(con, plan)
    assert "uba:" not in substituted["sql"]
    assert "(load_id is not null and load_id in (2))" in substituted["sql"]
    assert run_plan(con, plan).failed == run_plan(con, plain).failed == []

    con.execute("insert into events values (4, 3), (5, 3)")  # a later load, clean
    assert "load_id in (3))" in run_time_values(con, plan)[0]["sql"]
    assert run_plan(con, plan).failed == run_plan(con, plain).failed == []
    con.execute("insert into events values (2, 4)")  # the next load re-sends event 2
    failed = ["unique_events_event_id: 1 failing rows; first: (2, 2)"]
    assert run_plan(con, plan).failed == run_plan(con, plain).failed == failed

    empty = [{**test, "sql": test["sql"].replace(newest, newest + " and false")} for test in plan]
    assert "where false)" in run_time_values(con, empty)[0]["sql"]
    assert run_plan(con, empty).failed == []


def test_a_written_in_key_set_keeps_the_truth_value_of_every_row_and_skips_row_groups():
    """`coalesce(c in (<key set>), false)` (DuckDB's membership shape) written in as
    `(c is not null and c in (...))` or `false` holds for the same rows as the subquery, under
    `not` too, null keys and a null among the values included; and DuckDB skips the row
    groups of other values with it (rows scanned), which the coalesce form does not."""
    from python_models.dbt_daily_tests import run_time_values

    con = duckdb.connect()
    # 300k rows of load 1, then 10 of load 2 and 10 with a null load: row groups hold one load
    con.execute(
        "create table events as select range as event_id, 1 as load_id from range(300000) "
        "union all select 300000 + range, 2 from range(10) "
        "union all select 400000 + range, null from range(10) order by event_id"
    )
    key_sets = {
        "newest": "select max(load_id) from events",
        "with a null": "select load_id from (values (2), (null)) t(load_id)",
        "none": "select load_id from events where false",
    }
    for name, query in key_sets.items():
        marked = f"coalesce(load_id in (/* uba:run_time_list */ {query} /* uba:end_list */), false)"
        plain = marked.replace("/* uba:", "/* ")
        for condition in ("{}", "not {}"):
            sql = f"select count(*) from events where {condition.format(marked)}"
            (written,) = run_time_values(con, [{"sql": sql}])
            assert "coalesce" not in written["sql"], name
            plain_sql = f"select count(*) from events where {condition.format(plain)}"
            expected = con.execute(plain_sql).fetchone()
            assert con.execute(written["sql"]).fetchone() == expected, (name, condition)
    profile = Path(tempfile.mkdtemp()) / "profile.json"
    con.execute("set enable_profiling = 'json'")
    con.execute(f"set profiling_output = '{profile}'")

    def rows_scanned(sql: str) -> int:
        con.execute(sql).fetchall()
        return json.loads(profile.read_text())["cumulative_rows_scanned"]

    newest = key_sets["newest"]
    marked = f"coalesce(load_id in (/* uba:run_time_list */ {newest} /* uba:end_list */), false)"
    (written,) = run_time_values(con, [{"sql": f"select count(*) from events where {marked}"}])
    assert rows_scanned(written["sql"]) < 200_000
    assert (
        rows_scanned("select count(*) from events where coalesce(load_id in (2), false)") > 300_000
    )


def _generic(name: str, sql: str, kind: str, kwargs: dict, severity: str = "ERROR") -> dict:
    return _node(name, sql, kind, severity) | {
        "attached_node": "model.uba.events",
        "test_metadata": {"name": kind, "kwargs": kwargs},
    }


def test_tests_a_constraint_or_a_unique_key_already_guarantees_are_not_read():
    """A not_null test of a NOT NULL column, and a combination holding a column that a
    severity-error unique test of the same scope checks and that is NOT NULL, cannot find a
    failing row: the replay counts them passed without a query. Planted: each such test would
    fail if it were run on a table without the constraint (the nulls and the duplicate pair
    are there), so the test fails if a test is skipped without its guarantee; a combination
    whose unique key is only a warning still runs and fails."""
    con = duckdb.connect()
    con.execute("create table events (event_id integer not null, user_id varchar, n integer)")
    con.execute("insert into events values (1, 'a', 1), (2, 'a', null), (3, null, 3)")
    model = {"unique_id": "model.uba.events", "resource_type": "model", "name": "events"}
    model |= {"schema": "main", "alias": "events", "config": {}}
    combo_sql = (
        f"select user_id, event_id, count(*) as copies from {MODEL} "
        "group by user_id, event_id having count(*) > 1"
    )
    unique_sql = (
        f"select event_id as unique_field, count(*) as n_records from {MODEL} "
        "where event_id is not null group by event_id having count(*) > 1"
    )
    combo = {"combination_of_columns": ["user_id", "event_id"]}

    def plan(unique_severity: str) -> list[dict]:
        nodes = [
            _generic(
                "not_null_event_id",
                _not_null("event_id")["compiled_code"],
                "not_null",
                {"column_name": "event_id"},
            ),
            _generic(
                "not_null_n", _not_null("n")["compiled_code"], "not_null", {"column_name": "n"}
            ),
            _generic(
                "unique_event_id",
                unique_sql,
                "unique",
                {"column_name": "event_id"},
                unique_severity,
            ),
            _generic("combo_user_event", combo_sql, "uba_unique_combination_of_columns", combo),
        ]
        return compiled_tests({"nodes": {n["unique_id"]: n for n in [model, *nodes]}})

    from python_models.dbt_daily_tests import implied_tests

    assert implied_tests(con, plan("ERROR")) == {"not_null_event_id", "combo_user_event"}
    assert implied_tests(con, plan("warn")) == {"not_null_event_id"}
    # the same tests of a source (attached to no node; its table named by `identifier`)
    source = {"unique_id": "source.uba.app.events", "resource_type": "source", "name": "ev"}
    source |= {"schema": "main", "identifier": "events"}
    of_source = [
        test | {"attached_node": None, "depends_on": {"nodes": [source["unique_id"]]}}
        for test in [
            _generic(
                "source_not_null_event_id",
                _not_null("event_id")["compiled_code"],
                "not_null",
                {"column_name": "event_id"},
            ),
            _generic(
                "source_not_null_n",
                _not_null("n")["compiled_code"],
                "not_null",
                {"column_name": "n"},
            ),
        ]
    ]
    from_source = compiled_tests(
        {"nodes": {t["unique_id"]: t for t in of_source}, "sources": {source["unique_id"]: source}}
    )
    assert implied_tests(con, from_source) == {"source_not_null_event_id"}
    # what the skipped tests would find without the constraint: the guarantee is what holds
    con.execute("create table unconstrained as select * from events")
    con.execute("alter table events rename to constrained")
    con.execute("alter table unconstrained rename to events")
    con.execute("insert into events values (null, 'b', 4), (1, 'a', 5)")
    assert implied_tests(con, plan("ERROR")) == set()
    outcome = run_plan(con, plan("ERROR"))
    assert sorted(f.split(":")[0] for f in outcome.failed) == [
        "combo_user_event",
        "not_null_event_id",
        "not_null_n",
        "unique_event_id",
    ]
    con.execute("drop table events")
    con.execute("alter table constrained rename to events")
    outcome = run_plan(con, plan("ERROR"))
    assert [f.split(":")[0] for f in outcome.failed] == ["not_null_n"] and outcome.passed == 3
    # a duplicate key: the unique test fails the refresh; were it only a warning, the
    # combination is run and fails too
    con.execute("insert into events values (1, 'a', 6)")
    failed = [f.split(":")[0] for f in run_plan(con, plan("ERROR")).failed]
    assert sorted(failed) == ["not_null_n", "unique_event_id"]
    outcome = run_plan(con, plan("warn"))
    assert sorted(f.split(":")[0] for f in outcome.failed) == ["combo_user_event", "not_null_n"]
    assert [w.split(":")[0] for w in outcome.warned] == ["unique_event_id"]
