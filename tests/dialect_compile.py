"""Compile the dbt project for engines CI has no account for (Snowflake, BigQuery) or no time to
build everything on (Spark), without their adapters or a connection (tests/integration/
test_dialect_compile.py):

    python tests/dialect_compile.py TARGET_DIR DIALECT [DIALECT ...]

dbt-duckdb compiles every model against an empty DuckDB file (so `is_incremental()` is false:
the full-build SQL) while
- the project's dispatched macros (namespace `uba`) resolve to `<dialect>__` before `default__`,
  as they would on that adapter;
- dbt's cross-database macros (`dbt.dateadd`, `dbt.hash`, `dbt.type_string` ...) resolve to
  their `default__` versions: the adapters' own versions ship with dbt-snowflake /
  dbt-bigquery, which are not installed (the test lists the default names that remain);
- `target.type` is the dialect (string escaping, materializations chosen per engine).
Adapter internals (relations, caching) stay DuckDB's. Compiled SQL lands in
TARGET_DIR/<dialect>/compiled: every model, and the uba_not_null_columns tests (the project's
own generic test SQL that runs on every engine).
"""

from __future__ import annotations

import sys
from pathlib import Path

from python_models.dbt_daily_tests import NOT_NULL_COLUMNS

ROOT = Path(__file__).parents[1]


def compile_for(dialect: str, target_path: Path) -> None:
    import dbt.include.global_project as global_project
    from dbt.cli.main import dbtRunner
    from dbt.config.runtime import RuntimeConfig
    from dbt.context import providers

    utils = Path(global_project.__file__).parent / "macros" / "utils"
    cross_db = {p.stem for p in utils.glob("*.sql")} | {
        f"type_{kind}" for kind in ("string", "timestamp", "float", "numeric", "bigint", "int")
    }
    dispatch = providers.BaseDatabaseWrapper.dispatch

    def dispatch_as(self, macro_name, macro_namespace=None, packages=None):
        if macro_namespace == "uba":
            prefixes = [dialect, "default"]
        elif macro_namespace == "dbt" and macro_name in cross_db:
            prefixes = ["default"]
        else:
            return dispatch(self, macro_name, macro_namespace, packages)
        self._get_adapter_macro_prefixes = lambda: prefixes
        try:
            return dispatch(self, macro_name, macro_namespace, packages)
        finally:
            del self._get_adapter_macro_prefixes

    target_dict = RuntimeConfig.to_target_dict

    def target_as(self):
        return {**target_dict(self), "type": dialect}

    providers.BaseDatabaseWrapper.dispatch = dispatch_as
    RuntimeConfig.to_target_dict = target_as
    try:
        result = dbtRunner().invoke(
            [
                "compile",
                "--project-dir",
                str(ROOT / "dbt_project"),
                "--profiles-dir",
                str(ROOT),
                "--target",
                "duckdb",
                "--target-path",
                str(target_path),
                "--select",
                "resource_type:model",
                f"test_name:{NOT_NULL_COLUMNS}",  # the project's own generic test, its SQL plain
                "--quiet",
            ]
        )
    finally:
        providers.BaseDatabaseWrapper.dispatch = dispatch
        RuntimeConfig.to_target_dict = target_dict
    if not result.success:
        raise SystemExit(f"compile for {dialect} failed: {result.exception}")


if __name__ == "__main__":
    out, *dialects = sys.argv[1:]
    for name in dialects:
        compile_for(name, Path(out) / name)
        print(f"compiled for {name}", flush=True)
