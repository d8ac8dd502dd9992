"""Publishing only what changed: content fingerprints decide, readers get whole tables."""

from __future__ import annotations

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
    users_parquet = (out / "parquet" / "marts.users.parquet").stat()

    same = publish_warehouse(con, out, only_changed=True)
    assert not same.changed and same.copied == []
    assert (out / "parquet" / "marts.users.parquet").stat().st_mtime_ns == users_parquet.st_mtime_ns

    con.execute("update ml_scores.scores set s = 0.9 where id < 5")
    changed = publish_warehouse(con, out, only_changed=True)
    assert changed.copied == ["ml_scores.scores"]
    assert (out / "parquet" / "marts.users.parquet").stat().st_ino == users_parquet.st_ino
    published = _published(out)
    assert (
        published["marts.users"] == con.execute("select * from marts.users order by all").fetchall()
    )
    assert sum(1 for _, s in published["ml_scores.scores"] if s == 0.9) == 5

    con.execute("drop table ml_scores.scores")
    removed = publish_warehouse(con, out, only_changed=True)
    assert removed.removed == ["ml_scores.scores"] and removed.copied == []
    assert set(_published(out)) == {"marts.users"}
    assert not (out / "parquet" / "ml_scores.scores.parquet").exists()


def test_a_missing_manifest_means_a_full_copy(con, tmp_path):
    out = tmp_path / "published"
    publish_warehouse(con, out, only_changed=True)
    (out / "manifest.json").unlink()
    again = publish_warehouse(con, out, only_changed=True)
    assert again.copied == ["marts.users", "ml_scores.scores"]
