"""The reason matrix: every quarantine reason, what it means, and its SQL test, in one list.

A row's `reasons` are the codes whose test is true, in this order, joined by ';'; `reason` is
the first. The tests read the columns of the verdict query's `judged` step
(expectations/gate/sql.py): trimmed ids (empty text = missing), has_unusual_text (an id holds a
control or non-ASCII character: the exact identifier test runs on those rows only),
event_ts_utc / received_at_utc (parsed, NULL when unparseable), loaded_at, properties_text,
properties_is_object, is_planned, p_<key> for every property key the rules read
(property_keys(): its JSON value, NULL when absent or when properties are not an object),
revenue_value (the number, NULL when not one), is_duplicate (accepted in an earlier run) and
load_id. A reason may also say why in words (`detail`, SQL text; the quarantine's detail
column).
Copies repeated within the new batches are decided after every other reason (which copy to
keep depends on them): sql.duplicates_sql appends duplicate_event_id to the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from expectations.gate.dialect import DuckDBDialect, sql_literal
from expectations.gate.rules import GateRules
from python_models.ingest.contract import ID_COLUMNS
from python_models.ingest.tracking_plan import PropertySpec, TrackingPlan

MAX_PROPERTIES_BYTES = 65_536
# Reasons outside the matrix: rows of a blocked batch that had no defect of their own.
BATCH_BLOCKED = "batch_blocked"


@dataclass(frozen=True)
class RuleContext:
    rules: GateRules
    plan: TrackingPlan
    dialect: DuckDBDialect
    # The newest event time in raw.events_validated before the run (None: empty warehouse),
    # and the new load batches the lateness rule does not apply to (released late rows).
    newest_event_ts: datetime | None = None
    late_exempt_loads: tuple[int, ...] = ()

    @property
    def late_floor(self) -> datetime | None:
        """Event times before this are event_too_late; None when the rule does not apply."""
        if self.newest_event_ts is None or not self.rules.late_window_days:
            return None
        return self.newest_event_ts - timedelta(days=self.rules.late_window_days)


@dataclass(frozen=True)
class Reason:
    code: str
    meaning: str
    test: Callable[[RuleContext], str]  # SQL boolean: true when the row fails
    # SQL text saying why, for the failing rows (None: the code says it all).
    detail: Callable[[RuleContext], str] | None = None


def _unknown_event(ctx: RuleContext) -> str:
    if ctx.rules.unknown_event_policy != "quarantine":
        return "false"
    return "event_name is not null and not is_planned"


def property_keys(plan: TrackingPlan) -> list[str]:
    """Every properties key a rule reads: revenue (staging casts it) and the plan's keys."""
    keys = ["revenue"]
    for specs in plan.declared_properties().values():
        keys += [spec.name for spec in specs if spec.name not in keys]
    return keys


def _any_invalid_id(ctx: RuleContext) -> str:
    tests = [f"coalesce({ctx.dialect.invalid_identifier(c)}, false)" for c in ID_COLUMNS]
    return "(case when has_unusual_text then " + " or ".join(tests) + " else false end)"


def _kind_matches(ctx: RuleContext, spec: PropertySpec) -> str:
    """True when the declared property is absent, null, or of its declared type."""
    d = ctx.dialect
    kind = d.value_kind(f"p_{spec.name}")
    text = d.value_text(f"p_{spec.name}")
    accepted = {
        # Numbers also as text holding one: exports often quote them, and staging casts.
        "number": f"{kind} in ('integer', 'number') or ({kind} = 'string' and "
        f"{d.to_double(text)} is not null)",
        "integer": f"{kind} = 'integer' or ({kind} = 'string' and {d.is_integer_text(text)})",
    }.get(spec.type, f"{kind} = {sql_literal(spec.type)}")
    return f"(coalesce({kind}, 'null') = 'null' or {accepted})"


def _per_event(ctx: RuleContext, test: Callable[[tuple[PropertySpec, ...]], str | None]) -> str:
    """CASE over event_name: the test for each planned event that declares properties."""
    branches = []
    for name, specs in ctx.plan.declared_properties().items():
        sql = test(specs)
        if sql:
            branches.append(f"when {sql_literal(name)} then {sql}")
    if not branches:
        return "false"
    return f"(case event_name {' '.join(branches)} else false end)"


def _invalid_property_type(ctx: RuleContext) -> str:
    revenue_kind = ctx.dialect.value_kind("p_revenue")
    revenue = f"(coalesce({revenue_kind}, 'null') <> 'null' and revenue_value is null)"

    def wrong(specs):
        return "not (" + " and ".join(_kind_matches(ctx, s) for s in specs) + ")"

    return f"(properties_is_object and ({revenue} or {_per_event(ctx, wrong)}))"


def _missing_property(ctx: RuleContext) -> str:
    d = ctx.dialect

    def absent(specs):
        required = [s for s in specs if s.required]
        if not required:
            return None
        checks = [f"coalesce({d.value_kind(f'p_{s.name}')}, 'null') = 'null'" for s in required]
        return "(properties_text is null or " + " or ".join(checks) + ")"

    return f"(properties_is_object and {_per_event(ctx, absent)})"


def _implausible_revenue(ctx: RuleContext) -> str:
    low, high = ctx.rules.revenue_min, ctx.rules.revenue_max
    return f"(revenue_value < {low!r} or revenue_value > {high!r})"


def _event_ts_out_of_range(ctx: RuleContext) -> str:
    d = ctx.dialect
    earliest = d.timestamp_literal(ctx.rules.earliest_event_date)
    # Upper bound per row: min(received_at, loaded_at) + clock skew, so the verdict depends on
    # the data only, never on when the gate happens to run.
    ceiling = d.plus_days("least(received_at_utc, loaded_at)", ctx.rules.max_clock_skew_days)
    return f"(event_ts_utc < {earliest} or event_ts_utc > {ceiling})"


def _event_too_late(ctx: RuleContext) -> str:
    floor = ctx.late_floor
    if floor is None:
        return "false"
    exempt = ", ".join(str(int(i)) for i in ctx.late_exempt_loads) or "-1"
    return f"(event_ts_utc < {ctx.dialect.timestamp_literal(floor)} and load_id not in ({exempt}))"


def _late_detail(ctx: RuleContext) -> str:
    """'event_too_late: event_ts ... is 12.5 days before the newest accepted event time ...;
    UBA_LATE_WINDOW_DAYS = 7 ...' (only rendered where the rule applies: a newest event)."""
    d, newest = ctx.dialect, ctx.dialect.timestamp_literal(ctx.newest_event_ts)
    late_days = f"({d.epoch_seconds(newest)} - {d.epoch_seconds('event_ts_utc')}) / 86400.0"
    return (
        f"concat('event_too_late: event_ts ', {d.as_text('event_ts_utc')}, ' is ', "
        f"{d.as_text(f'cast({late_days} as decimal(18, 1))')}, ' days before the newest "
        f"accepted event time ', {d.as_text(newest)}, '; UBA_LATE_WINDOW_DAYS = "
        f"{ctx.rules.late_window_days:g} (after review: uba gate --release-late ', "
        f"{d.as_text('load_id')}, ')')"
    )


def _invalid_received_at(ctx: RuleContext) -> str:
    # A row cannot have been received after it was loaded (beyond clock skew).
    ceiling = ctx.dialect.plus_days("loaded_at", ctx.rules.max_clock_skew_days)
    return f"(received_at_utc is null or received_at_utc > {ceiling})"


REASONS: tuple[Reason, ...] = (
    Reason(
        "unparseable_row",
        "the row or line could not be read into fields (load_error says why); no other reason "
        "is given",
        lambda ctx: "load_error is not null",
    ),
    Reason("missing_event_id", "event_id absent or empty", lambda ctx: "event_id is null"),
    Reason(
        "invalid_identifier",
        "an id (event, user, anonymous, session) holds a control character (NUL, tab...) or "
        "only invisible characters (no-break or zero-width spaces)",
        _any_invalid_id,
    ),
    Reason("missing_event_name", "event_name absent or empty", lambda ctx: "event_name is null"),
    Reason(
        "unknown_event_name",
        "event_name not in the tracking plan, when UBA_UNKNOWN_EVENT_POLICY=quarantine",
        _unknown_event,
    ),
    Reason(
        "missing_identity",
        "neither user_id nor anonymous_id",
        lambda ctx: "user_id is null and anonymous_id is null",
    ),
    Reason(
        "invalid_event_ts",
        "event_ts absent or not an ISO-8601 time",
        lambda ctx: "event_ts_utc is null",
    ),
    Reason(
        "invalid_received_at",
        "received_at absent, unparseable, or later than the load plus the clock skew",
        _invalid_received_at,
    ),
    Reason(
        "event_ts_out_of_range",
        "event_ts before the earliest event date, or later than received_at (or the load) "
        "plus the clock skew",
        _event_ts_out_of_range,
    ),
    Reason(
        "event_too_late",
        "event_ts more than UBA_LATE_WINDOW_DAYS before the newest event time already accepted "
        "(detail says how late); `uba gate --release-late LOAD_ID` lets the batch's rows "
        "quarantined for this alone in",
        _event_too_late,
        _late_detail,
    ),
    Reason(
        "invalid_properties_json",
        "properties present but not a JSON object",
        lambda ctx: "not properties_is_object",
    ),
    Reason(
        "properties_too_large",
        f"properties text over {MAX_PROPERTIES_BYTES:,} bytes",
        lambda ctx: f"{ctx.dialect.text_bytes('properties_text')} > {MAX_PROPERTIES_BYTES}",
    ),
    Reason(
        "invalid_property_type",
        "properties.revenue not a number, or a property the tracking plan declares for the "
        "event has another type",
        _invalid_property_type,
    ),
    Reason(
        "missing_property",
        "a property the tracking plan requires for the event is absent or null",
        _missing_property,
    ),
    Reason(
        "implausible_revenue",
        "properties.revenue outside [UBA_REVENUE_MIN, UBA_REVENUE_MAX]",
        _implausible_revenue,
    ),
    Reason(
        "duplicate_event_id",
        "the event_id was already accepted, or another copy in the run is kept (the first by "
        "received_at, then load batch and row, among copies without other defects)",
        lambda ctx: "is_duplicate",
    ),
)
REASON_CODES: tuple[str, ...] = tuple(reason.code for reason in REASONS)
# Reasons that say the data is broken; a batch's share of rows with one decides if it is
# corrupt. A duplicate is not a defect (re-sent data is normal), nor a late event (a well-formed
# row held back by policy: a backfill file is all late rows, and its fresh rows still pass).
NOT_DEFECT_CODES: tuple[str, ...] = ("event_too_late", "duplicate_event_id")
# Every `reasons` text made of those alone (codes in matrix order).
NOT_DEFECT_REASONS: tuple[str, ...] = tuple(
    ";".join(c for c in REASON_CODES if c in chosen)
    for chosen in (("event_too_late",), ("duplicate_event_id",), NOT_DEFECT_CODES)
)
