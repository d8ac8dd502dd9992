"""On DuckDB the project's unique tests, and the events' reconciliation with the gate's output,
look for repeats among 64-bit digests of the key first (macros/uba_generic_tests.sql,
uba_repeated_digests): they must still report exactly the keys and counts that grouping by the
key itself finds, and count the distinct events count(distinct) counts, whatever digests
collide. The next-action labels' whole-table check compares two marts by sums of digests
before it joins them (macros/uba_cross_db.sql, uba_same_rows_by_digest): it must return
exactly the rows its join finds."""

from __future__ import annotations

import json
import re

import pytest

from python_models.dbt_runner import run_dbt
from python_models.warehouse import connect

pytestmark = pytest.mark.slow

# test name -> (table, key columns, whether the test leaves null keys out as dbt's `unique` does)
TESTS = {
    "unique_stg_app__events_event_id": ("staging.stg_app__events", ["event_id"], True),
    "uba_unique_combination_of_columns_int_feature_user_day_items_user_id__event_date"
    "__available_date__event_name__feature": (
        "features.int_feature_user_day_items",
        ["user_id", "event_date", "available_date", "event_name", "feature"],
        False,
    ),
}
RECONCILE = "assert_fct_events_reconcile_with_source"
LABELS = "assert_event_sequence_labels_match_transitions"
COMPILED = [*TESTS, RECONCILE]
# Every digest of the compiled SQL replaced by one of three values: nearly every key then
# shares its digest with others, which the test must not report.
_DIGEST = re.compile(r"hash\(([^()]*)\)")


@pytest.fixture(scope="module", params=[False, True], ids=["first build", "weekly"])
def compiled(built_warehouse, tmp_path_factory, request) -> dict[str, str]:
    """The tests' SQL as dbt compiles it on DuckDB for whole tables: after a first build (its
    daily scopes then select every row: every load is new) and for the weekly whole-table run
    (var uba__full_data_tests)."""
    folder = tmp_path_factory.mktemp("digest_tests")
    path, target = folder / "warehouse.duckdb", folder / "target"
    path.write_bytes(built_warehouse.read_bytes())  # the session's copy stays untouched
    weekly = ["--vars", "{uba__full_data_tests: true}"] if request.param else []
    run_dbt(
        ["compile", "--select", " ".join(COMPILED), *weekly],
        duckdb_path=path,
        quiet=True,
        target_path=target,
    )
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    sql = {n["name"]: n["compiled_code"] for n in nodes if n["name"] in COMPILED}
    assert set(sql) == set(COMPILED)
    return sql


def _as_compiled_and_colliding(name: str, sql: str) -> tuple[str, str]:
    colliding = _DIGEST.sub(r"(hash(\1) % 3)", sql)
    assert colliding != sql, f"{name} compiled without a digest"
    return sql, colliding


def _repeats_by_grouping(con, table: str, columns: list[str], not_null: bool) -> list[tuple]:
    """The oracle: dbt's own test, grouping by the key."""
    key = ", ".join(columns)
    where = f"where {columns[0]} is not null" if not_null else ""
    return sorted(
        con.execute(
            f"select {key}, count(*) from {table} {where} group by {key} having count(*) > 1"
        ).fetchall(),
        key=repr,
    )


def _plant_repeats(con) -> None:
    con.execute(  # one event id twice, another four times (copied twice), two ids made null
        "insert into staging.stg_app__events select * from staging.stg_app__events "
        "where event_id in (select min(event_id) from staging.stg_app__events "
        "union all select max(event_id) from staging.stg_app__events)"
    )
    con.execute(
        "insert into staging.stg_app__events select * from staging.stg_app__events "
        "where event_id = (select max(event_id) from staging.stg_app__events)"
    )
    con.execute(
        "update staging.stg_app__events set event_id = null where event_id in ("
        "select event_id from staging.stg_app__events where event_id is not null "
        "order by event_id limit 2 offset 10)"
    )
    con.execute(  # one (user, day, item) row twice, one with a null product feature
        "insert into features.int_feature_user_day_items select * from ("
        "select * from features.int_feature_user_day_items where feature is null limit 1) "
        "union all select * from (select * from features.int_feature_user_day_items "
        "where feature is not null limit 1)"
    )


def test_unique_tests_by_digest_find_exactly_the_repeated_keys(built_warehouse, compiled, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(built_warehouse.read_bytes())
    con = connect(path)
    try:
        for planted in (False, True):
            if planted:
                _plant_repeats(con)
            for name, (table, columns, not_null) in TESTS.items():
                expected = _repeats_by_grouping(con, table, columns, not_null)
                assert bool(expected) == planted, (name, expected)
                for query in _as_compiled_and_colliding(name, compiled[name]):
                    found = sorted(con.execute(query).fetchall(), key=repr)
                    assert found == expected, (name, query)
            if planted:  # the planted repeats, counted as planted; the nulls not reported
                counts = [row[-1] for row in _repeats_by_grouping(con, *TESTS[next(iter(TESTS))])]
                assert sorted(counts) == [2, 4]
    finally:
        con.close()


def test_the_events_reconciliation_counts_the_distinct_validated_events(
    built_warehouse, compiled, tmp_path
):
    """The gate's output holding repeated rows of one event (as a re-sent event would, were
    the gate to let it through) reconciles with the mart; one event lost from the mart fails
    it, with the distinct count that count(distinct) gives."""
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(built_warehouse.read_bytes())
    queries = _as_compiled_and_colliding(RECONCILE, compiled[RECONCILE])
    con = connect(path)
    try:
        con.execute(  # one event's row twice more, another's once more
            "insert into raw.events_validated select * from raw.events_validated "
            "where event_id = (select min(event_id) from raw.events_validated)"
        )
        con.execute(
            "insert into raw.events_validated select * from raw.events_validated "
            "where event_id in (select min(event_id) from raw.events_validated "
            "union all select max(event_id) from raw.events_validated)"
        )
        (distinct,) = con.execute(
            "select count(distinct event_id) from raw.events_validated"
        ).fetchone()
        (rows,) = con.execute("select count(event_id) from raw.events_validated").fetchone()
        assert rows == distinct + 4
        for query in queries:
            assert con.execute(query).fetchall() == []
        con.execute(
            "delete from intermediate.int_events_sessionized "
            "where event_id = (select max(event_id) from intermediate.int_events_sessionized)"
        )
        for query in queries:
            assert con.execute(query).fetchall() == [(distinct, distinct - 1)], query
    finally:
        con.close()


def test_the_labels_check_joins_only_where_the_digests_differ(built_warehouse, tmp_path):
    """As a first build compiles it (its latest batch every row), the check compares the
    marts whole: on a clean build they agree by their digest sums and it returns nothing
    without its join; where they differ the join returns exactly the rows that disagree: a
    label naming another event than the transition's next one, and a session end where the
    transition has a next event; not an open session's null label, though the sums differ."""
    path, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    path.write_bytes(built_warehouse.read_bytes())
    run_dbt(["compile", "--select", LABELS], duckdb_path=path, quiet=True, target_path=target)
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    (sql,) = [n["compiled_code"] for n in nodes if n["name"] == LABELS]
    found = re.search(r"where not (coalesce\(.*?\bfalse\))\s*\) as sequences", sql, re.S)
    assert found, f"{LABELS} compiled without the digest comparison:\n{sql}"
    agree = f"select {found.group(1)}"
    sequences, transitions = "features.ftr_user_event_sequences", "marts.fct_event_transitions"
    con = connect(path)
    try:
        assert con.execute(agree).fetchone()[0] is True
        assert con.execute(sql).fetchall() == []
        open_label, wrong, ended = (
            row[0]
            for row in con.execute(
                f"select event_id from {transitions} where next_event_name is not null "
                "order by event_id limit 3"
            ).fetchall()
        )
        relabel = f"update {sequences} set next_event_name = ? where event_id = ?"
        con.execute(relabel, [None, open_label])
        assert con.execute(agree).fetchone()[0] is False
        assert con.execute(sql).fetchall() == []
        con.execute(relabel, ["bogus_event", wrong])
        con.execute(relabel, ["session_end", ended])
        rows = con.execute(sql).fetchall()
        assert sorted((event_id, label) for event_id, label, _ in rows) == sorted(
            [(wrong, "bogus_event"), (ended, "session_end")]
        )
    finally:
        con.close()
