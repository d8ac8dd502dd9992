"""The tracking plan (dbt seed event_taxonomy.csv): the shipped plan is valid and every kind of
mistake in a user's plan stops with an error naming the file, the line and the problem."""

from __future__ import annotations

import pytest

from python_models.ingest.tracking_plan import (
    TRACKING_PLAN_PATH,
    PropertySpec,
    TrackingPlanError,
    read_tracking_plan,
)

HEADER = "event_name,category,description,is_conversion,required_properties,optional_properties\n"


def test_the_shipped_plan_declares_events_conversions_and_property_types():
    from python_models.synthetic.personas import EVENT_NAMES

    plan = read_tracking_plan()
    assert plan.path == TRACKING_PLAN_PATH
    assert set(EVENT_NAMES) <= set(plan.event_names)  # every event the generator sends
    assert set(plan.conversion_events) == {"purchase", "plan_upgraded"}
    assert plan.declared_properties()["purchase"] == (
        PropertySpec("revenue", "number", False),
        PropertySpec("currency", "string", False),
    )
    assert plan.declared_properties()["feature_use"] == (PropertySpec("feature", "string", True),)


def test_a_custom_plan_with_new_events_is_read(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text(
        HEADER
        + "video_started,media,,false,,position_s:integer\n"
        + "subscription_paid,billing,Paid,TRUE,amount:number; plan:string,\n"
    )
    plan = read_tracking_plan(path)
    assert plan.event_names == ("video_started", "subscription_paid")
    assert plan.conversion_events == ("subscription_paid",)
    assert [s.name for s in plan.declared_properties()["subscription_paid"]] == ["amount", "plan"]


@pytest.mark.parametrize(
    "body, problem",
    [
        ("", "lists no events"),
        ("a,x,,maybe,,\n", "line 2: is_conversion for 'a' must be true or false"),
        (
            "a,x,,false,,\nb,x,,false,,\na,y,,true,,\n",
            "line 4: event 'a' is already declared on line 2",
        ),
        (",x,,false,,\n", "line 2: empty event_name"),
        ("a,x,,false,revenue:numbr,\n", "unknown type 'numbr'"),
        ("a,x,,false,revenue,\n", "is not name:type"),
        ("a,x,,false,bad-name:string,\n", "property name 'bad-name'"),
        ("a,x,,false,k:string,k:number\n", "property k declared twice"),
    ],
)
def test_mistakes_in_the_plan_are_clear_errors(tmp_path, body, problem):
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + body)
    with pytest.raises(TrackingPlanError) as caught:
        read_tracking_plan(path)
    message = str(caught.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_a_plan_without_the_required_columns_or_not_utf8_is_refused(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text("name,category\npage_view,x\n")
    with pytest.raises(TrackingPlanError, match="header lacks event_name, is_conversion"):
        read_tracking_plan(path)
    path.write_bytes(HEADER.encode() + b"caf\xe9,x,,false,,\n")
    with pytest.raises(TrackingPlanError, match="not UTF-8"):
        read_tracking_plan(path)
    with pytest.raises(TrackingPlanError, match="not found"):
        read_tracking_plan(tmp_path / "missing.csv")
