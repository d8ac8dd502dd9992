"""Schema drift: what each load brought that the contract and the tracking plan do not expect.

Every load records, in raw.schema_drift, one row per finding:
- new_column: a file column the contract does not have (the loader ignores it);
- missing_column: a contract column the file lacks (loaded as null);
- retyped_column: a contract column whose values are not text in the file (a Parquet integer
  id, a JSON number where a string was expected);
- new_event_name: an event name the tracking plan does not list (kept and flagged, or
  quarantined, by the unknown-event policy);
- new_property_key: a properties key on an event that neither the plan (for that event) nor
  the contract's common keys declare.
A finding that matches one accepted earlier (same kind, event, name and observed type) is not
recorded again. `uba load --accept-drift` accepts every pending finding (docs/quality_gate.md).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from python_models.ingest.contract import COMMON_PROPERTIES, CONTRACT_COLUMNS
from python_models.ingest.tracking_plan import TrackingPlan

DRIFT_KINDS = (
    "new_column",
    "missing_column",
    "retyped_column",
    "new_event_name",
    "new_property_key",
)
# Types a contract column may have in a file without counting as re-typed.
_TEXT_TYPES = {"string", "null"}
_PROPERTIES_TYPES = {"string", "null", "object"}


def normalize_type(duck_type: str) -> str:
    """A DuckDB or JSON type name as a plain word: string, integer, number, object..."""
    upper = duck_type.upper()
    if upper in ("VARCHAR", "TEXT", "STRING"):
        return "string"
    if upper == "NULL":
        return "null"
    if upper.endswith("]") or upper.startswith("LIST") or upper == "ARRAY":
        return "array"
    if upper.startswith(("STRUCT", "MAP", "JSON")) or upper == "OBJECT":
        return "object"
    if upper in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT"):  # fmt: skip
        return "integer"
    if upper in ("FLOAT", "DOUBLE", "REAL") or upper.startswith("DECIMAL"):
        return "number"
    if upper == "BOOLEAN":
        return "boolean"
    return duck_type.lower()


def _expected(column: str) -> set[str]:
    return _PROPERTIES_TYPES if column == "properties" else _TEXT_TYPES


def column_findings(
    columns: dict[str, str], rows: int, type_counts: dict[tuple[str, str], int] | None = None
) -> list[tuple]:
    """(kind, event_name, name, expected, observed, rows_affected) for a file's columns.

    `columns` maps the file's column names to their (DuckDB) types. For JSON Lines,
    `type_counts` gives (key, JSON type) -> lines, so a key that is sometimes a number is
    reported with the number of lines where it is one.
    """
    by_key = {name.strip().lower(): name for name in columns}
    findings = []
    for name, duck_type in columns.items():
        if name.strip().lower() not in CONTRACT_COLUMNS:
            present = sum(n for (k, _), n in (type_counts or {}).items() if k == name)
            findings.append(
                ("new_column", None, name, None, normalize_type(duck_type), present or rows)
            )
    for column in CONTRACT_COLUMNS:
        if column not in by_key:
            findings.append(("missing_column", None, column, "string", None, rows))
            continue
        name = by_key[column]
        if type_counts is not None:
            for (key, json_type), n in sorted(type_counts.items()):
                observed = normalize_type(json_type)
                if key == name and observed not in _expected(column):
                    findings.append(("retyped_column", None, column, "string", observed, n))
        else:
            observed = normalize_type(columns[name])
            if observed not in _expected(column):
                findings.append(("retyped_column", None, column, "string", observed, rows))
    return findings


def jsonl_type_counts(con: duckdb.DuckDBPyConnection, lines_table: str) -> dict:
    """(top-level key, JSON type) -> number of object lines, from the numbered lines."""
    rows = con.execute(
        f"""
        select key, json_type(line, '$."' || replace(key, '"', '\\"') || '"') as json_type,
            count(*)
        from (
            select line, unnest(json_keys(line)) as key
            from {lines_table}
            where json_valid(line) and json_type(line) = 'OBJECT'
        )
        group by all
        """
    ).fetchall()
    return {(key, json_type or "NULL"): int(n) for key, json_type, n in rows}


def event_findings(
    con: duckdb.DuckDBPyConnection, load_id: int, plan: TrackingPlan, rows: str | None = None
) -> list[tuple]:
    """Unplanned event names and undeclared property keys among the load's rows. `rows`: a
    query of the load's readable rows (event_name, properties) to read them from instead of
    raw.events, e.g. the file itself: scanning the rows inserted in the still open transaction
    cost 2.7x a second read of the Parquet file's two columns (10M rows: 3.4 vs 1.3 s)."""
    rows = rows or (
        f"(select * from raw.events where load_id = {int(load_id)} and load_error is null)"
    )
    planned = plan.event_names
    con.execute("create or replace temp table __uba_plan_keys (event_name varchar, key varchar)")
    declared = [(event.event_name, spec.name) for event in plan.events for spec in event.properties]
    if declared:
        con.executemany("insert into __uba_plan_keys values (?, ?)", declared)
    # One scan of the load's rows: per (event name, key set), where key_set is null for
    # properties that are not a JSON object. Rows of one event name mostly carry the same key
    # set, so the grouped rows are few and both findings below read only them.
    con.execute(
        f"""
        create or replace temp table __uba_event_shapes as
        select trim(event_name) as event_name,
            case when not json_valid(properties) then null
                when starts_with(properties, '{{') then json_keys(properties)
                when json_type(properties) = 'OBJECT' then json_keys(properties)
            end as key_set,
            count(*) as n
        from {rows} as loaded
        group by all
        """
    )
    findings = []
    names = con.execute(
        """
        select event_name, sum(n)::bigint
        from __uba_event_shapes
        where nullif(event_name, '') is not null
            and event_name not in (select unnest(?::varchar[]))
        group by 1 order by 1
        """,
        [list(planned)],
    ).fetchall()
    findings += [("new_event_name", None, name, None, None, int(n)) for name, n in names]
    keys = con.execute(
        """
        with used as (
            select event_name, unnest(key_set) as key, n
            from __uba_event_shapes
            where key_set is not null
        )
        select event_name, key, sum(n)::bigint
        from used
        where key not in (select unnest(?::varchar[]))
            and not exists (
                select 1 from __uba_plan_keys as p
                where p.event_name = used.event_name and p.key = used.key
            )
        group by all order by 1, 2
        """,
        [list(COMMON_PROPERTIES)],
    ).fetchall()
    findings += [("new_property_key", event, key, None, None, int(n)) for event, key, n in keys]
    con.execute("drop table __uba_plan_keys")
    con.execute("drop table __uba_event_shapes")
    return findings


def record_drift(
    con: duckdb.DuckDBPyConnection,
    load_id: int,
    source_file: str,
    findings: list[tuple],
    detected_at: datetime,
) -> int:
    """Insert the findings not accepted before; returns how many were recorded."""
    if not findings:
        return 0
    con.execute(
        """create or replace temp table __uba_drift (kind varchar, event_name varchar,
        name varchar, expected varchar, observed varchar, rows_affected bigint)"""
    )
    con.executemany("insert into __uba_drift values (?, ?, ?, ?, ?, ?)", findings)
    recorded = con.execute(
        """
        insert into raw.schema_drift
        select ?, ?, d.kind, d.event_name, d.name, d.expected, d.observed, d.rows_affected,
            ?::timestamp, null
        from __uba_drift as d
        where not exists (
            select 1 from raw.schema_drift as a
            where a.accepted_at is not null and a.kind = d.kind
                and a.event_name is not distinct from d.event_name and a.name = d.name
                and a.observed is not distinct from d.observed
        )
        """,
        [load_id, source_file, detected_at],
    ).fetchone()[0]
    con.execute("drop table __uba_drift")
    return int(recorded)


def pending_drift(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Findings not yet accepted, aggregated: (kind, event_name, name, observed, loads, rows)."""
    return con.execute(
        """
        select kind, event_name, name, observed, count(distinct load_id),
            cast(sum(rows_affected) as bigint)
        from raw.schema_drift
        where accepted_at is null
        group by 1, 2, 3, 4
        order by 1, 2 nulls first, 3, 4
        """
    ).fetchall()


def accept_drift(con: duckdb.DuckDBPyConnection, accepted_at: datetime) -> int:
    """Accept every pending finding: the same finding in later loads is no longer recorded."""
    return int(
        con.execute(
            "update raw.schema_drift set accepted_at = ? where accepted_at is null",
            [accepted_at],
        ).fetchone()[0]
    )


def describe_finding(kind, event_name, name, observed, loads, rows) -> str:
    where = f" on {event_name}" if event_name else ""
    typed = f" as {observed}" if observed else ""
    return f"{kind}: {name}{where}{typed} ({rows:,} rows in {loads} load(s))"


def drift_outcome(con: duckdb.DuckDBPyConnection) -> tuple[bool, str, str]:
    """(passed, one-line description, markdown list) of the pending drift, for a warning check."""
    pending = pending_drift(con)
    if not pending:
        return True, "no schema drift pending", "(none)"
    listing = "\n".join(f"- {describe_finding(*finding)}" for finding in pending)
    return (
        False,
        f"{len(pending)} schema drift finding(s) pending; review raw.schema_drift, then "
        "`uba load --accept-drift` (or declare them in the tracking plan)",
        listing,
    )
