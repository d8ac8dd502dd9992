"""Training and batch-scoring assets, one pair per model; the work is in python_models.jobs."""

import dagster as dg

from orchestration.metadata import image
from orchestration.resources import WRITER_POOL, WarehouseResource

FEATURES = dg.AssetKey(["features", "ftr_user_features"])
LABELS = dg.AssetKey(["features", "ftr_user_labels"])
EVENTS = dg.AssetKey(["marts", "fct_events"])

# model name -> (upstream assets it trains and scores on, score table)
MODEL_INPUTS: dict[str, tuple[list[dg.AssetKey], str]] = {
    "churn": ([FEATURES, LABELS], "churn_scores"),
    "ltv": ([FEATURES, LABELS], "ltv_scores"),
    "segmentation": ([FEATURES], "user_segments"),
    "anomaly": ([EVENTS], "anomaly_alerts"),
}


def model_key(model_name: str) -> dg.AssetKey:
    return dg.AssetKey(["ml", f"{model_name}_model"])


def score_key(model_name: str) -> dg.AssetKey:
    return dg.AssetKey(["ml_scores", MODEL_INPUTS[model_name][1]])


def _markdown_table(frame) -> str:
    """A polars frame as a markdown table for asset metadata."""
    columns = frame.columns
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.iter_rows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_training_asset(model_name: str) -> dg.AssetsDefinition:
    inputs, _ = MODEL_INPUTS[model_name]

    @dg.asset(
        key=model_key(model_name),
        deps=inputs,
        group_name="ml_training",
        pool=WRITER_POOL,
        kinds={"python", "lightgbm" if model_name in ("churn", "ltv") else "scikitlearn"},
        description=f"Trains the {model_name} model, evaluates it on the holdout and registers "
        "it (champion only if it beats the baselines).",
    )
    def _train(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.jobs import train_model

        with warehouse.connect() as con:
            outcome = train_model(con, model_name, run_id=context.run_id)
        metadata = {
            "model_version": outcome.model_version,
            "status": outcome.status,
            "artifact_path": dg.MetadataValue.path(str(outcome.artifact_path)),
            "evaluation": dg.MetadataValue.md(_markdown_table(outcome.evaluation)),
        }
        for name, value in outcome.metrics.items():
            if isinstance(value, int | float):
                metadata[f"metric/{name}"] = float(value)
        for name, path in (outcome.plots or {}).items():
            metadata[f"plot/{name}"] = image(path)
        return dg.MaterializeResult(metadata=metadata)

    _train.__name__ = f"{model_name}_model"
    return _train


def build_scoring_asset(model_name: str) -> dg.AssetsDefinition:
    inputs, table = MODEL_INPUTS[model_name]

    @dg.asset(
        key=score_key(model_name),
        deps=[model_key(model_name), *inputs],
        group_name="ml_scoring",
        pool=WRITER_POOL,
        kinds={"python", "duckdb"},
        description=f"Batch scores from the champion {model_name} model, written atomically to "
        f"ml_scores.{table}.",
    )
    def _score(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from python_models.jobs import score_model

        with warehouse.connect() as con:
            outcome = score_model(con, model_name, run_id=context.run_id)
        return dg.MaterializeResult(
            metadata={
                "model_version": outcome.model_version,
                "as_of_date": str(outcome.as_of_date),
                "dagster/row_count": outcome.rows,
            }
        )

    _score.__name__ = table
    return _score


training_assets = [build_training_asset(name) for name in MODEL_INPUTS]
scoring_assets = [build_scoring_asset(name) for name in MODEL_INPUTS]
