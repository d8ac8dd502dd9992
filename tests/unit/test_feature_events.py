"""Per-event features follow configuration: uba__top_event_types is checked against the
tracking plan, purchases are the plan's conversions with revenue, and the catalogue entries of
the per-event columns are generated (uba features sync) so a new list needs no hand edits."""

from __future__ import annotations

import shutil

import pytest
import yaml

from python_models.cli import main as uba
from python_models.common import catalogue
from python_models.common.catalogue_sync import (
    check_project,
    generated_columns,
    sync_project,
    synced_text,
)
from python_models.common.feature_events import (
    DBT_PROJECT_FILE,
    FeatureEvents,
    FeatureEventsError,
    check_event_types,
    purchase_events,
    read_feature_events,
)
from python_models.ingest.tracking_plan import read_tracking_plan

HEADER = "event_name,category,description,is_conversion,required_properties,optional_properties\n"
OWN = FeatureEvents(("placed", "page_view"), (7, 14, 30, 90), ("placed",))


def _columns(text: str, mart: str) -> list[dict]:
    document = yaml.safe_load(text)
    return next(m for m in document["models"] if m["name"] == mart)["columns"]


def test_the_shipped_setting_fits_the_shipped_plan_and_catalogue():
    config = read_feature_events()
    assert config.event_types[0] == "page_view" and "purchase" in config.event_types
    assert config.purchase_events == ("purchase",)  # plan_upgraded converts without revenue
    assert check_project() is None
    assert uba(["features", "check"]) == 0


def test_purchases_are_conversions_that_declare_revenue(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text(
        HEADER
        + "order_paid,shop,,true,revenue:number,\n"
        + "renewed,billing,,true,,\n"  # a conversion, no revenue: not a purchase
        + "refund,shop,,false,,revenue:number\n"  # revenue, not a conversion
        + "trial_paid,billing,,TRUE,,currency:string; revenue:number\n"
    )
    assert purchase_events(read_tracking_plan(path)) == ("order_paid", "trial_paid")


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        (["page_view", "wishlist_added"], "lists wishlist_added, not in the tracking plan"),
        (["Order Completed"], "'Order Completed' cannot name a feature column"),
        (["click", "click"], "lists 'click' twice"),
        ([], "must be a non-empty list"),
        ("page_view", "must be a non-empty list"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_var_and_file(configured, message):
    with pytest.raises(FeatureEventsError, match=message) as failed:
        check_event_types(configured, read_tracking_plan())
    text = str(failed.value)
    assert "\n" not in text and "uba__top_event_types (dbt_project/dbt_project.yml)" in text


def test_the_shipped_catalogue_is_what_the_generator_writes():
    text = catalogue.CATALOGUE_PATH.read_text()
    config = read_feature_events()
    assert synced_text(text, config) == text
    expected = {c.name for c in generated_columns(config)}
    marked = {
        column["name"]
        for mart in ("ftr_user_features", "ftr_user_event_sequences")
        for column in _columns(text, mart)
        if "event_type" in catalogue._column_meta(column)
    }
    assert marked == expected and len(expected) == 9 * (4 + 1) + 9 * 2


def test_a_new_list_regenerates_only_the_per_event_entries(tmp_path):
    text = catalogue.CATALOGUE_PATH.read_text()
    new = synced_text(text, OWN)
    assert synced_text(new, OWN) == new  # a second sync changes nothing
    path = tmp_path / "_features__models.yml"
    path.write_text(new)
    for mart in ("ftr_user_features", "ftr_user_event_sequences", "ftr_user_day_activity"):
        before = [
            c
            for c in _columns(text, mart)
            if "event_type" not in c.get("config", {}).get("meta", {})
        ]
        after = [
            c
            for c in _columns(new, mart)
            if "event_type" not in c.get("config", {}).get("meta", {})
        ]
        assert after == before, mart  # every hand-written column kept as it was
    names = catalogue.feature_columns(path=path)
    assert names.index("sum_revenue_usd_7d") + 1 == names.index("count_placed_7d")
    assert names.index("count_placed_7d") + 1 == names.index("count_page_view_7d")
    assert [n for n in names if "click" in n or "purchase_" in n] == []
    assert names[names.index("count_page_view_90d") + 1 :][:2] == [
        "share_placed_90d",
        "share_page_view_90d",
    ]
    assert "count_placed_90d" in catalogue.feature_columns("segmentation", path=path)
    assert catalogue.describe("count_placed_30d", 3, "high", path=path) == (
        "3 'placed' events in the last 30 days"
    )
    # an event kept from before keeps its hand-written reasons
    assert catalogue.describe("count_page_view_7d", 2, "high", path=path) == (
        "2 page views in the last 7 days"
    )
    sequences = catalogue.feature_columns(path=path, mart="ftr_user_event_sequences")
    assert {"session_count_placed", "share_placed_so_far"} <= set(sequences)


def test_a_stale_catalogue_fails_the_check_and_sync_repairs_it(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_FILE.parent / "seeds", project / "seeds")
    text = DBT_PROJECT_FILE.read_text()
    line = next(x for x in text.splitlines() if x.startswith("  uba__top_event_types:"))
    (project / "dbt_project.yml").write_text(
        text.replace(line, '  uba__top_event_types: ["login", "purchase"]')
    )
    path = tmp_path / "_features__models.yml"
    shutil.copy(catalogue.CATALOGUE_PATH, path)
    problem = check_project(project / "dbt_project.yml", path)
    assert problem and "run `uba features sync`" in problem and "\n" not in problem
    assert sync_project(project / "dbt_project.yml", path) is True
    assert check_project(project / "dbt_project.yml", path) is None
    assert sync_project(project / "dbt_project.yml", path) is False
    names = catalogue.feature_columns(path=path)
    assert [n for n in names if n.startswith("share_")] == ["share_login_90d", "share_purchase_90d"]
