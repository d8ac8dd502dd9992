"""`uba generate`: write seeded sample events with planted truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000, help="target valid events")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="default: $UBA_DATA_DIR/sample")
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--start-date", default="2025-01-06", help="YYYY-MM-DD (UTC)")
    parser.add_argument("--defect-rate", type=float, default=0.005)
    parser.add_argument("--duplicate-rate", type=float, default=0.01)
    parser.add_argument("--late-rate", type=float, default=0.02)
    parser.add_argument("--ato-rate", type=float, default=0.02)
    parser.add_argument(
        "--funnel-incident",
        metavar="START[,DAYS[,KEEP_RATE]]",
        type=parse_funnel_incident,
        default=None,
        help="plant a payment incident: from START (YYYY-MM-DD) for DAYS days (default 21) "
        "only KEEP_RATE (default 0.4) of planned purchases happen",
    )
    parser.add_argument(
        "--experiment",
        action="store_true",
        help="plant an A/B test (experiment_exposure events, known conversion lift)",
    )
    parser.add_argument(
        "--experiment-lift",
        type=float,
        default=None,
        help="chance a treated user gets an extra conversion (0 = A/A; default 0.3)",
    )
    parser.add_argument(
        "--channels", action="store_true", help="add an acquisition `channel` property"
    )
    parser.add_argument(
        "--consent",
        action="store_true",
        help="plant consent choices (consent_updated events; some users deny analytics or "
        "marketing, some withdraw)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def parse_funnel_incident(text: str):
    """`START[,DAYS[,KEEP_RATE]]` -> FunnelIncident (argparse `type`)."""
    from python_models.synthetic import FunnelIncident

    parts = [part.strip() for part in text.split(",")]
    try:
        if not 1 <= len(parts) <= 3:
            raise ValueError("expected START[,DAYS[,KEEP_RATE]]")
        days = int(parts[1]) if len(parts) > 1 else FunnelIncident.days
        keep_rate = float(parts[2]) if len(parts) > 2 else FunnelIncident.keep_rate
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc
    return FunnelIncident(start_date=parts[0], days=days, keep_rate=keep_rate)


def _generate(args: argparse.Namespace, out: Path):
    from python_models.synthetic import ConsentPlan, ExperimentPlan, generate

    experiment = None
    if args.experiment or args.experiment_lift is not None:
        lift = 0.3 if args.experiment_lift is None else args.experiment_lift
        experiment = ExperimentPlan(extra_conversion_probability=lift)
    return generate(
        out_dir=out,
        n_events=args.events,
        seed=args.seed,
        start_date=args.start_date,
        days=args.days,
        defect_rate=args.defect_rate,
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
        ato_rate=args.ato_rate,
        progress=not args.quiet,
        funnel_incident=args.funnel_incident,
        experiment=experiment,
        acquisition_channels=args.channels,
        consent=ConsentPlan() if args.consent else None,
    )


def run(args: argparse.Namespace) -> int:
    out = args.out
    if out is None:
        from python_models.config import get_settings

        out = get_settings().data_dir / "sample"
    try:
        result = _generate(args, out)
    except ValueError as exc:  # a bad setting: one line, not a traceback
        print(f"uba generate: {exc}", file=sys.stderr)
        return 2
    m = result.manifest
    print(f"events:     {result.events_dir} ({', '.join(m['event_files'])})")
    print(f"truth:      {result.truth_dir}")
    print(
        f"rows:       {m['n_rows']:,} = {m['n_valid_events']:,} valid + "
        f"{m['n_duplicate_rows']:,} duplicate copies + {m['n_defect_rows']:,} defects"
    )
    print(f"users:      {m['n_users']:,} identified, {m['n_anonymous_visitors']:,} anonymous")
    print(f"personas:   {', '.join(f'{k}={v}' for k, v in m['personas'].items())}")
    print(f"churned:    {m['n_churned']:,}   ato victims: {m['n_ato_victims']:,}")
    print(f"period:     {m['start_date']} .. {m['end_date_exclusive']} (exclusive)")
    if "funnel_incident" in m:
        incident = m["funnel_incident"]
        print(
            f"incident:   purchases kept at {incident['keep_rate']:.0%} from "
            f"{incident['start_date']} to {incident['end_date_exclusive']} (exclusive)"
        )
    if "experiment" in m:
        e = m["experiment"]
        print(
            f"experiment: {e['key']}: {e['n_exposed']:,} exposed ({e['n_by_variant']}), "
            f"{e['n_multi_variant']} saw two variants; planted conversion lift "
            f"{e['planted_conversion_lift']:+.4f} over {e['window_days']} days"
        )
    if "consent" in m:
        c = m["consent"]
        print(
            f"consent:    {c['n_recorded']:,} of {c['n_users']:,} users recorded a choice; "
            f"{c['n_without_analytics']:,} without analytics ({c['n_withdrew_analytics']:,} "
            f"withdrew), {c['n_without_marketing']:,} without marketing"
        )
    return 0
