#!/usr/bin/env bash
# The main job, end to end, on the embedded DuckDB file with generated sample data.
# Extra arguments go to `uba demo` (e.g. --events 1000000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec uba demo "$@"
