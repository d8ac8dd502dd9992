"""The raw-events quality gate: validate raw.events with Great Expectations, split it into
raw.events_validated (typed) and raw.events_quarantine (with reasons), log raw.gate_runs.

How it works (docs/quality_gate.md has the reasoning):
1. In one DuckDB statement, every raw row not yet gated becomes a candidate with helper columns
   (parsed UTC timestamps, JSON checks, properties size, revenue type, duplicate flag).
2. Candidates are validated in chunks of `chunk_rows` as pandas frames against the
   `raw_events` suite with result_format COMPLETE; the failing row indexes of each expectation
   give each row's reasons (the expectation's meta["reason"]).
3. The accepted rows of every chunk are validated again with the same suite and must pass
   100%: valid rows provably meet every expectation.
4. All writes of one run happen in one transaction, then the counts are reconciled:
   count(raw.events) == count(events_validated) + count(events_quarantine).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from expectations.suites import raw_events as raw_events_suite
from expectations.suites.raw_events import (
    CLOCK_SKEW_DAYS,
    EARLIEST_EVENT_TS,
    MAX_PROPERTIES_BYTES,
    REASON_CODES,
    known_event_names,
)
from expectations.validation import describe_expectation, validate_frame
from python_models.ingest.loaders import ensure_raw_tables

# Columns of the frame GX sees (the suite's expectations refer to these names).
GATE_FRAME_COLUMNS = (
    "load_error",
    "event_id",
    "event_name",
    "has_identity",
    "event_ts",
    "received_at",
    "event_ts_upper_bound",
    "received_at_upper_bound",
    "properties_is_json_object",
    "properties_bytes",
    "revenue_is_numeric",
    "is_duplicate",
)

GATE_DDL = """
create schema if not exists raw;
create table if not exists raw.events_validated (
    raw_id varchar primary key,
    event_id varchar not null,
    user_id varchar,
    anonymous_id varchar,
    event_name varchar not null,
    event_ts timestamp not null,
    received_at timestamp not null,
    session_id varchar,
    properties varchar not null,
    loaded_at timestamp not null
);
create table if not exists raw.events_quarantine (
    raw_id varchar primary key,
    source_file varchar not null,
    row_number bigint not null,
    reason varchar not null,
    reasons varchar not null,
    event_id varchar,
    user_id varchar,
    anonymous_id varchar,
    event_name varchar,
    event_ts varchar,
    received_at varchar,
    session_id varchar,
    properties varchar,
    load_error varchar,
    raw_payload varchar,
    quarantined_at timestamp not null
);
create table if not exists raw.gate_runs (
    run_id varchar primary key,
    started_at timestamp not null,
    finished_at timestamp not null,
    rows_checked bigint not null,
    rows_valid bigint not null,
    rows_quarantined bigint not null,
    evaluated_expectations integer not null,
    success boolean not null
);
"""

# GX checks datetime ranges vectorized only on nanosecond columns (on others it calls Python
# per row: 2x the whole gate's time). Nanoseconds cover 1677-2262, so the frame GX sees clamps
# timestamps into [1700, 2200]: every verdict is unchanged, because valid event times lie well
# inside (EARLIEST_EVENT_TS .. load time + skew) and a value past either end stays past it.
_FRAME_TS_FLOOR, _FRAME_TS_CEILING = "1700-01-01", "2200-01-01"
_FRAME_TIMESTAMP_COLUMNS = (
    "event_ts",
    "received_at",
    "event_ts_upper_bound",
    "received_at_upper_bound",
)

CANDIDATES = "__uba_gate_candidates"
REJECTED = "__uba_gate_rejected"
# 'YYYY-MM-DD[T ]HH:MM[:SS[.fff]]' followed by an optional 'Z' or +HH[:MM] / -HHMM offset.
_TS_PATTERN = r"^(.*?\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"


class GateError(RuntimeError):
    """The gate could not prove the validated rows good; nothing of the run was written."""


@dataclass(frozen=True)
class GateResult:
    run_id: str
    success: bool
    rows_checked: int
    rows_valid: int
    rows_quarantined: int
    evaluated_expectations: int
    reasons: dict[str, int] = field(default_factory=dict)  # first reason -> rows
    # Expectations that flagged rows in this run ("<expectation> [reason]: N rows"): data
    # problems found and quarantined, not a failure of the gate itself.
    failures: list[str] = field(default_factory=list)


def ensure_gate_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_raw_tables(con)
    con.execute(GATE_DDL)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _timestamp_parts_sql(column: str) -> str:
    """Split ISO-8601 text into {'base', 'tz'} once (reused by _utc_timestamp_sql)."""
    return f"regexp_extract(trim({column}), '{_TS_PATTERN}', ['base', 'tz'])"


def _utc_timestamp_sql(column: str, parts: str) -> str:
    """ISO-8601 text -> naive UTC TIMESTAMP (offset or 'Z' applied; naive taken as UTC).

    Done by hand rather than with a TIMESTAMPTZ cast so the result never depends on the
    session's TimeZone setting. Unparseable text gives NULL. `parts` names the column holding
    _timestamp_parts_sql(column).
    """
    return f"""(
        case
            when {column} is null then null
            when {parts}.base = '' then try_cast(trim({column}) as timestamp)
            else try_cast(replace({parts}.base, ',', '.') as timestamp) - to_minutes(
                case when {parts}.tz in ('', 'Z', 'z') then 0
                else (case when {parts}.tz[1] = '-' then -1 else 1 end) * (
                    try_cast({parts}.tz[2:3] as integer) * 60
                    + coalesce(try_cast(nullif(replace({parts}.tz[4:], ':', ''), '') as integer), 0)
                ) end
            )
        end
    )"""


def _candidates_sql() -> str:
    names = ", ".join(_sql_literal(name) for name in known_event_names())
    earliest = EARLIEST_EVENT_TS.strftime("%Y-%m-%d %H:%M:%S")
    return f"""
    create or replace temp table {CANDIDATES} as
    with new_rows as (
        select events.*
        from raw.events as events
        where not exists (
                select 1 from raw.events_validated as v where v.raw_id = events.raw_id
            )
            and not exists (
                select 1 from raw.events_quarantine as q where q.raw_id = events.raw_id
            )
    ),
    split as (
        select
            *,
            {_timestamp_parts_sql("event_ts")} as event_ts_parts,
            {_timestamp_parts_sql("received_at")} as received_at_parts
        from new_rows
    ),
    cleaned as (
        select
            raw_id,
            loaded_at,
            load_error,
            nullif(trim(event_id), '') as event_id,
            nullif(trim(user_id), '') as user_id,
            nullif(trim(anonymous_id), '') as anonymous_id,
            nullif(trim(event_name), '') as event_name,
            nullif(trim(session_id), '') as session_id,
            {_utc_timestamp_sql("event_ts", "event_ts_parts")} as event_ts,
            {_utc_timestamp_sql("received_at", "received_at_parts")} as received_at,
            nullif(trim(properties), '') as properties_text
        from split
    ),
    checked as (
        select
            *,
            user_id is not null or anonymous_id is not null as has_identity,
            least(received_at, loaded_at) + to_days({CLOCK_SKEW_DAYS}) as event_ts_upper_bound,
            -- A row cannot have been received after we loaded it (beyond clock skew).
            loaded_at + to_days({CLOCK_SKEW_DAYS}) as received_at_upper_bound,
            case
                when properties_text is null then true
                when json_valid(properties_text) then json_type(properties_text) = 'OBJECT'
                else false
            end as properties_is_json_object,
            coalesce(strlen(properties_text), 0) as properties_bytes
        from cleaned
    ),
    typed as (
        select
            *,
            -- staging casts properties.revenue to DOUBLE, so it must be a finite number (a
            -- numeric string casts too) or absent / null. Not checked when the JSON is bad.
            case
                when properties_text is null or not properties_is_json_object then true
                when coalesce(json_type(properties_text, '$.revenue'), 'NULL') = 'NULL' then true
                else coalesce(isfinite(try_cast(
                    json_extract_string(properties_text, '$.revenue') as double)), false)
            end as revenue_is_numeric
        from checked
    ),
    ranked as (
        select
            *,
            -- Which copy of an event_id is kept: the first by (received_at, raw_id) among the
            -- copies that pass every other check (so a bad first copy does not take a good
            -- later one down with it). The suite still validates every row.
            load_error is null and event_id is not null and event_name in ({names})
                and has_identity and event_ts is not null and received_at is not null
                and received_at <= received_at_upper_bound
                and event_ts >= timestamp '{earliest}' and event_ts <= event_ts_upper_bound
                and properties_is_json_object and properties_bytes <= {MAX_PROPERTIES_BYTES}
                and revenue_is_numeric
                as passes_other_checks
        from typed
    ),
    flagged as (
        select
            *,
            event_id is not null and (
                event_id in (select event_id from raw.events_validated)
                or row_number() over (
                    partition by event_id
                    order by passes_other_checks desc, received_at asc nulls last, raw_id
                ) > 1
            ) as is_duplicate
        from ranked
    )
    select
        row_number() over (order by raw_id) - 1 as ordinal,
        raw_id, loaded_at, user_id, anonymous_id, session_id, properties_text,
        {", ".join(GATE_FRAME_COLUMNS)}
    from flagged
    order by ordinal
    """


def _frame_select_list() -> str:
    """GATE_FRAME_COLUMNS for the GX frame, timestamps clamped to the nanosecond-safe range."""
    items = []
    for column in GATE_FRAME_COLUMNS:
        if column in _FRAME_TIMESTAMP_COLUMNS:
            # Not least/greatest: they skip NULLs, and a NULL must stay NULL (a failed parse).
            items.append(
                f"case when {column} < timestamp '{_FRAME_TS_FLOOR}' "
                f"then timestamp '{_FRAME_TS_FLOOR}' "
                f"when {column} > timestamp '{_FRAME_TS_CEILING}' "
                f"then timestamp '{_FRAME_TS_CEILING}' else {column} end as {column}"
            )
        else:
            items.append(column)
    return ", ".join(items)


def _to_gx_frame(relation):
    """A DuckDB result as the pandas frame GX validates (timestamps as datetime64[ns])."""
    return relation.fetch_arrow_table().to_pandas(coerce_temporal_nanoseconds=True)


def _row_reasons(frame_rows: int, validation) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean matrix rows x REASON_CODES of failed checks, and rows flagged per expectation."""
    flags = np.zeros((frame_rows, len(REASON_CODES)), dtype=bool)
    flagged: dict[str, int] = {}
    for result in validation.results:
        if result.success:
            continue
        config = result.expectation_config
        reason = (config.meta or {}).get("reason")
        if reason not in REASON_CODES:
            raise GateError(f"{describe_expectation(config)} has no known meta reason: {reason!r}")
        indexes = result.result.get("unexpected_index_list")
        if not indexes:
            raise GateError(
                f"{describe_expectation(config)} failed without naming rows: "
                f"{'; '.join(validation.failures[:5])}"
            )
        positions = np.asarray(indexes, dtype=np.int64)
        flags[positions, REASON_CODES.index(reason)] = True
        label = describe_expectation(config)
        flagged[label] = flagged.get(label, 0) + len(positions)
    # A row that could not be read into fields only gets 'unparseable_row'.
    unparseable = flags[:, REASON_CODES.index("unparseable_row")]
    flags[unparseable, 1:] = False
    return flags, flagged


def _rejected_table(ordinals: np.ndarray, flags: np.ndarray) -> pa.Table:
    """(ordinal, reason, reasons) for rows with at least one failed check, built column-wise."""
    frame = pl.DataFrame(
        {code: flags[:, i] for i, code in enumerate(REASON_CODES)} | {"ordinal": ordinals}
    )
    labels = [pl.when(pl.col(code)).then(pl.lit(code)) for code in REASON_CODES]
    rejected = frame.filter(pl.any_horizontal(list(REASON_CODES))).select(
        pl.col("ordinal"),
        pl.coalesce(labels).alias("reason"),
        pl.concat_str(labels, separator=";", ignore_nulls=True).alias("reasons"),
    )
    return rejected.to_arrow()


def _validate(frame, suite, result_format: str):
    validation = validate_frame(frame, suite, result_format=result_format)
    if validation.evaluated_expectations == 0:
        raise GateError("the raw_events suite evaluated zero expectations: refusing to pass rows")
    return validation


def run_gate(
    con: duckdb.DuckDBPyConnection, chunk_rows: int = 250_000, progress: bool = False
) -> GateResult:
    """Gate every raw.events row not yet gated. Raises GateError (writing nothing) when the
    accepted rows cannot be shown to meet the whole suite."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    ensure_gate_tables(con)
    suite = raw_events_suite.build_suite()
    if not suite.expectations:
        raise GateError("the raw_events suite has no expectations: refusing to pass rows")
    run_id = f"gate-{_utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    started_at = _utc_now()
    clock = time.perf_counter()
    con.execute("begin transaction")
    try:
        con.execute(_candidates_sql())
        con.execute(
            f"create or replace temp table {REJECTED} (ordinal bigint, reason varchar, "
            "reasons varchar)"
        )
        total = con.execute(f"select count(*) from {CANDIDATES}").fetchone()[0]
        if progress:
            print(
                f"gate: {total:,} new raw rows to check ({time.perf_counter() - clock:.1f}s)",
                flush=True,
            )
        evaluated: list[int] = []
        flagged_total: dict[str, int] = {}
        columns = _frame_select_list()
        if total == 0:
            # Nothing new: still prove the suite evaluates on the frame's shape.
            empty = _to_gx_frame(con.execute(f"select {columns} from {CANDIDATES}"))
            evaluated.append(_validate(empty, suite, "SUMMARY").evaluated_expectations)
        for start in range(0, total, chunk_rows):
            chunk_clock = time.perf_counter()
            frame = _to_gx_frame(
                con.execute(
                    f"select ordinal, {columns} from {CANDIDATES} "
                    "where ordinal >= ? and ordinal < ? order by ordinal",
                    [start, start + chunk_rows],
                )
            )
            ordinals = frame.pop("ordinal").to_numpy()
            first = _validate(frame, suite, "COMPLETE")
            flags, flagged = _row_reasons(len(frame), first)
            for label, rows in flagged.items():
                flagged_total[label] = flagged_total.get(label, 0) + rows
            accepted = ~flags.any(axis=1)
            if accepted.any():
                second = _validate(frame.loc[accepted].reset_index(drop=True), suite, "SUMMARY")
                if not second.success:
                    raise GateError(
                        "accepted rows failed the suite on re-validation: "
                        + "; ".join(second.failures[:10])
                    )
            evaluated.append(first.evaluated_expectations)
            rejected = _rejected_table(ordinals, flags)
            if rejected.num_rows:
                con.register("__uba_rejected_chunk", rejected)
                con.execute(f"insert into {REJECTED} select * from __uba_rejected_chunk")
                con.unregister("__uba_rejected_chunk")
            if progress:
                done = min(start + chunk_rows, total)
                print(
                    f"gate: rows {start + 1:,}-{done:,} of {total:,}: "
                    f"{int(accepted.sum()):,} valid, {rejected.num_rows:,} quarantined "
                    f"({time.perf_counter() - chunk_clock:.1f}s)",
                    flush=True,
                )
        finished_at = _utc_now()
        con.execute(
            f"""
            insert into raw.events_validated
            select c.raw_id, c.event_id, c.user_id, c.anonymous_id, c.event_name, c.event_ts,
                c.received_at, c.session_id, coalesce(c.properties_text, '{{}}'), c.loaded_at
            from {CANDIDATES} as c
            anti join {REJECTED} as r on r.ordinal = c.ordinal
            order by c.ordinal
            """
        )
        con.execute(
            f"""
            insert into raw.events_quarantine
            select e.raw_id, e.source_file, e.row_number, r.reason, r.reasons,
                e.event_id, e.user_id, e.anonymous_id, e.event_name, e.event_ts,
                e.received_at, e.session_id, e.properties, e.load_error, e.raw_payload,
                ?::timestamp
            from {REJECTED} as r
            join {CANDIDATES} as c on c.ordinal = r.ordinal
            join raw.events as e on e.raw_id = c.raw_id
            order by r.ordinal
            """,
            [finished_at],
        )
        reasons = dict(
            con.execute(
                f"select reason, count(*) from {REJECTED} group by 1 order by 2 desc, 1"
            ).fetchall()
        )
        rows_quarantined = sum(reasons.values())
        rows_valid = total - rows_quarantined
        raw_total, validated_total, quarantine_total = con.execute(
            """select (select count(*) from raw.events),
                (select count(*) from raw.events_validated),
                (select count(*) from raw.events_quarantine)"""
        ).fetchone()
        if raw_total != validated_total + quarantine_total:
            raise GateError(
                f"counts do not reconcile: raw.events {raw_total:,} != validated "
                f"{validated_total:,} + quarantine {quarantine_total:,}"
            )
        evaluated_expectations = min(evaluated)
        con.execute(
            "insert into raw.gate_runs values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                started_at,
                finished_at,
                total,
                rows_valid,
                rows_quarantined,
                evaluated_expectations,
                True,
            ],
        )
        con.execute(f"drop table {CANDIDATES}")
        con.execute(f"drop table {REJECTED}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    if progress:
        print(
            f"gate: {total:,} checked, {rows_valid:,} valid, {rows_quarantined:,} quarantined "
            f"in {time.perf_counter() - clock:.1f}s",
            flush=True,
        )
    return GateResult(
        run_id=run_id,
        success=True,
        rows_checked=int(total),
        rows_valid=int(rows_valid),
        rows_quarantined=int(rows_quarantined),
        evaluated_expectations=int(evaluated_expectations),
        reasons={k: int(v) for k, v in reasons.items()},
        failures=[f"{label}: {rows} rows" for label, rows in flagged_total.items()],
    )
