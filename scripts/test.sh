#!/usr/bin/env bash
# The test suite: lint, then pytest (unit + integration on real DuckDB, dbt, GX and Dagster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
# Tests write to their own temporary directories; never to the demo's data/.
export UBA_QUIET_SALT=1
ruff check python_models orchestration expectations tests benchmarks
exec pytest "$@"
