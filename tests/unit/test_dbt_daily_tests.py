"""The daily data tests run from dbt's compiled SQL (python_models/dbt_daily_tests.py): each
test passes, warns or fails as dbt's get_test_sql judges it; the not_null tests of one model,
counted together in one scan, still give each column's own count and name."""

from __future__ import annotations

import json

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
