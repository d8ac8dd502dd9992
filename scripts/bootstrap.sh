#!/usr/bin/env bash
# Create or refresh .venv from the pinned lock file. Safe to run repeatedly: it does nothing
# when the lock file and pyproject have not changed since the last successful install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.uba-installed"
WANT="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"

PY="${UBA_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "bootstrap: Python 3.11 is required (set UBA_PYTHON to its path)." >&2
  exit 1
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "bootstrap: installing the pinned environment into .venv ..." >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# uv installs the lock in seconds; it comes from PyPI into the venv when not on PATH.
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  if [ ! -x "$VENV/bin/uv" ]; then
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip --quiet
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
  fi
  UV="$VENV/bin/uv"
fi
"$UV" pip install --quiet --python "$VENV/bin/python" --compile-bytecode -r requirements.lock
"$UV" pip install --quiet --python "$VENV/bin/python" --compile-bytecode --no-deps -e .
# dbt's parse of the project for a warehouse named warehouse.duckdb, kept in the user's parse
# cache (python_models/dbt_runner.py): a first build in a new target folder then starts from
# it (a partial parse) instead of parsing the whole project beside its load and gate (~8 s of
# CPU). The parse reads no data and no salt. UBA_NO_SAVED_PARSE=1 skips it (the tests keep a
# parse cache of their own).
if [ -z "${UBA_NO_SAVED_PARSE:-}" ]; then
  UBA_ALLOW_DEV_SALT=1 UBA_QUIET_SALT=1 "$VENV/bin/uba" build --save-parse >/dev/null 2>&1 \
    || echo "bootstrap: dbt's parse was not saved (a first build parses the project itself)" >&2
fi
echo "$WANT" > "$STAMP"
echo "bootstrap: environment ready." >&2
