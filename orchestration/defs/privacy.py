"""Privacy operations as Dagster jobs (docs/privacy.md): `erase_people` (run on request with the
ids in its config) and `apply_retention` (scheduled daily). Thin over python_models.privacy, the
same functions `uba erase` and `uba retention` run."""

import dagster as dg

from orchestration.resources import WRITER_POOL, WarehouseResource


class ErasureConfig(dg.Config):
    ids: list[str] = []
    """Raw user ids or device (anonymous) ids to erase."""
    file: str = ""
    """A file of ids, one per line (# starts a comment), read on the machine running the job."""
    rebuild: str = "targeted"
    """dbt rebuild after deleting: `targeted` (models counting across people) or `full`."""


@dg.op(pool=WRITER_POOL, description="Erase people from every table and file; see docs/privacy.md")
def erase_people_op(
    context: dg.OpExecutionContext, config: ErasureConfig, warehouse: WarehouseResource
):
    from python_models.privacy.erasure import erase, read_ids

    ids = read_ids(config.ids, config.file or None)
    if not ids:
        raise dg.Failure("no ids to erase: set ops.erase_people_op.config.ids (or file)")
    result = erase(ids, rebuild=config.rebuild, duckdb_path=warehouse.path())
    context.log.info(f"erase: {result.message}")
    for warning in result.warnings:
        context.log.warning(warning)
    metadata = {
        "erasure_id": result.erasure_id or "none",
        "identifiers": len(ids),
        "rows_deleted": result.rows_deleted,
        "rebuild": result.rebuilt,
        "flagged_models": ", ".join(f"{n} {v}" for n, v in result.flagged_models) or "none",
        **{f"rows/{t.table}": t.rows_deleted for t in result.tables},
    }
    return dg.Output(result.message, metadata=metadata)


@dg.op(pool=WRITER_POOL, description="Purge old PII properties and expired raw events")
def apply_retention_op(context: dg.OpExecutionContext, warehouse: WarehouseResource):
    from python_models.privacy.retention import apply_retention

    result = apply_retention(duckdb_path=warehouse.path())
    context.log.info(f"retention: {result.summary()}")
    metadata = {
        "pii_rows_purged": sum(result.pii_rows_purged.values()),
        "raw_rows_deleted": sum(result.raw_rows_deleted.values()),
        "rollup_days": result.rollup_days,
        "rolled_up_events": result.rolled_up_events,
        "compacted": result.compacted,
        **{f"purged/{table}": rows for table, rows in result.pii_rows_purged.items()},
        **{f"deleted/{table}": rows for table, rows in result.raw_rows_deleted.items()},
    }
    return dg.Output(result.summary(), metadata=metadata)


@dg.job(description="Erase people (GDPR Article 17): run with the ids in the op's config.")
def erase_people():
    erase_people_op()


@dg.job(description="Apply the retention windows (UBA_RETENTION_PII_DAYS, UBA_RETENTION_RAW_DAYS).")
def apply_retention():
    apply_retention_op()


# Daily at 03:00 UTC, after the 02:00 refresh has loaded, gated and built.
retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=apply_retention,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
)

privacy_defs = dg.Definitions(jobs=[erase_people, apply_retention], schedules=[retention_schedule])
