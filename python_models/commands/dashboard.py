"""`uba dashboard`: serve the BI dashboard over the published copy.

    uba dashboard                      # http://127.0.0.1:8050
    uba dashboard --port 8060 --host 0.0.0.0

It reads data/published/warehouse.duckdb (never the pipeline's file) and the Data Docs in
data/reports/data_docs, needs no salt, and stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on")
    parser.add_argument(
        "--published", default=None, help="published DuckDB file (default: the data folder's)"
    )
    parser.add_argument("--data-docs", default=None, help="Data Docs folder to link and serve")


def run(args) -> int:
    started = time.perf_counter()
    from python_models.config import data_dir_from_env
    from python_models.dashboard.app import create_app
    from python_models.dashboard.data import Source

    data_dir = data_dir_from_env()
    source = Source(
        published_path=Path(args.published or data_dir / "published" / "warehouse.duckdb"),
        data_docs_dir=Path(args.data_docs or data_dir / "reports" / "data_docs"),
    )
    app = create_app(source)
    # A plain exit on SIGTERM (service managers, `kill`), like Ctrl-C (python_models/cli.py
    # handles SIGINT even when started with it ignored): no child to stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not source.published_path.exists():
        print(f"uba dashboard: no published copy at {source.published_path} yet; pages say so "
              "until `uba demo` or the Dagster job publishes one", file=sys.stderr)  # fmt: skip
    print(
        f"uba dashboard: http://{args.host}:{args.port}/ reading {source.published_path} "
        f"(ready in {time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    try:
        app.run(host=args.host, port=args.port, debug=False)
    except KeyboardInterrupt:
        pass
    return 0
