"""Publishing only what changed: content fingerprints decide, readers get whole tables."""

from __future__ import annotations

import json

import duckdb
import pytest

from python_models.publish import publish_warehouse
from python_models.warehouse import table_fingerprint


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts; create schema ml_scores; create schema staging")
    con.execute("create table marts.users as select range as id, range * 2 as v from range(100)")
    con.execute(
        "create table ml_scores.scores as select range as id, 0.5::double as s from range(50)"
    )
    con.execute("create table staging.hidden as select 1 as x")  # not a published schema
    yield con
    con.close()


def _published(path) -> dict[str, list]:
    reader = duckdb.connect(str(path / "warehouse.duckdb"), read_only=True)
    try:
        return {
            table: reader.execute(f"select * from {table} order by all").fetchall()
            for table in ("marts.users", "ml_scores.scores")
            if reader.execute(
                "select count(*) from information_schema.tables "
                "where table_schema || '.' || table_name = ?",
                [table],
            ).fetchone()[0]
        }
    finally:
        reader.close()


def test_fingerprint_sees_content_not_row_order(con):
    before = table_fingerprint(con, "marts.users")
    con.execute("create or replace table marts.users as select * from marts.users order by id desc")
    assert table_fingerprint(con, "marts.users") == before
    con.execute("update marts.users set v = v + 1 where id = 7")
    assert table_fingerprint(con, "marts.users") != before
    con.execute("update marts.users set v = v - 1 where id = 7")
    con.execute("alter table marts.users alter v type double")
    assert table_fingerprint(con, "marts.users") != before  # same values, another type


def test_only_changed_tables_are_copied(con, tmp_path):
    out = tmp_path / "published"
    first = publish_warehouse(con, out, only_changed=True)  # no manifest yet: everything
    assert first.copied == ["marts.users", "ml_scores.scores"]
    users_parquet = (out / "parquet" / "marts.users" / "all.parquet").stat()

    same = publish_warehouse(con, out, only_changed=True)
    assert not same.changed and same.copied == []
    assert (
        out / "parquet" / "marts.users" / "all.parquet"
    ).stat().st_mtime_ns == users_parquet.st_mtime_ns

    con.execute("update ml_scores.scores set s = 0.9 where id < 5")
    changed = publish_warehouse(con, out, only_changed=True)
    assert changed.copied == ["ml_scores.scores"]
    assert (out / "parquet" / "marts.users" / "all.parquet").stat().st_ino == users_parquet.st_ino
    published = _published(out)
    assert (
        published["marts.users"] == con.execute("select * from marts.users order by all").fetchall()
    )
    assert sum(1 for _, s in published["ml_scores.scores"] if s == 0.9) == 5

    con.execute("drop table ml_scores.scores")
    removed = publish_warehouse(con, out, only_changed=True)
    assert removed.removed == ["ml_scores.scores"] and removed.copied == []
    assert set(_published(out)) == {"marts.users"}
    assert not (out / "parquet" / "ml_scores.scores").exists()


def test_a_missing_manifest_means_a_full_copy(con, tmp_path):
    out = tmp_path / "published"
    publish_warehouse(con, out, only_changed=True)
    (out / "manifest.json").unlink()
    again = publish_warehouse(con, out, only_changed=True)
    assert again.copied == ["marts.users", "ml_scores.scores"]

    # A publication of an older file layout (its manifest without this "layout") too.
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["layout"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    older = publish_warehouse(con, out, only_changed=True)
    assert older.copied == ["marts.users", "ml_scores.scores"]


def _rows(con, sql: str) -> list:
    return sorted(con.execute(sql).fetchall(), key=repr)


def _publication(out) -> dict[str, tuple[list, list]]:
    """{table: (rows of the published DuckDB copy, rows of its Parquet files)}."""
    reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        return {
            table: (
                _rows(reader, f"select * from {table}"),
                _rows(reader, f"select * from read_parquet('{out}/parquet/{table}/*.parquet')"),
            )
            for table in ("marts.events", "marts.pairs", "marts.users", "ml_scores.scores")
        }
    finally:
        reader.close()


def _files(out) -> dict[str, int]:
    return {
        str(p.relative_to(out / "parquet")): p.stat().st_ino
        for p in (out / "parquet").rglob("*.parquet")
    }


@pytest.fixture
def big(con, monkeypatch):
    """`con` plus two "big" tables (the threshold lowered): events by day over three months
    (a null date, duplicate rows), and pairs without a date column (duplicates too)."""
    import python_models.publish as publish

    monkeypatch.setattr(publish, "DIFF_MIN_ROWS", 10)
    con.execute(
        "create table marts.events as select range % 40 as user_id, "
        "case when range = 5 then null else date '2025-01-01' + (range % 80)::int end as day, "
        "(range % 7)::double as v from range(400)"
    )
    con.execute("insert into marts.events select * from marts.events where user_id = 3")
    con.execute("comment on table marts.events is 'One row per event.'")
    con.execute("comment on column marts.events.v is 'The value.'")
    con.execute("create table marts.pairs as select range % 30 as a, range % 3 as b from range(90)")
    return con


def test_a_day_changes_only_its_rows_and_files_and_equals_a_full_publish(big, tmp_path):
    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    before = _files(out)
    # Written whole, a table has one file per month (and null dates).
    assert {"marts.events/2025-01.parquet", "marts.events/undated.parquet"} <= set(before)

    # A new day, a late row in an old day, a deleted row, a re-keyed null-date row, a
    # duplicated pair and a changed pair: the kinds of change a day brings.
    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0), (8, null, 2.0)")
    big.execute("update marts.events set v = 99 where day = date '2025-03-01' and user_id = 19")
    big.execute("delete from marts.events where day = date '2025-03-02' and user_id = 20")
    big.execute("update marts.pairs set b = 7 where a = 4")
    big.execute("insert into marts.pairs values (1, 1)")
    result = publish_warehouse(big, out, only_changed=True)

    assert result.copied == ["marts.events", "marts.pairs"]
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)
    expected = _rows(big, "select * from marts.events")
    assert _publication(out)["marts.events"] == (expected, expected)
    after = _files(out)
    # The month of the changed days (a new day, a changed one, one that lost its every row)
    # became one file per day, the null-date rows' file was written again; January's and
    # February's files are the old ones (same inode), the unchanged tables' files too.
    march = {f"marts.events/2025-03-{day:02}.parquet" for day in range(1, 23) if day != 2}
    written = march | {"marts.events/undated.parquet", "marts.pairs/all.parquet"}
    assert {name for name in after if after[name] != before.get(name)} == written
    assert set(before) - set(after) == {"marts.events/2025-03.parquet"}
    assert after["marts.users/all.parquet"] == before["marts.users/all.parquet"]
    # The next change in March writes only its day's file.
    big.execute("insert into marts.events values (9, date '2025-03-10', 3.0)")
    publish_warehouse(big, out, only_changed=True)
    again = _files(out)
    assert {name for name in again if again[name] != after.get(name)} == {
        "marts.events/2025-03-10.parquet"
    }
    assert set(after) == set(again)
    big.execute("delete from marts.events where user_id = 9")
    publish_warehouse(big, out, only_changed=True)
    reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:  # changed row by row, the copy kept its comments
        assert reader.execute(
            "select t.comment, c.comment from duckdb_tables() t join duckdb_columns() c "
            "using (schema_name, table_name) where table_name = 'events' and column_name = 'v'"
        ).fetchall() == [("One row per event.", "The value.")]
    finally:
        reader.close()


def _spy(monkeypatch, name: str) -> list[tuple[tuple, object]]:
    """Each call of python_models.publish.<name> from now on: (its arguments, its result)."""
    import python_models.publish as publish

    calls, original = [], getattr(publish, name)

    def spy(*args):
        calls.append((args, original(*args)))
        return calls[-1][1]

    monkeypatch.setattr(publish, name, spy)
    return calls


def test_the_changed_days_go_by_delete_and_insert_not_a_whole_copy(big, tmp_path, monkeypatch):

    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    calls = _spy(monkeypatch, "_replace_changed_days")
    by_rows = _spy(monkeypatch, "_replace_changed_rows")  # (con, table, source, where)

    def replaced() -> list:
        return [(args[1], sorted(args[3])) for args, _ in calls]

    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
    publish_warehouse(big, out, only_changed=True)
    assert replaced() == [("marts.events", ["2025-03-22"])]
    # a new day: all its rows differ, so the day is inserted whole
    assert [(args[1], ok) for args, ok in by_rows] == [("marts.events", False)]

    # One row of an old day changed: only the differing rows are deleted and inserted (the
    # day's other four rows stay; the file updated is two publications behind, so the new
    # day's row too), and the publication still equals the warehouse.
    by_rows.clear()
    big.execute("update marts.events set v = 42 where day = date '2025-03-01' and v = 3")
    publish_warehouse(big, out, only_changed=True)
    assert [(args[1], ok) for args, ok in by_rows] == [("marts.events", True)]
    assert "date '2025-03-01'" in by_rows[0][0][3]
    expected = _rows(big, "select * from marts.events")
    assert _publication(out)["marts.events"] == (expected, expected)

    # Most rows changed: copied whole instead, and still equal.
    calls.clear()
    big.execute("update marts.events set v = v + 1")
    publish_warehouse(big, out, only_changed=True)
    assert replaced() == []
    expected = _rows(big, "select * from marts.events")
    assert _publication(out)["marts.events"] == (expected, expected)


def test_a_change_to_most_rows_writes_month_files_not_a_file_per_day(big, tmp_path):
    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
    publish_warehouse(big, out, only_changed=True)
    assert "marts.events/2025-03-22.parquet" in _files(out)  # a day: its month cut by day

    # Every day changed (as dim_users, cut by first-seen day, changes on most of its days
    # each day): the table is written whole, a file per month, not a file per changed day.
    big.execute("update marts.events set v = v + 1")
    publish_warehouse(big, out, only_changed=True)
    assert {name for name in _files(out) if name.startswith("marts.events/")} == {
        f"marts.events/{month}.parquet" for month in ("2025-01", "2025-02", "2025-03", "undated")
    }
    expected = _rows(big, "select * from marts.events")
    assert _publication(out)["marts.events"] == (expected, expected)


def test_days_known_unchanged_are_not_hashed_and_a_day_that_gained_rows_is_caught(
    big, tmp_path, monkeypatch
):
    """unchanged_before: the caller knows a table's rows before a day are as published, so
    only the later rows are hashed (the earlier days' figures come from the manifest); every
    day's row count is still checked, and a day before the bound that gained or lost rows
    makes the publish hash the whole table. Either way the publication equals a full one."""
    from datetime import date

    import python_models.publish as publish

    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True, basis={"batch": 1})
    assert publish.published_basis(out) == {"batch": 1}
    scanned = _spy(monkeypatch, "_day_figures")  # (con, source, layout[, where])

    def events_scans() -> list[str]:
        return [(args + ("true",))[3] for args, _ in scanned if "events" in args[1]]

    # A new day, a changed row and a null-date row, all on or after the bound.
    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0), (8, null, 2.0)")
    big.execute("update marts.events set v = 99 where day = date '2025-03-05' and user_id = 24")
    bound = {"marts.events": date(2025, 3, 1)}
    result = publish_warehouse(big, out, only_changed=True, unchanged_before=bound)
    assert result.copied == ["marts.events"]
    assert events_scans() == ["\"day\" >= date '2025-03-01'", '"day" is null']
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)
    assert publish.published_basis(out) is None  # none given this time

    # A row added before the bound (the caller was wrong): every row is hashed again.
    scanned.clear()
    big.execute("insert into marts.events values (9, date '2025-01-10', 3.0)")
    publish_warehouse(big, out, only_changed=True, unchanged_before=bound)
    assert events_scans()[-1] == "true"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)

    # The bound is trusted for content: a change before it that keeps the day's row count
    # is not seen (so the caller's knowledge must cover every write: days_written).
    scanned.clear()
    big.execute("update marts.events set v = 77 where day = date '2025-01-10' and user_id = 9")
    publish_warehouse(big, out, only_changed=True, unchanged_before=bound)
    assert "true" not in events_scans()
    assert (9, date(2025, 1, 10), 77.0) not in _publication(out)["marts.events"][0]


def test_a_rows_batch_id_is_not_published_so_re_touched_rows_change_no_day(big, tmp_path):
    """batch_id (the load batch that last rewrote a row) stays in the warehouse: rows a day
    re-writes with the same content but a new batch change nothing published; a real change
    of such a table still goes by its day."""
    big.execute(
        "create table marts.transitions as select range as event_id, "
        "date '2025-01-01' + (range % 30)::int as event_date, 1 as batch_id from range(300)"
    )
    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    big.execute("insert into marts.transitions values (300, date '2025-01-05', 2)")
    publish_warehouse(big, out, only_changed=True)  # January: one file per day from here on
    before = _files(out)

    # A day re-touches every row of 10 days, content unchanged, under batch 3.
    big.execute("update marts.transitions set batch_id = 3 where event_id % 3 = 0")
    assert publish_warehouse(big, out, only_changed=True).copied == []
    big.execute("insert into marts.transitions values (301, date '2025-01-06', 4)")
    assert publish_warehouse(big, out, only_changed=True).copied == ["marts.transitions"]
    after = _files(out)
    assert {name for name in after if after[name] != before.get(name)} == {
        "marts.transitions/2025-01-06.parquet"
    }

    reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        published = reader.execute("select * from marts.transitions").fetchall()
        files = reader.execute(
            f"select * from read_parquet('{out}/parquet/marts.transitions/*.parquet')"
        ).fetchall()
        described = reader.execute(
            "select column_name from docs.published_columns where table_name = 'transitions' "
            "order by ordinal_position"
        ).fetchall()
    finally:
        reader.close()
    expected = _rows(big, "select event_id, event_date from marts.transitions")
    assert sorted(published, key=repr) == expected and sorted(files, key=repr) == expected
    assert described == [("event_id",), ("event_date",)]
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = [t for t in manifest["tables"] if t["table"] == "transitions"]
    assert [c["name"] for c in entry["columns"]] == ["event_id", "event_date"]


def test_parquet_months_are_cut_in_the_connections_time_zone(con, tmp_path):
    """A timestamptz row's Parquet month (a numeric partition key, named after) is its date
    in the publishing connection's zone, as the day figures see it, not UTC's."""
    con.execute("set TimeZone = 'America/New_York'")
    con.execute(
        "create table marts.visits as select * from (values "
        "(1, timestamptz '2025-03-01 02:00:00+00'), "  # 2025-02-28 21:00 in New York
        "(2, timestamptz '2025-03-01 12:00:00+00'), (3, null), "
        "(4, timestamptz '0999-03-04 12:00:00+00')) t(id, seen_at)"  # named as strftime pads
    )
    out = tmp_path / "published"
    publish_warehouse(con, out)
    folder = out / "parquet" / "marts.visits"
    ids = {
        p.name: [r[0] for r in con.execute(f"select id from '{p}' order by id").fetchall()]
        for p in folder.glob("*.parquet")
    }
    assert ids == {
        "2025-02.parquet": [1],
        "2025-03.parquet": [2],
        "undated.parquet": [3],
        "0999-03.parquet": [4],
    }


def test_a_failed_publish_leaves_the_previous_one_readable(big, tmp_path, monkeypatch):
    import python_models.publish as publish

    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    previous = _publication(out)
    manifest = (out / "manifest.json").read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
    big.execute("update ml_scores.scores set s = 0.1")
    monkeypatch.setattr(publish, "_write_parquet", fail)  # after the copy's rows changed
    with pytest.raises(OSError, match="disk full"):
        publish_warehouse(big, out, only_changed=True)
    assert _publication(out) == previous
    assert (out / "manifest.json").read_text() == manifest

    monkeypatch.undo()
    monkeypatch.setattr(publish, "DIFF_MIN_ROWS", 10)
    publish_warehouse(big, out, only_changed=True)  # the next run publishes the change
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)


def test_the_parquet_writes_get_a_small_partition_buffer_and_the_connection_its_settings_back(
    big, tmp_path, monkeypatch
):
    """A big table's Parquet write runs with a small partition buffer (PARQUET_SETTINGS);
    the pipeline's connection has its own settings again after a publish, a failed one too."""
    import python_models.publish as publish

    own = {"threads": 3, "partitioned_write_flush_threshold": 100_000, "max_vacuum_tasks": 7}
    for name, value in own.items():
        big.execute(f"set {name} = {value}")

    def settings() -> dict[str, int]:
        return {n: big.execute(f"select current_setting('{n}')").fetchone()[0] for n in own}

    during = []
    write = publish._write_parquet

    def spy(con, source, *args, **kwargs):
        if "events" in source:  # a big table (the fixture's threshold)
            during.append(settings())
        return write(con, source, *args, **kwargs)

    monkeypatch.setattr(publish, "_write_parquet", spy)
    out = tmp_path / "published"
    publish_warehouse(big, out)
    parquet = publish.PARQUET_SETTINGS
    assert during and all(s[name] == parquet[name] for s in during for name in parquet)
    assert settings() == own
    # Every row published as the warehouse holds it, in the DuckDB copy and in Parquet.
    for table, (copied, parquet) in _publication(out).items():
        assert copied == parquet == _rows(big, f"select * from {table}")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "_write_parquet", fail)
    with pytest.raises(OSError, match="disk full"):
        publish_warehouse(big, tmp_path / "failed")
    assert settings() == own


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = lambda: con.execute("select count(*), sum(v) from marts.events").fetchone()
print(*count(), flush=True)
sys.stdin.readline()
print(*count(), flush=True)
"""


def test_a_reader_holding_a_file_open_keeps_it_and_the_next_publish_updates_it_in_place(
    big, tmp_path
):
    """warehouse.duckdb switches between two files; a publication brings the older one up to
    date in place unless a reader (another process: DuckDB's file lock) still holds it, then
    copies beside it. Either way every publication equals a fresh full publish, and the
    reader keeps reading the publication it opened, whole."""
    import subprocess
    import sys

    out = tmp_path / "published"
    link = out / "warehouse.duckdb"

    def publish_and_check():
        publish_warehouse(big, out, only_changed=True)
        fresh = tmp_path / "fresh"
        publish_warehouse(big, fresh)
        assert _publication(out) == _publication(fresh)
        return link.resolve()

    def inode(path):
        return path.stat().st_ino

    first = publish_and_check()
    opened = big.execute("select count(*), sum(v) from marts.events").fetchone()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(link)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split() == [str(opened[0]), str(opened[1])]
        big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
        second = publish_and_check()
        assert second != first and link.is_symlink()
        held = inode(first)
        big.execute("update marts.events set v = v + 1 where day = date '2025-01-05'")
        big.execute("update ml_scores.scores set s = 0.2 where id = 3")
        assert publish_and_check() == first
        assert inode(first) != held  # the reader holds it: a copy was renamed over it
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().split() == [str(opened[0]), str(opened[1])]
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0

    kept = inode(second)  # nobody holds it: brought up to date in place
    big.execute("delete from marts.events where day = date '2025-02-01'")
    big.execute("insert into marts.pairs values (2, 2)")
    assert publish_and_check() == second and inode(second) == kept

    publish_warehouse(big, out)  # a full publish keeps no older publication on disk
    assert sorted(p.name for p in out.glob("*.duckdb")) == [link.resolve().name, link.name]


def test_the_service_lets_go_of_a_replaced_publication_so_the_file_is_updated_in_place(
    big, tmp_path, monkeypatch
):
    """`uba serve` keeps a replaced publication open a grace period for the requests using
    it, then closes it: the publish after next then updates that file in place."""
    import time

    import python_models.service.published as service

    monkeypatch.setattr(service, "RETIRED_GRACE_S", 0.2)
    out = tmp_path / "published"
    link = out / "warehouse.duckdb"
    publish_warehouse(big, out, only_changed=True)
    first = link.resolve()
    served = service.PublishedWarehouse(link, models=())
    cursor, _ = served.cursor()
    assert cursor.execute("select count(*) from marts.users").fetchone() == (100,)

    big.execute("delete from marts.users where id < 10")
    publish_warehouse(big, out, only_changed=True)
    cursor, _ = served.cursor()  # picks up the new file; the first one retired
    assert cursor.execute("select count(*) from marts.users").fetchone() == (90,)
    assert served._retired
    time.sleep(1.0)
    assert not served._retired  # closed after the grace period

    kept = first.stat().st_ino
    big.execute("delete from marts.users where id < 20")
    publish_warehouse(big, out, only_changed=True)
    assert link.resolve() == first and first.stat().st_ino == kept  # in place
    try:
        cursor, _ = served.cursor()
        assert cursor.execute("select count(*) from marts.users").fetchone() == (80,)
    finally:
        served.close()


@pytest.mark.parametrize("connection_vacuum", [None, 0], ids=["default", "refresh_skips"])
def test_an_update_in_place_compacts_the_file_only_once_enough_rows_are_dead(
    big, tmp_path, monkeypatch, connection_vacuum
):
    """A day's delete and insert leaves the deleted rows stored (DuckDB's vacuum rewrites row
    groups, most of the checkpoint) until they reach VACUUM_DEAD_SHARE of the file's rows;
    then that publish compacts. The published rows stay the warehouse's throughout. Also when
    the connection itself skips the vacuum (`uba refresh`'s, for the warehouse's checkpoints):
    the publication's own share decides for its file."""
    import python_models.publish as publish

    if connection_vacuum is not None:
        big.execute(f"set max_vacuum_tasks = {connection_vacuum}")

    # 130,000 rows (two row groups), each of 10 days spread over both (as a re-touched day of
    # fct_event_transitions is).
    big.execute(
        "create table marts.spread as select range as id, "
        "date '2025-01-01' + (range % 10)::int as day from range(130000)"
    )
    out = tmp_path / "published"

    def stored() -> tuple[str, int]:
        """(the published file, the rows it stores for marts.spread, deleted ones included)"""
        reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
        try:
            return (out / "warehouse.duckdb").resolve().name, reader.execute(
                "select estimated_size from duckdb_tables() where table_name = 'spread'"
            ).fetchone()[0]
        finally:
            reader.close()

    def change(*days: int) -> None:
        listed = ", ".join(f"date '2025-01-0{day}'" for day in days)
        big.execute(f"update marts.spread set id = id + 1 where day in ({listed})")

    publish_warehouse(big, out, only_changed=True)
    dead_share = {}
    for days in ((1, 4, 7), (2,), (3,), (5,)):
        change(*days)
        publish_warehouse(big, out, only_changed=True)
        figures = "select count(*), sum(hash(t)::hugeint) from marts.spread t"
        reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
        try:
            assert reader.execute(figures).fetchall() == big.execute(figures).fetchall()
        finally:
            reader.close()
        name, rows = stored()
        dead_share[days] = (name, round((rows - 130_000) / rows, 3))
    # b: a copy of a, 3 days (30%) deleted and appended: 39,000 dead rows kept (23%).
    # a: its own publication, 4 days behind: 52,000 dead (29%). b again, 23% dead >= 20%:
    # compacted, then a (29%) too.
    assert dead_share == {
        (1, 4, 7): ("warehouse.b.duckdb", 0.231),
        (2,): ("warehouse.a.duckdb", 0.286),
        (3,): ("warehouse.b.duckdb", 0.0),
        (5,): ("warehouse.a.duckdb", 0.0),
    }
    # With the threshold at 0 every checkpoint compacts: the first update keeps no dead rows.
    monkeypatch.setattr(publish, "VACUUM_DEAD_SHARE", 0.0)
    change(8)
    publish_warehouse(big, out, only_changed=True)
    assert stored() == ("warehouse.b.duckdb", 130_000)
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)


def test_a_hard_linked_or_changed_file_is_not_updated_in_place(big, tmp_path):
    """A publication copied with hard links (`cp -al`) shares its files with the copy: the
    publish into one must leave the other's bytes as they were (a copy renamed over its own
    name), and a file changed since its sidecar was written is not trusted to hold what the
    sidecar says. Each publication still equals a fresh full publish."""
    import shutil
    import subprocess

    out = tmp_path / "published"
    link = out / "warehouse.duckdb"
    fresh = tmp_path / "fresh"

    def publish_and_check():
        publish_warehouse(big, out, only_changed=True)
        publish_warehouse(big, fresh)
        assert _publication(out) == _publication(fresh)
        return link.resolve()

    first = publish_and_check()
    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
    second = publish_and_check()
    assert second != first
    # A hard-linked copy of the publication, made as the helper brief said.
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-al", str(out), str(copy)], check=True)
    kept = (copy / first.name).read_bytes()
    big.execute("update marts.events set v = v + 1 where day = date '2025-01-05'")
    assert publish_and_check() == first
    assert (copy / first.name).read_bytes() == kept  # the copy's file was not written through
    assert (out / first.name).stat().st_ino != (copy / first.name).stat().st_ino
    shutil.rmtree(copy)

    # The older file changed behind its sidecar's back (here: replaced by the newer one).
    shutil.copyfile(first, second)
    big.execute("delete from marts.events where day = date '2025-02-01'")
    kept = second.stat().st_ino
    assert publish_and_check() == second
    assert second.stat().st_ino != kept  # copied, not updated in place
    big.execute("insert into marts.pairs values (2, 2)")
    kept = first.stat().st_ino
    assert publish_and_check() == first and first.stat().st_ino == kept  # trusted again


def _beside_fixture(big) -> None:
    """`big` plus the views a dbt project may hold: one over a dbt table, one over a score
    table, and one over that view (it reads the scores too); a big table of times with a
    zone, in a session whose zone is not the default (days and months are cut in it)."""
    big.execute("set TimeZone = 'America/New_York'")
    big.execute(
        "create table marts.visits as select range as id, "
        "timestamptz '2025-02-27 12:00:00+00' + to_hours(range % 100) as seen_at from range(300)"
    )
    big.execute("create view marts.recent_events as select * from marts.events where v > 2")
    big.execute('create view marts."churn view" as select id, s from ml_scores.scores')
    big.execute('create view marts.view_of_view as select * from "marts"."churn view"')


def test_dbt_s_tables_published_beside_the_scoring_equal_a_whole_publish(big, tmp_path):
    import threading

    from python_models.publish import Publish, tables_built_by_dbt
    from python_models.warehouse.duckdb_engine import cursor_like

    _beside_fixture(big)
    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    # Not the views that read the scores, whose content the scoring still changes.
    beside = tables_built_by_dbt(big)
    assert beside == [
        "marts.events",
        "marts.pairs",
        "marts.recent_events",
        "marts.users",
        "marts.visits",
    ]

    big.execute("insert into marts.events values (7, date '2025-03-22', 9.0)")
    big.execute("update marts.pairs set b = 5 where a = 2")
    big.execute("update marts.visits set seen_at = seen_at + interval 3 hour where id = 40")
    publish = Publish(out, only_changed=True)
    cursor = cursor_like(big)
    thread = threading.Thread(target=publish.write_beside, args=(cursor, beside))
    thread.start()
    big.execute("update ml_scores.scores set s = 0.75 where id < 10")  # the scoring, meanwhile
    thread.join()
    cursor.close()
    big.execute("update ml_scores.scores set s = 0.25 where id = 0")  # after the part beside
    result = publish.finish(big)

    changed = ["marts.events", "marts.pairs", "marts.recent_events", "marts.visits"]
    assert result.beside == changed
    assert result.copied == sorted(
        [*changed, "marts.churn view", "marts.view_of_view", "ml_scores.scores"]
    )
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == json.loads((fresh / "manifest.json").read_text())
    reader = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        for view in ('marts."churn view"', "marts.view_of_view", "marts.recent_events"):
            assert _rows(reader, f"select * from {view}") == _rows(big, f"select * from {view}")
        assert _rows(reader, "select s from marts.view_of_view where id = 0") == [(0.25,)]
    finally:
        reader.close()


def test_a_failure_beside_the_scoring_fails_the_publish_and_keeps_the_publication(
    big, tmp_path, monkeypatch
):
    import threading

    import python_models.publish as publish
    from python_models.warehouse import as_warehouse

    out = tmp_path / "published"
    publish_warehouse(big, out, only_changed=True)
    previous, manifest = _publication(out), (out / "manifest.json").read_text()
    big.execute("insert into marts.events values (7, date '2025-03-22', 1.0)")
    written = publish._write_parquet

    def fails_beside(*args, **kwargs):
        if threading.current_thread().name == "uba-publish-beside":
            raise OSError("disk full")
        return written(*args, **kwargs)

    monkeypatch.setattr(publish, "_write_parquet", fails_beside)
    con = as_warehouse(big)
    publication = publish.DayPublication(con, out)
    publication.start_beside()
    big.execute("update ml_scores.scores set s = 0.1")  # the scoring, meanwhile
    with pytest.raises(OSError, match="disk full"):
        publication.publish()
    publication.close()
    assert not con.pool_shared
    assert _publication(out) == previous
    assert (out / "manifest.json").read_text() == manifest

    monkeypatch.setattr(publish, "_write_parquet", written)
    publish_warehouse(big, out, only_changed=True)  # the next run publishes the change
    fresh = tmp_path / "fresh"
    publish_warehouse(big, fresh)
    assert _publication(out) == _publication(fresh)
