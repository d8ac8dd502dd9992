"""Raw layer: load event files, then gate them (valid rows go on, bad rows are quarantined)."""

import os

import dagster as dg

from orchestration.resources import WRITER_POOL, WarehouseResource
from python_models.config import get_settings

RAW_EVENTS = dg.AssetKey(["raw", "events"])
EVENTS_VALIDATED = dg.AssetKey(["raw", "events_validated"])

# Above this share of quarantined rows in one gate run, the batch is treated as corrupt and
# everything downstream (dbt, training, scoring) is blocked.
MAX_QUARANTINE_RATE = float(os.environ.get("UBA_MAX_QUARANTINE_RATE", "0.2"))


def default_input_path() -> str:
    return os.environ.get("UBA_INPUT_PATH", str(get_settings().data_dir / "sample" / "events"))


class RawFilesConfig(dg.Config):
    path: str = ""
    """File or directory of CSV / Parquet / JSON Lines event files (default $UBA_INPUT_PATH)."""


@dg.asset(key=RAW_EVENTS, group_name="raw", pool=WRITER_POOL, kinds={"duckdb"})
def raw_events(
    context: dg.AssetExecutionContext, config: RawFilesConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per row of every loaded file, as text. Loading a file twice adds nothing."""
    from python_models.ingest import load_path

    path = config.path or default_input_path()
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

    with warehouse.connect() as con:
        result = run_gate(con)
        total = con.execute("select count(*) from raw.events_validated").fetchone()[0]
    reasons = "\n".join(f"| {k} | {v} |" for k, v in sorted(result.reasons.items()))
    return dg.MaterializeResult(
        metadata={
            "gate_run_id": result.run_id,
            "rows_checked": result.rows_checked,
            "rows_valid": result.rows_valid,
            "rows_quarantined": result.rows_quarantined,
            "evaluated_expectations": result.evaluated_expectations,
            "quarantine_reasons": dg.MetadataValue.md(
                "| reason | rows |\n|---|---|\n" + (reasons or "| (none) | 0 |")
            ),
            "dagster/row_count": total,
        }
    )


@dg.asset_check(asset=EVENTS_VALIDATED, blocking=True, name="check_raw_events_quality")
def check_raw_events_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Blocks everything downstream unless the latest gate run succeeded, evaluated at least one
    expectation, reconciled (loaded = valid + quarantined) and quarantined a plausible share."""
    with warehouse.connect(read_only=True) as con:
        run = con.execute(
            """
            select run_id, success, evaluated_expectations, rows_checked, rows_quarantined
            from raw.gate_runs order by finished_at desc limit 1
            """
        ).fetchone()
        loaded, valid, quarantined = con.execute(
            """
            select (select count(*) from raw.events),
                   (select count(*) from raw.events_validated),
                   (select count(*) from raw.events_quarantine)
            """
        ).fetchone()
    problems = []
    if run is None:
        problems.append("the gate has never run")
    else:
        _, success, evaluated, checked, run_quarantined = run
        if not success:
            problems.append("the latest gate run failed")
        if evaluated == 0:
            problems.append("the latest gate run evaluated zero expectations")
        if checked and run_quarantined / checked > MAX_QUARANTINE_RATE:
            problems.append(
                f"the latest batch quarantined {run_quarantined}/{checked} rows "
                f"(> {MAX_QUARANTINE_RATE:.0%}): input looks corrupt"
            )
    if loaded != valid + quarantined:
        problems.append(f"counts do not reconcile: {loaded} loaded != {valid} + {quarantined}")
    if valid == 0:
        problems.append("no valid events")
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "gate passed and counts reconcile",
        metadata={"loaded": loaded, "valid": valid, "quarantined": quarantined},
    )
