"""`uba retention`: apply the retention windows now (python_models.privacy.retention;
settings UBA_RETENTION_PII_DAYS, UBA_RETENTION_RAW_DAYS; docs/privacy.md)."""

from __future__ import annotations

from datetime import datetime


def add_arguments(parser) -> None:
    parser.add_argument(
        "--pii-days", type=int, default=None, help="override UBA_RETENTION_PII_DAYS (0: keep)"
    )
    parser.add_argument(
        "--raw-days", type=int, default=None, help="override UBA_RETENTION_RAW_DAYS (0: keep)"
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="rewrite the warehouse file even if nothing changed (after a salt rotation)",
    )
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="count ages from this UTC time instead of the clock (YYYY-MM-DD[THH:MM])",
    )


def run(args) -> int:
    from python_models.privacy.retention import apply_retention

    for name in ("pii_days", "raw_days"):
        value = getattr(args, name)
        if value is not None and value < 0:
            print(f"uba retention: --{name.replace('_', '-')} must be 0 or more")
            return 2
    result = apply_retention(
        now=args.now, pii_days=args.pii_days, raw_days=args.raw_days, compact=args.compact
    )
    print(f"uba retention: {result.summary()}")
    for table, rows in {**result.pii_rows_purged, **result.raw_rows_deleted}.items():
        if rows:
            print(f"  {table:<40} {rows:>10}")
    if result.compacted:
        print("  warehouse file rewritten (no purged bytes left behind)")
    return 0
