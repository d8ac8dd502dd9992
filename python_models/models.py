"""The models the house serves: THE list. Each model declares itself once, in its package's
`spec.py` (`python_models.common.spec.ModelSpec`); everything else reads this list: the `uba`
commands' choices, the train / score / rollback bookkeeping, the Dagster assets and checks, the
score-table suites and the docs' model table.

Adding a model: its package (`python_models/<name>/` with params, model, on_warehouse,
examples and spec) and one entry below. See docs/architecture.md.
"""

from __future__ import annotations

from functools import partial

from python_models.anomaly.spec import SPEC as ANOMALY
from python_models.churn.on_warehouse import LAPSED_TABLE, lapsed_users
from python_models.churn.spec import SPEC as CHURN
from python_models.churn.value_at_risk import value_at_risk
from python_models.common import catalogue
from python_models.common.features import FEATURES_TABLE
from python_models.common.spec import DerivedTable, ModelSpec
from python_models.load_forecast.spec import SPEC as LOAD_FORECAST
from python_models.ltv.spec import SPEC as LTV
from python_models.next_action.spec import SPEC as NEXT_ACTION
from python_models.segmentation.spec import SPEC as SEGMENTATION

MODELS: tuple[ModelSpec, ...] = (CHURN, LTV, SEGMENTATION, ANOMALY, NEXT_ACTION, LOAD_FORECAST)

# Tables built from the score tables once they are written (docs/CONTRACTS.md).
DERIVED_TABLES: tuple[DerivedTable, ...] = (
    DerivedTable(
        name=LAPSED_TABLE,
        summary="users of the newest snapshot not scored for churn: inactive (no event in the "
        "active window) or lapsed (quiet for longer than the churn horizon)",
        reads=(FEATURES_TABLE, CHURN.score_table),
        build=lapsed_users,
    ),
    DerivedTable(
        name="ml_scores.value_at_risk",
        summary="users still here ranked by churn risk x expected revenue, with reasons",
        reads=(CHURN.score_table, LTV.score_table),
        build=partial(value_at_risk, risk_table=CHURN.score_table, value_table=LTV.score_table),
        consent="marketing",  # who to act on first: people who agreed to be contacted
    ),
)


# Readers look MODELS up when called (not when imported), so a test can add a model to it.
def model_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in MODELS)


def fingerprinted_inputs() -> list[str]:
    """Every table whose content fingerprint decides a model's rescoring (ModelSpec.
    fingerprinted_inputs), each once: a day's scoring takes them from the publish's figures."""
    return sorted({table for spec in MODELS for table in spec.fingerprinted_inputs})


def get_spec(name: str) -> ModelSpec:
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(model_names())}")


def check_models(models: tuple[ModelSpec, ...] | None = None) -> None:
    """One name and one score table per model; every `used_by` in a catalogue mart names a
    model that reads that mart, and every model that reads a mart has features there."""
    models = MODELS if models is None else models
    names = [spec.name for spec in models]
    tables = [spec.score_table for spec in models]
    for kind, values in (("model name", names), ("score table", tables)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{kind}s declared twice: {repeated}")
    marts = {catalogue.FEATURE_MART} | {s.feature_mart for s in models if s.feature_mart}
    for mart in sorted(marts):
        readers = {spec.name for spec in models if spec.feature_mart == mart}
        unknown = sorted(catalogue.consumers(mart=mart) - readers)
        if unknown:
            raise catalogue.CatalogueError(
                f"the feature catalogue's {mart} names unknown models {unknown} in used_by; "
                f"models that read it: {sorted(readers)}"
            )
        for name in sorted(readers):
            catalogue.feature_columns(name, mart=mart)  # raises when no feature is used_by it


def models_markdown() -> str:
    """The docs' model table (docs/models_ml.md), from the specs."""

    def bounds(spec: ModelSpec) -> str:
        low, high = (
            side if value is None else f"{value:g}"
            for side, value in zip(("-inf", "inf"), spec.score_bounds, strict=True)
        )
        return f"[{low}, {high}]"

    header = ("model", "what it says", "estimator", "reads", "score table", "labels", "range")
    lines = ["| " + " | ".join((*header, "reasons")) + " |", "|---" * (len(header) + 1) + "|"]
    for spec in MODELS:
        lines.append(
            f"| `{spec.name}` | {spec.summary} | `{spec.estimator.__name__}` "
            f"({', '.join(spec.kinds)}) | {', '.join(f'`{t}`' for t in spec.inputs)} "
            f"| `{spec.score_table}` | {', '.join(f'`{c}`' for c in spec.label_columns)} "
            f"| {bounds(spec)} | {spec.reasons} |"
        )
    return "\n".join(lines)
