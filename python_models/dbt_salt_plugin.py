"""dbt-duckdb plugin: hands the pseudonymization salt to DuckDB without writing it into SQL.

With the salt inlined as a literal, every compiled model, run file and dbt.log line under
dbt_project/target and logs held the secret. This plugin (listed under `plugins` in
profiles.yml) sets a DuckDB session variable on every connection and cursor dbt opens, straight
through the Python API, so dbt never sees or logs it; the macro `uba_pseudonymize` reads it
with getvariable() and fails loudly when it is missing.

It also applies the DuckDB settings that change from one run to the next (RUN_SETTINGS: `uba
refresh` sets them for its incremental build). In the profile's `settings` they would be part
of the connection info dbt hashes to decide whether its saved parse still holds, so every
switch between `uba build` and `uba refresh`, or a day that turns the vacuum back on, parsed
the whole project again (~6 s).
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from python_models.config import pseudonym_salt_from_env

SALT_VARIABLE = "uba_pseudonym_salt"
# DuckDB settings taken from the environment for this run only; DuckDB's defaults when unset.
RUN_SETTINGS = ("checkpoint_threshold", "max_vacuum_tasks")


def run_settings_from_env(environ=os.environ) -> dict[str, str]:
    """The RUN_SETTINGS given as UBA_DUCKDB_<NAME> (python_models.dbt_runner.dbt_env)."""
    given = {name: environ.get(f"UBA_DUCKDB_{name.upper()}", "") for name in RUN_SETTINGS}
    return {name: value for name, value in given.items() if value.strip()}


def _set_salt(connection) -> None:
    salt = pseudonym_salt_from_env()
    # SET VARIABLE takes no bound parameters; the literal goes to DuckDB, never to dbt's log.
    connection.execute(f"set variable {SALT_VARIABLE} = '" + salt.replace("'", "''") + "'")


def _apply_run_settings(connection) -> None:
    for name, value in run_settings_from_env().items():
        # global settings: once per database instance, every cursor sees them
        connection.execute(f"set {name} = '" + value.replace("'", "''") + "'")


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        _set_salt(conn)
        _apply_run_settings(conn)

    def configure_cursor(self, cursor) -> None:
        _set_salt(cursor)
