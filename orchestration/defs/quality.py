"""Great Expectations suites as blocking asset checks on the feature mart and the score tables.

The raw-events gate lives with the ingest assets (defs/ingest.py). Validation runs on pandas
frames read from DuckDB (GX through SQLAlchemy on DuckDB is unreliable); large tables are
sampled with a fixed seed, and dbt's own tests still cover every row.
"""

import dagster as dg

from orchestration.defs.ml import FEATURES, MODEL_INPUTS, score_key
from orchestration.resources import WarehouseResource

VALIDATION_SAMPLE_ROWS = 200_000


def _sample_frame(con, table: str):
    count = con.execute(f"select count(*) from {table}").fetchone()[0]
    if count <= VALIDATION_SAMPLE_ROWS:
        return con.execute(f"select * from {table}").df(), count
    sample = f"reservoir({VALIDATION_SAMPLE_ROWS} rows) repeatable (42)"
    frame = con.execute(f"select * from {table} using sample {sample}")
    return frame.df(), count


def _result(validation, table_rows: int) -> dg.AssetCheckResult:
    failed = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
        for r in validation.results
        if not r.success
    ]
    stats = validation.statistics
    evaluated = int(stats.get("evaluated_expectations", 0))
    passed = bool(validation.success) and evaluated > 0 and not failed
    if evaluated == 0:
        failed.append("zero expectations were evaluated")
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(failed[:20]) or "all expectations passed",
        metadata={
            "evaluated_expectations": evaluated,
            "failed_expectations": len(failed),
            "table_rows": table_rows,
        },
    )


@dg.asset_check(asset=FEATURES, blocking=True, name="check_feature_mart_quality")
def check_feature_mart_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Training and scoring only run when the feature mart meets its suite."""
    from expectations.suites.ftr_user_features import build_suite
    from expectations.validation import validate_frame

    with warehouse.connect(read_only=True) as con:
        frame, rows = _sample_frame(con, "features.ftr_user_features")
    return _result(validate_frame(frame, build_suite()), rows)


def build_score_check(model_name: str) -> dg.AssetChecksDefinition:
    table = MODEL_INPUTS[model_name][1]

    @dg.asset_check(asset=score_key(model_name), blocking=True, name=f"check_{table}_quality")
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from expectations.suites.score_tables import build_suite
        from expectations.validation import validate_frame

        with warehouse.connect(read_only=True) as con:
            frame, rows = _sample_frame(con, f"ml_scores.{table}")
        return _result(validate_frame(frame, build_suite(table)), rows)

    return _check


score_checks = [build_score_check(name) for name in MODEL_INPUTS]
