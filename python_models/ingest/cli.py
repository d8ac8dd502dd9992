"""`uba load PATH...`: load event files into raw.events."""

from __future__ import annotations

import argparse
import sys

from python_models.ingest.loaders import FORMATS, IngestError, load_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="files or directories of event files")
    parser.add_argument(
        "--format", dest="fmt", choices=FORMATS, help="override the format from the extension"
    )
    parser.add_argument("--duckdb", help="warehouse file (default $UBA_DUCKDB_PATH)")


def run(args: argparse.Namespace) -> int:
    from python_models.warehouse import connect

    con = connect(args.duckdb)
    try:
        result = load_path(con, list(args.paths), fmt=args.fmt)
        total = con.execute("select count(*) from raw.events").fetchone()[0]
    except IngestError as exc:
        print(f"uba load: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    print(
        f"loaded {result.files_loaded} file(s), {result.rows_loaded:,} rows; "
        f"skipped {result.files_skipped} already-loaded file(s); raw.events now {total:,} rows"
    )
    return 0
