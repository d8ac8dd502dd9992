"""A model's life on the warehouse: train, score, roll back. The API of the `uba` commands and
the Dagster assets.

    train_model(con, "churn")    -> TrainOutcome  (artifact, registry row, evaluation, plots,
                                                   fairness report, drift reference)
    score_model(con, "churn")    -> ScoreOutcome  (ml_scores.churn_scores + its history, the
                                                   run in ml.scoring_runs, drift measurements)
    build_derived(con)           -> the tables built from scores (value at risk, lapsed users)
    refresh_realized(con)        -> ml.realized_performance from stored scores and outcomes
    rollback_model(con, "churn") -> the version now champion
    train_each / score_each      -> one outcome per model; one model failing stops no other;
                                    models side by side where their threads fit

Model code is pure; this module does the bookkeeping shared by all models: versioning,
artifacts with sha256, the registry, champion/challenger promotion, score tables and their
history, drift and the holdout group of every scored user. It reaches each model through its
spec (python_models.models).
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from python_models.common import drift, registry
from python_models.common.artifacts import (
    ArtifactIntegrityError,
    artifact_dir,
    save_artifact,
    stable_hash,
)
from python_models.common.catalogue import CatalogueError
from python_models.common.features import feature_list_hash
from python_models.common.realized import refresh_realized_performance
from python_models.common.scores import (
    changed_rows,
    inputs_fingerprint,
    last_score_state,
    merge_scores,
    record_score_state,
    score_frame,
    stage_latest_rows,
    write_scores,
)
from python_models.common.spec import HOLDOUT_COLUMN, KEY_COLUMNS, DerivedTable, ModelSpec
from python_models.common.training import REFERENCE_SAMPLE_ROWS, TrainingResult
from python_models.config import get_settings
from python_models.models import DERIVED_TABLES, MODELS, check_models, get_spec
from python_models.privacy.consent import keep_consented
from python_models.warehouse import as_warehouse, replace_table, table_exists

# Bump when a change in model code should produce new versions from the same data and params.
CODE_VERSION = 1
# The steps that share state with models training or scoring beside them (train_each,
# score_each), one at a time: pyplot keeps one registry of figures; the status decision reads
# the registry the other trainings write; a scoring's writes go to tables every model's
# scoring writes (the runs, the scored state, drift) inside transactions that would conflict;
# and an input table's fingerprint, taken once per run, is read by the models that share it.
_PLOTTING = threading.Lock()
_RECORDING = threading.Lock()
_WRITING_SCORES = threading.Lock()
_FINGERPRINTING = threading.Lock()
# A model starts beside another only while the memory pool they share (DuckDB's) is less than
# this full; past it, it waits for the running ones and the pool is given back first, as
# between models trained in turn. Every model at 10M events in a 1.5 GB pool: 36.7-41.8 s and
# peak RSS 2.22-2.26 GB (in turn 45.9-48.2 s, 2.08-2.18 GB; started beside a full pool, the
# peak reached 2.95 GB).
POOL_SHARE_BESIDE = 0.5
# Errors that say what is wrong with the data, the parameters or the registry in one line
# (BelowMinimumError, too little data to train on, is a ValueError);
# anything else is a bug and also gets its traceback on stderr.
EXPECTED_ERRORS = (
    ValueError,
    LookupError,
    FileNotFoundError,
    registry.RegistryError,
    ArtifactIntegrityError,
    CatalogueError,
)


@dataclass
class TrainOutcome:
    model_name: str
    model_version: str
    status: str  # 'champion' | 'challenger' | 'rejected'
    metrics: dict[str, Any]
    evaluation: pl.DataFrame
    artifact_path: Path
    plots: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    data_window: tuple[date | None, date | None] = (None, None)
    reason: str = ""
    # Tables the training reported on (e.g. churn's eligibility per snapshot).
    reports: dict[str, pl.DataFrame] = field(default_factory=dict)
    # The fairness report recorded with this version (None: not a yes/no model, or no
    # attributes to audit; `fairness_note` says which).
    fairness: pl.DataFrame | None = None
    fairness_note: str = ""


@dataclass
class ScoreOutcome:
    model_name: str
    table: str
    rows: int
    model_version: str
    as_of_date: date | None
    run_id: str | None = None
    status: str = "scored"
    # This run's drift rows (ml.drift_measurements), worst compared first.
    drift: pl.DataFrame | None = None
    # "full": the table was replaced; "changed": only rows whose features changed were scored
    # (`rows_scored` of them, `rows` written; the table keeps the others).
    mode: str = "full"
    rows_scored: int | None = None  # when the model writes fewer (anomaly: alerts only)


@dataclass(frozen=True)
class Built:
    """A derived table written after scoring (model_name holds the table's name)."""

    model_name: str
    rows: int
    status: str = "built"


@dataclass(frozen=True)
class Skipped:
    """Nothing to do for this model (e.g. no champion to score with): not an error."""

    model_name: str
    reason: str
    status: str = "skipped"
    # For want of a champion: the model did not beat its baselines (or was never trained);
    # its scores are not served, and the rest of a run goes on.
    not_served: bool = False


def _no_champion(model_name: str) -> Skipped:
    reason = f"no champion (run `uba train --model {model_name}`)"
    return Skipped(model_name, reason, not_served=True)


@dataclass(frozen=True)
class Failed:
    model_name: str
    reason: str  # one line
    status: str = "failed"


def _log(message: str) -> None:
    print(f"[models] {message}", file=sys.stderr, flush=True)


def model_version_for(model_name: str, result) -> str:
    """Content-derived version: same params, features, data window and data -> same version."""
    content = {
        "model": model_name,
        "code": CODE_VERSION,
        "params": result.params,
        "features": feature_list_hash(result.features),
        "window": [str(d) for d in result.data_window],
        "data": result.data_fingerprint,
    }
    end = result.data_window[1]
    prefix = end.strftime("%Y%m%d") if end else "v"
    return f"{prefix}-{stable_hash(content, length=10)}"


def _decide_status(con, model_name: str, version: str, result) -> tuple[str, str]:
    if not result.passes_gate:
        return "rejected", result.gate_reason
    champion = registry.get_champion(con, model_name)
    if champion is None or champion.model_version == version or result.compare_metric is None:
        return "champion", result.gate_reason
    try:
        champion_value = result.compare_metric(champion.load())
    except ArtifactIntegrityError as err:
        _log(f"current champion {champion.model_version} cannot be loaded ({err}); replacing it")
        return "champion", result.gate_reason
    new_value = result.metrics[result.primary_metric]
    tolerance = float(result.params.get("champion_tolerance", 0.0))
    if new_value + tolerance < champion_value:
        return "challenger", (
            f"{result.primary_metric} {new_value:.4f} is below the champion "
            f"{champion.model_version}'s {champion_value:.4f} on the same holdout"
        )
    return "champion", (
        f"{result.gate_reason}; {result.primary_metric} {new_value:.4f} vs champion "
        f"{champion_value:.4f}"
    )


def _drift_reference(
    con: duckdb.DuckDBPyConnection, spec: ModelSpec, result: TrainingResult, seed: int
) -> dict[str, Any]:
    """The population the model would score right now, as the drift reference (a seeded
    sample), its fingerprint and the model's scores of it."""
    if result.reference_features.width:  # the model gave its own reference
        return {
            "reference_features": result.reference_features,
            "reference_scores": result.reference_scores,
            "reference_fingerprint": drift.frame_fingerprint(result.reference_features),
        }
    current = spec.latest_features(con, {"model": result.model, "features": result.features})
    fingerprint = drift.frame_fingerprint(current)
    numeric = [
        c for c in current.columns if c not in KEY_COLUMNS and current.schema[c].is_numeric()
    ]
    sample = current
    if sample.height > REFERENCE_SAMPLE_ROWS:
        sample = sample.sample(n=REFERENCE_SAMPLE_ROWS, seed=seed)
    scores = result.reference_scores
    if scores is None:
        scores = result.model.predict(sample) if sample.height else []
    return {
        "reference_features": sample.select(numeric),
        "reference_scores": np.asarray(scores, dtype=float),
        "reference_fingerprint": fingerprint,
    }


def _record_fairness(
    con: duckdb.DuckDBPyConnection, name: str, version: str, result: TrainingResult, run_id: str
) -> tuple[pl.DataFrame | None, str]:
    """The fairness report of a yes/no model on its training holdout, recorded with the
    version in ml.model_fairness (docs/impact.md)."""
    if result.holdout_predictions is None:
        return None, "not a yes/no model"
    from python_models.impact.fairness import report_for_version

    try:
        report = report_for_version(
            con,
            name,
            version,
            result.holdout_predictions,
            run_id=run_id,
            version_metrics=result.metrics,
        )
    except LookupError as err:  # the attributes mart is not built: say so, train anyway
        _log(f"{name} {version}: no fairness report ({err})")
        return None, str(err)
    flagged = int(report["is_flagged"].sum())
    _log(f"{name} {version}: fairness report recorded ({flagged} groups flagged)")
    return report, f"{flagged} groups flagged"


def _gives_memory_back(step):
    """A model's training or scoring, after which the warehouse gives back the pages it cached
    (Warehouse.release_memory): the next model's step starts from its own needs, not from a
    pool the earlier ones filled."""

    @functools.wraps(step)
    def run(con, *args, **kwargs):
        outcome = step(con, *args, **kwargs)
        as_warehouse(con).release_memory()
        return outcome

    return run


@_gives_memory_back
def train_model(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    run_id: str | None = None,
    params: dict | None = None,
    transactions: pl.DataFrame | None = None,
    horizon_days: int | None = None,
    calibration_end: date | None = None,
) -> TrainOutcome:
    """Train one model on the warehouse's features (or, for a model with a file path, on
    `transactions` over `horizon_days`), register it and log its evaluation."""
    spec = get_spec(model_name)
    if spec.feature_mart:
        check_models()
    run_id = run_id or uuid.uuid4().hex[:12]
    if transactions is not None:
        if spec.train_file is None:
            raise ValueError(f"model {model_name} does not train from a transactions file")
        if horizon_days is None:
            raise ValueError("training from a transactions file needs horizon_days")
        _log(f"training {model_name} on {transactions.height:,} file rows (run {run_id})")
        result = spec.train_file(transactions, params, horizon_days, calibration_end)
        source = "transactions"
    else:
        _log(f"training {model_name} (run {run_id})")
        result = spec.train(con, params)
        source = "events"
    version = model_version_for(model_name, result)
    reference = (
        _drift_reference(con, spec, result, int(result.params.get("seed", 0)))
        if source == "events"
        else {"reference_features": pl.DataFrame(), "reference_scores": np.array([])}
    )
    bundle = {
        "model_name": model_name,
        "features": result.features,
        "params": result.params,
        "data_window": [str(d) for d in result.data_window],
        "model": result.model,
        "source": source,
        "age_bound_features": list(result.age_bound_features),
        **reference,
    }
    artifact_path, sha = save_artifact(model_name, version, bundle)
    with _PLOTTING:
        plots = result.render_plots(artifact_dir(model_name, version) / "plots")
    with _RECORDING:
        status, reason = _decide_status(con, model_name, version, result)
        registry.register(
            con,
            model_name=model_name,
            model_version=version,
            data_window=result.data_window,
            feature_list_hash=feature_list_hash(result.features),
            features=result.features,
            params=result.params,
            metrics=result.metrics | {"source": source},
            artifact_path=artifact_path,
            artifact_sha256=sha,
            status=status,
            run_id=run_id,
        )
        registry.record_evaluation(con, model_name, version, result.evaluation, run_id)
        fairness, fairness_note = _record_fairness(con, model_name, version, result, run_id)
    _log(f"{model_name} {version}: {status} ({reason})")
    return TrainOutcome(
        model_name=model_name,
        model_version=version,
        status=status,
        metrics=result.metrics,
        evaluation=result.evaluation,
        artifact_path=artifact_path,
        plots=plots,
        run_id=run_id,
        data_window=result.data_window,
        reason=reason,
        reports=dict(result.reports),
        fairness=fairness,
        fairness_note=fairness_note,
    )


def load_champion(con: duckdb.DuckDBPyConnection, model_name: str):
    """(registry entry, bundle) of the champion; the artifact's sha256 is checked."""
    entry = registry.require_champion(con, model_name)
    return entry, entry.load()


def _with_holdout_group(con: duckdb.DuckDBPyConnection, scored: pl.DataFrame) -> pl.DataFrame:
    if HOLDOUT_COLUMN in scored.columns or "user_id" not in scored.columns:
        return scored
    from python_models.impact.holdout import with_holdout_group

    return with_holdout_group(con, scored)


@_gives_memory_back
def score_model(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    run_id: str | None = None,
    transactions: pl.DataFrame | None = None,
    fingerprints: dict[str, str] | None = None,
) -> ScoreOutcome:
    """Score with the champion: the run goes to the score history, becomes the current score
    table and is recorded with its input fingerprint and drift measurements. Re-running a run
    id replaces that run's rows. With `transactions`, score a file (models with a file path).
    `fingerprints`: the input tables' fingerprints this scoring run took (inputs_fingerprint)."""
    spec = get_spec(model_name)
    run_id = run_id or uuid.uuid4().hex[:12]
    entry, bundle = load_champion(con, model_name)
    _log(f"scoring {model_name} with champion {entry.model_version} (run {run_id})")
    measured, state = None, None
    if transactions is not None:
        if spec.score_file is None:
            raise ValueError(f"model {model_name} does not score a transactions file")
        if bundle.get("source") != "transactions":
            raise ValueError(
                f"the {model_name} champion {entry.model_version} was trained on the warehouse: "
                f"train it on the file first (`uba train --model {model_name} --transactions`)"
            )
        scored = spec.score_file(transactions, bundle)
        fingerprint = drift.frame_fingerprint(transactions)
    else:
        if spec.score_with_features is not None:
            scored, current = spec.score_with_features(con, bundle)
        else:
            scored, current = spec.score(con, bundle), spec.latest_features(con, bundle)
        scored = _with_holdout_group(con, scored)
        fingerprint = drift.frame_fingerprint(current)
        # What `uba refresh` compares next time: the scored rows, or the input tables.
        if spec.rowwise_scoring:
            stage_latest_rows(con, _population(con, spec, bundle, current), spec)
        else:
            with _FINGERPRINTING:
                state = inputs_fingerprint(con, spec, fingerprints)
        measured = drift.measure(
            spec, entry.model_version, run_id, bundle, current, scored["score"].to_numpy()
        )
    frame = score_frame(spec, entry.model_version, run_id, scored)
    with _WRITING_SCORES:
        rows = write_scores(con, spec, frame, input_fingerprint=fingerprint)
        if measured is not None:
            drift.record_measurements(con, measured)
            record_score_state(con, spec, entry.model_version, run_id, state)
    as_of = scored["as_of_date"].max() if scored.height else None
    _log(f"wrote {rows} rows to {spec.score_table} (and {spec.history_table})")
    return ScoreOutcome(
        model_name=model_name,
        table=spec.score_table,
        rows=int(rows),
        model_version=entry.model_version,
        as_of_date=as_of,
        run_id=run_id,
        drift=measured,
    )


@_gives_memory_back
def score_changed(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    run_id: str | None = None,
    fingerprints: dict[str, str] | None = None,
) -> ScoreOutcome | Skipped:
    """Score what changed since the score table was last written (`uba refresh`).

    A new champion, or a table never scored with this bookkeeping: a full scoring. A row-wise
    model (spec.rowwise_scoring): only its population's rows whose feature values differ from
    the ones scored (new users, a new snapshot, late events), merged into the current table
    and appended to the history under this run id. Any other model: a full scoring when one
    of its input tables changed, else nothing. `fingerprints`: as score_model's."""
    spec = get_spec(model_name)
    fingerprints = {} if fingerprints is None else fingerprints
    champion = registry.get_champion(con, model_name)
    if champion is None:
        return _no_champion(model_name)
    last = last_score_state(con, spec)
    if last is None or last.model_version != champion.model_version:
        return score_model(con, model_name, run_id, fingerprints=fingerprints)
    if spec.fingerprinted_inputs:
        with _FINGERPRINTING:
            now = inputs_fingerprint(con, spec, fingerprints)
        if last.inputs_fingerprint == now:
            return Skipped(model_name, f"inputs unchanged since {spec.score_table} was written")
        return score_model(con, model_name, run_id, fingerprints=fingerprints)
    bundle = champion.load()
    current = spec.latest_features(con, bundle)
    stage_latest_rows(con, _population(con, spec, bundle, current), spec)
    changed, stale = changed_rows(con, spec)
    if changed.height == 0 and stale == 0:
        return Skipped(model_name, "no user's features changed")
    run_id = run_id or uuid.uuid4().hex[:12]
    version = champion.model_version
    _log(
        f"scoring {model_name}: {changed.height:,} rows whose features changed, "
        f"{stale:,} rows that left its population dropped (champion {version}, run {run_id})"
    )
    scored = _with_holdout_group(con, bundle["model"].predict_frame(changed))
    frame = score_frame(spec, version, run_id, scored)
    with _WRITING_SCORES:
        rows = merge_scores(
            con, spec, frame, run_id, version, input_fingerprint=drift.frame_fingerprint(current)
        )
    # Drift of the whole scored population, as a full scoring measures it.
    population_scores = con.execute(f"select score from {spec.score_table}").pl()["score"]
    measured = drift.measure(spec, version, run_id, bundle, current, population_scores.to_numpy())
    with _WRITING_SCORES:
        drift.record_measurements(con, measured)
    return ScoreOutcome(
        model_name=model_name,
        table=spec.score_table,
        rows=rows,
        model_version=version,
        as_of_date=frame["as_of_date"].max() if frame.height else None,
        run_id=run_id,
        drift=measured,
        mode="changed",
        rows_scored=changed.height,
    )


def _population(
    con: duckdb.DuckDBPyConnection, spec: ModelSpec, bundle: dict, current: pl.DataFrame
) -> pl.DataFrame | tuple[str, list]:
    """The rows a row-wise model scores, for stage_latest_rows (ModelSpec.score_population)."""
    return spec.score_population(con, bundle) if spec.score_population else current


def derived_tables(names: Iterable[str] | None = None) -> list[DerivedTable]:
    """The derived tables that read any of the named models' score tables (all when None)."""
    if names is None:
        return list(DERIVED_TABLES)
    tables = {get_spec(name).score_table for name in names}
    return [d for d in DERIVED_TABLES if tables & set(d.reads)]


def build_derived_table(con: duckdb.DuckDBPyConnection, derived: DerivedTable) -> Built | Skipped:
    """Rebuild one derived table from the current tables it reads (atomic replace); skipped
    when one of them is missing (its model was never scored: not served)."""
    missing = [t for t in derived.reads if not table_exists(con, t)]
    if missing:
        return Skipped(derived.name, f"needs {', '.join(missing)}")
    frame = derived.build(con)
    if derived.consent:
        frame = keep_consented(con, frame, derived.consent)
        if "rank" in frame.columns:  # a ranked list stays 1..n in its order
            frame = frame.with_columns(
                pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("rank")
            )
    rows = replace_table(con, derived.name, frame.to_arrow())
    _log(f"wrote {rows} rows to {derived.name}")
    return Built(derived.name, int(rows))


def build_derived(
    con: duckdb.DuckDBPyConnection, names: Iterable[str] | None = None
) -> list[Built | Skipped | Failed]:
    """Rebuild the derived tables of the named models; one whose inputs are missing is
    skipped, one that fails is reported, the others go on."""
    outcomes: list[Built | Skipped | Failed] = []
    for derived in derived_tables(names):
        try:
            outcomes.append(build_derived_table(con, derived))
        except Exception as err:  # noqa: BLE001 - one table's failure is its outcome
            outcomes.append(_failed(con, derived.name, err))
    return outcomes


def refresh_realized(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """ml.realized_performance from every model's score history and matured outcomes."""
    table = refresh_realized_performance(con, MODELS)
    _log(f"realized performance: {table.height} rows")
    return table


def rollback_model(con: duckdb.DuckDBPyConnection, model_name: str) -> str:
    """Make the previous champion champion again, retire the current one; return its version."""
    get_spec(model_name)
    version = registry.rollback(con, model_name)
    _log(f"{model_name}: rolled back to {version}")
    return version


def describe_error(err: BaseException) -> str:
    """One line for an outcome table: the message, with the error's type when unexpected."""
    message = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, EXPECTED_ERRORS) and message:
        return message
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _failed(con: duckdb.DuckDBPyConnection, model_name: str, err: Exception) -> Failed:
    if not isinstance(err, EXPECTED_ERRORS):
        traceback.print_exception(err, file=sys.stderr)
    try:
        con.execute("rollback")  # leave no half-open transaction for the next model
    except duckdb.Error:
        pass
    failed = Failed(model_name, describe_error(err))
    _log(f"{model_name}: failed ({failed.reason})")
    return failed


def train_each(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    run_id: str | None = None,
    params: dict[str, dict] | None = None,
    threads: int | None = None,
) -> list[TrainOutcome | Failed]:
    """Train every named model (`params`: overrides per model name); a model that fails is
    reported, the others go on. Outcomes in the order of `names`.

    Models train beside each other while their fits' threads (ModelParams.training_threads)
    fit in `threads` (default: the model_threads setting, 2), each on a cursor of its own:
    most fits keep one core busy, so on two cores a long one-thread fit (next action's
    boosting) leaves the other core to the shorter models. Those of more threads start
    first (churn's two, alone), then the longer (ModelSpec.training_weight), then in the
    order of `names`. A model is trained the same either way (seeded, on its own data).
    A model starts beside running ones only while their shared memory pool is under
    POOL_SHARE_BESIDE full (Warehouse.pool_share), else after them, the pool given back first
    (release_memory, as after each model trained in turn). On an engine with no cursor for
    another thread (Warehouse.for_another_thread) they train in turn."""
    names = list(names)
    params = params or {}
    threads = get_settings().model_threads if threads is None else threads

    def train(target, name: str) -> TrainOutcome | Failed:
        try:
            return train_model(target, name, run_id=run_id, params=params.get(name) or None)
        except Exception as err:  # noqa: BLE001 - one model's failure is its outcome
            return _failed(target, name, err)

    w = as_warehouse(con)
    if threads < 2 or len(names) < 2:
        return [train(con, name) for name in names]
    needs = [_training_threads(name, params.get(name), threads) for name in names]
    order = sorted(range(len(names)), key=lambda i: (-needs[i], -_training_weight(names[i]), i))
    outcomes = _beside_each_other(
        w, [names[i] for i in order], [needs[i] for i in order], threads, train
    )
    by_position = dict(zip(order, outcomes, strict=True))
    return [by_position[i] for i in range(len(names))]


def _training_threads(name: str, overrides: dict | None, threads: int) -> int:
    """The threads `name`'s fit keeps busy with `overrides`, at most `threads` (all of them
    for "every core", and when the model or its overrides are not known: its training then
    fails with the reason, alone)."""
    try:
        wanted = get_spec(name).params.from_overrides(overrides).training_threads()
    except (ValueError, TypeError):
        return threads
    return min(threads, wanted or threads)


def _training_weight(name: str) -> float:
    try:
        return get_spec(name).training_weight
    except ValueError:
        return 1.0  # an unknown model: its training fails with the reason


def _beside_each_other(w, names: list[str], needs: list[int], threads: int, step) -> list:
    """step(warehouse, name) (a model's training or scoring) for each name in a thread of its
    own, started in this order as soon as its `needs` fit in `threads` beside those running
    and their pool has room (under POOL_SHARE_BESIDE full), or when none runs, the pool given
    back first; each on w.for_another_thread() (in turn on w where the engine has none), and
    the pool given back once all are done. The outcomes in the order of `names`.

    LightGBM's thread count is one setting of the process (python_models.common.booster): a
    step of more than one thread runs alone, and while steps run beside each other every
    LightGBM call runs on one thread (hold_lightgbm_at_one_thread), lifted when none runs."""
    from python_models.common.booster import hold_lightgbm_at_one_thread, release_lightgbm_threads

    first = w.for_another_thread()
    if first is None:
        return [step(w, name) for name in names]
    needs = [threads if need > 1 else 1 for need in needs]  # more than one thread: alone
    outcomes: list[Any] = [None] * len(names)
    free = threading.Condition()
    busy = 0
    held = False  # LightGBM held at one thread

    def run(index: int, target) -> None:
        nonlocal busy, held
        try:
            outcomes[index] = step(target, names[index])
        except BaseException as err:  # noqa: BLE001 - raised again in the caller's thread
            outcomes[index] = err
        finally:
            target.close()
            with free:
                busy -= needs[index]
                if not busy and held:  # no step runs: none can be inside a LightGBM call
                    release_lightgbm_threads()
                    held = False
                free.notify_all()

    def room() -> bool:
        share = w.pool_share()
        return share is None or share < POOL_SHARE_BESIDE

    workers = []
    for index, need in enumerate(needs):
        target = first if index == 0 else w.for_another_thread()  # a failure: nothing held
        with free:
            while busy + need > threads or (busy and not room()):
                free.wait()
            if not busy:  # nothing runs: the pool back, as between models in turn
                w.release_memory()
            elif not held:  # before the first step beside a running one
                hold_lightgbm_at_one_thread()
                held = True
            busy += need
        worker = threading.Thread(
            target=run, args=(index, target), name=f"uba-model-{names[index]}", daemon=True
        )
        worker.start()
        workers.append(worker)
    for worker in workers:
        worker.join()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    w.release_memory()  # the last ones beside each other kept the pool they shared
    return outcomes


def score_each(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    run_id: str | None = None,
    transactions: pl.DataFrame | None = None,
    changed_only: bool = False,
    fingerprints: dict[str, str] | None = None,
    seconds: dict[str, float] | None = None,
    threads: int | None = None,
) -> list[ScoreOutcome | Skipped | Failed]:
    """Score every named model that has a champion (under one run id); the others are
    skipped or failed. `transactions`: score that file (for models with a file path).
    `changed_only`: only what changed since the last scoring (score_changed). `fingerprints`:
    input tables' fingerprints the caller already has (inputs_fingerprint). `seconds`: filled
    with each model's wall time. Outcomes in the order of `names`.

    Models score beside each other as they train (train_each): each scoring keeps about one
    core busy, so up to `threads` (default: the model_threads setting, 2) run at once, each on
    a cursor of its own, while the pool they share has room; their writes go one model at a
    time. A model's scores are the same either way."""
    run_id = run_id or uuid.uuid4().hex[:12]
    fingerprints = dict(fingerprints or {})  # each input table hashed once per run
    seconds = {} if seconds is None else seconds
    names = list(names)
    threads = get_settings().model_threads if threads is None else threads

    def score(target, name: str) -> ScoreOutcome | Skipped | Failed:
        started = time.perf_counter()
        try:
            get_spec(name)
            if registry.get_champion(target, name) is None:
                return _no_champion(name)
            if changed_only:
                return score_changed(target, name, run_id, fingerprints)
            return score_model(target, name, run_id, transactions, fingerprints=fingerprints)
        except Exception as err:  # noqa: BLE001 - one model's failure is its outcome
            return _failed(target, name, err)
        finally:
            seconds[name] = time.perf_counter() - started

    if threads < 2 or len(names) < 2:
        return [score(con, name) for name in names]
    return _beside_each_other(as_warehouse(con), names, [1] * len(names), threads, score)


def any_failed(outcomes: Iterable[Any]) -> bool:
    return any(outcome.status == "failed" for outcome in outcomes)
