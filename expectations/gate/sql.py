"""The gate's SQL: one pass over the new load batches computes each row's verdict and reasons.

1. `repeated_sql`: the event_ids that occur more than once in the new batches or were accepted
   before (a hash aggregate of one column; usually about 1% of the rows).
2. `verdicts_sql`: ONE streaming pass over the new raw rows: parse and clean each row once,
   evaluate every reason of the matrix (expectations/gate/reasons.py), and keep each row's
   verdict and parsed times. A row whose event_id was accepted before is a duplicate here
   already.
3. `duplicates_sql`: among the copies of an event_id repeated within the new batches, every copy
   but the one kept gets duplicate_event_id: a window over those few rows only.
The verdict table is narrow: the row's key (load_id, row_number), its parsed times, reasons and
flags, and the event_id of a repeated id's copies only. The inserts read the text back from
raw.events by that key: the cleaned columns of a valid row, the raw text of a quarantined one.
A wide one (every cleaned text column) filled the DuckDB pool and spilled, and being made inside
the gate's transaction it was read back on one thread (DuckDB scans a transaction's own temp
rows so): at 10M events the validated rows' insert alone took 15.4 s, the whole gate 42-45 s
against 27-30 s now. Nothing is pulled into Python.
"""

from __future__ import annotations

from expectations.gate.dialect import sql_literal
from expectations.gate.reasons import (
    BATCH_BLOCKED,
    NOT_DEFECT_REASONS,
    REASONS,
    RuleContext,
    property_keys,
)
from python_models.ingest.contract import CONTRACT_COLUMNS, ID_COLUMNS

VERDICTS = "__uba_gate_verdicts"
NEW_BATCHES = "__uba_gate_new_batches"
REPEATED = "__uba_gate_repeated"

# Columns of raw.events_validated, in order (load_id last: added by the load-batch layout).
VALIDATED_COLUMNS = ("raw_id", *CONTRACT_COLUMNS, "loaded_at", "load_id")
# Raw columns a quarantine row keeps as loaded (text).
QUARANTINE_RAW_COLUMNS = (
    "source_file",
    "row_number",
    *CONTRACT_COLUMNS,
    "load_error",
    "raw_payload",
)


def _new_rows(ctx: RuleContext) -> str:
    return f"raw.events as e where e.load_id in (select load_id from {NEW_BATCHES})"


def repeated_sql(ctx: RuleContext) -> str:
    """event_id -> seen_before (already in raw.events_validated) for the ids that need a
    duplicate decision. The ids repeated within the new batches are found among those whose
    64-bit hash repeats: grouped by the text itself, a first build's hash table held every id
    (10M events spilled 1.2 GiB beyond a 400 MB pool; none by hash)."""
    event_id = ctx.dialect.clean_text("e.event_id")
    id_hash = ctx.dialect.id_hash(event_id)
    return ctx.dialect.create_temp_table(
        REPEATED,
        f"""
    with repeated_hashes as (
        select {id_hash} as id_hash
        from {_new_rows(ctx)} and {event_id} is not null
        group by 1 having count(*) > 1
    ),
    in_batch as (
        select {event_id} as event_id
        from {_new_rows(ctx)}
            and {event_id} is not null
            and {id_hash} in (select id_hash from repeated_hashes)
        group by 1 having count(*) > 1
    ),
    before as (
        select distinct v.event_id
        from raw.events_validated as v
        where v.event_id in (select {event_id} from {_new_rows(ctx)})
    )
    select coalesce(b.event_id, i.event_id) as event_id, b.event_id is not null as seen_before
    from in_batch as i
    full outer join before as b on b.event_id = i.event_id
    """,
    )


def _reasons_text(ctx: RuleContext) -> str:
    """'code;code' for a row's failed checks in matrix order; unparseable rows get only that.
    duplicate_event_id is the test `is_duplicate` (seen before); repeats within the batch are
    added by duplicates_sql."""
    tests = [f"coalesce({reason.test(ctx)}, false)" for reason in REASONS]
    items = ",\n".join(
        f"case when {test} then '{reason.code}' end"
        for test, reason in zip(tests, REASONS, strict=True)
    )
    # The text is built only for rows that fail something (a few percent): CASE evaluates its
    # THEN branch for the rows that take it alone.
    return (
        "case when load_error is not null then 'unparseable_row' "
        f"when {' or '.join(tests)} then concat_ws(';', {items}) end"
    )


def _detail_text(ctx: RuleContext) -> str:
    """What the reasons that explain themselves say for the row (empty or NULL for the others)."""
    items = [
        f"case when coalesce({test}, false) then {reason.detail(ctx)} end"
        for reason in REASONS
        if reason.detail is not None and (test := reason.test(ctx)) != "false"
    ]
    return f"concat_ws('; ', {', '.join(items)})" if items else ctx.dialect.as_text("null")


def _cleaned(ctx: RuleContext, column: str) -> str:
    """Raw text column `column` of raw.events (as e) as the gate judges and keeps it."""
    return ctx.dialect.clean_text(f"e.{column}")


def _validated_values(ctx: RuleContext) -> dict[str, str]:
    """raw.events_validated's columns from a valid row of raw.events (as e) and its verdict
    (as v), in the table's order."""
    cleaned = {c: _cleaned(ctx, c) for c in CONTRACT_COLUMNS}
    values = {
        "raw_id": "e.raw_id",
        **cleaned,
        "event_ts": "v.event_ts",
        "received_at": "v.received_at",
        "properties": f"coalesce({cleaned['properties']}, '{{}}')",
        "loaded_at": "e.loaded_at",
        "load_id": "e.load_id",
    }
    return {column: values[column] for column in VALIDATED_COLUMNS}


def verdicts_sql(ctx: RuleContext) -> str:
    d = ctx.dialect
    planned = ", ".join(sql_literal(name) for name in ctx.plan.event_names)
    keys = property_keys(ctx.plan)
    values = ",\n".join(
        f"{d.list_item('prop_values', i + 1)} as p_{key}" for i, key in enumerate(keys)
    )
    cleaned = ",\n".join(f"{_cleaned(ctx, c)} as {c}" for c in (*ID_COLUMNS, "event_name"))
    return d.create_temp_table(
        VERDICTS,
        f"""
    with batch as (
        select e.load_id, e.row_number, e.loaded_at, e.load_error,
            e.event_ts as event_ts_text, e.received_at as received_at_text,
            {cleaned},
            {_cleaned(ctx, "properties")} as properties_text,
            {d.unusual_text([f"e.{c}" for c in ID_COLUMNS])} as has_unusual_text
        from {_new_rows(ctx)}
    ),
    parsed_times as {d.materialized}(
        select *,
            -- DuckDB's own parser first (fast); the hand-written one for the ISO forms it
            -- does not take (a comma before the fraction, 'z', a space before the offset).
            coalesce(
                {d.utc_timestamp_fast("event_ts_text")},
                {d.utc_timestamp("event_ts_text", d.timestamp_parts("event_ts_text"))}
            ) as event_ts_utc,
            coalesce(
                {d.utc_timestamp_fast("received_at_text")},
                {d.utc_timestamp("received_at_text", d.timestamp_parts("received_at_text"))}
            ) as received_at_utc,
            coalesce(event_name in ({planned}), false) as is_planned,
            properties_text is null or {d.json_is_object("properties_text")}
                as properties_is_object
        from batch
    ),
    extracted as (
        -- JSON functions raise on malformed text: they only ever see a valid object.
        select *,
            {d.json_values("case when properties_is_object then properties_text end", keys)}
                as prop_values
        from parsed_times
    ),
    parsed as {d.materialized}(
        select *, {values}
        from extracted
    ),
    judged as {d.materialized}(
        select p.*,
            -- staging casts properties.revenue to a double: it must be a finite number (a
            -- numeric string casts too) or absent / null.
            {d.to_double(d.value_text("p.p_revenue"))} as revenue_value,
            coalesce(r.seen_before, false) as is_duplicate,
            r.event_id is not null and not r.seen_before as in_repeated
        from parsed as p
        left join {REPEATED} as r on r.event_id = p.event_id
    ),
    verdicts as (
        select load_id, row_number, event_ts_utc as event_ts, received_at_utc as received_at,
            case when in_repeated then event_id end as event_id, is_planned, in_repeated,
            {_reasons_text(ctx)} as reasons,
            {_detail_text(ctx)} as detail
        from judged
    )
    -- any reason but being late or a duplicate is a defect (reasons.NOT_DEFECT_CODES)
    select *,
        coalesce(reasons not in ({", ".join(sql_literal(r) for r in NOT_DEFECT_REASONS)}), false)
            as is_defective
    from verdicts
    """,
    )


# The verdict table's columns (verdicts_sql), for engines that rewrite it to set a column.
VERDICT_COLUMNS = (
    "load_id", "row_number", "event_ts", "received_at", "event_id", "is_planned", "in_repeated",
    "reasons", "detail", "is_defective",
)  # fmt: skip


def duplicates_sql(ctx: RuleContext) -> str:
    """Which copy of an event_id repeated within the new batches is kept: the first by
    received_at (then load batch, then row in the file) among the copies without a reason (a
    defect, or being late), so a bad first copy does not take a good later one down with it.
    The others get duplicate_event_id appended to their reasons."""
    ranked = f"""
        select load_id, row_number, row_number() over (
            partition by event_id
            order by reasons is not null, received_at asc nulls last, load_id, row_number
        ) as copy_rank
        from {VERDICTS}
        where in_repeated
    """
    return ctx.dialect.set_column_where(
        VERDICTS,
        VERDICT_COLUMNS,
        "reasons",
        "concat_ws(';', v.reasons, 'duplicate_event_id')",
        ranked,
        "ranked.load_id = v.load_id and ranked.row_number = v.row_number and ranked.copy_rank > 1",
    )


def batch_stats_sql(ctx: RuleContext) -> str:
    """Per new load batch: counts from the verdicts (before anything is written). The verdicts
    are aggregated before the join: joined first, DuckDB built its hash table on every verdict
    row and ran out of a 700 MB pool at 10M events."""
    return f"""
    with counts as (
        select load_id,
            count(*) as rows_checked,
            count(*) filter (where reasons is null) as rows_valid,
            count(*) filter (where reasons is not null) as rows_quarantined,
            count(*) filter (where is_defective) as rows_defective,
            count(*) filter (where reasons = 'duplicate_event_id') as rows_duplicate,
            count(*) filter (where reasons is null and not is_planned) as rows_unplanned,
            {ctx.dialect.approx_distinct("event_ts")} filter (where reasons is null)
                as distinct_event_ts
        from {VERDICTS}
        group by load_id
    )
    select b.load_id, b.source_file,
        coalesce(c.rows_checked, 0) as rows_checked,
        coalesce(c.rows_valid, 0) as rows_valid,
        coalesce(c.rows_quarantined, 0) as rows_quarantined,
        coalesce(c.rows_defective, 0) as rows_defective,
        coalesce(c.rows_duplicate, 0) as rows_duplicate,
        coalesce(c.rows_unplanned, 0) as rows_unplanned,
        coalesce(c.distinct_event_ts, 0) as distinct_event_ts
    from {NEW_BATCHES} as b
    left join counts as c on c.load_id = b.load_id
    order by b.load_id
    """


def _id_list(ids: list[int]) -> str:
    """SQL list of load ids; never empty (`x not in (null)` would reject every row)."""
    return ", ".join(str(int(i)) for i in ids) or "-1"


# Valid rows are written a slice at a time: the insert's join hashes its slice's verdicts, so
# its memory does not grow with the batch (10M events written in one join spilled 2.4 GiB
# beyond a 400 MB pool). A slice is part of one big batch or several whole small ones (a
# backlog of many small files is not written one statement a file).
WRITE_SLICE_ROWS = 2_000_000


def write_ranges_sql(blocked: list[int]) -> str:
    """Per load batch not blocked: the first and last row_number of its valid rows, and their
    count."""
    return f"""
    select load_id, min(row_number), max(row_number), count(*)
    from {VERDICTS}
    where reasons is null and load_id not in ({_id_list(blocked)})
    group by 1 order by 1
    """


def write_slices(ranges: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """(first load_id, last load_id, first row_number, last row_number) slices covering each
    batch's (load_id, first, last, rows) range: a batch of more than WRITE_SLICE_ROWS rows in
    row-number spans of that many, the others whole, consecutive ones together up to that
    many rows."""
    slices: list[tuple[int, int, int, int]] = []
    group: list[tuple[int, int, int]] = []  # (load_id, first, last) of small batches
    group_rows = 0

    def close_group() -> None:
        nonlocal group_rows
        if group:
            first_row = min(first for _, first, _ in group)
            last_row = max(last for _, _, last in group)
            slices.append((group[0][0], group[-1][0], first_row, last_row))
            group.clear()
            group_rows = 0

    for load_id, first, last, rows in ((int(v) for v in r) for r in ranges):
        if rows > WRITE_SLICE_ROWS:
            close_group()
            slices.extend(
                (load_id, load_id, start, min(start + WRITE_SLICE_ROWS - 1, last))
                for start in range(first, last + 1, WRITE_SLICE_ROWS)
            )
            continue
        if group_rows + rows > WRITE_SLICE_ROWS:
            close_group()
        group.append((load_id, first, last))
        group_rows += rows
    close_group()
    return slices


def insert_validated_sql(
    ctx: RuleContext, blocked: list[int], piece: tuple[int, int, int, int] | None = None
) -> str:
    """The valid rows of the batches not blocked, their text cleaned again from raw.events (the
    expressions the verdicts judged: _cleaned), joined by key as the quarantine's insert is;
    with `piece` (write_slices), only that slice's, its bounds on both tables' scans (each
    stored in load and row order)."""
    values = _validated_values(ctx)
    bounds = ""
    if piece is not None:
        first_load, last_load, first_row, last_row = (int(v) for v in piece)
        loads = f"between {first_load} and {last_load}"
        rows = f"between {first_row} and {last_row}"
        bounds = f"""
        and v.load_id {loads} and v.row_number {rows}
        and e.load_id {loads} and e.row_number {rows}"""
    return f"""
    insert into raw.events_validated ({", ".join(values)})
    select {", ".join(values.values())}
    from raw.events as e
    join {VERDICTS} as v on v.load_id = e.load_id and v.row_number = e.row_number
    where v.reasons is null and v.load_id not in ({_id_list(blocked)}){bounds}
    """


def insert_quarantine_sql(blocked: list[int]) -> str:
    """Rejected rows, and a blocked batch's other rows as batch_blocked, with their raw text."""
    raw = ", ".join(f"e.{c}" for c in QUARANTINE_RAW_COLUMNS)
    columns = (
        "raw_id, load_id, reason, reasons, "
        + ", ".join(QUARANTINE_RAW_COLUMNS)
        + ", quarantined_at, detail"
    )
    return f"""
    insert into raw.events_quarantine ({columns})
    with rejected as (
        select load_id, row_number, coalesce(reasons, '{BATCH_BLOCKED}') as reasons,
            nullif(detail, '') as detail
        from {VERDICTS}
        where reasons is not null or load_id in ({_id_list(blocked)})
    )
    select e.raw_id, e.load_id, split_part(r.reasons, ';', 1), r.reasons, {raw}, ?, r.detail
    from rejected as r
    join raw.events as e on e.load_id = r.load_id and e.row_number = r.row_number
    order by e.load_id, e.row_number
    """


def reconciliation_sql(ctx: RuleContext) -> str:
    """Per gated batch, after the writes: raw rows vs rows now in either table, and what the
    validated rows of the batch look like (the reconciliation suite's inputs)."""
    return f"""
    with raw_rows as (
        select load_id, count(*) as rows_raw
        from raw.events where load_id in (select load_id from {NEW_BATCHES}) group by 1
    ),
    valid_rows as (
        select load_id, count(*) as rows_in_validated,
            count(*) filter (
                where event_id is null or event_name is null or event_ts is null
                    or received_at is null or (user_id is null and anonymous_id is null)
            ) as validated_missing_required,
            {ctx.dialect.epoch_seconds("min(event_ts)")} as min_event_ts_epoch,
            {ctx.dialect.epoch_seconds("max(event_ts)")} as max_event_ts_epoch
        from raw.events_validated
        where load_id in (select load_id from {NEW_BATCHES})
        group by 1
    ),
    quarantined_rows as (
        select load_id, count(*) as rows_in_quarantine
        from raw.events_quarantine
        where load_id in (select load_id from {NEW_BATCHES}) group by 1
    )
    select b.load_id,
        coalesce(r.rows_raw, 0) as rows_raw,
        coalesce(v.rows_in_validated, 0) + coalesce(q.rows_in_quarantine, 0) as rows_accounted,
        coalesce(v.validated_missing_required, 0) as validated_missing_required,
        v.min_event_ts_epoch, v.max_event_ts_epoch
    from {NEW_BATCHES} as b
    left join raw_rows as r using (load_id)
    left join valid_rows as v using (load_id)
    left join quarantined_rows as q using (load_id)
    order by b.load_id
    """
