"""Raw layer: load event files, then gate them (valid rows go on, bad rows are quarantined)."""

import os

import dagster as dg

from orchestration.metadata import check_result
from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings

RAW_EVENTS = dg.AssetKey(["raw", "events"])
EVENTS_VALIDATED = dg.AssetKey(["raw", "events_validated"])
SCHEMA_DRIFT_CHECK = "check_schema_drift"


class RawFilesConfig(dg.Config):
    path: str = ""
    """File or directory of CSV / Parquet / JSON Lines event files (default $UBA_INPUT_PATH)."""


@dg.asset(
    key=RAW_EVENTS,
    group_name="raw",
    pool=WRITER_POOL,
    kinds={"duckdb"},
    check_specs=[dg.AssetCheckSpec(SCHEMA_DRIFT_CHECK, asset=RAW_EVENTS)],
)
def raw_events(
    context: dg.AssetExecutionContext, config: RawFilesConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per row of every loaded file, as text. Loading a file twice adds nothing.
    Schema drift (new / missing / re-typed columns, unplanned events and property keys) is
    recorded in raw.schema_drift and reported by the check_schema_drift warning."""
    from expectations.preload import start_suites_import
    from python_models.ingest.drift import drift_outcome
    from python_models.ingest.remote import load_into

    path = config.path or str(get_settings().input_path)
    if not os.path.exists(path):
        raise dg.Failure(f"no input at {path}: run `uba generate` or set UBA_INPUT_PATH")
    with warehouse.connect() as con:
        # A new file means a gate, the next step in this process (the in-process executor):
        # its Great Expectations import starts beside the load, as `uba refresh`'s does.
        result = load_into(con, path, on_new_file=start_suites_import)
        total = con.execute("select count(*) from raw.events").fetchone()[0]
        drift_passed, drift_description, drift_table = drift_outcome(con)
    context.log.info(f"loaded {result.rows_loaded} rows from {result.files_loaded} new files")
    return dg.MaterializeResult(
        metadata={
            "input_path": path,
            "files_loaded": result.files_loaded,
            "files_skipped": result.files_skipped,
            "rows_loaded": result.rows_loaded,
            "rows_unreadable": result.rows_unreadable,
            "dagster/row_count": total,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=SCHEMA_DRIFT_CHECK,
                passed=drift_passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=drift_description,
                metadata={"pending": dg.MetadataValue.md(drift_table)},
            )
        ],
    )


@dg.asset(
    key=EVENTS_VALIDATED, deps=[RAW_EVENTS], group_name="raw", pool=WRITER_POOL, kinds={"duckdb"}
)
def events_validated(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Raw rows that passed the quality gate; the others go to raw.events_quarantine. A batch
    blocked as corrupt is in the metadata, and check_raw_events_quality fails on it."""
    from expectations.gate import GateRules, run_gate
    from python_models.reports import markdown_counts

    docs = get_settings().reports_dir / "data_docs"
    with warehouse.connect() as con:
        # Progress lines into the run's log: minutes of silence at 10M events otherwise.
        result = run_gate(
            con, rules=GateRules.from_settings(), progress=context.log.info, data_docs_dir=docs
        )
        total = con.execute("select count(*) from raw.events_validated").fetchone()[0]
    return dg.MaterializeResult(
        metadata={
            "gate_run_id": result.run_id,
            "rows_checked": result.rows_checked,
            "rows_valid": result.rows_valid,
            "rows_quarantined": result.rows_quarantined,
            "evaluated_expectations": result.evaluated_expectations,
            "batches_blocked": len(result.blocked),
            "rows_not_in_tracking_plan": result.rows_unplanned,
            "data_docs": str(docs / "index.html"),
            "quarantine_reasons": dg.MetadataValue.md(
                markdown_counts(result.reasons, "reason", "rows")
            ),
            "dagster/row_count": total,
        }
    )


@dg.asset_check(asset=EVENTS_VALIDATED, blocking=True, name="check_raw_events_quality")
def check_raw_events_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Blocks everything downstream unless the latest gate run succeeded, evaluated at least one
    expectation, reconciled (loaded = valid + quarantined) and blocked no batch as corrupt (the
    gate's own rule: expectations/gate/rules.py, UBA_MAX_QUARANTINE_RATE)."""
    from python_models.quality import check_raw_events

    with warehouse.connect(read_only=True) as con:
        return check_result(check_raw_events(con))


def raw_files_run_config(path: str) -> dict:
    """Run config that points the raw/events asset at `path` (a file or a directory)."""
    return {"ops": {RAW_EVENTS.to_python_identifier(): {"config": {"path": path}}}}
