"""The profile for a plain dbt-duckdb install (target duckdb_plain): no salt plugin, this
repository's package not importable, the salt read inside DuckDB from UBA_PSEUDONYM_SALT_FILE.
Pseudonyms are the planted users' (python_models.privacy.pseudonymize) and no compiled model,
run artifact or log line holds the salt."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_dbt_core import CORE_SELECT, planted, read_table, write_validated  # noqa: F401

from python_models.config import DBT_PROJECT_DIR, REPO_ROOT
from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow

SALT = "plain-profile-salt-7f3a"
# dbt with this repository's package made unimportable, as on a plain dbt-duckdb install.
PLAIN_DBT = (
    "import sys; sys.modules['python_models'] = None; from dbt.cli.main import cli; sys.exit(cli())"
)


def _plain_dbt(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PLAIN_DBT, *args],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_plain_profile_hashes_with_the_salt_file_and_never_writes_it(planted, tmp_path):  # noqa: F811
    path = tmp_path / "warehouse.duckdb"
    write_validated(path, planted.events)
    salt_file = tmp_path / "salt"
    salt_file.write_text(SALT + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("UBA_PSEUDONYM_SALT", "PYTHONPATH")}
    env |= {
        "UBA_DBT_TARGET": "duckdb_plain",
        "UBA_DUCKDB_PATH": str(path),
        "UBA_PSEUDONYM_SALT_FILE": str(salt_file),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    done = _plain_dbt(["build", "--select", *CORE_SELECT], env)
    assert done.returncode == 0, done.stdout[-3000:]

    users = read_table(path, "select distinct user_hash from staging.stg_app__events")
    expected = {
        pseudonymize(u, "user", SALT) for u in planted.events["user_id"].drop_nulls().unique()
    }
    assert set(users["user_hash"].drop_nulls()) == expected

    artifacts = [*(tmp_path / "dbt-target").rglob("*"), *(tmp_path / "dbt-logs").rglob("*")]
    assert any(f.name == "dbt.log" for f in artifacts)
    leaks = [f for f in artifacts if f.is_file() and SALT.encode() in f.read_bytes()]
    assert not leaks, leaks
    assert SALT not in done.stdout

    # Without the file, the build stops with the one-line reason, not with wrong keys.
    env.pop("UBA_PSEUDONYM_SALT_FILE")
    failed = _plain_dbt(["run", "--select", "stg_app__pseudonym_salts", "--full-refresh"], env)
    assert failed.returncode != 0
    assert "UBA_PSEUDONYM_SALT_FILE" in failed.stdout
