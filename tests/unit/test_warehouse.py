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


def test_replace_table_drops_leftovers_of_an_interrupted_write(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    try:
        con.execute("create schema s; create table s.t__new_0badc0de as select 1 as a")
        replace_table(con, "s.t", pl.DataFrame({"a": [1]}))
        names = con.execute(
            "select table_name from information_schema.tables where table_schema = 's'"
        ).fetchall()
        assert names == [("t",)]
    finally:
        con.close()


_REPLACE_IN_CHILD = """
import os, signal, sys
import polars as pl
from python_models.warehouse import connect, replace_table

class DiesAfter:
    # Passes everything to the connection; SIGKILLs the process right after its n-th SQL
    # statement, so each run stops replace_table at a different point.

    def __init__(self, con, n):
        self.con, self.n, self.calls = con, n, 0

    def execute(self, *args, **kwargs):
        result = self.con.execute(*args, **kwargs)
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    def __getattr__(self, name):
        return getattr(self.con, name)

con = DiesAfter(connect(sys.argv[1]), int(sys.argv[2]))
replace_table(con, "s.t", pl.DataFrame({"a": range(1000), "b": ["new"] * 1000}))
print("done", flush=True)
"""


@pytest.mark.parametrize("statement", range(1, 9))
def test_replace_table_killed_at_any_point_leaves_old_or_new_table_only(tmp_path, statement):
    """SIGKILL a writer right after each SQL statement of replace_table in turn: the table is
    then the old one or the new one, whole, and no temporary table is left behind."""
    import os
    import subprocess
    import sys

    db = tmp_path / "w.duckdb"
    con = connect(db)
    replace_table(con, "s.t", pl.DataFrame({"a": [1, 2], "b": ["old", "old"]}))
    con.close()
    subprocess.run(
        [sys.executable, "-c", _REPLACE_IN_CHILD, str(db), str(statement)],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
    )
    con = connect(db)
    try:
        contents = con.execute("select b, count(*) from s.t group by 1").fetchall()
        assert contents in ([("old", 2)], [("new", 1000)])
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 's'"
        ).fetchall()
        assert tables == [("t",)]
    finally:
        con.close()


_HOLD_LOCK = """
import sys, time
from python_models.warehouse import writer_lock
with writer_lock(sys.argv[1], purpose="uba build --full-refresh"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""

_HOLD_DUCKDB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(script: str, db: Path, seconds: float):
    import os
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(db), str(seconds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_waits_then_fails_naming_the_holder(tmp_path, capsys):
    from python_models.warehouse import WarehouseBusyError, writer_lock

    db = tmp_path / "w.duckdb"
    holder = _hold(_HOLD_LOCK, db, 30)
    try:
        with pytest.raises(WarehouseBusyError) as caught:
            with writer_lock(db, timeout=1.0):
                pass
        message = str(caught.value)
        assert f"PID {holder.pid} (uba build --full-refresh)" in message
        assert "UBA_LOCK_TIMEOUT_SECONDS" in message and "\n" not in message
        assert "waiting for the warehouse" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_a_second_writer_gets_the_warehouse_once_the_first_is_done(tmp_path):
    from python_models.warehouse import writer

    db = tmp_path / "w.duckdb"
    holder = _hold(_HOLD_LOCK, db, 1.0)
    try:
        with writer(db) as con:  # waits about a second, then writes
            con.execute("create table t as select 1 as a")
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()


def test_connect_waits_for_duckdb_lock_held_by_another_process(tmp_path):
    from python_models.warehouse import WarehouseBusyError

    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    holder = _hold(_HOLD_DUCKDB, db, 30)
    try:
        with pytest.raises(WarehouseBusyError, match=f"PID {holder.pid}"):
            connect(db, timeout=1.0)
    finally:
        holder.kill()
        holder.wait()
    connect(db, timeout=5.0).close()  # free again


def test_dead_rows_are_counted_until_a_vacuum_and_decide_the_daily_build_s_vacuum(tmp_path):
    """Deleted rows stay stored (and counted) through a checkpoint without DuckDB's vacuum;
    `uba refresh` skips the vacuum for its dbt build below VACUUM_DEAD_SHARE of the stored
    rows and lets it run past it; a vacuum that compacts clears the count."""
    from python_models.warehouse.duckdb_engine import (
        VACUUM_DEAD_SHARE,
        DuckDBWarehouse,
        daily_duckdb_settings,
        dead_row_share,
    )

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    for name in ("a", "b"):
        con.execute(f"create table marts.{name} as select range as i from range(1000000)")
    con.execute("checkpoint")
    assert dead_row_share(con) == 0.0
    warehouse = DuckDBWarehouse(con)
    con.execute("set max_vacuum_tasks = 0")
    con.execute("delete from marts.a where i % 10 < 3")  # 300,000 of 2,000,000 stored rows
    con.execute("checkpoint")
    assert dead_row_share(con) == pytest.approx(0.15) and 0.15 < VACUUM_DEAD_SHARE
    assert daily_duckdb_settings(warehouse) == {
        "checkpoint_threshold": "1GB",
        "max_vacuum_tasks": "0",
    }
    con.execute("delete from marts.b where i % 10 < 7")  # 700,000 more: past the share
    con.execute("checkpoint")
    assert dead_row_share(con) == pytest.approx(0.5)
    assert daily_duckdb_settings(warehouse) == {"checkpoint_threshold": "1GB"}
    con.execute("set max_vacuum_tasks = 100")  # DuckDB's default: the vacuum runs
    con.execute("insert into marts.b values (-1)")  # a change to checkpoint
    con.execute("checkpoint")
    assert dead_row_share(con) < 0.16  # b's row groups rewritten without its dead rows
    assert con.execute("select count(*) from marts.b").fetchone()[0] == 300_001
    con.close()


def test_dagster_writers_skip_the_vacuum_as_uba_refresh_does(tmp_path):
    """The Dagster assets' writer connections (WarehouseResource) skip DuckDB's vacuum while
    the file's deleted-but-stored rows are under VACUUM_DEAD_SHARE, as `uba refresh`'s own
    connections do, and leave it on past it; a reader keeps DuckDB's default."""
    from orchestration.resources import WarehouseResource
    from python_models.warehouse.duckdb_engine import VACUUM_DEAD_SHARE, dead_row_share

    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.a as select range as i from range(1000000)")
    (default,) = con.execute("select current_setting('max_vacuum_tasks')").fetchone()
    con.execute("set max_vacuum_tasks = 0")
    con.execute("delete from marts.a where i % 10 = 0")
    con.execute("checkpoint")
    con.close()

    def vacuum_tasks(read_only: bool = False) -> int:
        with WarehouseResource(duckdb_path=str(path)).connect(read_only=read_only) as con:
            assert (dead_row_share(con) < VACUUM_DEAD_SHARE) == few
            return con.execute("select current_setting('max_vacuum_tasks')").fetchone()[0]

    few = True  # 100,000 of 1,000,000 stored rows
    assert default > 0 and vacuum_tasks() == 0
    assert vacuum_tasks(read_only=True) == default
    con = duckdb.connect(str(path))
    con.execute("set max_vacuum_tasks = 0")
    con.execute("delete from marts.a where i % 10 < 5")  # half the stored rows now
    con.execute("checkpoint")
    con.close()
    few = False
    assert vacuum_tasks() == default


def _pool_mb(con) -> float:
    return con.execute("select sum(memory_usage_bytes) / 2^20 from duckdb_memory()").fetchone()[0]


def test_release_memory_empties_the_pool_and_keeps_the_limit_and_the_data(tmp_path):
    """DuckDB keeps the pages a query read until its limit forces them out; release_memory
    gives them back, puts the configured limit back exactly (current_setting() shows it
    rounded), and the data reads the same afterwards. With more pinned than the moment's
    floor (a temp table with spilling off), it evicts what it can and raises nothing."""
    from python_models.warehouse.duckdb_engine import DuckDBWarehouse

    con = duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": "1500MB"})
    con.execute("create table t as select range as i, hash(range) as h from range(16000000)")
    con.execute("checkpoint")
    con.close()
    con = duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": "1500MB"})
    before = con.execute("select sum(i), sum(h::hugeint) from t").fetchone()
    assert _pool_mb(con) > 100  # the scan's pages stayed cached
    warehouse = DuckDBWarehouse(con, memory_limit="1500MB")
    # pool_share: the pool in use against the limit DuckDB reads back (1500MB: 1.3 GiB)
    assert warehouse.pool_share() == pytest.approx(_pool_mb(con) / (1.3 * 1024), rel=0.01)
    warehouse.release_memory()
    assert _pool_mb(con) <= 64  # RELEASED_POOL
    assert warehouse.pool_share() < 64 / (1.3 * 1024)
    con.execute("set memory_limit = '1500MB'")
    configured = con.execute("select current_setting('memory_limit')").fetchone()[0]
    con.execute("set memory_limit = '1.3GiB'")  # what a rounded read-back would restore
    warehouse.release_memory()
    assert con.execute("select current_setting('memory_limit')").fetchone()[0] == configured
    assert con.execute("select sum(i), sum(h::hugeint) from t").fetchone() == before

    con.execute("set temp_directory = ''")  # nowhere to spill: the temp table stays pinned
    con.execute("create temp table pinned as select hash(range) as h from range(16000000)")
    warehouse.release_memory()
    assert _pool_mb(con) > 100
    assert con.execute("select current_setting('memory_limit')").fetchone()[0] == configured
    assert con.execute("select count(*) from pinned").fetchone()[0] == 16_000_000
