"""A model's life on the warehouse: train, score, roll back. The API of the `uba` commands and
the Dagster assets.

    train_model(con, "churn")    -> TrainOutcome  (artifact, registry row, evaluation, plots)
    score_model(con, "churn")    -> ScoreOutcome  (ml_scores.churn_scores, from the champion)
    rollback_model(con, "churn") -> the version now champion
    train_each / score_each      -> one outcome per model; one model failing stops no other

Model code is pure; this module does the bookkeeping shared by all models: versioning,
artifacts with sha256, the registry, champion/challenger promotion and the score tables. It
reaches each model through its spec (python_models.models).
"""

from __future__ import annotations

import sys
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from python_models.common import registry
from python_models.common.artifacts import (
    ArtifactIntegrityError,
    artifact_dir,
    save_artifact,
    stable_hash,
)
from python_models.common.catalogue import CatalogueError
from python_models.common.features import feature_list_hash
from python_models.common.scores import (
    changed_rows,
    inputs_fingerprint,
    last_score_run,
    merge_scores,
    record_score_run,
    score_frame,
    stage_latest_rows,
    write_scores,
)
from python_models.models import check_models, get_spec

# Bump when a change in model code should produce new versions from the same data and params.
CODE_VERSION = 1
# Errors that say what is wrong with the data, the parameters or the registry in one line;
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


@dataclass
class ScoreOutcome:
    model_name: str
    table: str
    rows: int
    model_version: str
    as_of_date: date | None
    run_id: str | None = None
    status: str = "scored"
    # "full": the table was replaced; "changed": only rows whose features changed were scored
    # (`rows` of them; the table keeps the others).
    mode: str = "full"


@dataclass(frozen=True)
class Skipped:
    """Nothing to do for this model (e.g. no champion to score with): not an error."""

    model_name: str
    reason: str
    status: str = "skipped"


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


def train_model(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    run_id: str | None = None,
    params: dict | None = None,
) -> TrainOutcome:
    """Train one model on the warehouse's features, register it and log its evaluation."""
    spec = get_spec(model_name)
    if spec.feature_mart:
        check_models()
    run_id = run_id or uuid.uuid4().hex[:12]
    _log(f"training {model_name} (run {run_id})")
    result = spec.train(con, params)
    version = model_version_for(model_name, result)
    bundle = {
        "model_name": model_name,
        "features": result.features,
        "params": result.params,
        "data_window": [str(d) for d in result.data_window],
        "model": result.model,
        "reference_features": result.reference_features,
        "reference_scores": result.reference_scores,
    }
    artifact_path, sha = save_artifact(model_name, version, bundle)
    plots = result.render_plots(artifact_dir(model_name, version) / "plots")
    status, reason = _decide_status(con, model_name, version, result)
    registry.register(
        con,
        model_name=model_name,
        model_version=version,
        data_window=result.data_window,
        feature_list_hash=feature_list_hash(result.features),
        features=result.features,
        params=result.params,
        metrics=result.metrics,
        artifact_path=artifact_path,
        artifact_sha256=sha,
        status=status,
        run_id=run_id,
    )
    registry.record_evaluation(con, model_name, version, result.evaluation, run_id)
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
    )


def load_champion(con: duckdb.DuckDBPyConnection, model_name: str):
    """(registry entry, bundle) of the champion; the artifact's sha256 is checked."""
    entry = registry.require_champion(con, model_name)
    return entry, entry.load()


def score_model(
    con: duckdb.DuckDBPyConnection, model_name: str, run_id: str | None = None
) -> ScoreOutcome:
    """Score with the champion and replace its score table atomically; remember what was
    scored (pipeline_state) so `uba refresh` can later rescore only what changed."""
    spec = get_spec(model_name)
    run_id = run_id or uuid.uuid4().hex[:12]
    entry, bundle = load_champion(con, model_name)
    _log(f"scoring {model_name} with champion {entry.model_version} (run {run_id})")
    if spec.rowwise_scoring:
        stage_latest_rows(con)  # the row hashes of exactly what is scored below
        fingerprint = None
    else:
        fingerprint = inputs_fingerprint(con, spec)
    scored = spec.score(con, bundle)
    rows = write_scores(con, spec, score_frame(spec, entry.model_version, run_id, scored))
    record_score_run(con, spec, entry.model_version, run_id, fingerprint)
    as_of = scored["as_of_date"].max() if scored.height else None
    _log(f"wrote {rows} rows to {spec.score_table}")
    return ScoreOutcome(
        model_name=model_name,
        table=spec.score_table,
        rows=int(rows),
        model_version=entry.model_version,
        as_of_date=as_of,
        run_id=run_id,
    )


def score_changed(
    con: duckdb.DuckDBPyConnection, model_name: str, run_id: str | None = None
) -> ScoreOutcome | Skipped:
    """Score what changed since the score table was last written (`uba refresh`).

    A new champion, or a table never scored with this bookkeeping: a full scoring. A row-wise
    model (spec.rowwise_scoring): only the newest snapshot's rows whose feature values differ
    from the ones scored (new users, a new snapshot, late events), merged into the table. Any
    other model: a full scoring when one of its input tables changed, else nothing."""
    spec = get_spec(model_name)
    champion = registry.get_champion(con, model_name)
    if champion is None:
        return Skipped(model_name, f"no champion (run `uba train --model {model_name}`)")
    last = last_score_run(con, spec)
    if last is None or last.model_version != champion.model_version:
        return score_model(con, model_name, run_id)
    if not spec.rowwise_scoring:
        if last.inputs_fingerprint == inputs_fingerprint(con, spec):
            return Skipped(model_name, f"inputs unchanged since {spec.score_table} was written")
        return score_model(con, model_name, run_id)
    stage_latest_rows(con)
    changed, stale = changed_rows(con, spec)
    if changed.height == 0 and stale == 0:
        return Skipped(model_name, "no user's features changed")
    run_id = run_id or uuid.uuid4().hex[:12]
    bundle = champion.load()
    _log(
        f"scoring {model_name}: {changed.height:,} users whose features changed, "
        f"{stale:,} stale rows dropped (champion {champion.model_version}, run {run_id})"
    )
    scored = score_frame(
        spec, champion.model_version, run_id, bundle["model"].predict_frame(changed)
    )
    rows = merge_scores(con, spec, scored, champion.model_version, run_id)
    return ScoreOutcome(
        model_name=model_name,
        table=spec.score_table,
        rows=rows,
        model_version=champion.model_version,
        as_of_date=scored["as_of_date"].max() if scored.height else None,
        run_id=run_id,
        mode="changed",
    )


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
    params: dict | None = None,
) -> list[TrainOutcome | Failed]:
    """Train every named model in turn; a model that fails is reported, the others go on."""
    outcomes: list[TrainOutcome | Failed] = []
    for name in names:
        try:
            outcomes.append(train_model(con, name, run_id=run_id, params=params))
        except Exception as err:  # noqa: BLE001 - one model's failure is its outcome
            outcomes.append(_failed(con, name, err))
    return outcomes


def score_each(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    run_id: str | None = None,
    changed_only: bool = False,
) -> list[ScoreOutcome | Skipped | Failed]:
    """Score every named model that has a champion; the others are skipped or failed.
    `changed_only`: only what changed since the last scoring (score_changed)."""
    outcomes: list[ScoreOutcome | Skipped | Failed] = []
    for name in names:
        try:
            get_spec(name)
            if registry.get_champion(con, name) is None:
                outcomes.append(Skipped(name, f"no champion (run `uba train --model {name}`)"))
                continue
            score = score_changed if changed_only else score_model
            outcomes.append(score(con, name, run_id=run_id))
        except Exception as err:  # noqa: BLE001 - one model's failure is its outcome
            outcomes.append(_failed(con, name, err))
    return outcomes


def any_failed(outcomes: Iterable[Any]) -> bool:
    return any(outcome.status == "failed" for outcome in outcomes)
