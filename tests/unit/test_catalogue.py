"""The feature catalogue = the column meta of the feature marts in dbt's YAML: complete, one
declaration per feature, consistent with the dbt vars that name the columns."""

from __future__ import annotations

import pytest
import yaml

from python_models.common import catalogue
from python_models.config import DBT_PROJECT_DIR

FEATURE_MARTS = ("ftr_user_features", "ftr_user_day_activity", "ftr_user_event_sequences")


def _documented_columns(mart: str) -> list[dict]:
    document = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text())
    model = next(m for m in document["models"] if m["name"] == mart)
    return model["columns"]


def _vars() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def test_the_old_second_catalogue_is_gone():
    assert not (DBT_PROJECT_DIR / "feature_catalogue.yml").exists()


@pytest.mark.parametrize("mart", FEATURE_MARTS)
def test_every_feature_column_has_complete_meta(mart):
    keys = catalogue.key_columns(mart)
    features = catalogue.feature_columns(mart=mart)
    for column in _documented_columns(mart):
        meta = catalogue._column_meta(column)
        if column["name"] in keys or meta.get("feature") is False:
            assert column["name"] not in features
            assert column.get("description"), column["name"]
            continue
        assert column["name"] in features
        for field in ("unit", "window_days", "used_by", "reason_high", "reason_low"):
            assert field in meta, f"{mart}.{column['name']} lacks meta {field}"
        assert meta["used_by"], f"{mart}.{column['name']}: no model uses it"
    assert len(features) == len(set(features))


def test_keys_come_from_the_declared_grain():
    assert catalogue.key_columns() == ["user_id", "as_of_date"]
    assert catalogue.key_columns("ftr_user_day_activity") == ["user_id", "activity_date"]


def test_every_configured_window_and_event_type_has_its_count_feature():
    dbt_vars = _vars()
    names = set(catalogue.feature_columns())
    windows = dbt_vars["uba__feature_windows"]
    for window in windows:
        assert f"count_events_{window}d" in names
        for event_type in dbt_vars["uba__top_event_types"]:
            assert f"count_{event_type}_{window}d" in names
            assert f"share_{event_type}_{max(windows)}d" in names
    recent = dbt_vars["uba__feature_recent_days"]
    for family in ("count_sessions", "count_distinct_event_names", "avg_seconds_between_events"):
        assert f"{family}_{recent}d" in names
    trend = (
        f"trend_ratio_events_{dbt_vars['uba__feature_trend_recent_days']}d_"
        f"{dbt_vars['uba__feature_trend_baseline_days']}d"
    )
    assert trend in names
    assert f"decayed_activity_score_{max(windows)}d" in names


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
    for model in (spec.name for spec in MODELS if spec.feature_mart == catalogue.FEATURE_MART):
        subset = catalogue.feature_columns(model)
        assert subset and set(subset) <= set(everything)
    assert "share_click_90d" in catalogue.feature_columns("segmentation")
    with pytest.raises(catalogue.CatalogueError, match="no feature of ftr_user_features"):
        catalogue.feature_columns("anomaly")
    anomaly = catalogue.feature_columns("anomaly", mart="ftr_user_day_activity")
    assert "z_events" in anomaly and "new_countries" not in anomaly
    with pytest.raises(catalogue.CatalogueError, match="unknown model"):
        catalogue.feature_columns("fraud")


def test_anomaly_model_columns_come_from_the_catalogue():
    from python_models.anomaly.daily import ACTIVITY_MART, MODEL_COLUMNS

    assert MODEL_COLUMNS == catalogue.feature_columns("anomaly", mart=ACTIVITY_MART)
    # the model's reasons quote these context columns: documented, but not features
    context = {c["name"] for c in _documented_columns(ACTIVITY_MART)} - set(MODEL_COLUMNS)
    assert {"new_countries", "new_devices", "first_odd_hour", "baseline_events"} <= context


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
    for mart in FEATURE_MARTS:
        for spec in catalogue.load_catalogue(mart=mart):
            for direction in catalogue.DIRECTIONS:
                text = catalogue.describe(spec.name, 3.0, direction, mart=mart)
                assert text and "{" not in text
    with pytest.raises(ValueError, match="direction"):
        catalogue.describe("count_sessions_30d", 1, "up")
    with pytest.raises(catalogue.CatalogueError, match="unknown feature"):
        catalogue.describe("no_such_feature", 1, "high")


def _dbt_yaml(tmp_path, columns: str, grain: bool = True):
    path = tmp_path / "_features__models.yml"
    test = (
        "    data_tests:\n"
        "      - uba_unique_combination_of_columns:\n"
        "          arguments: {combination_of_columns: [user_id, as_of_date]}\n"
        if grain
        else ""
    )
    path.write_text(
        "version: 2\nmodels:\n  - name: ftr_user_features\n"
        + test
        + "    columns:\n      - {name: user_id}\n      - {name: as_of_date}\n"
        + columns
    )
    return path


def test_broken_catalogue_gives_clear_errors(tmp_path):
    no_meta = _dbt_yaml(tmp_path, "      - {name: x, description: d}\n")
    with pytest.raises(catalogue.CatalogueError, match=r"'x' lacks \['unit'"):
        catalogue.load_catalogue(no_meta)
    (tmp_path / "a").mkdir()
    unknown = _dbt_yaml(
        tmp_path / "a",
        "      - name: x\n        description: d\n        config:\n          meta: {unit: u,"
        " window_days: 7, reason_high: h, reason_low: l, used_by: [fraud]}\n",
    )
    # used_by names are checked against the model specs (tests/unit/test_model_spec.py).
    assert catalogue.consumers(unknown) == {"fraud"}
    (tmp_path / "b").mkdir()
    jinja = _dbt_yaml(
        tmp_path / "b",
        "      - name: x\n        description: \"{{ doc('x') }}\"\n        meta: {unit: u,"
        " window_days: 7, reason_high: h, reason_low: l, used_by: [churn]}\n",
    )
    with pytest.raises(catalogue.CatalogueError, match="plain text"):
        catalogue.load_catalogue(jinja)
    (tmp_path / "c").mkdir()
    no_grain = _dbt_yaml(tmp_path / "c", "", grain=False)
    with pytest.raises(catalogue.CatalogueError, match="grain"):
        catalogue.load_catalogue(no_grain)
    with pytest.raises(catalogue.CatalogueError, match="not found"):
        catalogue.load_catalogue(tmp_path / "absent.yml")
    with pytest.raises(catalogue.CatalogueError, match="one model named"):
        catalogue.load_catalogue(no_meta, mart="ftr_nothing")
