"""Training and batch-scoring assets, one pair per model in python_models.models; the work is
in python_models.lifecycle."""

import dagster as dg

from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.common.spec import ModelSpec
from python_models.models import MODELS


def table_key(table: str) -> dg.AssetKey:
    """The asset key of a warehouse table `schema.table` (dbt models are keyed the same way)."""
    return dg.AssetKey(table.split("."))


def model_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey(["ml", f"{spec.name}_model"])


def score_key(spec: ModelSpec) -> dg.AssetKey:
    return table_key(spec.score_table)


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
    def _train(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.lifecycle import train_model
        from python_models.reports import markdown_table

        with warehouse.connect() as con:
            outcome = train_model(con, spec.name, run_id=context.run_id)
        metadata = {
            "model_version": outcome.model_version,
            "status": outcome.status,
            "artifact_path": dg.MetadataValue.path(str(outcome.artifact_path)),
            "evaluation": dg.MetadataValue.md(markdown_table(outcome.evaluation)),
        }
        for name, value in outcome.metrics.items():
            if isinstance(value, int | float):
                metadata[f"metric/{name}"] = float(value)
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
        description=f"Batch scores from the champion {spec.name} model, written atomically to "
        f"{spec.score_table}.",
    )
    def _score(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.lifecycle import score_model

        with warehouse.connect() as con:
            outcome = score_model(con, spec.name, run_id=context.run_id)
        return dg.MaterializeResult(
            metadata={
                "model_version": outcome.model_version,
                "as_of_date": str(outcome.as_of_date),
                "dagster/row_count": outcome.rows,
            }
        )

    _score.__name__ = spec.table_name
    return _score


training_assets = [build_training_asset(spec) for spec in MODELS]
scoring_assets = [build_scoring_asset(spec) for spec in MODELS]
