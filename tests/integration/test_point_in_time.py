"""Point in time: features for a snapshot never change when data arrives after it; labels
exist only for matured snapshots and agree with the generator's planted churn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from python_models.dbt_runner import run_dbt
from python_models.privacy import pseudonymize
from python_models.warehouse import connect

SELECT = ["--select", "+ftr_user_features"]


def copy_warehouse(src: Path, tmp_path: Path) -> Path:
    """A private copy (conftest's helper; tests/ is not a package, so it is not importable)."""
    dst = tmp_path / "warehouse.duckdb"
    shutil.copy(src, dst)
    return dst


def _features(path: Path, max_date) -> pl.DataFrame:
    con = connect(path, read_only=True)
    try:
        frame = con.execute(
            "select * from features.ftr_user_features where as_of_date <= ?", [max_date]
        ).pl()
    finally:
        con.close()
    return frame.sort("user_id", "as_of_date")


def _same_rows(got: pl.DataFrame, expected: pl.DataFrame) -> bool:
    """Identical rows, doubles bit for bit (order-dependent sums go through exact decimals)."""
    if got.columns != expected.columns or got.height != expected.height:
        return False
    return all(got[column].equals(expected[column]) for column in got.columns)


def _disturb_after(con, as_of_date) -> dict[str, int]:
    """New events after D, late arrivals before D received after D, edits and deletions of
    events after D. Only identified events without a device id are added or removed, so the
    identity stitching of older anonymous events cannot change (see docs/models.md)."""
    cutoff = f"cast('{as_of_date}' as timestamp)"
    base = f"""
        select * from raw.events_validated
        where user_id is not null and event_ts < {cutoff} and event_ts >= {cutoff} - interval 20 day
        order by raw_id limit 400"""
    con.execute(f"""
        insert into raw.events_validated
        select 'pit-new:' || raw_id, 'pit-new-' || event_id, user_id, null, 'purchase',
            event_ts + interval 21 day, event_ts + interval 21 day + interval 5 minute,
            session_id, '{{"revenue": 99.0}}', loaded_at, 1000001
        from ({base}) as picked""")
    con.execute(f"""
        insert into raw.events_validated
        select 'pit-late:' || raw_id, 'pit-late-' || event_id, user_id, null, 'page_view',
            event_ts + interval 1 minute, {cutoff} + interval 2 day,
            session_id, '{{}}', loaded_at, 1000002
        from ({base}) as picked""")
    edited = con.execute(f"""
        update raw.events_validated set event_name = 'support_ticket_opened'
        where event_ts >= {cutoff} and event_name = 'page_view' and raw_id like '%0'""").fetchone()
    deleted = con.execute(f"""
        delete from raw.events_validated
        where event_ts >= {cutoff} and anonymous_id is null and user_id is not null
            and raw_id like '%1'""").fetchone()
    return {"edited": edited[0], "deleted": deleted[0]}


def test_features_before_a_snapshot_ignore_later_data(built_warehouse, tmp_path):
    path = copy_warehouse(built_warehouse, tmp_path)
    con = connect(path)
    try:
        dates = [
            r[0]
            for r in con.execute(
                "select distinct as_of_date from features.ftr_user_features order by 1"
            ).fetchall()
        ]
        as_of_date = dates[len(dates) * 2 // 3]
        changes = _disturb_after(con, as_of_date)
    finally:
        con.close()
    baseline = _features(built_warehouse, as_of_date)
    assert baseline.height > 0 and changes["edited"] > 0
    target = tmp_path / "target"

    run_dbt(["run", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    incremental = _features(path, as_of_date)
    assert _same_rows(incremental, baseline), "incremental run changed past snapshots"

    run_dbt(["run", "--full-refresh", *SELECT], duckdb_path=path, quiet=True, target_path=target)
    full = _features(path, as_of_date)
    assert _same_rows(full, baseline), "full refresh changed past snapshots"

    # not vacuous: the late arrivals do show up in the next snapshot
    later = [d for d in dates if d > as_of_date]
    if later:
        after = _features(path, later[0]).filter(pl.col("as_of_date") == later[0])
        before = _features(built_warehouse, later[0]).filter(pl.col("as_of_date") == later[0])
        assert not _same_rows(after, before)


@pytest.fixture(scope="module")
def labelled(built_warehouse) -> pl.DataFrame:
    con = connect(built_warehouse, read_only=True)
    try:
        return con.execute(
            """select labels.*, watermark.watermark_date
            from features.ftr_user_labels as labels
            cross join (
                select max(event_date) as watermark_date from marts.fct_events
            ) as watermark"""
        ).pl()
    finally:
        con.close()


def test_labels_only_for_matured_snapshots(labelled, built_warehouse):
    assert labelled.height > 0
    horizon = labelled["churn_horizon_days"][0]
    ltv = labelled["ltv_horizon_days"][0]
    checks = labelled.select(
        churn_matured=(
            pl.col("as_of_date") + pl.duration(days=horizon) <= pl.col("watermark_date")
        ).all(),
        ltv_null_iff_unmatured=(
            pl.col("label_future_revenue_usd").is_null()
            == (pl.col("as_of_date") + pl.duration(days=ltv) > pl.col("watermark_date"))
        ).all(),
    ).row(0, named=True)
    assert checks == {"churn_matured": True, "ltv_null_iff_unmatured": True}
    assert labelled["label_churned"].null_count() == 0
    con = connect(built_warehouse, read_only=True)
    try:
        newest = con.execute("select max(as_of_date) from features.ftr_user_features").fetchone()[0]
        orphans = con.execute(
            """select count(*) from features.ftr_user_labels as labels
            left join features.ftr_user_features as features using (user_id, as_of_date)
            where features.user_id is null"""
        ).fetchone()[0]
    finally:
        con.close()
    assert labelled["as_of_date"].max() < newest, "newest snapshots must not be labelled"
    assert orphans == 0


def test_churn_label_agrees_with_planted_truth(labelled, sample_data):
    users = pl.read_parquet(sample_data.truth_dir / "users.parquet")
    salt = os.environ["UBA_PSEUDONYM_SALT"]
    users = users.filter(pl.col("user_id").is_not_null()).with_columns(
        pl.col("user_id")
        .map_elements(
            lambda raw: pseudonymize(raw, "user", salt),
            return_dtype=pl.String,
        )
        .alias("user_hash")
    )
    joined = labelled.join(users, left_on="user_id", right_on="user_hash", how="inner")
    assert joined.height > 100, "labels should cover many identified users"
    # planted: a user who churned on or before the snapshot never comes back
    truth = pl.col("churned") & (pl.col("churned_at").cast(pl.Date) <= pl.col("as_of_date"))
    agreement = joined.select((pl.col("label_churned") == truth).mean()).item()
    print(f"churn label agreement with planted truth: {agreement:.3f} over {joined.height} rows")
    assert agreement > 0.9
