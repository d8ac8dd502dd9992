"""The feature catalogue: complete, consistent with the mart's contract and the dbt vars."""

from __future__ import annotations

import pytest
import yaml

from python_models.common import catalogue
from python_models.config import DBT_PROJECT_DIR


def _contract_columns() -> list[str]:
    path = DBT_PROJECT_DIR / "models/features/_features__models.yml"
    document = yaml.safe_load(path.read_text())
    model = next(m for m in document["models"] if m["name"] == "ftr_user_features")
    return [c["name"] for c in model["columns"]]


def _vars() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def test_catalogue_equals_contract_columns_both_ways():
    contract = [c for c in _contract_columns() if c not in catalogue.key_columns()]
    names = catalogue.feature_columns()
    assert set(names) - set(contract) == set(), "in catalogue, not in the mart's contract"
    assert set(contract) - set(names) == set(), "in the mart's contract, not in catalogue"
    assert len(names) == len(set(names))


def test_every_configured_window_and_event_type_has_its_count_feature():
    dbt_vars = _vars()
    names = set(catalogue.feature_columns())
    for window in dbt_vars["uba__feature_windows"]:
        assert f"count_events_{window}d" in names
        for event_type in dbt_vars["uba__top_event_types"]:
            assert f"count_{event_type}_{window}d" in names


def test_specs_are_complete_and_windows_match_names():
    for spec in catalogue.load_catalogue():
        assert spec.description and spec.unit and spec.used_by
        assert spec.reason_high.strip() and spec.reason_low.strip()
        if spec.name.endswith("_lifetime") or spec.name in ("tenure_days", "days_since_last_event"):
            assert spec.window_days is None
        suffix = spec.name.rsplit("_", 1)[-1]
        # trend_ratio_events_7d_30d compares two windows (it spans 7 + 30 days)
        if not spec.name.startswith("trend_") and suffix.endswith("d") and suffix[:-1].isdigit():
            assert spec.window_days == int(suffix[:-1]), spec.name


def test_feature_columns_per_model():
    from python_models.models import MODELS

    everything = catalogue.feature_columns()
    for model in (spec.name for spec in MODELS if spec.uses_catalogue):
        subset = catalogue.feature_columns(model)
        assert subset and set(subset) <= set(everything)
    assert "share_click_90d" in catalogue.feature_columns("segmentation")
    with pytest.raises(catalogue.CatalogueError, match="unknown model"):
        catalogue.feature_columns("fraud")


def test_describe_renders_plain_words():
    assert catalogue.describe("count_sessions_30d", 12, "high") == "12 sessions in the last 30 days"
    low = catalogue.describe("count_sessions_30d", 1, "low")
    assert low == "only 1 sessions in the last 30 days"
    assert catalogue.describe("days_since_last_event", 21.4, "high") == (
        "no activity in the last 21 days"
    )
    # Zero is said plainly, not as "only 0 ...".
    assert catalogue.describe("count_events_7d", 0, "low") == "no events in the last 7 days"
    assert catalogue.describe("count_active_days_7d", 0.2, "low") == (
        "not active on any of the last 7 days"
    )
    assert catalogue.describe("count_events_7d", 10, "low") == "only 10 events in the last 7 days"
    for spec in catalogue.load_catalogue():
        for direction in catalogue.DIRECTIONS:
            text = catalogue.describe(spec.name, 3.0, direction)
            assert text and "{" not in text
    with pytest.raises(ValueError, match="direction"):
        catalogue.describe("count_sessions_30d", 1, "up")
    with pytest.raises(catalogue.CatalogueError, match="unknown feature"):
        catalogue.describe("no_such_feature", 1, "high")


def test_broken_catalogue_gives_clear_errors(tmp_path):
    missing = tmp_path / "missing_field.yml"
    missing.write_text("features:\n  - name: x\n    description: d\n")
    with pytest.raises(catalogue.CatalogueError, match="lacks"):
        catalogue.load_catalogue(missing)
    unknown = tmp_path / "unknown_model.yml"
    unknown.write_text(
        "features:\n  - {name: x, description: d, window_days: 7, unit: u,"
        " reason_high: h, reason_low: l, used_by: [fraud]}\n"
    )
    # used_by names are checked against the model specs (tests/unit/test_model_spec.py).
    assert catalogue.consumers(unknown) == {"fraud"}
    with pytest.raises(catalogue.CatalogueError, match="not found"):
        catalogue.load_catalogue(tmp_path / "absent.yml")
