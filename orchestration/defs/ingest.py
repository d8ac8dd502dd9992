"""Raw layer: load event files, then gate them (valid rows go on, bad rows are quarantined)."""

import os

import dagster as dg

from orchestration.metadata import check_result
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings

RAW_EVENTS = dg.AssetKey(["raw", "events"])
EVENTS_VALIDATED = dg.AssetKey(["raw", "events_validated"])


class RawFilesConfig(dg.Config):
    path: str = ""
    """File or directory of CSV / Parquet / JSON Lines event files (default $UBA_INPUT_PATH)."""


@dg.asset(key=RAW_EVENTS, group_name="raw", pool=WRITER_POOL, kinds={"duckdb"})
def raw_events(
    context: dg.AssetExecutionContext, config: RawFilesConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per row of every loaded file, as text. Loading a file twice adds nothing."""
    from python_models.ingest import load_path

    path = config.path or str(get_settings().input_path)
    if not os.path.exists(path):
        raise dg.Failure(f"no input at {path}: run `uba generate` or set UBA_INPUT_PATH")
    with warehouse.connect() as con:
        result = load_path(con, path)
        total = con.execute("select count(*) from raw.events").fetchone()[0]
    context.log.info(f"loaded {result.rows_loaded} rows from {result.files_loaded} new files")
    return dg.MaterializeResult(
        metadata={
            "input_path": path,
            "files_loaded": result.files_loaded,
            "files_skipped": result.files_skipped,
            "rows_loaded": result.rows_loaded,
            "dagster/row_count": total,
        }
    )


@dg.asset(
    key=EVENTS_VALIDATED, deps=[RAW_EVENTS], group_name="raw", pool=WRITER_POOL, kinds={"duckdb"}
)
def events_validated(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Raw rows that passed the Great Expectations gate; the others go to raw.events_quarantine."""
    from expectations.gate import run_gate
    from python_models.reports import markdown_counts

    with warehouse.connect() as con:
        result = run_gate(con)
        total = con.execute("select count(*) from raw.events_validated").fetchone()[0]
    return dg.MaterializeResult(
        metadata={
            "gate_run_id": result.run_id,
            "rows_checked": result.rows_checked,
            "rows_valid": result.rows_valid,
            "rows_quarantined": result.rows_quarantined,
            "evaluated_expectations": result.evaluated_expectations,
            "quarantine_reasons": dg.MetadataValue.md(
                markdown_counts(result.reasons, "reason", "rows")
            ),
            "dagster/row_count": total,
        }
    )


@dg.asset_check(asset=EVENTS_VALIDATED, blocking=True, name="check_raw_events_quality")
def check_raw_events_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Blocks everything downstream unless the latest gate run succeeded, evaluated at least one
    expectation, reconciled (loaded = valid + quarantined) and quarantined a plausible share."""
    from python_models.quality import check_raw_events

    with warehouse.connect(read_only=True) as con:
        return check_result(check_raw_events(con, get_settings().max_quarantine_rate))


def raw_files_run_config(path: str) -> dict:
    """Run config that points the raw/events asset at `path` (a file or a directory)."""
    return {"ops": {RAW_EVENTS.to_python_identifier(): {"config": {"path": path}}}}
