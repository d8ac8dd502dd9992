"""`uba gate`: run the raw-events quality gate and print a summary.

Exit status: 0 every new batch passed; 1 the gate failed and wrote nothing (GateError), or the
tracking plan / settings are malformed, or the warehouse stayed busy; 3 at least one batch was
blocked as corrupt (its rows are in raw.events_quarantine with their reasons; release it with
`uba gate --release LOAD_ID` once reviewed). Rows quarantined as event_too_late (older than
UBA_LATE_WINDOW_DAYS before the newest accepted event) come in, after review, with
`uba gate --release-late LOAD_ID`: they are gated again as a new batch without that rule.
"""

from __future__ import annotations

import argparse
import sys

EXIT_BLOCKED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duckdb", help="warehouse file (default $UBA_DUCKDB_PATH)")
    parser.add_argument(
        "--max-quarantine-rate",
        type=float,
        default=None,
        help="block a batch whose share of defective rows is above this "
        "(default $UBA_MAX_QUARANTINE_RATE, 0.2)",
    )
    parser.add_argument(
        "--release",
        type=int,
        nargs="+",
        metavar="LOAD_ID",
        default=[],
        help="gate these blocked batches again without the corrupt-batch rule",
    )
    parser.add_argument(
        "--release-late",
        type=int,
        nargs="+",
        metavar="LOAD_ID",
        default=[],
        help="gate the rows of these batches quarantined as event_too_late (alone) again, as a "
        "new batch, without the lateness rule (a deliberate backfill)",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="skip rendering Great Expectations Data Docs"
    )


def format_summary(result) -> str:
    lines = [
        f"gate run {result.run_id}",
        f"{'checked':<24}{result.rows_checked:>12,}",
        f"{'valid':<24}{result.rows_valid:>12,}",
        f"{'quarantined':<24}{result.rows_quarantined:>12,}",
    ]
    for reason, rows in sorted(result.reasons.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {reason:<24}{rows:>10,}")
    if result.rows_unplanned:
        lines.append(f"{'not in tracking plan':<24}{result.rows_unplanned:>12,}  (kept, flagged)")
    lines.append(f"{'expectations evaluated':<24}{result.evaluated_expectations:>12,}")
    for batch in result.batches:
        for warning in batch.warnings:
            lines.append(f"warning: load {batch.load_id} ({batch.source_file}): {warning}")
    for batch in result.blocked:
        lines.append(
            f"BLOCKED load {batch.load_id} ({batch.source_file}): {batch.rows_defective:,} of "
            f"{batch.rows_checked:,} rows defective ({batch.defect_rate:.1%} > "
            f"{result.max_quarantine_rate:.1%}); all its rows are in raw.events_quarantine"
        )
    if result.data_docs:
        lines.append(f"data docs: {result.data_docs}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from expectations.gate import GateError, GateRules, run_gate
    from python_models.config import SettingsError, get_settings
    from python_models.ingest.tracking_plan import TrackingPlanError
    from python_models.warehouse import WarehouseBusyError, writer

    try:
        overrides = {}
        if args.max_quarantine_rate is not None:
            overrides["max_quarantine_rate"] = args.max_quarantine_rate
        rules = GateRules.from_settings(**overrides)
        docs = None if args.no_docs else get_settings().reports_dir / "data_docs"
        with writer(args.duckdb, purpose="uba gate") as con:
            result = run_gate(
                con,
                rules=rules,
                progress=True,
                release=args.release,
                release_late=args.release_late,
                data_docs_dir=docs,
            )
    except GateError as exc:
        print(f"uba gate: FAILED, nothing written: {exc}", file=sys.stderr)
        return 1
    except (SettingsError, TrackingPlanError, WarehouseBusyError) as exc:
        print(f"uba gate: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result))
    late = result.reasons.get("event_too_late", 0)
    if late:
        print(
            f"{late:,} event(s) stamped more than {rules.late_window_days:g} days before the "
            "newest accepted event were quarantined as event_too_late (raw.events_quarantine."
            "detail says how late); after review, `uba gate --release-late LOAD_ID` lets a "
            "batch's late rows in"
        )
    if result.blocked:
        blocked = result.blocked
        print(
            f"uba gate: {len(blocked)} batch(es) blocked as corrupt: "
            + ", ".join(
                f"load {b.load_id} {b.rows_defective:,}/{b.rows_checked:,} defective"
                for b in blocked
            ),
            file=sys.stderr,
        )
        return EXIT_BLOCKED
    return 0
