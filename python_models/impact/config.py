"""Impact settings: the `uba__holdout_*`, `uba__experiment*`, `uba__impact_*`, `uba__lift_*`,
`uba__audit_*` and `uba__fairness_*` vars of dbt_project/dbt_project.yml.

dbt builds the holdout groups, exposures and per-user metrics from these vars; the statistics
here read the same block, so every setting is declared once (docs/impact.md lists them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

from python_models.config import DBT_PROJECT_DIR, file_version

DBT_PROJECT_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
METRIC_KINDS = ("conversion", "retention", "revenue")
_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class ImpactConfigError(ValueError):
    """An impact var in dbt_project.yml is missing or malformed (the message names it)."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # conversion | retention | revenue
    event_name: str | None = None
    window_days: int | None = None
    day: int | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """Declared control variant and planned split; None means: infer (see control_for)."""

    control: str | None = None
    split: dict[str, float] | None = None


@dataclass(frozen=True)
class ModelOutcome:
    """A scored model and the matured label (features.ftr_user_labels) it is judged against.
    `scores_table` None: the model's score history, named by its spec (inputs.scores_table_of)."""

    model_name: str
    scores_table: str | None
    outcome: str


@dataclass(frozen=True)
class ImpactConfig:
    holdout_share: float
    holdout_key: str
    holdout_key_version: int
    holdout_key_effective_from: date
    exposure_event_name: str
    metrics: tuple[MetricSpec, ...]
    experiments: dict[str, ExperimentSpec] = field(default_factory=dict)
    alpha: float = 0.05
    power: float = 0.8
    srm_alpha: float = 0.001
    models: tuple[ModelOutcome, ...] = ()
    lift_bins: int = 10
    property_attributes: dict[str, str] = field(default_factory=dict)
    fairness_attributes: tuple[str, ...] = ()
    disparity_threshold: float = 0.8
    min_group_size: int = 50
    # None: each model version's own decision threshold (registry metric decision_threshold,
    # e.g. churn's learned one), else 0.5.
    decision_threshold: float | None = None

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise ImpactConfigError(f"unknown experiment metric {name!r}")

    def experiment(self, key: str) -> ExperimentSpec:
        return self.experiments.get(key, ExperimentSpec())


def _require(vars_: dict, name: str):
    if name not in vars_:
        raise ImpactConfigError(f"dbt var {name} is missing from {DBT_PROJECT_FILE.name}")
    return vars_[name]


def _fraction(value, name: str, low: float = 0.0, high: float = 1.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ImpactConfigError(f"dbt var {name} must be a number, got {value!r}") from err
    if not low <= number < high:
        raise ImpactConfigError(f"dbt var {name} must be in [{low}, {high}), got {number}")
    return number


def _metric(entry: dict, position: int) -> MetricSpec:
    where = f"uba__experiment_metrics entry {position}"
    if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
        raise ImpactConfigError(f"{where} needs a name and a kind")
    kind = entry["kind"]
    if kind not in METRIC_KINDS:
        raise ImpactConfigError(f"{where} ({entry['name']}): kind must be one of {METRIC_KINDS}")
    spec = MetricSpec(
        name=str(entry["name"]),
        kind=kind,
        event_name=entry.get("event_name"),
        window_days=int(entry["window_days"]) if "window_days" in entry else None,
        day=int(entry["day"]) if "day" in entry else None,
    )
    if kind == "conversion" and not spec.event_name:
        raise ImpactConfigError(f"{where} ({spec.name}): a conversion metric needs event_name")
    if kind == "retention" and (spec.day or 0) < 1:
        raise ImpactConfigError(f"{where} ({spec.name}): a retention metric needs day >= 1")
    if kind != "retention" and (spec.window_days or 0) < 1:
        raise ImpactConfigError(f"{where} ({spec.name}): window_days must be >= 1")
    return spec


def _experiments(raw) -> dict[str, ExperimentSpec]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ImpactConfigError("dbt var uba__experiments must map experiment_key -> settings")
    out = {}
    for key, entry in raw.items():
        entry = entry or {}
        split = entry.get("split")
        if split is not None:
            if not isinstance(split, dict) or not split or min(map(float, split.values())) <= 0:
                raise ImpactConfigError(
                    f"uba__experiments.{key}.split must map each variant to a positive share"
                )
            total = sum(float(v) for v in split.values())
            split = {str(k): float(v) / total for k, v in split.items()}
        control = entry.get("control")
        if control is not None and split is not None and str(control) not in split:
            raise ImpactConfigError(f"uba__experiments.{key}: control {control!r} not in split")
        out[str(key)] = ExperimentSpec(
            control=None if control is None else str(control), split=split
        )
    return out


def _models(raw) -> tuple[ModelOutcome, ...]:
    if not isinstance(raw, dict):
        raise ImpactConfigError(
            "dbt var uba__impact_models must map model -> {outcome[, scores_table]}"
        )
    out = []
    for name, entry in raw.items():
        table = (entry or {}).get("scores_table")
        outcome = (entry or {}).get("outcome", "")
        if table is not None and not _QUALIFIED.match(str(table)):
            raise ImpactConfigError(
                f"uba__impact_models.{name}.scores_table must be schema.table, got {table!r}"
            )
        if not _IDENT.match(str(outcome)):
            raise ImpactConfigError(
                f"uba__impact_models.{name}.outcome must be a label column, got {outcome!r}"
            )
        out.append(ModelOutcome(str(name), None if table is None else str(table), str(outcome)))
    return tuple(out)


def parse_impact_config(vars_: dict) -> ImpactConfig:
    """ImpactConfig from a dict of dbt vars (raises ImpactConfigError naming the bad var)."""
    metrics_raw = _require(vars_, "uba__experiment_metrics") or []
    if not metrics_raw:
        raise ImpactConfigError("dbt var uba__experiment_metrics is empty")
    metrics = tuple(_metric(entry, i) for i, entry in enumerate(metrics_raw, start=1))
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ImpactConfigError(f"uba__experiment_metrics has duplicate names: {names}")
    property_attributes = {
        str(k): str(v) for k, v in (vars_.get("uba__audit_property_attributes") or {}).items()
    }
    attributes = tuple(str(a) for a in (vars_.get("uba__fairness_attributes") or ()))
    for attribute in attributes:
        if not _IDENT.match(attribute):
            raise ImpactConfigError(f"uba__fairness_attributes: {attribute!r} is not a column name")
    effective = _require(vars_, "uba__holdout_key_effective_from")
    try:
        effective_date = date.fromisoformat(str(effective))
    except ValueError as err:
        raise ImpactConfigError(
            f"dbt var uba__holdout_key_effective_from must be YYYY-MM-DD, got {effective!r}"
        ) from err
    threshold = _fraction(
        vars_.get("uba__fairness_disparity_threshold", 0.8), "uba__fairness_disparity_threshold"
    )
    if threshold <= 0:
        raise ImpactConfigError("dbt var uba__fairness_disparity_threshold must be above 0")
    return ImpactConfig(
        holdout_share=_fraction(_require(vars_, "uba__holdout_share"), "uba__holdout_share"),
        holdout_key=str(_require(vars_, "uba__holdout_key")),
        holdout_key_version=int(_require(vars_, "uba__holdout_key_version")),
        holdout_key_effective_from=effective_date,
        exposure_event_name=str(vars_.get("uba__exposure_event_name", "experiment_exposure")),
        metrics=metrics,
        experiments=_experiments(vars_.get("uba__experiments")),
        alpha=_fraction(vars_.get("uba__impact_alpha", 0.05), "uba__impact_alpha", 1e-9),
        power=_fraction(vars_.get("uba__impact_power", 0.8), "uba__impact_power", 0.01),
        srm_alpha=_fraction(vars_.get("uba__srm_alpha", 0.001), "uba__srm_alpha", 1e-12),
        models=_models(vars_.get("uba__impact_models") or {}),
        lift_bins=int(vars_.get("uba__lift_bins", 10)),
        property_attributes=property_attributes,
        fairness_attributes=attributes,
        disparity_threshold=threshold,
        min_group_size=int(vars_.get("uba__fairness_min_group_size", 50)),
        decision_threshold=(
            None
            if vars_.get("uba__fairness_decision_threshold") is None
            else _fraction(
                vars_["uba__fairness_decision_threshold"], "uba__fairness_decision_threshold"
            )
        ),
    )


@lru_cache(maxsize=4)
def _load(path: Path, version: tuple[int, int] | None) -> ImpactConfig:
    if not path.exists():
        raise ImpactConfigError(f"dbt project file not found: {path}")
    document = yaml.safe_load(path.read_text()) or {}
    return parse_impact_config(document.get("vars") or {})


def load_impact_config(path: str | Path | None = None) -> ImpactConfig:
    """The impact settings from dbt_project.yml (read once per path and version of the file)."""
    path = Path(path) if path else DBT_PROJECT_FILE
    return _load(path, file_version(path))
