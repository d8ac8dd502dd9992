#!/usr/bin/env bash
# The test suite: lint, then pytest (unit + integration on real DuckDB, dbt, GX and Dagster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UBA_NO_SAVED_PARSE=1 "$ROOT/scripts/bootstrap.sh"  # the tests keep their own parse cache
source "$ROOT/scripts/env.sh"
cd "$ROOT"
# Tests write to their own temporary directories; never to the demo's data/.
export UBA_QUIET_SALT=1
# The PostgreSQL, Spark and dashboard tests need a PostgreSQL server (the portability test
# starts a throwaway one on loopback), a Java runtime (Spark in local mode, pyspark from the
# lock) and Debian's chromium (driven through playwright, no browser download). On a root
# machine without them (a CI container), install Debian's: one `apt-get update` for all three
# (each update re-reads every package list); elsewhere, or when an install fails, those tests
# skip. UBA_NO_PG_INSTALL / UBA_NO_JAVA_INSTALL / UBA_NO_CHROMIUM_INSTALL leave one out.
MISSING=()  # installed with their recommends
MISSING_BARE=()  # without (a JRE's recommends are fonts and mDNS: not needed headless)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && [ -z "${UBA_NO_PG_INSTALL:-}" ]; then
  MISSING+=(postgresql)
fi
if ! command -v java >/dev/null 2>&1 && [ -z "${UBA_NO_JAVA_INSTALL:-}" ]; then
  MISSING_BARE+=(openjdk-17-jre-headless)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && [ -z "${UBA_NO_CHROMIUM_INSTALL:-}" ]; then
  MISSING+=(chromium)
fi
# One package's failure must not cost the others their tests: then each on its own.
apt_install() {  # apt_install [--no-install-recommends] PACKAGE...
  local flags=(-y -qq) package
  [ "${1:-}" = --no-install-recommends ] && flags+=("$1") && shift
  [ $# -gt 0 ] || return 0
  DEBIAN_FRONTEND=noninteractive apt-get install "${flags[@]}" "$@" >/dev/null && return 0
  for package in "$@"; do
    DEBIAN_FRONTEND=noninteractive apt-get install "${flags[@]}" "$package" >/dev/null \
      || echo "test: installing $package failed; the tests that need it will skip" >&2
  done
}
if [ $(( ${#MISSING[@]} + ${#MISSING_BARE[@]} )) -gt 0 ] && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing ${MISSING[*]} ${MISSING_BARE[*]} from Debian packages ..." >&2
  apt_started=$SECONDS
  if apt-get update -qq; then
    apt_install "${MISSING[@]}"
    apt_install --no-install-recommends "${MISSING_BARE[@]}"
  else
    echo "test: apt-get update failed; the tests needing ${MISSING[*]} ${MISSING_BARE[*]} will skip" >&2
  fi
  echo "test: Debian packages took $(( SECONDS - apt_started )) s" >&2
fi
ruff check python_models orchestration expectations tests benchmarks
# Two pytest-xdist workers unless told otherwise (CI has 2 cores; serially the suite would not
# fit its 25 minutes): `./scripts/test.sh -n 0` runs serially, UBA_TEST_WORKERS=4 uses four.
# The 20 slowest steps are printed at the end: where CI's minutes go.
case " $* " in
  *" -n "*|*" -n="*|*" -p no:xdist "*|*" --numprocesses"*) exec pytest --durations=20 "$@" ;;
  *) exec pytest -n "${UBA_TEST_WORKERS:-2}" --durations=20 "$@" ;;
esac
