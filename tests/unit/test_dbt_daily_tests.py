"""The daily data tests run from dbt's compiled SQL (python_models/dbt_daily_tests.py): each
test passes, warns or fails as dbt's get_test_sql judges it; the not_null tests of one model,
counted together in one scan, still give each column's own count and name."""

from __future__ import annotations

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
    assert outcome.passed == 1  # not_null_events_event_id
    assert outcome.warned == ["not_null_events_device: 1 rows"]
    assert sorted(outcome.failed) == [
        "not_null_events_amount: 1 failing rows; first: (None,)",
        "not_null_events_user_id: 2 failing rows; first: (None,); (None,)",
        "unique_events_event_id: 1 failing rows; first: (3, 2)",
    ]
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
