"""The few SQL expressions the gate needs that differ between warehouses.

The verdict query (expectations/gate/sql.py) is plain SQL (CTEs, CASE, window functions,
concat_ws) except for what goes through a Dialect: JSON inspection, timestamp parsing, regular
expressions and interval arithmetic. DuckDB is implemented; a PostgreSQL dialect implements
the same methods (jsonb_typeof, ~ with POSIX classes, make_interval) to run the same rules.
"""

from __future__ import annotations

# 'YYYY-MM-DD[T ]HH:MM[:SS[.fff]]' followed by an optional 'Z' or +HH[:MM] / -HHMM offset.
_TS_PATTERN = r"^(.*?\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DuckDBDialect:
    name = "duckdb"

    # text ---------------------------------------------------------------------------------
    def clean_text(self, column: str) -> str:
        """Text without surrounding spaces, NULL when empty. trim() only where there is
        something to trim: it costs more than the whole rest of the check otherwise."""
        return (
            f"nullif(case when starts_with({column}, ' ') or ends_with({column}, ' ') "
            f"then trim({column}) else {column} end, '')"
        )

    # JSON ---------------------------------------------------------------------------------
    def json_is_object(self, text: str) -> str:
        # CASE, not AND: only CASE keeps json_type from seeing (and raising on) malformed text.
        # Valid JSON starting with '{' is an object; only the rest (arrays, leading whitespace)
        # needs the dearer json_type, which parses the whole document.
        return (
            f"(case when not json_valid({text}) then false when starts_with({text}, '{{') "
            f"then true else json_type({text}) = 'OBJECT' end)"
        )

    def json_values(self, text: str, keys: list[str]) -> str:
        """The JSON values of text's top-level keys, as a list of JSON texts (NULL where a key
        is absent), parsing the document once. text must be a JSON object or NULL."""
        paths = ", ".join(sql_literal("$." + key) for key in keys)
        return f"json_extract({text}, [{paths}])"

    def value_kind(self, value: str) -> str:
        """The type of one JSON value (from json_values) as a plain word: string, integer,
        number, boolean, object, array, null; SQL NULL when the key was absent."""
        return f"""(case json_type({value})
            when 'VARCHAR' then 'string' when 'BIGINT' then 'integer'
            when 'UBIGINT' then 'integer' when 'DOUBLE' then 'number'
            when 'BOOLEAN' then 'boolean' when 'OBJECT' then 'object'
            when 'ARRAY' then 'array' when 'NULL' then 'null' end)"""

    def value_text(self, value: str) -> str:
        """A JSON scalar value as text (a string without its quotes)."""
        return f"({value} ->> '$')"

    def text_bytes(self, text: str) -> str:
        return f"strlen({text})"

    def to_double(self, text: str) -> str:
        """The number in text, NULL when it is not one (or not finite)."""
        return (
            f"(case when isfinite(try_cast({text} as double)) then try_cast({text} as double) end)"
        )

    def is_integer_text(self, text: str) -> str:
        return f"(try_cast({text} as hugeint) is not null)"

    # identifiers --------------------------------------------------------------------------
    def unusual_text(self, columns: list[str]) -> str:
        """True when any of the columns holds a control character or a non-ASCII character:
        one cheap test over all of them, so the exact test runs on the rare rows only."""
        joined = ", ".join(columns)
        return f"regexp_matches(concat_ws('|', {joined}), '[\\x00-\\x1f\\x7f-\\x{{10FFFF}}]')"

    def invalid_identifier(self, column: str) -> str:
        """True for text holding a control character (NUL, tab, newline...) or made only of
        invisible characters (no-break spaces, zero-width spaces, byte-order marks)."""
        return f"regexp_matches({column}, '\\p{{Cc}}|^[\\p{{Z}}\\p{{Cf}}]+$')"

    # time ---------------------------------------------------------------------------------
    session_setup = "set TimeZone = 'UTC'"

    def setting_to_restore(self, con) -> str:
        zone = con.execute("select current_setting('TimeZone')").fetchone()[0]
        return f"set TimeZone = {sql_literal(zone)}"

    def utc_timestamp_fast(self, column: str) -> str:
        """ISO-8601 text (offset applied, naive taken as UTC: the session runs in UTC during
        the gate) -> naive UTC TIMESTAMP; NULL when DuckDB's parser does not take the form."""
        return f"try_cast({column} as timestamptz)::timestamp"

    def timestamp_parts(self, column: str) -> str:
        """ISO-8601 text split into {'base', 'tz'} once (reused by utc_timestamp)."""
        return f"regexp_extract(trim({column}), '{_TS_PATTERN}', ['base', 'tz'])"

    def utc_timestamp(self, column: str, parts: str) -> str:
        """ISO-8601 text -> naive UTC TIMESTAMP (offset or 'Z' applied; naive taken as UTC).

        Done by hand rather than with a TIMESTAMPTZ cast so the result never depends on the
        session's TimeZone setting. Unparseable text gives NULL. `parts` names the column
        holding timestamp_parts(column).
        """
        return f"""(
            case
                when {column} is null then null
                when {parts}.base = '' then try_cast(trim({column}) as timestamp)
                else try_cast(replace({parts}.base, ',', '.') as timestamp) - to_minutes(
                    case when {parts}.tz in ('', 'Z', 'z') then 0
                    else (case when {parts}.tz[1] = '-' then -1 else 1 end) * (
                        try_cast({parts}.tz[2:3] as integer) * 60
                        + coalesce(
                            try_cast(nullif(replace({parts}.tz[4:], ':', ''), '') as integer), 0)
                    ) end
                )
            end
        )"""

    def plus_days(self, timestamp: str, days: float) -> str:
        return f"({timestamp} + to_microseconds({int(round(days * 86_400_000_000))}))"

    def timestamp_literal(self, value) -> str:
        return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"

    def epoch_seconds(self, timestamp: str) -> str:
        return f"epoch({timestamp})"


DUCKDB = DuckDBDialect()
