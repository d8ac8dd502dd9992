"""`uba load PATH...`: load event files into raw.events (and record schema drift)."""

from __future__ import annotations

import argparse
import sys

from python_models.ingest.files import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="files or directories of event files")
    parser.add_argument(
        "--format", dest="fmt", choices=FORMATS, help="override the format from the extension"
    )
    parser.add_argument("--duckdb", help="warehouse file (default $UBA_DUCKDB_PATH)")
    parser.add_argument(
        "--accept-drift",
        action="store_true",
        help="accept every pending schema-drift finding (after reviewing raw.schema_drift)",
    )


def _accept_drift(con) -> None:
    from datetime import UTC, datetime

    from python_models.ingest.drift import accept_drift, describe_finding, pending_drift

    pending = pending_drift(con)
    for finding in pending:
        print(f"accepting {describe_finding(*finding)}")
    accepted = accept_drift(con, datetime.now(UTC).replace(tzinfo=None))
    print(f"accepted {accepted} schema drift finding(s)")


def run(args: argparse.Namespace) -> int:
    from python_models.ingest.files import IngestError
    from python_models.ingest.loaders import ensure_raw_tables, load_path
    from python_models.ingest.tracking_plan import TrackingPlanError
    from python_models.warehouse import WarehouseBusyError, writer

    if not args.paths and not args.accept_drift:
        print("uba load: give files or directories to load (or --accept-drift)", file=sys.stderr)
        return 2
    try:
        with writer(args.duckdb, purpose="uba load") as con:
            if args.paths:
                result = load_path(con, list(args.paths), fmt=args.fmt)
                total = con.execute("select count(*) from raw.events").fetchone()[0]
                unreadable = (
                    f", {result.rows_unreadable:,} unreadable" if result.rows_unreadable else ""
                )
                drift = (
                    f"; {result.drift_findings} schema drift finding(s): see raw.schema_drift, "
                    "then `uba load --accept-drift`"
                    if result.drift_findings
                    else ""
                )
                print(
                    f"loaded {result.files_loaded} file(s), {result.rows_loaded:,} rows"
                    f"{unreadable}; skipped {result.files_skipped} already-loaded or empty "
                    f"file(s); raw.events now {total:,} rows{drift}"
                )
            if args.accept_drift:
                ensure_raw_tables(con)
                _accept_drift(con)
    except (IngestError, TrackingPlanError, WarehouseBusyError) as exc:
        print(f"uba load: {exc}", file=sys.stderr)
        return 2
    return 0
