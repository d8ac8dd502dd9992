"""`uba erase ID... [--file IDS]`: erase people everywhere the project keeps them
(python_models.privacy.erasure; docs/privacy.md). Nothing to erase is a message, exit 0."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument(
        "ids", nargs="*", metavar="ID", help="raw user id or device (anonymous) id to erase"
    )
    parser.add_argument(
        "--file", default=None, help="a file of ids, one per line (# starts a comment)"
    )
    parser.add_argument(
        "--rebuild",
        choices=["targeted", "full"],
        default="targeted",
        help="rebuild only the dbt models that count across people (default) or all of them",
    )
    parser.add_argument(
        "--no-publish", action="store_true", help="leave the published copy for the next publish"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="afterwards, scan every DuckDB and Parquet file the project wrote for the ids",
    )


def run(args) -> int:
    from python_models.dbt_runner import DbtError
    from python_models.privacy.erasure import (
        erase,
        leftover_files,
        read_ids,
        verification_needles,
    )
    from python_models.privacy.identities import SaltMismatchError

    try:
        ids = read_ids(args.ids, args.file)
    except ValueError as err:
        print(f"uba erase: {err}", file=sys.stderr)
        return 2
    if not ids:
        print("uba erase: give at least one id, or --file with one id per line", file=sys.stderr)
        return 2
    try:
        result = erase(ids, rebuild=args.rebuild, publish=not args.no_publish)
    except (FileNotFoundError, SaltMismatchError) as err:
        print(f"uba erase: {err}", file=sys.stderr)
        return 1
    except DbtError as err:
        first = str(err).splitlines()[0]
        print(
            f"uba erase: their rows are deleted, but rebuilding the models that counted them "
            f"failed ({first}); fix that, then run the same `uba erase` again to finish",
            file=sys.stderr,
        )
        return 1
    print(f"uba erase: {result.message}")
    for warning in result.warnings:
        print(f"uba erase: note: {warning}")
    if result.erasure_id:
        print(f"  erasure {result.erasure_id}: dbt rebuild {result.rebuilt}")
        for table in result.tables:
            redacted = f", {table.rows_redacted} redacted" if table.rows_redacted else ""
            print(f"  {table.table:<55} {table.rows_deleted:>8} deleted{redacted}")
        if result.flagged_models:
            versions = ", ".join(f"{name} {version}" for name, version in result.flagged_models)
            print(f"  flagged for retraining (trained on their data): {versions}")
        if result.artifacts_scrubbed:
            print(f"  reference samples scrubbed: {', '.join(result.artifacts_scrubbed)}")
        timings = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in result.seconds.items())
        print(f"  time: {timings}")
    if args.verify:
        hits = leftover_files(verification_needles(ids, result))
        for path, found in hits.items():
            print(f"uba erase: {len(found)} identifier(s) still in {path}", file=sys.stderr)
        if hits:
            return 1
        print("uba erase: verified: no DuckDB or Parquet file under the data folder holds them")
    return 0
