"""The dbt project as Dagster assets; dbt tests become asset checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.manifest import ensure_manifest
from orchestration.resources import WRITER_POOL
from python_models.config import DBT_PROJECT_DIR, REPO_ROOT, get_settings

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=REPO_ROOT,
    target=get_settings().dbt_target,
)
MANIFEST_PATH = ensure_manifest()
DAGSTER_DBT_TARGET = DBT_PROJECT_DIR / "target" / "dagster"


class UbaDbtTranslator(DagsterDbtTranslator):
    """Sources are tables Python assets write, keyed `<schema>/<table>` like those assets
    (`raw/events_validated` from the gate, `ml_scores/churn_scores` from scoring), so lineage
    joins up; models are grouped by their layer folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return fqn[1] if len(fqn) > 2 else "dbt"


# dbt models over the score tables (tag after_scoring in dbt_project.yml, e.g. the semantic
# layer's marts.fct_churn_scores): their own asset definition, downstream of scoring. In the
# main one they would make a cycle (dbt -> features -> models -> scores -> dbt).
AFTER_SCORING = "tag:after_scoring"


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=UbaDbtTranslator(),
    pool=WRITER_POOL,
    exclude=AFTER_SCORING,
)
def uba_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build`: seeds, models (incremental where they grow) and their tests."""
    # One artifacts folder, overwritten per run: dagster-dbt's default is a new folder per run
    # (~7 MB each, never cleaned). Runs that write are serialized by the pool, so no clash.
    yield from dbt.cli(["build"], context=context, target_path=DAGSTER_DBT_TARGET).stream()


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=UbaDbtTranslator(),
    pool=WRITER_POOL,
    select=AFTER_SCORING,
    name="uba_dbt_after_scoring",
)
def uba_dbt_after_scoring(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the models that read the score tables, once they are written."""
    yield from dbt.cli(["build"], context=context, target_path=DAGSTER_DBT_TARGET).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, target=get_settings().dbt_target)
