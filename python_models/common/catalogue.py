"""The feature catalogue: which columns of features.ftr_user_features exist, what they mean and
how to say a value in plain words. Python reads feature lists from here, never by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from python_models.config import DBT_PROJECT_DIR

CATALOGUE_PATH = DBT_PROJECT_DIR / "feature_catalogue.yml"
DIRECTIONS = ("high", "low")
_REQUIRED = ("name", "description", "window_days", "unit", "reason_high", "reason_low", "used_by")


class CatalogueError(ValueError):
    """The catalogue file is missing a field or names something unknown."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    window_days: int | None  # None: computed over the user's whole visible history
    unit: str
    reason_high: str
    reason_low: str
    used_by: tuple[str, ...]


def _parse(entry: dict, position: int) -> FeatureSpec:
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise CatalogueError(f"feature #{position} ({entry.get('name')!r}) lacks {missing}")
    used_by = tuple(entry["used_by"] or ())
    window = entry["window_days"]
    return FeatureSpec(
        name=str(entry["name"]),
        description=str(entry["description"]),
        window_days=None if window is None else int(window),
        unit=str(entry["unit"]),
        reason_high=str(entry["reason_high"]),
        reason_low=str(entry["reason_low"]),
        used_by=used_by,
    )


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[FeatureSpec, ...]:
    if not path.exists():
        raise CatalogueError(f"feature catalogue not found at {path}")
    document = yaml.safe_load(path.read_text()) or {}
    entries = document.get("features")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path}: expected a non-empty 'features' list")
    specs = tuple(_parse(entry, i) for i, entry in enumerate(entries, start=1))
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CatalogueError(f"{path}: duplicate feature names {duplicates}")
    return specs


def load_catalogue(path: str | Path | None = None) -> list[FeatureSpec]:
    """Every feature of ftr_user_features, in catalogue order."""
    return list(_load(Path(path) if path else CATALOGUE_PATH))


def key_columns() -> list[str]:
    """The mart's grain columns (not features)."""
    return ["user_id", "as_of_date"]


def consumers(path: str | Path | None = None) -> set[str]:
    """Every model name in the features' `used_by` (python_models.models checks them against
    the model specs: the catalogue itself names no model)."""
    return {name for spec in load_catalogue(path) for name in spec.used_by}


def feature_columns(model_name: str | None = None, path: str | Path | None = None) -> list[str]:
    """Feature column names used by `model_name` (all features when None)."""
    columns = [
        spec.name
        for spec in load_catalogue(path)
        if model_name is None or model_name in spec.used_by
    ]
    if not columns:
        raise CatalogueError(
            f"unknown model {model_name!r}: no feature is used_by it; "
            f"the catalogue's models: {sorted(consumers(path))}"
        )
    return columns


def get_feature(feature: str, path: str | Path | None = None) -> FeatureSpec:
    for spec in load_catalogue(path):
        if spec.name == feature:
            return spec
    raise CatalogueError(f"unknown feature {feature!r}")


def describe(feature: str, value: float, direction: str, path: str | Path | None = None) -> str:
    """Plain words for one feature value pushing a score up ('high') or down ('low').

    >>> describe("count_sessions_30d", 12, "high")
    '12 sessions in the last 30 days'
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    spec = get_feature(feature, path)
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
