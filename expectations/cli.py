"""`uba gate`: run the raw-events quality gate and print a summary."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duckdb", help="warehouse file (default $UBA_DUCKDB_PATH)")
    parser.add_argument(
        "--chunk-rows", type=int, default=250_000, help="rows per validated chunk (memory bound)"
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
    lines.append(f"{'expectations evaluated':<24}{result.evaluated_expectations:>12,}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from expectations.gate import GateError, run_gate
    from python_models.warehouse import connect

    con = connect(args.duckdb)
    try:
        result = run_gate(con, chunk_rows=args.chunk_rows, progress=True)
    except GateError as exc:
        print(f"uba gate: FAILED, nothing written: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()
    print(format_summary(result))
    return 0
