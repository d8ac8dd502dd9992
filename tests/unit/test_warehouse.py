"""The warehouse helpers: atomic replace, and a guard against a DuckDB 1.5 hang."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from python_models.warehouse import connect, replace_table, split_name

ROOT = Path(__file__).resolve().parents[2]
# `.arrow()` on a DuckDB result returns a lazy reader in DuckDB 1.5; one left alive after its
# connection closes makes every later connect() to that file spin forever (seen in CI).
LAZY_ARROW = re.compile(r"(?<!`)\.arrow\(\)")  # prose in backticks is fine


def test_no_lazy_arrow_fetches_in_the_codebase():
    offenders = []
    for folder in ("python_models", "orchestration", "expectations", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if LAZY_ARROW.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, f"use .pl()/.df()/.fetch_arrow_table() instead of .arrow(): {offenders}"


def test_replace_table_swaps_and_keeps_previous_on_failure(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    try:
        assert replace_table(con, "s.t", pl.DataFrame({"a": [1, 2, 3]})) == 3
        assert replace_table(con, "s.t", pl.DataFrame({"a": [4, 5]})) == 2
        assert con.execute("select sum(a)::bigint from s.t").fetchone()[0] == 9

        class Broken:
            """Not a frame DuckDB can scan: the write fails before the swap."""

        with pytest.raises(duckdb.Error):
            replace_table(con, "s.t", Broken())
        assert con.execute("select list(a order by a) from s.t").fetchone()[0] == [4, 5]
        leftovers = con.execute(
            "select count(*) from information_schema.tables where table_name like 't__new_%'"
        ).fetchone()[0]
        assert leftovers == 0
    finally:
        con.close()


@pytest.mark.parametrize("bad", ["t", "a.b.c", "s.t; drop table x", 's."t"'])
def test_split_name_refuses_non_identifiers(bad):
    with pytest.raises(ValueError):
        split_name(bad)
