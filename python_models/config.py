"""One typed settings object, read from the environment once."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_SALT = "uba-dev-salt"


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
    # Retention windows in days (docs/privacy.md); 0 keeps forever. PII properties (email, ip,
    # declared sensitive keys) are purged from raw rows loaded longer ago than the first; raw
    # rows older than the second are deleted once rolled into raw.events_daily_rollup.
    retention_pii_days: int = 30
    retention_raw_days: int = 395

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def published_dir(self) -> Path:
        return self.data_dir / "published"


def pseudonym_salt_from_env() -> str:
    """UBA_PSEUDONYM_SALT, or the development salt when unset or empty. Also read by the
    dbt-duckdb plugin (python_models.dbt_salt_plugin), so dbt and Python hash alike."""
    return os.environ.get("UBA_PSEUDONYM_SALT") or DEFAULT_SALT


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


def _env_days(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise SettingsError(f"{name}={text!r} must be a whole number of days (0 keeps forever)")
    return int(text)


def _public_data_cache() -> Path:
    if os.environ.get("UBA_PUBLIC_DATA_CACHE"):
        return Path(os.environ["UBA_PUBLIC_DATA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "uba" / "public_data"


def _from_env() -> Settings:
    data_dir = Path(os.environ.get("UBA_DATA_DIR", REPO_ROOT / "data")).resolve()
    duckdb_path = Path(os.environ.get("UBA_DUCKDB_PATH", data_dir / "warehouse.duckdb")).resolve()
    input_path = Path(os.environ.get("UBA_INPUT_PATH") or data_dir / "sample" / "events")
    return Settings(
        data_dir=data_dir,
        duckdb_path=duckdb_path,
        pseudonym_salt=pseudonym_salt_from_env(),
        duckdb_memory_limit=os.environ.get("UBA_DUCKDB_MEMORY_LIMIT", "4GB"),
        duckdb_threads=int(os.environ.get("UBA_DUCKDB_THREADS", os.cpu_count() or 2)),
        dbt_target=os.environ.get("UBA_DBT_TARGET", "duckdb"),
        input_path=input_path.resolve(),
        # Above this share of quarantined rows in one gate run, the batch is treated as corrupt
        # and everything downstream (dbt, training, scoring) is blocked.
        max_quarantine_rate=_env_float("UBA_MAX_QUARANTINE_RATE", 0.2, 0.0, 1.0),
        # PSI above 0.25 is the usual "significant shift" rule of thumb.
        drift_psi_threshold=_env_float("UBA_DRIFT_PSI_THRESHOLD", 0.25, 0.0),
        public_data_cache=_public_data_cache(),
        retention_pii_days=_env_days("UBA_RETENTION_PII_DAYS", 30),
        retention_raw_days=_env_days("UBA_RETENTION_RAW_DAYS", 395),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process. Tests that change the environment call `reload_settings()`."""
    settings = _from_env()
    if settings.pseudonym_salt == DEFAULT_SALT and not os.environ.get("UBA_QUIET_SALT"):
        print(
            "uba: UBA_PSEUDONYM_SALT is not set; using the development salt. "
            "Set a secret salt in production.",
            file=sys.stderr,
        )
    return settings


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()
