# Sourced by the scripts: puts the venv (and its dbt) on PATH and sets absolute paths.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.venv/bin:$PATH"
export UBA_DATA_DIR="${UBA_DATA_DIR:-$ROOT/data}"
export UBA_DUCKDB_PATH="${UBA_DUCKDB_PATH:-$UBA_DATA_DIR/warehouse.duckdb}"
export DBT_PROFILES_DIR="${DBT_PROFILES_DIR:-$ROOT}"
export DAGSTER_HOME="${DAGSTER_HOME:-$UBA_DATA_DIR/dagster_home}"
export PYTHONUNBUFFERED=1
mkdir -p "$UBA_DATA_DIR" "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp "$ROOT/orchestration/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
