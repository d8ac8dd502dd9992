"""Behavioural marts: conformance with dbt-product-analytics fixtures, the feature catalogue
against the built mart, features recomputed independently, incremental = full refresh."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from increments import assert_same_rows, hold_back, read, release_held_back, sorted_table
from test_postgres_portability import postgres_server  # noqa: F401 (a fixture, used below)

from python_models.common import catalogue
from python_models.config import REPO_ROOT
from python_models.dbt_runner import run_dbt
from python_models.warehouse import connect

CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "data" / "dbt-product-analytics"


@pytest.fixture(scope="module")
def conformance_db(tmp_path_factory) -> Path:
    """The fixture orders loaded as events (customer -> user_id, status -> event_name)."""
    if not (CONFORMANCE_DIR / "raw_orders.csv").exists():
        pytest.skip(f"conformance fixtures absent: {CONFORMANCE_DIR} (../shared/data)")
    path = tmp_path_factory.mktemp("conformance") / "conformance.duckdb"
    con = connect(path)
    try:
        for table, file, user_col, start, end in [
            ("orders", "raw_orders.csv", "user_id", "2018-01-01", "2018-02-01"),
        ]:
            con.execute(
                f"""create table {table} as
                select cast({user_col} as varchar) as user_id, status as event_name,
                    cast(order_date as timestamp) as event_ts
                from read_csv(?, all_varchar = true)
                where cast(order_date as date) >= date '{start}'
                    and cast(order_date as date) < date '{end}'""",
                [str(CONFORMANCE_DIR / file)],
            )
    finally:
        con.close()
    return path


def copy_warehouse(src: Path, tmp_path: Path) -> Path:
    """A private copy (conftest's helper; tests/ is not a package, so it is not importable)."""
    dst = tmp_path / "warehouse.duckdb"
    shutil.copy(src, dst)
    return dst


def _run_macro(db: Path, tmp_path: Path, jinja: str) -> pl.DataFrame:
    """Compile a macro call with dbt (the project's real macro) and run it on `db`."""
    sql = run_dbt(
        ["compile", "--quiet", "--inline", jinja],
        duckdb_path=db,
        quiet=True,
        target_path=tmp_path / "target",
    )
    con = connect(db, read_only=True)
    try:
        return con.execute(sql).pl()
    finally:
        con.close()


def _expected(name: str) -> list[dict]:
    with open(CONFORMANCE_DIR / name) as handle:
        return list(csv.DictReader(handle))


def test_unbounded_retention_conforms_to_dbt_product_analytics(conformance_db, tmp_path):
    counts = _run_macro(
        conformance_db,
        tmp_path,
        "{{ mart_retention_counts('main.orders', 'day', [0, 1, 7, 14, 30, 60, 120], "
        "\"event_name = 'completed'\") }}",
    )
    totals = counts.group_by("period_number").agg(
        pl.col("cohort_users").sum(), pl.col("users_unbounded").sum()
    )
    by_period = {row["period_number"]: row for row in totals.to_dicts()}
    assert {row["cohort_users"] for row in by_period.values()} == {24}
    for row in _expected("dmt_expected__retention.csv"):
        got = by_period[int(row["period"])]
        assert got["users_unbounded"] == int(row["unique_users"])
        assert got["users_unbounded"] / 24 == pytest.approx(float(row["pct_users"]), abs=1e-9)
    # the expectation has no row for these: nobody retained
    assert [by_period[p]["users_unbounded"] for p in (30, 60, 120)] == [0, 0, 0]


def _documented_columns(mart: str) -> list[str]:
    document = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text())
    return [c["name"] for c in next(m for m in document["models"] if m["name"] == mart)["columns"]]


@pytest.mark.parametrize(
    "mart", ["ftr_user_features", "ftr_user_day_activity", "ftr_user_event_sequences"]
)
def test_catalogue_matches_built_feature_mart(built_warehouse, mart):
    """Both ways: every column the model produces is documented (features with their meta),
    and the catalogue names no column the model does not produce."""
    frame = read(built_warehouse, f"select * from features.{mart}")
    assert frame.height > 0
    assert frame.columns == _documented_columns(mart)
    keys, features = catalogue.key_columns(mart), catalogue.feature_columns(mart=mart)
    assert set(features) <= set(frame.columns) - set(keys)
    context = set(frame.columns) - set(keys) - set(features)
    if mart == "ftr_user_features":
        assert context == set(), f"feature mart columns without catalogue meta: {context}"
        nulls = {c: n for c, n in frame.null_count().row(0, named=True).items() if n}
        assert nulls == {}, f"null features: {nulls}"
        assert (frame["as_of_date"].dt.weekday() == 1).all(), "snapshots must be Mondays"
    else:
        assert frame.select(features).null_count().sum_horizontal().item() == 0


def test_features_match_an_independent_recount(built_warehouse):
    """Windowed counts recomputed in polars from fct_events with the point-in-time rule."""
    events = read(
        built_warehouse,
        "select user_id, event_name, event_ts, received_at, revenue_usd from marts.fct_events",
    )
    features = read(
        built_warehouse,
        """select user_id, as_of_date, count_events_7d, count_events_30d, count_page_view_30d,
            count_events_lifetime, sum_revenue_usd_90d, days_since_last_event, tenure_days
        from features.ftr_user_features""",
    )
    snapshot_dates = features["as_of_date"].unique().sort()
    checked = 0
    for as_of_date in snapshot_dates.gather_every(max(1, len(snapshot_dates) // 4)):
        cutoff = pl.lit(as_of_date).cast(pl.Datetime("us"))
        visible = events.filter((pl.col("event_ts") < cutoff) & (pl.col("received_at") < cutoff))

        def since(days: int, cutoff=cutoff) -> pl.Expr:
            return pl.col("event_ts") >= cutoff - pl.duration(days=days)

        recount = (
            visible.group_by("user_id")
            .agg(
                since(7).sum().alias("count_events_7d"),
                since(30).sum().alias("count_events_30d"),
                (since(30) & (pl.col("event_name") == "page_view")).sum().alias("pv_30d"),
                pl.len().alias("count_events_lifetime"),
                pl.col("revenue_usd").filter(since(90)).sum().alias("rev_90d"),
                since(90).sum().alias("count_events_90d"),
                pl.col("event_ts").max().dt.date().alias("last_date"),
                pl.col("event_ts").min().dt.date().alias("first_date"),
            )
            .filter(pl.col("count_events_90d") > 0)
        )
        got = features.filter(pl.col("as_of_date") == as_of_date)
        assert got.height == recount.height, f"eligible users differ on {as_of_date}"
        joined = got.join(recount, on="user_id", how="inner", suffix="_expected")
        assert joined.height == got.height
        for column in ("count_events_7d", "count_events_30d", "count_events_lifetime"):
            assert (joined[column] == joined[f"{column}_expected"]).all(), column
        assert (joined["count_page_view_30d"] == joined["pv_30d"]).all()
        assert ((joined["sum_revenue_usd_90d"] - joined["rev_90d"]).abs() < 1e-6).all()
        days_since = (pl.lit(as_of_date) - pl.col("last_date")).dt.total_days()
        tenure = (pl.lit(as_of_date) - pl.col("first_date")).dt.total_days()
        assert joined.select((pl.col("days_since_last_event") == days_since).all()).item()
        assert joined.select((pl.col("tenure_days") == tenure).all()).item()
        checked += got.height
    assert checked > 100


def test_activity_and_lifecycle_agree_with_events(built_warehouse):
    events = read(built_warehouse, "select user_id, event_date from marts.fct_events")
    dau = read(built_warehouse, "select * from reports.rpt_active_users_daily")
    expected = events.group_by("event_date").agg(pl.col("user_id").n_unique().alias("n"))
    joined = dau.join(expected, left_on="activity_date", right_on="event_date", how="left")
    assert (joined["daily_active_users"] == joined["n"].fill_null(0)).all()
    assert (dau["stickiness_dau_mau"].is_between(0, 1)).all()
    # every user is 'new' exactly once, in the week of their first event
    lifecycle = read(built_warehouse, "select * from marts.fct_user_lifecycle_weekly")
    first_week = events.group_by("user_id").agg(
        pl.col("event_date").min().dt.truncate("1w").alias("first_week")
    )
    new_rows = lifecycle.filter(pl.col("lifecycle_status") == "new")
    assert new_rows.height == first_week.height
    merged = new_rows.join(first_week, on="user_id")
    assert (merged["lifecycle_week"] == merged["first_week"]).all()


def test_views_read_their_rows_in_a_copy_under_another_name(built_warehouse, tmp_path):
    """The project's views (staging's, fct_events, fct_churn_scores) are DuckDB views whose
    query names the relations it reads; they read the same rows from a copy of the file under
    another name and with the file attached under another alias (a copy's catalog is its own
    file name: a view naming "warehouse" failed there), and fct_events holds every event of
    int_events_sessionized."""
    import duckdb

    def counts(con, catalog: str | None = None) -> dict[str, int]:
        views = con.execute(
            "select schema_name, view_name from duckdb_views() where not internal "
            "and database_name = coalesce(?, current_database()) order by 1, 2",
            [catalog],
        ).fetchall()
        prefix = f"{catalog}." if catalog else ""
        return {
            f"{s}.{v}": con.execute(f"select count(*) from {prefix}{s}.{v}").fetchone()[0]
            for s, v in views
        }

    con = connect(built_warehouse, read_only=True)
    try:
        expected = counts(con)
        (events,) = con.execute(
            "select count(*) from intermediate.int_events_sessionized"
        ).fetchone()
    finally:
        con.close()
    assert {"marts.fct_events", "marts.fct_churn_scores"} <= set(expected)
    # and staging's views (a view naming another catalog fails to bind when read, whatever
    # its row count): stg_app__consent_events and stg_app__experiment_exposures
    assert len([name for name in expected if name.startswith("staging.")]) >= 2, expected
    assert expected["marts.fct_events"] == events > 0

    renamed = tmp_path / "restored_backup.duckdb"
    shutil.copy(built_warehouse, renamed)
    con = connect(renamed, read_only=True)
    try:
        assert counts(con) == expected
    finally:
        con.close()
    con = duckdb.connect()
    try:
        con.execute(f"attach '{built_warehouse}' as elsewhere (read_only)")
        assert counts(con, "elsewhere") == expected
    finally:
        con.close()


def test_a_day_filter_on_the_fct_events_view_is_a_filter_of_the_stored_scan(built_warehouse):
    """The daily models and test scopes bound fct_events by event_date: through the view that
    bound must reach int_events_sessionized's scan as a filter on a stored column, which DuckDB
    checks against each row group's bounds (skipping the other days at 10M events), not a
    filter on an expression above a scan of every row."""
    import json

    def scans(node: dict) -> list[dict]:
        found = [node] if node["name"].endswith("_SCAN") else []
        return found + [s for child in node["children"] for s in scans(child)]

    con = connect(built_warehouse, read_only=True)
    try:
        (day,) = con.execute("select max(event_date) - 1 from marts.fct_events").fetchone()
        (plan,) = con.execute(
            "explain (format json) select count(*), sum(revenue_usd) from marts.fct_events "
            f"where event_date >= date '{day}'"
        ).fetchall()[0][1:]
    finally:
        con.close()
    (scan,) = scans(json.loads(plan)[0])  # the view reads the stored table, filtered there
    assert scan["extra_info"]["Table"].endswith("intermediate.int_events_sessionized"), scan
    assert "event_date>=" in scan["extra_info"].get("Filters", ""), scan
    assert "CAST" not in plan, plan


INCREMENTAL_MODELS = [
    "features.ftr_user_features",
    "features.int_feature_user_weeks",
    "features.int_feature_windowed_activity",
    "features.int_feature_lifetime_totals",
    "features.int_feature_diversity",
    "features.int_feature_session_stats",
    "features.ftr_user_labels",
    "features.ftr_user_day_activity",
    "intermediate.int_user_first_seen",
    "marts.fct_user_activity_daily",
]


def test_incremental_equals_full_refresh(gated_warehouse, tmp_path):
    """Build on the events received before a cutoff, add the rest, run incrementally:
    the incremental tables equal a full refresh on everything."""
    path = copy_warehouse(gated_warehouse, tmp_path)
    cutoff = read(
        path, "select quantile_disc(received_at, 0.8) as cutoff from raw.events_validated"
    )["cutoff"][0]
    hold_back(path, "received_at >= ?", [cutoff])
    select = [
        "--select",
        "+ftr_user_features +ftr_user_labels +ftr_user_day_activity +fct_user_activity_daily",
    ]
    target = tmp_path / "target"
    # Staging flags events missing from the tracking plan: the plan's seed must exist.
    run_dbt(["seed"], duckdb_path=path, quiet=True, target_path=target)
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=target)
    before = read(path, "select max(as_of_date) as d from features.ftr_user_features")["d"][0]
    labelled = read(path, "select max(as_of_date) as d from features.ftr_user_labels")["d"][0]
    release_held_back(path)
    run_dbt(["run", *select], duckdb_path=path, quiet=True, target_path=target)
    incremental = {name: sorted_table(path, name) for name in INCREMENTAL_MODELS}
    run_dbt(["run", "--full-refresh", *select], duckdb_path=path, quiet=True, target_path=target)
    for name in INCREMENTAL_MODELS:
        full = sorted_table(path, name)
        assert incremental[name].height == full.height, name
        assert_same_rows(incremental[name], full, name)
    # the second run really added snapshots
    assert incremental["features.ftr_user_features"]["as_of_date"].max() > before
    # and matured labels on snapshots with none stored (every row of a date rebuilt)
    assert incremental["features.ftr_user_labels"]["as_of_date"].max() > labelled


# The feature marts and retention reports (with everything upstream: staging, stitching,
# sessions, core marts) on a throwaway PostgreSQL (the portability test's server fixture): every
# model, data test and unit test of that selection passes there, and the tables equal DuckDB's.
PG_SELECT = [
    "event_taxonomy",
    "+fct_sessions",  # the core marts' tests join these
    "+dim_users",
    "+int_identity_stitched",
    "+ftr_user_features",
    "+ftr_user_labels",
    "+ftr_user_day_activity",
    "+rpt_retention_daily",
    "+rpt_retention_weekly",
    "+rpt_retention_monthly",
]
PG_COMPARED = {
    "features.ftr_user_features": "*",
    "features.ftr_user_day_activity": "*",
    "reports.rpt_retention_daily": "*",
    "reports.rpt_retention_weekly": "*",
}


@pytest.mark.postgres
@pytest.mark.slow
def test_feature_marts_and_reports_match_duckdb_on_postgres(tmp_path, monkeypatch, request):
    from test_dbt_core import make_planted_events, write_validated
    from test_postgres_portability import _load_postgres, _normalise, _pg_frame

    port = request.getfixturevalue("postgres_server")
    for name, value in {
        "UBA_PG_HOST": "127.0.0.1",
        "UBA_PG_PORT": str(port),
        "UBA_PG_USER": "uba",
        "UBA_PG_DATABASE": "uba",
    }.items():
        monkeypatch.setenv(name, value)
    events = make_planted_events().events
    duck = tmp_path / "warehouse.duckdb"
    write_validated(duck, events)
    select = ["--select", *PG_SELECT]
    # Staging flags events missing from the tracking plan: seed the plan first.
    run_dbt(["seed"], duckdb_path=duck, quiet=True, target_path=tmp_path / "target-duck")
    run_dbt(["run", *select], duckdb_path=duck, quiet=True, target_path=tmp_path / "target-duck")
    _load_postgres(port, events, replace=True)
    run_dbt(["build", *select], target="postgres", quiet=True, target_path=tmp_path / "target-pg")
    for table in PG_COMPARED:
        expected = read(duck, f"select * from {table}")
        actual = _pg_frame(port, f"select * from {table}")
        actual = actual.with_columns([pl.col(c).cast(expected[c].dtype) for c in expected.columns])
        assert expected.height > 0 and actual.height == expected.height, table
        assert _normalise(actual) == _normalise(expected), table
