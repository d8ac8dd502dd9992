"""The feature marts follow the user's own tracking plan: per-event columns from
`uba__top_event_types` (checked against the plan), purchases from the plan's conversions that
carry revenue. A user's clone with event names the project has never seen, configured in
dbt_project.yml and the plan only, builds the feature mart and trains churn on it; its values
are recounted here from the raw input file, not from the project's tables."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_funnels import _in_clone, _read, _users_clone

from python_models.dbt_runner import DbtError, run_dbt
from python_models.privacy import pseudonymize

TEST_SALT = "test-salt"  # the salt tests/conftest.py sets for the session
START = date(2025, 1, 6)  # a Monday, like the mart's weekly grid
DAYS = 182
USERS = 260
SEED = 20261130

# Names no part of the project knows. order_paid is the purchase (a conversion with revenue);
# plan_renewed is a conversion without revenue, so it must not count as a purchase.
OWN_PLAN = """\
event_name,category,description,is_conversion,required_properties,optional_properties
screen_opened,browse,A screen was opened,false,,
basket_filled,shop,Something went into the basket,false,,
ticket_raised,support,A support ticket was raised,false,,
order_paid,shop,An order was paid,true,revenue:number,currency:string
plan_renewed,billing,The plan was renewed,true,,
"""
OWN_EVENT_TYPES = ["screen_opened", "basket_filled", "ticket_raised", "order_paid"]
PURCHASE = "order_paid"
WINDOWS = (7, 14, 30, 90)
# Event mix of a user who stays, and of one in the weeks before leaving (more tickets, fewer
# orders: the churn signal lives in the user's own event names).
MIX_STAYING = {"screen_opened": 0.55, "basket_filled": 0.2, "ticket_raised": 0.05,
               "order_paid": 0.15, "plan_renewed": 0.05}  # fmt: skip
MIX_LEAVING = {"screen_opened": 0.5, "basket_filled": 0.1, "ticket_raised": 0.35,
               "order_paid": 0.03, "plan_renewed": 0.02}  # fmt: skip


def _own_events(seed: int = SEED) -> pl.DataFrame:
    """Raw events in the input contract: identified users only, one revenue per order_paid.
    A third of the users leave for good at a random day; their last four weeks use
    MIX_LEAVING."""
    rng = np.random.default_rng(seed)
    start = datetime(START.year, START.month, START.day, tzinfo=UTC)
    rows = []
    for user in range(USERS):
        first_day = int(rng.integers(0, 80))
        last_day = int(rng.integers(first_day + 20, DAYS)) if rng.random() < 0.35 else DAYS - 1
        rate = rng.uniform(0.15, 0.5)
        for day in range(first_day, last_day + 1):
            if rng.random() > rate:
                continue
            mix = MIX_LEAVING if last_day < DAYS - 1 and last_day - day < 28 else MIX_STAYING
            names = rng.choice(list(mix), size=1 + rng.poisson(1.5), p=list(mix.values()))
            for name in names:
                ts = start + timedelta(days=day, seconds=int(rng.integers(0, 86_000)))
                revenue = round(float(rng.uniform(5, 120)), 2) if name == PURCHASE else None
                rows.append(
                    {
                        "event_id": f"e{len(rows):07d}",
                        "user_id": f"customer-{user:04d}",
                        "anonymous_id": None,
                        "event_name": str(name),
                        "event_ts": ts,
                        "received_at": ts + timedelta(seconds=1),
                        "session_id": None,
                        "properties": json.dumps({"revenue": revenue} if revenue else {}),
                        "revenue": revenue,
                    }
                )
    return pl.DataFrame(rows, schema_overrides={"anonymous_id": pl.String, "session_id": pl.String})


def _write_input(events: pl.DataFrame, path: Path) -> None:
    iso = "%Y-%m-%dT%H:%M:%SZ"
    events.drop("revenue").with_columns(
        pl.col("event_ts").dt.strftime(iso), pl.col("received_at").dt.strftime(iso)
    ).write_csv(path)


def _as_persons(frame: pl.DataFrame) -> pl.DataFrame:
    """Raw user ids as the marts' person keys (identified users only: no stitching)."""
    return frame.with_columns(
        pl.col("user_id").map_elements(lambda u: pseudonymize(u, "user", TEST_SALT), pl.String)
    )


def _recount(events: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Per user, the features the mart should hold on snapshot `as_of`, from the raw rows:
    only events with event_ts and received_at before the snapshot; eligible users have one in
    the 90 days before it."""
    cutoff = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    visible = events.filter((pl.col("event_ts") < cutoff) & (pl.col("received_at") < cutoff))

    def within(days: int) -> pl.Expr:
        return pl.col("event_ts") >= cutoff - timedelta(days=days)

    purchase = pl.col("event_name") == PURCHASE
    counts = [
        (within(w) & (pl.col("event_name") == e)).sum().alias(f"count_{e}_{w}d")
        for e in OWN_EVENT_TYPES
        for w in WINDOWS
    ]
    recount = visible.group_by("user_id").agg(
        *counts,
        within(90).sum().alias("count_events_90d"),
        purchase.sum().alias("count_purchases_lifetime"),
        pl.col("revenue").filter(purchase).sum().alias("purchase_revenue"),
        pl.col("event_ts").filter(purchase).max().alias("last_purchase_ts"),
    )
    return _as_persons(recount.filter(pl.col("count_events_90d") > 0))


def _set_event_types(clone: Path, names: list[str]) -> None:
    """What the docs tell the user to edit: the uba__top_event_types line of dbt_project.yml."""
    project = clone / "dbt_project" / "dbt_project.yml"
    lines = project.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("  uba__top_event_types:")]
    assert len(at) == 1
    lines[at[0]] = f"  uba__top_event_types: {json.dumps(names)}\n"
    project.write_text("".join(lines))


@pytest.fixture(scope="module")
def own_plan_pipeline(tmp_path_factory) -> tuple[Path, pl.DataFrame, dict]:
    """The user's clone with their plan and feature setting: load, gate, `uba build` (models,
    dbt unit and data tests), then churn trained and scored, all inside the clone."""
    tmp_path = tmp_path_factory.mktemp("own_plan")
    clone = _users_clone(tmp_path)
    (clone / "dbt_project" / "seeds" / "event_taxonomy.csv").write_text(OWN_PLAN)
    _set_event_types(clone, OWN_EVENT_TYPES)
    events = _own_events()
    source = tmp_path / "own_events.csv"
    _write_input(events, source)
    db = tmp_path / "warehouse.duckdb"
    outcome = tmp_path / "outcome.json"
    _in_clone(
        clone,
        "import json, os\n"
        "os.environ['UBA_DUCKDB_PATH'] = " + repr(str(db)) + "\n"
        "os.environ['UBA_DATA_DIR'] = " + repr(str(tmp_path / "data")) + "\n"
        "from python_models.config import reload_settings\n"
        "reload_settings()\n"
        "from python_models.cli import main as uba\n"
        # the catalogue still documents the shipped events: check and build say what to run
        "assert uba(['features', 'check']) == 1\n"
        "assert uba(['build']) == 1\n"
        "assert uba(['features', 'sync']) == 0\n"
        "assert uba(['features', 'check']) == 0\n"
        f"assert uba(['load', {str(source)!r}]) == 0\n"
        "assert uba(['gate']) == 0\n"
        "assert uba(['build']) == 0\n"
        "from python_models.lifecycle import score_model, train_model\n"
        "from python_models.warehouse import connect\n"
        "con = connect()\n"
        "trained = train_model(con, 'churn', run_id='own', params={'min_class_examples': 50})\n"
        "scored = score_model(con, 'churn', run_id='own')\n"
        'features = con.execute("select features from ml.model_registry where model_name ='
        " 'churn'\").fetchone()[0]\n"
        "con.close()\n"
        f"open({str(outcome)!r}, 'w').write(json.dumps({{'status': trained.status,"
        " 'reason': trained.reason, 'rows': scored.rows, 'features': features,"
        " 'evaluation': trained.evaluation.to_dicts()}, default=str))\n",
    )
    return db, events, json.loads(outcome.read_text())


@pytest.mark.slow
def test_own_event_names_become_feature_columns_that_recount_from_the_raw_file(
    own_plan_pipeline,
):
    db, events, _ = own_plan_pipeline
    assert _read(db, "select count(*) from raw.events_quarantine").item() == 0
    mart = _read(db, "select * from features.ftr_user_features")
    own_columns = [c for c in mart.columns if any(e in c for e in OWN_EVENT_TYPES)]
    assert sorted(own_columns) == sorted(
        [f"count_{e}_{w}d" for e in OWN_EVENT_TYPES for w in WINDOWS]
        + [f"share_{e}_90d" for e in OWN_EVENT_TYPES]
    )
    assert not [c for c in mart.columns if "page_view" in c or c.endswith("_purchase_90d")]
    snapshots = mart["as_of_date"].unique().sort()
    checked = 0
    for as_of in snapshots.gather_every(max(1, len(snapshots) // 5)):
        got = mart.filter(pl.col("as_of_date") == as_of)
        expected = _recount(events, as_of)
        assert got.height == expected.height, f"eligible users differ on {as_of}"
        joined = got.join(expected, on="user_id", suffix="_raw")
        assert joined.height == got.height
        for e in OWN_EVENT_TYPES:
            for w in WINDOWS:
                column = f"count_{e}_{w}d"
                assert (joined[column] == joined[f"{column}_raw"]).all(), (as_of, column)
            share = joined[f"count_{e}_90d"] / joined["count_events_90d_raw"]
            assert ((joined[f"share_{e}_90d"] - share).abs() < 1e-9).all(), (as_of, e)
        # purchases: order_paid only, never the revenue-less conversion plan_renewed
        assert (joined["count_purchases_lifetime"] == joined["count_purchases_lifetime_raw"]).all()
        average = (joined["purchase_revenue"] / joined["count_purchases_lifetime_raw"]).fill_nan(0)
        assert ((joined["avg_order_value_usd_lifetime"] - average.fill_null(0)).abs() < 1e-6).all()
        since = (pl.lit(as_of) - pl.col("last_purchase_ts").dt.date()).dt.total_days()
        days = joined.select(since.fill_null(9999))
        assert (joined["days_since_last_purchase"] == days.to_series()).all()
        checked += got.height
    assert checked > 500
    totals = mart.select(
        *(pl.col(f"count_{e}_90d").sum() for e in OWN_EVENT_TYPES),
        pl.col("count_purchases_lifetime").sum(),
    ).row(0)
    assert all(total > 0 for total in totals), totals


@pytest.mark.slow
def test_own_purchases_reach_sessions_daily_activity_and_sequences(own_plan_pipeline):
    db, events, _ = own_plan_pipeline
    orders = events.filter(pl.col("event_name") == PURCHASE).height
    conversions = events.filter(pl.col("event_name").is_in([PURCHASE, "plan_renewed"])).height
    assert 0 < orders < conversions
    assert _read(db, "select sum(count_purchases) from marts.fct_sessions").item() == orders
    daily = _read(db, "select sum(count_purchases) from marts.fct_user_activity_daily").item()
    assert daily == orders
    # a person's last event: the share of each event type over their whole history
    last = _read(
        db,
        """select * from features.ftr_user_event_sequences
        qualify row_number() over (partition by user_id order by count_events_so_far desc) = 1""",
    )
    mix = _as_persons(
        events.group_by("user_id").agg(
            *((pl.col("event_name") == e).mean().alias(f"raw_{e}") for e in OWN_EVENT_TYPES)
        )
    )
    joined = last.join(mix, on="user_id")
    assert joined.height == mix.height
    for e in OWN_EVENT_TYPES:
        assert ((joined[f"share_{e}_so_far"] - joined[f"raw_{e}"]).abs() < 1e-9).all(), e
        assert joined[f"session_count_{e}"].sum() > 0


@pytest.mark.slow
def test_churn_trains_and_scores_on_the_own_event_features(own_plan_pipeline):
    _, _, outcome = own_plan_pipeline
    print("\n", outcome["status"], outcome["reason"], outcome["evaluation"])
    features = json.loads(outcome["features"])  # ml.model_registry keeps the list as JSON
    assert {f"count_{e}_30d" for e in OWN_EVENT_TYPES} <= set(features)
    assert not [f for f in features if "page_view" in f]
    assert outcome["status"] == "champion", outcome["reason"]
    assert outcome["rows"] > 0


def _dbt_error(db: Path, tmp_path: Path, model: str, event_types: list[str]) -> str:
    with pytest.raises(DbtError) as failed:
        run_dbt(
            ["compile", "--select", model],
            duckdb_path=db,
            dbt_vars={"uba__top_event_types": event_types},
            quiet=True,
            target_path=tmp_path / "target",
        )
    return "\n".join(failed.value.summary)


@pytest.mark.slow
def test_a_bad_or_unsynced_event_type_setting_stops_dbt_with_one_line(tmp_path):
    """What a plain `dbt build` says (uba build checks the same before dbt starts)."""
    db = tmp_path / "warehouse.duckdb"
    run_dbt(["seed"], duckdb_path=db, quiet=True, target_path=tmp_path / "target")
    message = _dbt_error(db, tmp_path, "int_feature_user_days", ["page_view", "wishlist_added"])
    assert (
        "uba__top_event_types (dbt_project/dbt_project.yml) lists wishlist_added, not in the "
        "tracking plan dbt_project/seeds/event_taxonomy.csv"
    ) in message, message
    # planned events, but the contract still documents the shipped nine: sync, not zeros
    message = _dbt_error(db, tmp_path, "ftr_user_features", ["page_view", "click"])
    assert "no longer configured: count_search_7d" in message, message
    assert "run `uba features sync`" in message
