"""`uba serve`: the scoring service on HTTP (FastAPI on uvicorn), reading the published
warehouse. Start-up reads the sequence-feature settings (dbt vars), checks the trigger rules and
loads the publication.
SIGTERM or Ctrl-C finishes the requests in flight and exits 0.

    uba serve [--host 127.0.0.1] [--port 8000] [--no-access-log]
"""

from __future__ import annotations

import logging
import signal
import sys


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--no-access-log", action="store_true", help="do not log each request (benchmarks)"
    )


def run(args) -> int:
    import uvicorn

    from python_models.service.app import build_service, create_app
    from python_models.service.features import FeatureDefinitionError
    from python_models.service.triggers import RuleError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        service = build_service()
    except (RuleError, FeatureDefinitionError) as err:
        print(f"uba serve: {err}", file=sys.stderr)
        return 2
    print(
        f"uba serve: http://{args.host}:{args.port} reading {service.published.path} "
        f"({len(service.triggers.rules)} trigger rules; audit {service.triggers.audit.path})",
        file=sys.stderr,
    )
    # uvicorn shuts down gracefully on SIGTERM / SIGINT, then raises the signal again for the
    # handler that was there before: a stop asked for is a clean exit (0), not a crash.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            create_app(service),
            host=args.host,
            port=args.port,
            access_log=not args.no_access_log,
            log_level="info",
        )
    except KeyboardInterrupt:
        pass
    return 0
