"""Which tables hold someone's rows: found by column name, so a new table is covered the day it
is created (docs/privacy.md, "How erasure finds tables").

The rule: a base table holds rows about people when one of its columns is named for an
identifier role below, exactly or as a suffix after `_` (`first_event_id`,
`attacker_anonymous_id`). A row belongs to a person being erased when any such column holds
one of that person's values for the role. Free-text columns (below) can quote an identifier,
an email or an IP inside other text; they are redacted where a row is kept.

tests/integration/test_privacy_erasure.py scans every column of every table of a full pipeline
run for planted identifiers and fails when one sits in a column this rule does not name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

# role -> column names. person: the raw user id and every pseudonymous person key (user_id in
# marts is the stitched key: the user hash, or the device hash of a never-identified visitor);
# device: raw and hashed device / cookie ids; event and session: ids that point at one
# person's event or session (session ids are md5 of the person key and the session start).
IDENTIFIER_ROLES: dict[str, tuple[str, ...]] = {
    "person": ("user_id", "user_hash", "person_key"),
    "device": ("anonymous_id", "anonymous_hash"),
    "event": ("event_id",),
    "session": ("session_id",),
}
# Raw text that may quote identifiers or sensitive properties (JSON properties, unreadable
# input lines).
FREE_TEXT_COLUMNS: tuple[str, ...] = ("properties", "raw_payload")
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


def column_role(column: str) -> str | None:
    """The identifier role a column name declares, or None."""
    name = column.lower()
    for role, names in IDENTIFIER_ROLES.items():
        if any(name == n or name.endswith("_" + n) for n in names):
            return role
    return None


@dataclass(frozen=True)
class PersonalTable:
    """A table with identifier columns (by role) and free-text columns."""

    schema: str
    name: str
    roles: dict[str, tuple[str, ...]] = field(hash=False)
    free_text: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def identifier_columns(self) -> tuple[str, ...]:
        return tuple(c for columns in self.roles.values() for c in columns)


def _text_columns(
    con: duckdb.DuckDBPyConnection, skip_schemas: tuple[str, ...] = ()
) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text column of the database's base tables, in table
    and column order. Views are left out: they hold no rows of their own."""
    return con.execute(
        """
        select columns.table_schema, columns.table_name, columns.column_name
        from information_schema.columns as columns
        inner join information_schema.tables as tables
            on columns.table_catalog = tables.table_catalog
            and columns.table_schema = tables.table_schema
            and columns.table_name = tables.table_name
        where tables.table_type = 'BASE TABLE'
          and columns.table_catalog = current_database()
          and columns.table_schema not in (select unnest(?::varchar[]))
          and columns.data_type = 'VARCHAR'
        order by 1, 2, columns.ordinal_position
        """,
        [list(skip_schemas)],
    ).fetchall()


def personal_tables(con: duckdb.DuckDBPyConnection) -> list[PersonalTable]:
    """Every base table of the connection's database with an identifier or free-text column,
    ordered by schema and name. Views are left out: they hold no rows of their own."""
    rows = _text_columns(con, skip_schemas=SYSTEM_SCHEMAS)
    found: dict[tuple[str, str], tuple[dict[str, list[str]], list[str]]] = {}
    for schema, table, column in rows:
        roles, free_text = found.setdefault((schema, table), ({}, []))
        role = column_role(column)
        if role:
            roles.setdefault(role, []).append(column)
        elif column.lower() in FREE_TEXT_COLUMNS:
            free_text.append(column)
    return [
        PersonalTable(
            schema, table, {role: tuple(cols) for role, cols in roles.items()}, tuple(free_text)
        )
        for (schema, table), (roles, free_text) in found.items()
        if roles or free_text
    ]


def columns_holding(con: duckdb.DuckDBPyConnection, values: set[str]) -> list[tuple[str, str, int]]:
    """(table, column, rows) for every text column of every base table where a row equals one
    of `values`: an audit of where identifiers actually sit, whatever the columns are named.
    The erasure covers a column when `column_role` names it (or it is free text)."""
    if not values:
        return []
    frame = pa.table({"value": pa.array(sorted(values), type=pa.string())})
    con.register("__uba_values", frame)
    try:
        rows = _text_columns(con)
        found = []
        for schema, table, column in rows:
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where "{column}" in (select value from __uba_values)'
            ).fetchone()[0]
            if hits:
                found.append((f"{schema}.{table}", column, int(hits)))
        return found
    finally:
        con.unregister("__uba_values")
