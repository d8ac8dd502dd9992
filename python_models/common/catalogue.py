"""The feature catalogue: which feature columns a feature mart has, what they mean and how to say a
value in plain words. Python reads feature lists from here, never by hand.

The catalogue is not a file of its own: it is the dbt documentation of the feature marts,
dbt_project/models/features/_features__models.yml, read as plain YAML. Each feature column
carries its `description` and, under `config: meta:`, `unit`, `window_days`, `used_by` and
the `reason_high` / `reason_low` templates (str.format with {value}). A mart's key columns are
its grain, taken from the `uba_unique_combination_of_columns` test on the model; a column whose
meta says `feature: false` is context (quoted in reasons, not learned from). Reading the YAML
itself rather than dbt's manifest keeps dbt (~3 s import, a parse) off this path and leaves no
generated copy to go stale; the price is that catalogue fields must be plain text, not Jinja.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from python_models.config import DBT_PROJECT_DIR, file_version

CATALOGUE_PATH = DBT_PROJECT_DIR / "models" / "features" / "_features__models.yml"
FEATURE_MART = "ftr_user_features"
DIRECTIONS = ("high", "low")
_REQUIRED_META = ("unit", "window_days", "used_by", "reason_high", "reason_low")
_GRAIN_TEST = "uba_unique_combination_of_columns"


class CatalogueError(ValueError):
    """The dbt YAML lacks a field the catalogue needs or names something unknown."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    window_days: int | None  # None: computed over the user's whole visible history
    unit: str
    reason_high: str
    reason_low: str
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class MartCatalogue:
    mart: str
    key_columns: tuple[str, ...]
    features: tuple[FeatureSpec, ...]


def _column_meta(column: dict) -> dict:
    """dbt accepts meta under `config:` (the current place) or at the top level."""
    config = column.get("config") or {}
    return {**(column.get("meta") or {}), **(config.get("meta") or {})}


def _grain(model: dict, where: str) -> tuple[str, ...]:
    for test in model.get("data_tests") or model.get("tests") or []:
        if isinstance(test, dict) and _GRAIN_TEST in test:
            spec = test[_GRAIN_TEST] or {}
            columns = (spec.get("arguments") or spec).get("combination_of_columns")
            if columns:
                return tuple(columns)
    raise CatalogueError(f"{where}: no {_GRAIN_TEST} test declares the mart's grain")


def _parse_feature(column: dict, meta: dict, where: str) -> FeatureSpec:
    name = column["name"]
    missing = [key for key in _REQUIRED_META if key not in meta]
    if not column.get("description"):
        missing.insert(0, "description")
    if missing:
        raise CatalogueError(f"{where}: feature column {name!r} lacks {missing} (column meta)")
    # used_by names are checked against the model specs (python_models.models.check_models).
    used_by = tuple(meta["used_by"] or ())
    texts = (column["description"], meta["reason_high"], meta["reason_low"], meta["unit"])
    if any("{{" in str(text) or "{%" in str(text) for text in texts):
        raise CatalogueError(f"{where}: feature {name!r}: catalogue fields must be plain text")
    window = meta["window_days"]
    return FeatureSpec(
        name=str(name),
        description=" ".join(str(column["description"]).split()),
        window_days=None if window is None else int(window),
        unit=str(meta["unit"]),
        reason_high=str(meta["reason_high"]),
        reason_low=str(meta["reason_low"]),
        used_by=used_by,
    )


@lru_cache(maxsize=4)
def _document(path: Path, version: tuple[int, int] | None) -> dict:
    """The parsed YAML, once per file (several marts share one), with libyaml's loader when
    installed: ten times faster than the pure-Python one, and every command reads this."""
    if not path.exists():
        raise CatalogueError(f"feature catalogue not found at {path}")
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


@lru_cache(maxsize=8)
def _load(path: Path, version: tuple[int, int] | None, mart: str) -> MartCatalogue:
    document = _document(path, version)
    models = [m for m in document.get("models") or [] if m.get("name") == mart]
    if len(models) != 1:
        raise CatalogueError(f"{path}: expected one model named {mart!r}, found {len(models)}")
    model, where = models[0], f"{path.name}:{mart}"
    keys = _grain(model, where)
    columns = model.get("columns") or []
    names = [c.get("name") for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogueError(f"{where}: duplicate columns {duplicates}")
    missing_keys = [k for k in keys if k not in names]
    if missing_keys:
        raise CatalogueError(f"{where}: grain columns {missing_keys} are not documented")
    features = []
    for column in columns:
        meta = _column_meta(column)
        if column["name"] in keys or meta.get("feature") is False:
            continue
        features.append(_parse_feature(column, meta, where))
    if not features:
        raise CatalogueError(f"{where}: no feature columns")
    return MartCatalogue(mart=mart, key_columns=keys, features=tuple(features))


def _catalogue(path: str | Path | None, mart: str) -> MartCatalogue:
    path = Path(path) if path else CATALOGUE_PATH
    return _load(path, file_version(path), mart)


def load_catalogue(path: str | Path | None = None, mart: str = FEATURE_MART) -> list[FeatureSpec]:
    """Every feature of the mart (ftr_user_features by default), in column order."""
    return list(_catalogue(path, mart).features)


def key_columns(mart: str = FEATURE_MART, path: str | Path | None = None) -> list[str]:
    """The mart's grain columns (not features)."""
    return list(_catalogue(path, mart).key_columns)


def consumers(path: str | Path | None = None, mart: str = FEATURE_MART) -> set[str]:
    """Every model name in the `used_by` of `mart`'s features. The catalogue names no model
    itself: python_models.models.check_models holds these names against the model specs."""
    return {name for spec in load_catalogue(path, mart) for name in spec.used_by}


def feature_columns(
    model_name: str | None = None, path: str | Path | None = None, mart: str = FEATURE_MART
) -> list[str]:
    """Feature column names of `mart` used by `model_name` (all its features when None)."""
    columns = [
        spec.name
        for spec in load_catalogue(path, mart)
        if model_name is None or model_name in spec.used_by
    ]
    if not columns:
        raise CatalogueError(
            f"unknown model {model_name!r}: no feature of {mart} is used_by it; "
            f"its models: {sorted(consumers(path, mart))}"
        )
    return columns


def get_feature(
    feature: str, path: str | Path | None = None, mart: str = FEATURE_MART
) -> FeatureSpec:
    for spec in load_catalogue(path, mart):
        if spec.name == feature:
            return spec
    raise CatalogueError(f"unknown feature {feature!r} in {mart}")


def describe(
    feature: str,
    value: float,
    direction: str,
    path: str | Path | None = None,
    mart: str = FEATURE_MART,
) -> str:
    """Plain words for one feature value pushing a score up ('high') or down ('low').

    >>> describe("count_sessions_30d", 12, "high")
    '12 sessions in the last 30 days'
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    spec = get_feature(feature, path, mart)
    template = spec.reason_high if direction == "high" else spec.reason_low
    return _say_zero_plainly(template.format(value=float(value)))


# "only 0 events in the last 7 days" reads like a bug to a business user; say it plainly.
_ZERO_WORDING = (
    (re.compile(r"^only \$0 spent"), "nothing spent"),
    (re.compile(r"^active on only 0 "), "not active on any "),
    (re.compile(r"^only 0 "), "no "),
)


def _say_zero_plainly(text: str) -> str:
    for pattern, replacement in _ZERO_WORDING:
        text = pattern.sub(replacement, text, count=1)
    return text
