#!/usr/bin/env bash
# The test suite: lint, then pytest (unit + integration on real DuckDB, dbt, GX and Dagster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
# Tests write to their own temporary directories; never to the demo's data/.
export UBA_QUIET_SALT=1
# The portability test needs a PostgreSQL server (it starts a throwaway one on loopback). On a
# root machine without one (a CI container), install Debian's; elsewhere that test skips.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${UBA_NO_PG_INSTALL:-}" ]; then
  echo "test: installing PostgreSQL from Debian packages for the portability test ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "test: PostgreSQL install failed; the portability test will skip" >&2
fi
# The Spark test runs Spark in local mode (pyspark from the lock) on a Java runtime: install
# Debian's when there is none, under the same conditions.
if ! command -v java >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${UBA_NO_JAVA_INSTALL:-}" ]; then
  echo "test: installing a Java runtime from Debian packages for the Spark test ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      openjdk-17-jre-headless >/dev/null) \
    || echo "test: Java install failed; the Spark test will skip" >&2
fi
# The dashboard test drives Debian's chromium through playwright (no browser download); on a
# root machine without it, install it the same way; elsewhere that test skips.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${UBA_NO_CHROMIUM_INSTALL:-}" ]; then
  echo "test: installing chromium from Debian packages for the dashboard test ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "test: chromium install failed; the dashboard test will skip" >&2
fi
ruff check python_models orchestration expectations tests benchmarks
# Two pytest-xdist workers unless told otherwise (CI has 2 cores; serially the suite would not
# fit its 25 minutes): `./scripts/test.sh -n 0` runs serially, UBA_TEST_WORKERS=4 uses four.
# The 20 slowest steps are printed at the end: where CI's minutes go.
case " $* " in
  *" -n "*|*" -n="*|*" -p no:xdist "*|*" --numprocesses"*) exec pytest --durations=20 "$@" ;;
  *) exec pytest -n "${UBA_TEST_WORKERS:-2}" --durations=20 "$@" ;;
esac
