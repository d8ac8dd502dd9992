"""Delete an erased person's rows from every table that holds identifiers, and redact what
other people's rows quote of them (python_models.privacy.discovery says which tables)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from python_models.privacy.discovery import PersonalTable, personal_tables
from python_models.privacy.identities import Identity, temp_ids

REDACTED = "[erased]"
# An identifier is replaced only as a whole token: "1.2.3.4" inside "11.2.3.45" stays.
_TOKEN_CHARS = "A-Za-z0-9._@+-"
_NEEDLES_PER_PATTERN = 200


@dataclass(frozen=True)
class TableErasure:
    table: str
    rows_deleted: int
    rows_redacted: int


def _role_tables(con: duckdb.DuckDBPyConnection, identity: Identity) -> dict[str, str]:
    """role -> temp table of its values (only roles with values)."""
    names = {}
    for role, values in identity.role_values().items():
        if values:
            names[role] = f"erase_role_{role}"
            temp_ids(con, names[role], values)
    return names


def _predicate(table: PersonalTable, role_tables: dict[str, str]) -> str | None:
    terms = [
        f'"{column}" in (select id from {role_tables[role]})'
        for role, columns in table.roles.items()
        if role in role_tables
        for column in columns
    ]
    return " or ".join(terms) or None


def redaction_patterns(needles: set[str]) -> list[str]:
    """Regular expressions (RE2) matching any needle as a whole token, in chunks."""
    ordered = sorted(needles, key=lambda n: (-len(n), n))  # longest first: no partial match
    patterns = []
    for start in range(0, len(ordered), _NEEDLES_PER_PATTERN):
        chunk = "|".join(re.escape(n) for n in ordered[start : start + _NEEDLES_PER_PATTERN])
        patterns.append(f"(^|[^{_TOKEN_CHARS}])({chunk})([^{_TOKEN_CHARS}]|$)")
    return patterns


def _redact(con: duckdb.DuckDBPyConnection, table: PersonalTable, patterns: list[str]) -> int:
    """Replace quoted needles in the table's free-text columns; rows changed."""
    matches = " or ".join(
        f'regexp_matches("{column}", ?)' for column in table.free_text for _ in patterns
    )
    params = [pattern for _ in table.free_text for pattern in patterns]
    changed = con.execute(
        f"select count(*) from {table.qualified} where {matches}", params
    ).fetchone()[0]
    if not changed:
        return 0
    for column in table.free_text:
        for pattern in patterns:
            # A needle right after another one lost its leading separator to the first match:
            # repeat until nothing matches (twice is plenty in practice).
            for _ in range(4):
                count = con.execute(
                    f'update {table.qualified} set "{column}" = '
                    f"regexp_replace(\"{column}\", ?, '\\1{REDACTED}\\3', 'g') "
                    f'where regexp_matches("{column}", ?)',
                    [pattern, pattern],
                ).fetchone()[0]
                if not count:
                    break
    return int(changed)


def delete_person_rows(con: duckdb.DuckDBPyConnection, identity: Identity) -> list[TableErasure]:
    """Delete the identity's rows from every personal table of `con`'s database and redact its
    raw strings from the free text of the rows that stay. Runs in the caller's transaction."""
    role_tables = _role_tables(con, identity)
    patterns = redaction_patterns(identity.quotable()) if identity.quotable() else []
    results = []
    for table in personal_tables(con):
        deleted = 0
        predicate = _predicate(table, role_tables)
        if predicate:
            deleted = con.execute(f"delete from {table.qualified} where {predicate}").fetchone()[0]
        redacted = _redact(con, table, patterns) if patterns and table.free_text else 0
        if deleted or redacted:
            results.append(TableErasure(table.label, int(deleted), int(redacted)))
    return results
