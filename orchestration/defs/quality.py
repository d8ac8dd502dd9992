"""Quality suites as blocking asset checks on the feature mart and every score table; the
checks themselves are plain functions in python_models.quality. The raw-events gate check
lives with the ingest assets (defs/ingest.py)."""

import dagster as dg

from orchestration.defs.ml import score_key, table_key
from orchestration.metadata import check_result
from orchestration.resources import WarehouseResource
from python_models.common.features import FEATURES_TABLE
from python_models.common.spec import ModelSpec
from python_models.models import MODELS


@dg.asset_check(asset=table_key(FEATURES_TABLE), blocking=True, name="check_feature_mart_quality")
def check_feature_mart_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Training and scoring only run when the feature mart meets its suite."""
    from python_models.quality import check_feature_mart

    with warehouse.connect(read_only=True) as con:
        return check_result(check_feature_mart(con))


def build_score_check(spec: ModelSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=score_key(spec), blocking=True, name=f"check_{spec.table_name}_quality")
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from python_models.quality import check_score_table

        with warehouse.connect(read_only=True) as con:
            return check_result(check_score_table(con, spec))

    return _check


score_checks = [build_score_check(spec) for spec in MODELS]
