"""Run the gate over every load batch not gated yet, in one transaction.

1. New batches: load ids in raw.load_log without a raw.gate_batches row (plus any released;
   late rows released become a new batch of their own, exempt from the lateness rule).
2. One SQL pass computes every row's verdict and reasons into a temp table (sql.verdicts_sql).
3. The batch suite (GX, one row per batch) decides which batches are blocked as corrupt.
4. Valid rows of passing batches go to raw.events_validated; every other row to
   raw.events_quarantine with its reasons (a blocked batch's clean rows as batch_blocked).
5. The reconciliation suite (GX) checks, per batch, raw = validated + quarantined and the
   validated rows' shape; any failure, or a suite evaluating nothing, rolls everything back.
6. raw.gate_batches and raw.gate_runs record the run; commit.

Great Expectations and the suites' GX context (1.5-2.5 s of imports, most of a small day's
gate) load in a thread (expectations.preload) while step 2's SQL runs (DuckDB releases the
GIL), not before it; `uba refresh` starts that thread during its load.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from expectations.gate import sql
from expectations.gate.dialect import Dialect, dialect_for
from expectations.gate.reasons import RuleContext
from expectations.gate.rules import GateRules
from expectations.gate.tables import ensure_gate_tables
from expectations.preload import start_suites_import
from python_models.ingest.contract import CONTRACT_COLUMNS
from python_models.ingest.loaders import next_load_id
from python_models.ingest.tracking_plan import read_tracking_plan
from python_models.warehouse import Warehouse, as_warehouse, transaction

if TYPE_CHECKING:
    from expectations.validation import FrameValidation


def validate_frame(frame, suite, data_docs_dir, run_id: str, docs: list) -> FrameValidation:
    """expectations.validation.validate_frame, imported once needed (see the docstring), with
    failing row positions; its Data Docs pages are left to `_render_docs` (added to `docs`)."""
    from expectations.validation import validate_frame as validate

    validation = validate(frame, suite, "COMPLETE", data_docs_dir, run_id, render_docs=False)
    docs.append(validation)
    return validation


def _render_docs(docs: list[FrameValidation]) -> None:
    """The run's Data Docs pages and the site's index, built once for both suites (a build
    renders the index and its templates again each time: half the docs' cost per run)."""
    if any(validation.docs_pages for validation in docs):
        from expectations.validation import render_data_docs

        render_data_docs(docs)


class GateError(RuntimeError):
    """The gate could not prove the written rows good; nothing of the run was written."""


@dataclass(frozen=True)
class BatchOutcome:
    load_id: int
    source_file: str
    status: str  # passed | blocked
    rows_checked: int
    rows_valid: int
    rows_quarantined: int
    rows_defective: int
    rows_unplanned: int
    defect_rate: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateResult:
    run_id: str
    success: bool
    rows_checked: int
    rows_valid: int
    rows_quarantined: int
    evaluated_expectations: int
    reasons: dict[str, int] = field(default_factory=dict)  # first reason -> rows
    batches: tuple[BatchOutcome, ...] = ()
    rows_unplanned: int = 0  # valid rows whose event name is not in the tracking plan
    max_quarantine_rate: float = 0.0
    data_docs: str | None = None

    @property
    def blocked(self) -> tuple[BatchOutcome, ...]:
        return tuple(b for b in self.batches if b.status == "blocked")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _checked(validation: FrameValidation, what: str) -> FrameValidation:
    if validation.evaluated_expectations == 0:
        raise GateError(f"the {what} suite evaluated zero expectations: refusing to pass rows")
    raised = [failure for failure in validation.failures if ": raised " in failure]
    if raised:
        raise GateError(f"the {what} suite could not evaluate: {'; '.join(raised[:5])}")
    return validation


def _flagged(validation: FrameValidation, action: str) -> dict[int, list[str]]:
    """Frame row -> why, for the failed expectations whose meta action is `action`."""
    flagged: dict[int, list[str]] = {}
    for config, rows in validation.failing_rows():
        meta = config.meta or {}
        if meta.get("action") != action:
            continue
        for row in rows:
            flagged.setdefault(row, []).append(meta.get("why", config.type))
    return flagged


def batch_frame(stats: pd.DataFrame) -> pd.DataFrame:
    """The batch suite's frame: verdict counts per batch as shares."""
    checked = stats["rows_checked"].clip(lower=1)
    valid = stats["rows_valid"].clip(lower=1)
    return pd.DataFrame(
        {
            "load_id": stats["load_id"],
            "rows_checked": stats["rows_checked"],
            "rows_valid": stats["rows_valid"],
            "defect_rate": stats["rows_defective"] / checked,
            "duplicate_share": stats["rows_duplicate"] / checked,
            "unplanned_share": stats["rows_unplanned"] / valid,
            "distinct_event_ts_share": stats["distinct_event_ts"] / valid,
        }
    )


def _new_batches(con: Warehouse, dialect: Dialect) -> None:
    """Load batches without a raw.gate_batches row (released ones lost theirs in _release)."""
    con.execute(
        dialect.create_temp_table(
            sql.NEW_BATCHES,
            """
        select load_id, source_file from raw.load_log as l
        where not exists (select 1 from raw.gate_batches as g where g.load_id = l.load_id)
        order by load_id
        """,
        )
    )


def _release(con: Warehouse, release: list[int]) -> None:
    """Forget the gating of blocked batches so this run gates them again, unblocked."""
    ids = ", ".join(str(int(i)) for i in release)
    blocked = {
        row[0]
        for row in con.execute(
            f"select load_id from raw.gate_batches where status = 'blocked' and load_id in ({ids})"
        ).fetchall()
    }
    missing = sorted(set(release) - blocked)
    if missing:
        raise GateError(f"not blocked batches, nothing to release: load_id {missing}")
    for table in ("raw.events_quarantine", "raw.gate_batches"):
        con.replace_rows(table, f"load_id in ({ids})", None, None)  # a rewrite on Spark


def _release_late(con: Warehouse, load_ids: list[int], released_at: datetime) -> None:
    """The rows of these gated batches quarantined as event_too_late alone become a new load
    batch each (raw.events copies under a new load_id, recorded in raw.gate_late_releases),
    which this run gates like any other except for the lateness rule. A new load id, not the
    old one: the models downstream have consumed the old batch already. The quarantine keeps
    the original rows (raw = validated + quarantine still holds)."""
    for load_id in load_ids:
        earlier = con.execute(
            "select load_id from raw.gate_late_releases where released_from = ?", [load_id]
        ).fetchone()
        if earlier:
            raise GateError(
                f"the late rows of load_id {load_id} were released already, as load_id {earlier[0]}"
            )
        late = con.execute(
            "select count(*) from raw.events_quarantine where load_id = ? "
            "and reasons = 'event_too_late'",
            [load_id],
        ).fetchone()[0]
        if not late:
            raise GateError(f"load_id {load_id} has no rows quarantined as event_too_late alone")
        (source_file,) = con.execute(
            "select source_file from raw.load_log where load_id = ?", [load_id]
        ).fetchone()
        new_id = next_load_id(con)
        tag = f"late-release-of-load-{load_id}"
        columns = ", ".join(CONTRACT_COLUMNS)
        con.execute(
            f"""insert into raw.events (raw_id, load_id, source_file, file_sha256, row_number,
                loaded_at, {columns}, load_error, raw_payload)
            select concat(e.raw_id, '+late'), ?, e.source_file, ?, e.row_number, e.loaded_at,
                {", ".join(f"e.{c}" for c in CONTRACT_COLUMNS)}, e.load_error, e.raw_payload
            from raw.events as e
            join raw.events_quarantine as q on q.load_id = e.load_id and q.raw_id = e.raw_id
            where e.load_id = ? and q.reasons = 'event_too_late'""",
            [new_id, tag, load_id],
        )
        con.execute(
            "insert into raw.load_log values (?, ?, ?, ?, ?, ?, ?)",
            [tag, new_id, f"late rows of load {load_id}: {source_file}", "release", late, 0,
             released_at],
        )  # fmt: skip
        con.execute(
            "insert into raw.gate_late_releases values (?, ?, ?, ?)",
            [new_id, load_id, late, released_at],
        )


def run_gate(
    con: Warehouse,
    rules: GateRules | None = None,
    progress: bool | Callable[[str], None] = False,
    release: list[int] | None = None,
    data_docs_dir: str | Path | None = None,
    release_late: list[int] | None = None,
) -> GateResult:
    """Gate every load batch not gated yet. Raises GateError (writing nothing) when the written
    rows cannot be shown to reconcile. A blocked batch is not an error: it is in the result
    (`.blocked`) and raw.gate_batches; `release` (load ids) gates blocked batches again with the
    corrupt-batch rule lifted for them; `release_late` (load ids) gates the batches' rows
    quarantined as event_too_late alone again, as a new batch, without the lateness rule."""
    rules = rules or GateRules.from_settings()
    say = _progress_writer(progress)
    release = sorted({int(r) for r in release or []})
    release_late = sorted({int(r) for r in release_late or []})
    plan = read_tracking_plan()
    con = as_warehouse(con)
    ctx = RuleContext(rules=rules, plan=plan, dialect=dialect_for(con))
    ensure_gate_tables(con)
    run_id = f"gate-{_utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    started_at = _utc_now()
    clock = time.perf_counter()
    restore = ctx.dialect.setting_to_restore(con)
    con.execute(ctx.dialect.session_setup)
    suites_loading = start_suites_import()  # started earlier by `uba refresh`'s load
    docs: list[FrameValidation] = []  # the run's validations, their Data Docs rendered at the end
    try:
        with transaction(con):
            if release:
                _release(con, release)
            if release_late:
                _release_late(con, release_late, started_at)
            _new_batches(con, ctx.dialect)
            ctx = _with_lateness(con, ctx)
            if say:
                say(f"gate: run {run_id}: checking new load batches in one SQL pass ...")
            con.execute(sql.repeated_sql(ctx))
            con.execute(sql.verdicts_sql(ctx))
            con.execute(sql.duplicates_sql(ctx))
            stats = con.execute(sql.batch_stats_sql(ctx)).df()
            total = int(stats["rows_checked"].sum()) if len(stats) else 0
            if say:
                say(
                    f"gate: {len(stats)} new load batch(es), {total:,} rows checked in SQL "
                    f"({time.perf_counter() - clock:.1f}s)"
                )
            frame = batch_frame(stats)
            suites_loading.join()  # an import that failed there raises again here
            from expectations.suites import gate_batches as batch_suites

            verdict = _checked(
                validate_frame(frame, batch_suites.build_suite(rules), data_docs_dir, run_id, docs),
                "batch",
            )
            blocking = _flagged(verdict, "block")
            warnings = _flagged(verdict, "warn")
            blocked = [
                int(frame["load_id"][row])
                for row in blocking
                if int(frame["load_id"][row]) not in release
            ]
            finished_at = _utc_now()
            if say:
                say(
                    f"gate: batch suite evaluated ({len(blocked)} blocked); writing valid and "
                    f"quarantined rows ({time.perf_counter() - clock:.1f}s)"
                )
            pieces: list = [None]  # one insert of every valid row
            if ctx.dialect.writes_in_slices:
                pieces = sql.write_slices(con.execute(sql.write_ranges_sql(blocked)).fetchall())
            for done, piece in enumerate(pieces, start=1):
                con.execute(sql.insert_validated_sql(ctx, blocked, piece))
                if say and len(pieces) > 1:  # a big first build's writes take minutes
                    say(
                        f"gate: valid rows written, slice {done}/{len(pieces)} "
                        f"({time.perf_counter() - clock:.1f}s)"
                    )
            con.execute(sql.insert_quarantine_sql(blocked), [finished_at])
            if say:
                say(f"gate: rows written; reconciling ({time.perf_counter() - clock:.1f}s)")
            reconciliation = _reconcile(con, ctx, data_docs_dir, run_id, docs)
            outcomes = _outcomes(stats, blocked, warnings)
            _record(con, run_id, outcomes, rules, finished_at)
            reasons = dict(
                con.execute(
                    f"""select reason, count(*) from raw.events_quarantine
                    where load_id in (select load_id from {sql.NEW_BATCHES})
                    group by 1 order by 2 desc, 1"""
                ).fetchall()
            )
            rows_quarantined = sum(reasons.values())
            evaluated = verdict.evaluated_expectations + reconciliation.evaluated_expectations
            con.execute(
                "insert into raw.gate_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, started_at, finished_at, len(outcomes), len(blocked), total,
                 total - rows_quarantined, rows_quarantined, evaluated, True],
            )  # fmt: skip
            for table in (sql.VERDICTS, sql.NEW_BATCHES, sql.REPEATED):
                con.execute(ctx.dialect.drop_temp_table(table))
    finally:
        con.execute(restore)
        _render_docs(docs)  # a failed run's pages too: they show why
    result = GateResult(
        run_id=run_id,
        success=True,
        rows_checked=total,
        rows_valid=total - rows_quarantined,
        rows_quarantined=rows_quarantined,
        evaluated_expectations=evaluated,
        reasons={k: int(v) for k, v in reasons.items()},
        batches=tuple(outcomes),
        rows_unplanned=int(stats["rows_unplanned"].sum()) if len(stats) else 0,
        max_quarantine_rate=rules.max_quarantine_rate,
        data_docs=str(Path(data_docs_dir) / "index.html") if data_docs_dir else None,
    )
    if say:
        say(
            f"gate: {total:,} checked, {result.rows_valid:,} valid, {rows_quarantined:,} "
            f"quarantined, {len(blocked)} batch(es) blocked in {time.perf_counter() - clock:.1f}s"
        )
    return result


def _with_lateness(con: Warehouse, ctx: RuleContext) -> RuleContext:
    """The context with what the lateness rule needs: the newest event time accepted before
    this run (one column's maximum) and the new batches that are released late rows."""
    newest = con.execute("select max(event_ts) from raw.events_validated").fetchone()[0]
    exempt = con.execute(
        f"""select load_id from raw.gate_late_releases
        where load_id in (select load_id from {sql.NEW_BATCHES}) order by 1"""
    ).fetchall()
    return replace(ctx, newest_event_ts=newest, late_exempt_loads=tuple(r[0] for r in exempt))


def _progress_writer(progress: bool | Callable[[str], None]) -> Callable[[str], None] | None:
    """Where progress lines go: a callable (the Dagster asset passes its logger), stdout
    (True, `uba gate`) or nowhere."""
    if callable(progress):
        return progress
    return (lambda line: print(line, flush=True)) if progress else None


def _reconcile(
    con: Warehouse, ctx: RuleContext, data_docs_dir, run_id: str, docs: list[FrameValidation]
) -> FrameValidation:
    from expectations.suites import gate_batches as batch_suites

    rules = ctx.rules
    counts = con.execute(sql.reconciliation_sql(ctx)).df()
    earliest = datetime.combine(rules.earliest_event_date, datetime.min.time(), tzinfo=UTC)
    loaded = con.execute(
        f"""select l.load_id, {ctx.dialect.epoch_seconds("l.loaded_at")} from raw.load_log as l
        where l.load_id in (select load_id from {sql.NEW_BATCHES})"""
    ).fetchall()
    ceilings = {load_id: at + rules.max_clock_skew_days * 86_400 for load_id, at in loaded}
    counts["earliest_epoch"] = earliest.timestamp()
    counts["ceiling_epoch"] = counts["load_id"].map(ceilings).astype(float)
    validation = _checked(
        validate_frame(
            counts, batch_suites.build_reconciliation_suite(rules), data_docs_dir, run_id, docs
        ),
        "reconciliation",
    )
    if not validation.success:
        raise GateError("the written rows do not reconcile: " + "; ".join(validation.failures[:10]))
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
    return validation


def _outcomes(
    stats: pd.DataFrame, blocked: list[int], warnings: dict[int, list[str]]
) -> list[BatchOutcome]:
    outcomes = []
    for row, item in enumerate(stats.itertuples(index=False)):
        checked = int(item.rows_checked)
        is_blocked = int(item.load_id) in blocked
        outcomes.append(
            BatchOutcome(
                load_id=int(item.load_id),
                source_file=str(item.source_file),
                status="blocked" if is_blocked else "passed",
                rows_checked=checked,
                rows_valid=0 if is_blocked else int(item.rows_valid),
                rows_quarantined=checked if is_blocked else int(item.rows_quarantined),
                rows_defective=int(item.rows_defective),
                rows_unplanned=int(item.rows_unplanned),
                defect_rate=int(item.rows_defective) / max(checked, 1),
                warnings=tuple(warnings.get(row, ())),
            )
        )
    return outcomes


def _record(
    con: Warehouse,
    run_id: str,
    outcomes: list[BatchOutcome],
    rules: GateRules,
    gated_at: datetime,
) -> None:
    if not outcomes:
        return
    con.executemany(
        "insert into raw.gate_batches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [o.load_id, run_id, o.source_file, o.status, o.rows_checked, o.rows_valid,
             o.rows_quarantined, o.rows_defective, o.rows_unplanned, o.defect_rate,
             rules.max_quarantine_rate, "; ".join(o.warnings) or None, gated_at]
            for o in outcomes
        ],
    )  # fmt: skip
