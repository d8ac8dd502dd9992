"""The shared base of every model's parameters: a frozen dataclass, checked once when built.

Each model declares its defaults as fields (`python_models/<model>/params.py`) and its own
rules in `check()`; names, types and the overrides path are handled here, for all of them:

    ChurnParams.from_overrides({"num_leaves": 15})   # unknown names or wrong types: ValueError
    params.as_dict()                                 # what the registry and the version hash see
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class ModelParams:
    # Used in error messages ("unknown churn parameters ...").
    model_name: ClassVar[str] = "model"

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for field in fields(self):
            value = getattr(self, field.name)
            value = _coerced(self.model_name, field.name, value, hints[field.name])
            object.__setattr__(self, field.name, value)
        self.check()

    def check(self) -> None:
        """Model-specific rules between values; raise ValueError with a one-line reason."""

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> Self:
        """The defaults with `overrides` applied (from `uba train --param` or Dagster config)."""
        overrides = dict(overrides or {})
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.model_name} parameters {unknown}; known: {sorted(known)}"
            )
        return replace(cls(), **overrides)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def training_threads(self) -> int | None:
        """The threads its fit keeps busy (`num_threads`, or `n_jobs` for scikit-learn's
        estimators), 1 when it sets neither; None for "every core" (a value below 1).
        lifecycle.train_each counts it when it trains models beside each other."""
        threads = getattr(self, "num_threads", getattr(self, "n_jobs", 1))
        return int(threads) if threads is not None and int(threads) >= 1 else None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _allowed(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arm in typing.get_args(hint) for t in _allowed(arm))
    return (type(None),) if hint is None else (hint,)


def _coerced(model: str, name: str, value: Any, hint: Any) -> Any:
    """`value` if it has the declared type; an int where a float is declared becomes a float
    (so `learning_rate=1` and `1.0` are one version); anything else is a ValueError."""
    allowed = _allowed(hint)
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and int not in allowed and float in allowed:
        return float(value)
    elif isinstance(value, allowed):
        return value
    names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{model} parameter {name} must be {names}, got {value!r}")
