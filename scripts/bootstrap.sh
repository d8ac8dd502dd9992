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
echo "$WANT" > "$STAMP"
echo "bootstrap: environment ready." >&2
