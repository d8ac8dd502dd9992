"""`ModelSpec`: everything the house needs to know about one model, declared once in the
model's package (`python_models/<model>/spec.py`) and listed once in `python_models/models.py`.

The `uba` commands, the Dagster assets and their checks, the score-table suites, the registry
bookkeeping and the docs' model table all read these fields; none of them names a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from python_models.common.estimator import Estimator
from python_models.common.params import ModelParams
from python_models.common.training import TrainingResult
from python_models.warehouse import Warehouse

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_COLUMNS = ("user_id", "as_of_date")
# Which holdout group (docs/impact.md) the user is in: a CRM acts on `treatment` users only.
HOLDOUT_COLUMN = "holdout_group"


@dataclass(frozen=True)
class Example:
    """Tiny seeded frames in a model's input shape, for the shared estimator checks and docs."""

    features: list[str]
    frame: pl.DataFrame
    validation: pl.DataFrame | None = None
    # Parameter overrides that suit frames this small (one thread: checks run beside others).
    params: dict[str, Any] = field(default_factory=dict)

    def make(self, spec: ModelSpec) -> Estimator:
        """`spec`'s estimator, unfitted, with these features and parameters."""
        return spec.estimator(self.features, spec.params.from_overrides(self.params))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str  # one line: what the model says about a user
    estimator: type[Estimator]
    params: type[ModelParams]
    # On the warehouse: train(con, overrides) -> TrainingResult; score(con, bundle) -> the
    # score rows; latest_features(con, bundle) -> the newest inputs (drift).
    train: Callable[[Warehouse, dict[str, Any] | None], TrainingResult]
    score: Callable[[Warehouse, dict[str, Any]], pl.DataFrame]
    latest_features: Callable[[Warehouse, dict[str, Any]], pl.DataFrame]
    inputs: tuple[str, ...]  # warehouse tables (dbt models) it reads, "schema.table"
    score_table: str  # "ml_scores.<table>"
    label_columns: tuple[str, ...]  # besides user_id, as_of_date, score, reasons
    score_bounds: tuple[float | None, float | None]  # (low, high), None = open
    reasons: str  # how its reasons are worded
    kinds: tuple[str, ...]  # libraries it fits with (Dagster kinds)
    example: Callable[[int], Example]
    # The catalogue mart (dbt column meta) whose `used_by: [<name>]` columns are its features;
    # None when the model lists its own inputs.
    feature_mart: str | None = "ftr_user_features"
    # Descriptions of the score table's own columns for BI readers (dbt sources, warehouse
    # comments, the published manifest): `score` and every label column; a shared column
    # (user_id, as_of_date...) listed here overrides the house wording (python_models.bi_docs).
    column_docs: Mapping[str, str] = field(default_factory=dict)
    # More per-user outputs after the labels (forecasts and their intervals), never null.
    detail_columns: tuple[str, ...] = ()
    # The drift sensor asks for retraining when this model's scored inputs drift.
    watch_drift: bool = False
    # Matured outcomes for realized performance: outcomes(con, keys) with keys = the scored
    # (user_id, as_of_date) pairs -> (user_id, as_of_date, outcome) for those that matured;
    # a boolean outcome is judged by AUC / calibration, a number by MAE.
    outcomes: Callable[[Warehouse, pl.DataFrame], pl.DataFrame] | None = None
    # Models that also learn from a file outside the warehouse (LTV from a transactions
    # export): train_file(frame, overrides, horizon_days, calibration_end) -> TrainingResult
    # and score_file(frame, bundle) -> score rows with pseudonymous ids and holdout_group.
    train_file: Callable[..., TrainingResult] | None = None
    score_file: Callable[[pl.DataFrame, dict[str, Any]], pl.DataFrame] | None = None
    # The score table's grain: one row per user and snapshot, unless the model scores something
    # else (the load forecast: one row per forecast origin, metric and hour; no user ids).
    key_columns: tuple[str, ...] = KEY_COLUMNS
    # True when `score` is the model's predict_frame over rows of the feature mart (the newest
    # snapshot unless score_population says otherwise), each row scored on its own values
    # alone: then `uba refresh` rescores only the rows whose features changed (predict_frame
    # may keep some of them only: anomaly's alerts). False (a score that ranks rows against
    # each other, like LTV's tiers, or reads other tables): rescored in full whenever an input
    # table changed.
    rowwise_scoring: bool = False
    # A row-wise model whose `score` scores every row of its feature mart that a condition
    # selects, not latest_features' newest snapshot: score_population(con, bundle) -> (a SQL
    # condition on the mart's columns, its parameters), the rows `uba refresh` compares
    # (anomaly: every user-day of its lookback). None: latest_features' rows.
    score_population: Callable[[Warehouse, dict[str, Any]], tuple[str, list]] | None = None
    # "schema.table" holding the rows a row-wise model scores when they are not its feature
    # mart's own: a subset of the mart's rows, with its grain and features (next action: each
    # user's newest sequence row, kept by dbt). None: the feature mart.
    scored_rows: str | None = None
    # A model whose scoring computes its newest inputs on the way (LTV: the customers' RFM
    # state from the purchases it forecasts from): score_with_features(con, bundle) -> (score's
    # rows, latest_features' frame) from one read, where score then latest_features read
    # twice. None: score, then latest_features.
    score_with_features: (
        Callable[[Warehouse, dict[str, Any]], tuple[pl.DataFrame, pl.DataFrame]] | None
    ) = None
    # How long its training takes beside the others' (1: the usual): lifecycle.train_each
    # starts the longer ones first, so that the shorter ones fill the cores beside them.
    training_weight: float = 1.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} must be lowercase letters, digits, _")
        for table in (*self.inputs, self.score_table):
            if len(table.split(".")) != 2:
                raise ValueError(f"model {self.name}: expected 'schema.table', got {table!r}")
        if not self.score_table.startswith("ml_scores."):
            raise ValueError(f"model {self.name}: score tables live in ml_scores")
        if not self.key_columns:
            raise ValueError(f"model {self.name}: declare the score table's key columns")
        if not self.label_columns:
            raise ValueError(f"model {self.name}: declare at least one label column")
        reserved = {
            *KEY_COLUMNS,
            *self.key_columns,
            "model_name",
            "model_version",
            "score",
            "reasons",
            HOLDOUT_COLUMN,
            "scored_at",
            "run_id",
        }
        clash = sorted(reserved & {*self.label_columns, *self.detail_columns})
        if clash:
            raise ValueError(f"model {self.name}: columns {clash} are the score table's own")
        if self.params.model_name != self.name:
            raise ValueError(
                f"model {self.name}: {self.params.__name__}.model_name is "
                f"{self.params.model_name!r}"
            )

    @property
    def fingerprinted_inputs(self) -> tuple[str, ...]:
        """The input tables whose content fingerprint decides a rescoring (`uba refresh`):
        every input of a model scored in full, none of a row-wise one (its rows are compared)."""
        return () if self.rowwise_scoring else self.inputs

    @property
    def table_name(self) -> str:
        """The score table without its schema (`churn_scores`)."""
        return self.score_table.split(".")[1]

    @property
    def history_table(self) -> str:
        """Every scoring run's rows, keyed by run_id (`ml_scores.churn_scores_history`)."""
        return f"{self.score_table}_history"

    @property
    def score_columns(self) -> tuple[str, ...]:
        """The score table's columns, in order (docs/CONTRACTS.md)."""
        return (
            *self.key_columns,
            "model_name",
            "model_version",
            "score",
            *self.label_columns,
            *self.detail_columns,
            "reasons",
            *((HOLDOUT_COLUMN,) if "user_id" in self.key_columns else ()),
            "scored_at",
            "run_id",
        )


@dataclass(frozen=True)
class DerivedTable:
    """A table built from score tables after scoring (value at risk, lapsed users): one
    declaration gives the `uba score` step and the Dagster asset with its dependencies."""

    name: str  # "schema.table"
    summary: str
    reads: tuple[str, ...]  # tables it is built from, "schema.table"
    build: Callable[[Warehouse], pl.DataFrame]
    # The consent purpose everyone in it must have (an output used to act on people needs
    # "marketing"; docs/privacy.md): people without it are left out. None: no filter.
    consent: str | None = None

    def __post_init__(self) -> None:
        for table in (self.name, *self.reads):
            if len(table.split(".")) != 2:
                raise ValueError(f"derived table: expected 'schema.table', got {table!r}")
