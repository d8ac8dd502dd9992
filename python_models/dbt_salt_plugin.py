"""dbt-duckdb plugin: hands the pseudonymization salt to DuckDB without writing it into SQL.

With the salt inlined as a literal, every compiled model, run file and dbt.log line under
dbt_project/target and logs held the secret. This plugin (listed under `plugins` in
profiles.yml) sets a DuckDB session variable on every connection and cursor dbt opens, straight
through the Python API, so dbt never sees or logs it; the macro `uba_pseudonymize` reads it
with getvariable() and fails loudly when it is missing.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from python_models.config import pseudonym_salt_from_env

SALT_VARIABLE = "uba_pseudonym_salt"


def _set_salt(connection) -> None:
    salt = pseudonym_salt_from_env()
    # SET VARIABLE takes no bound parameters; the literal goes to DuckDB, never to dbt's log.
    connection.execute(f"set variable {SALT_VARIABLE} = '" + salt.replace("'", "''") + "'")


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        _set_salt(conn)

    def configure_cursor(self, cursor) -> None:
        _set_salt(cursor)
