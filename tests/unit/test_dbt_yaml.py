"""The dbt project's yml: each key once, and each column's NOT NULL declared once (a constraint
on a contract-enforced model, checked by its one uba_not_null_columns test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from python_models.dbt_daily_tests import NOT_NULL_COLUMNS as FOLDED_TEST
from python_models.dbt_daily_tests import not_null_constrained

ROOT = Path(__file__).resolve().parents[2]
YML_FILES = sorted((ROOT / "dbt_project" / "models").rglob("*.yml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """Refuses a mapping that repeats a key (PyYAML, and dbt, keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"repeated key(s) {repeated}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def _models() -> list[tuple[Path, dict]]:
    return [
        (path, model)
        for path in YML_FILES
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []
    ]


def _test_names(tests) -> list[str]:
    return [t if isinstance(t, str) else next(iter(t)) for t in tests or []]


@pytest.mark.parametrize("path", YML_FILES, ids=lambda p: p.name)
def test_no_yml_repeats_a_key(path):
    yaml.load(path.read_text(), Loader=_UniqueKeyLoader)


def test_the_tests_own_loader_refuses_a_repeated_key():
    with pytest.raises(yaml.constructor.ConstructorError, match="data_tests"):
        yaml.load("a:\n  data_tests: [x]\n  data_tests: [y]\n", Loader=_UniqueKeyLoader)


def test_not_null_columns_are_constraints_checked_by_one_test_per_model():
    folded = 0
    for path, model in _models():
        columns = model.get("columns") or []
        constrained = not_null_constrained(columns)
        per_column = [c["name"] for c in columns if "not_null" in _test_names(c.get("data_tests"))]
        where = f"{path.name}: {model['name']}"
        enforced = ((model.get("config") or {}).get("contract") or {}).get("enforced")
        assert _test_names(model.get("data_tests")).count(FOLDED_TEST) == (
            1 if constrained else 0
        ), where
        if constrained:
            assert enforced, f"{where}: NOT NULL constraints need an enforced contract"
            assert not per_column, f"{where}: {per_column} also carry dbt's not_null test"
            folded += 1
        elif enforced:
            assert not per_column, f"{where}: {per_column} should be not_null constraints"
    assert folded >= 11
