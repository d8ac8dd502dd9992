"""Training, scoring and after-scoring assets, derived from python_models.models (one training
and one scoring asset per model, one asset per derived table, realized performance); the work
is in python_models.lifecycle."""

import json

import dagster as dg

from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.common.features import LABELS_TABLE
from python_models.common.spec import DerivedTable, ModelSpec
from python_models.models import DERIVED_TABLES, MODELS

MAX_TABLE_ROWS = 30
REALIZED_KEY = dg.AssetKey(["ml", "realized_performance"])


def table_key(table: str) -> dg.AssetKey:
    """The asset key of a warehouse table `schema.table` (dbt models are keyed the same way)."""
    return dg.AssetKey(table.split("."))


def model_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey(["ml", f"{spec.name}_model"])


def score_key(spec: ModelSpec) -> dg.AssetKey:
    return table_key(spec.score_table)


def model_libraries_for_run(context: dg.AssetExecutionContext):
    """python_models.model_libraries imported beside the run's dbt build when the run goes on
    to train or score (the in-process executor: this process runs those steps next); what only
    training imports, only when it trains. None when the run does neither."""
    from python_models.model_libraries import ModelLibraries

    keys = context.job_def.asset_layer.selected_asset_keys
    trains = any(model_key(spec) in keys for spec in MODELS)
    if not trains and not any(score_key(spec) in keys for spec in MODELS):
        return None
    return ModelLibraries(trains=trains)


def _markdown(frame) -> dg.MetadataValue:
    from python_models.reports import markdown_table

    return dg.MetadataValue.md(markdown_table(frame, ".4g", MAX_TABLE_ROWS))


class TrainConfig(dg.Config):
    """Run-time parameter overrides, e.g. '{"min_class_examples": 100}' (names per model)."""

    params: str = "{}"


def training_run_config(params: dict[str, dict]) -> dict:
    """Run config that trains each named model with its parameter overrides."""
    from python_models.models import get_spec

    ops = {}
    for name, overrides in params.items():
        key = model_key(get_spec(name)).to_python_identifier()
        ops[key] = {"config": {"params": json.dumps(overrides, sort_keys=True)}}
    return {"ops": ops} if ops else {}


def champion_params(con) -> dict[str, dict]:
    """Each champion's parameters as registered: a retrain keeps what the champion was
    trained with (say a lowered churn min_class_examples on a small warehouse)."""
    from python_models.common import registry

    out = {}
    for spec in MODELS:
        champion = registry.get_champion(con, spec.name)
        if champion is not None:
            known = set(spec.params().as_dict())
            out[spec.name] = {k: v for k, v in champion.params.items() if k in known}
    return out


def _overrides(spec: ModelSpec, config: TrainConfig) -> dict | None:
    try:
        params = json.loads(config.params or "{}")
    except json.JSONDecodeError as err:
        raise dg.Failure(f"{spec.name}: params must be a JSON object ({err})") from err
    if not isinstance(params, dict):
        raise dg.Failure(f"{spec.name}: params must be a JSON object, got {config.params!r}")
    return params or None


def build_training_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=model_key(spec),
        deps=[table_key(t) for t in spec.inputs],
        group_name="ml_training",
        pool=WRITER_POOL,
        kinds={"python", *spec.kinds},
        description=f"Trains the {spec.name} model ({spec.summary}), evaluates it on the "
        "holdout and registers it (champion only if it beats the baselines).",
    )
    def _train(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: TrainConfig
    ):
        from python_models.common.training import BelowMinimumError
        from python_models.lifecycle import train_model

        try:
            with warehouse.connect() as con:
                outcome = train_model(
                    con, spec.name, run_id=context.run_id, params=_overrides(spec, config)
                )
        except BelowMinimumError as err:  # the report still shows where the data fall short
            metadata = {"eligibility": _markdown(err.report)} if err.report is not None else {}
            raise dg.Failure(description=str(err), metadata=metadata) from err
        metadata = {
            "model_version": outcome.model_version,
            "status": outcome.status,
            "reason": outcome.reason,
            "artifact_path": dg.MetadataValue.path(str(outcome.artifact_path)),
            "evaluation": _markdown(outcome.evaluation),
        }
        for name, value in outcome.metrics.items():
            if isinstance(value, int | float):
                metadata[f"metric/{name}"] = float(value)
        for name, report in outcome.reports.items():
            metadata[f"report/{name}"] = _markdown(report)
        if outcome.fairness is not None:
            metadata["fairness/flagged_groups"] = int(outcome.fairness["is_flagged"].sum())
            metadata["fairness"] = _markdown(
                outcome.fairness.select(
                    "attribute", "group_value", "n_users", "auc", "flagged_metrics"
                )
            )
        elif outcome.fairness_note:
            metadata["fairness"] = outcome.fairness_note
        for name, path in (outcome.plots or {}).items():
            metadata[f"plot/{name}"] = image(path)
        return dg.MaterializeResult(metadata=metadata)

    _train.__name__ = f"{spec.name}_model"
    return _train


def build_scoring_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=score_key(spec),
        deps=[model_key(spec), *(table_key(t) for t in spec.inputs)],
        group_name="ml_scoring",
        pool=WRITER_POOL,
        kinds={"python", "duckdb"},
        description=f"Batch scores from the champion {spec.name} model: appended to "
        f"{spec.history_table} under the run id and current in {spec.score_table}; "
        "drift of the scored population is measured and stored. Only what changed is scored "
        "(python_models.lifecycle.score_changed); a new champion rescores everyone. With no "
        "champion (the model is not served: it did not beat its baselines) nothing is scored "
        "and the run goes on, as `uba refresh` does.",
    )
    def _score(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.lifecycle import Skipped, score_changed
        from python_models.warehouse import table_exists

        with warehouse.connect() as con:
            outcome = score_changed(
                con, spec.name, run_id=context.run_id, fingerprints=warehouse.scoring_fingerprints()
            )
            current_rows = (
                con.execute(f"select count(*) from {spec.score_table}").fetchone()[0]
                if table_exists(con, spec.score_table)
                else 0
            )
        if isinstance(outcome, Skipped):
            # a model not served must not hold back the other models' publication
            log = context.log.warning if outcome.not_served else context.log.info
            log(f"{spec.score_table} kept: {outcome.reason}")
            return dg.MaterializeResult(
                metadata={"scored": f"nothing: {outcome.reason}", "dagster/row_count": current_rows}
            )
        metadata = {
            "model_version": outcome.model_version,
            "as_of_date": str(outcome.as_of_date),
            "history_table": spec.history_table,
            "scored": f"{outcome.rows:,} rows ({outcome.mode})",
            "dagster/row_count": current_rows,
        }
        if outcome.drift is not None and outcome.drift.height:
            compared = outcome.drift.filter("is_compared").sort("psi", descending=True)
            if compared.height:
                metadata["drift/max_psi"] = float(compared["psi"][0])
            metadata["drift"] = _markdown(
                outcome.drift.select("feature", "psi", "is_compared", "note")
            )
        return dg.MaterializeResult(metadata=metadata)

    _score.__name__ = spec.table_name
    return _score


def build_derived_asset(derived: DerivedTable) -> dg.AssetsDefinition:
    @dg.asset(
        key=table_key(derived.name),
        deps=[table_key(t) for t in derived.reads],
        group_name="ml_scoring",
        pool=WRITER_POOL,
        kinds={"python", "duckdb"},
        description=f"{derived.name}: {derived.summary}.",
    )
    def _derived(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.lifecycle import Skipped, build_derived_table

        with warehouse.connect() as con:
            built = build_derived_table(con, derived)
            if isinstance(built, Skipped):  # a model it reads is not served, as `uba refresh`
                context.log.warning(f"{derived.name} not built: {built.reason}")
                return dg.MaterializeResult(metadata={"built": f"nothing: {built.reason}"})
            preview = con.execute(f"select * from {derived.name} limit 10").pl()
        return dg.MaterializeResult(
            metadata={"dagster/row_count": built.rows, "preview": _markdown(preview)}
        )

    _derived.__name__ = derived.name.split(".")[1]
    return _derived


@dg.asset(
    key=REALIZED_KEY,
    deps=[*(score_key(spec) for spec in MODELS if spec.outcomes), table_key(LABELS_TABLE)],
    group_name="ml_scoring",
    pool=WRITER_POOL,
    kinds={"python", "duckdb"},
    description="ml.realized_performance: per model version and scored snapshot, how the "
    "stored scores did once outcomes matured (ROC AUC and calibration for churn, MAE for LTV).",
)
def realized_performance(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from python_models.lifecycle import refresh_realized

    with warehouse.connect() as con:
        table = refresh_realized(con)
    overall = table.filter(table["as_of_date"].is_null())
    metadata = {"dagster/row_count": table.height, "realized": _markdown(overall)}
    if overall.height == 0:
        metadata["note"] = "no stored score has a matured outcome yet"
    return dg.MaterializeResult(metadata=metadata)


training_assets = [build_training_asset(spec) for spec in MODELS]
scoring_assets = [build_scoring_asset(spec) for spec in MODELS]
derived_assets = [build_derived_asset(derived) for derived in DERIVED_TABLES]
after_scoring_assets = [*derived_assets, realized_performance]
