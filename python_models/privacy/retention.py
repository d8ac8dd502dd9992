"""Retention windows (settings UBA_RETENTION_PII_DAYS and UBA_RETENTION_RAW_DAYS; 0 keeps
forever), applied by `uba retention` and the scheduled Dagster job apply_retention:

- PII: in raw rows loaded more than PII days ago, the values of the sensitive properties
  (email, ip, and the keys of UBA_SENSITIVE_PROPERTIES) become null, in the JSON
  properties and in unreadable input lines alike. Nothing past the raw layer ever held them.
- Raw events: a raw row expires when its event happened more than RAW days ago (a row without
  a valid event time: when it was loaded more than RAW days ago). Expired valid events are
  first added to raw.events_daily_rollup (per day and event name: counts and revenue, no
  identifier), then every raw table drops the expired rows (by raw_id), in one transaction.
  The pseudonymized staging and marts keep their rows; a later `--full-refresh` rebuilds them
  from what raw still holds, and the rollup keeps the counts of the days that went.

Each run that changed a row rewrites the DuckDB file (files.compact_database), because DuckDB
keeps the bytes of overwritten values until then. Running it again changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from python_models.common.registry import utc_now
from python_models.config import get_settings
from python_models.privacy.discovery import personal_tables
from python_models.privacy.files import compact_database
from python_models.privacy.sensitive import sensitive_property_keys
from python_models.warehouse import connect

VALIDATED_TABLE = "raw.events_validated"
RAW_TABLE = "raw.events"
ROLLUP_TABLE = "raw.events_daily_rollup"
RAW_SCHEMA = "raw"
# A JSON value: a string (with escapes), a number, or true/false. null is left as it is, so a
# purged row no longer matches and a second run changes nothing.
_JSON_VALUE = r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false'


@dataclass
class RetentionResult:
    now: datetime
    pii_cutoff: datetime | None
    raw_cutoff: datetime | None
    pii_rows_purged: dict[str, int] = field(default_factory=dict)
    raw_rows_deleted: dict[str, int] = field(default_factory=dict)
    rollup_days: int = 0
    rolled_up_events: int = 0
    compacted: bool = False

    @property
    def changed(self) -> bool:
        return bool(sum(self.pii_rows_purged.values()) or sum(self.raw_rows_deleted.values()))

    def summary(self) -> str:
        purged = sum(self.pii_rows_purged.values())
        deleted = sum(self.raw_rows_deleted.values())
        pii = f"before {self.pii_cutoff:%Y-%m-%d}" if self.pii_cutoff else "off"
        raw = f"before {self.raw_cutoff:%Y-%m-%d}" if self.raw_cutoff else "off"
        return (
            f"PII purged from {purged} raw rows (loaded {pii}); {deleted} raw rows deleted "
            f"(events {raw}), {self.rolled_up_events} events rolled into {self.rollup_days} "
            "day(s) of raw.events_daily_rollup"
        )


def pii_pattern(keys: tuple[str, ...]) -> str:
    """RE2 pattern matching `"key": value` for any of `keys` (group 1 keeps `"key": `)."""
    names = "|".join(re.escape(k) for k in keys)
    return rf'("(?:{names})"\s*:\s*)({_JSON_VALUE})'


def purge_pii(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, keys: tuple[str, ...]
) -> dict[str, int]:
    """Null the sensitive properties of raw rows loaded before `cutoff`; rows changed per table.
    The load time comes from raw.events (every raw row is there first, keyed by raw_id)."""
    pattern = pii_pattern(keys)
    con.execute(
        f"create or replace temp table retention_old_loads as "
        f"select raw_id from {RAW_TABLE} where loaded_at < ?",
        [cutoff],
    )
    purged = {}
    for table in personal_tables(con):
        if table.schema != RAW_SCHEMA or not table.free_text:
            continue
        changed = 0
        for column in table.free_text:
            changed += con.execute(
                f'update {table.qualified} set "{column}" = '
                f"regexp_replace(\"{column}\", ?, '\\1null', 'g') "
                f"where raw_id in (select raw_id from retention_old_loads) "
                f'and regexp_matches("{column}", ?)',
                [pattern, pattern],
            ).fetchone()[0]
        purged[table.label] = int(changed)
    return purged


def _ensure_rollup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create table if not exists {ROLLUP_TABLE} (
            event_date date not null,
            event_name varchar not null,
            count_events bigint not null,
            count_identified_events bigint not null,
            revenue_usd double not null,
            rolled_up_at timestamp not null,
            primary key (event_date, event_name)
        )
        """
    )


def expire_raw_events(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, now: datetime
) -> tuple[dict[str, int], int, int]:
    """Roll expired valid events into the daily rollup, then delete every expired raw row.
    Returns (rows deleted per raw table, rollup days touched, events rolled up)."""
    _ensure_rollup(con)
    con.execute(
        f"""
        create or replace temp table retention_expired as
        select raw_id from {VALIDATED_TABLE} where event_ts < ?
        union
        select raw_id from {RAW_TABLE} as raw_rows
        where loaded_at < ?
          and not exists (
              select 1 from {VALIDATED_TABLE} as valid where valid.raw_id = raw_rows.raw_id
          )
        """,
        [cutoff, cutoff],
    )
    rollup = con.execute(
        f"""
        select
            cast(event_ts as date) as event_date,
            event_name,
            count(*) as count_events,
            count(user_id) as count_identified_events,
            coalesce(sum(
                try_cast(json_extract_string(properties, '$.revenue') as double)
            ), 0) as revenue_usd
        from {VALIDATED_TABLE}
        where raw_id in (select raw_id from retention_expired)
        group by 1, 2
        """
    ).pl()
    if rollup.height:
        con.register("__uba_rollup", rollup.to_arrow())
        try:
            con.execute(
                f"""
                insert into {ROLLUP_TABLE}
                select event_date, event_name, count_events, count_identified_events,
                    revenue_usd, ? from __uba_rollup
                on conflict (event_date, event_name) do update set
                    count_events = count_events + excluded.count_events,
                    count_identified_events =
                        count_identified_events + excluded.count_identified_events,
                    revenue_usd = revenue_usd + excluded.revenue_usd,
                    rolled_up_at = excluded.rolled_up_at
                """,
                [now],
            )
        finally:
            con.unregister("__uba_rollup")
    deleted = {}
    for table in personal_tables(con):
        columns = con.execute(
            "select column_name from information_schema.columns where table_schema = ? "
            "and table_name = ? and table_catalog = current_database()",
            [table.schema, table.name],
        ).fetchall()
        if table.schema != RAW_SCHEMA or ("raw_id",) not in columns:
            continue
        deleted[table.label] = int(
            con.execute(
                f"delete from {table.qualified} "
                "where raw_id in (select raw_id from retention_expired)"
            ).fetchone()[0]
        )
    days = rollup["event_date"].n_unique() if rollup.height else 0
    events = int(rollup["count_events"].sum()) if rollup.height else 0
    return deleted, days, events


def apply_retention(
    duckdb_path: str | Path | None = None,
    now: datetime | None = None,
    pii_days: int | None = None,
    raw_days: int | None = None,
    compact: bool = False,
) -> RetentionResult:
    """Apply both windows (settings unless given) to the warehouse, then compact it if a row
    changed (or `compact`). `now` (UTC, naive) defaults to the clock."""
    settings = get_settings()
    path = Path(duckdb_path) if duckdb_path else settings.duckdb_path
    now = now or utc_now()
    pii_days = settings.retention_pii_days if pii_days is None else pii_days
    raw_days = settings.retention_raw_days if raw_days is None else raw_days
    result = RetentionResult(
        now=now,
        pii_cutoff=now - timedelta(days=pii_days) if pii_days else None,
        raw_cutoff=now - timedelta(days=raw_days) if raw_days else None,
    )
    con = connect(path)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw' "
            "and table_name in ('events', 'events_validated') "
            "and table_catalog = current_database()"
        ).fetchone()[0]
        if exists < 2:
            return result  # nothing loaded yet
        con.execute("begin transaction")
        try:
            if result.pii_cutoff is not None:
                result.pii_rows_purged = purge_pii(
                    con, result.pii_cutoff, sensitive_property_keys()
                )
            if result.raw_cutoff is not None:
                result.raw_rows_deleted, result.rollup_days, result.rolled_up_events = (
                    expire_raw_events(con, result.raw_cutoff, now)
                )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()
    if result.changed or compact:
        compact_database(path, settings.duckdb_memory_limit)
        result.compacted = True
    return result
