"""On DuckDB the project's unique tests look for repeats among 64-bit digests of the key first
(macros/uba_generic_tests.sql, uba_repeated_by_digest): they must still report exactly the
keys, and counts, that grouping by the key itself finds, whatever digests collide."""

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
# Every digest of the compiled SQL replaced by one of three values: nearly every key then
# shares its digest with others, which the test must not report.
_DIGEST = re.compile(r"hash\(([^()]*)\)")


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


def test_unique_tests_by_digest_find_exactly_the_repeated_keys(built_warehouse, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(built_warehouse.read_bytes())
    target = tmp_path / "target"
    run_dbt(
        ["compile", "--select", " ".join(TESTS), "--vars", "{uba__full_data_tests: true}"],
        duckdb_path=path,
        quiet=True,
        target_path=target,
    )
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    compiled = {n["name"]: n["compiled_code"] for n in nodes if n["name"] in TESTS}
    assert set(compiled) == set(TESTS)

    con = connect(path)
    try:
        for planted in (False, True):
            if planted:
                _plant_repeats(con)
            for name, (table, columns, not_null) in TESTS.items():
                expected = _repeats_by_grouping(con, table, columns, not_null)
                assert bool(expected) == planted, (name, expected)
                sql = compiled[name]
                colliding = _DIGEST.sub(r"(hash(\1) % 3)", sql)
                assert colliding != sql, f"{name} compiled without a digest"
                for query in (sql, colliding):
                    found = sorted(con.execute(query).fetchall(), key=repr)
                    assert found == expected, (name, query)
            if planted:  # the planted repeats, counted as planted; the nulls not reported
                counts = [row[-1] for row in _repeats_by_grouping(con, *TESTS[next(iter(TESTS))])]
                assert sorted(counts) == [2, 4]
    finally:
        con.close()
