"""The few SQL expressions the gate needs that differ between warehouses.

The verdict query (expectations/gate/sql.py) is plain SQL (CTEs, CASE, window functions,
concat_ws) except for what goes through a Dialect: JSON inspection, timestamp parsing, regular
expressions, interval arithmetic, temporary tables. `DuckDBDialect` and `PostgresDialect`
implement the same methods, so the same rules run where the data lives; `dialect_for(con)`
picks the one of the connection's engine. A new engine is one more class (tests/unit/test_gate
and tests/integration/test_postgres_pipeline.py compare the verdicts).
"""

from __future__ import annotations

from python_models.warehouse.sql_text import spark_string

# 'YYYY-MM-DD[T ]HH:MM[:SS[.fff]]' followed by an optional 'Z' or +HH[:MM] / -HHMM offset.
_TS_PATTERN = r"^(.*?\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DuckDBDialect:
    name = "duckdb"
    # DuckDB evaluates each CTE's expressions once already.
    materialized = ""
    # DuckDB's hash join holds its build side in the memory pool: the valid rows of a big batch
    # are written a slice at a time (sql.write_slices).
    writes_in_slices = True

    # tables ---------------------------------------------------------------------------------
    def create_temp_table(self, name: str, select: str) -> str:
        return f"create or replace temp table {name} as {select}"

    def drop_temp_table(self, name: str) -> str:
        return f"drop table {name}"

    def set_column_where(
        self, table: str, columns: tuple[str, ...], column: str, value: str, source: str, on: str
    ) -> str:
        """Set `column` to `value` (SQL over `v`, the table, and `ranked`, the source) in the
        rows of `table` that match a row of the `source` query on `on`. `columns` (all of the
        table's) are for engines that rewrite the table instead."""
        return f"update {table} as v set {column} = {value} from ({source}) as ranked where {on}"

    def list_item(self, values: str, position: int) -> str:
        """The position-th (from 1) item of a list made by json_values."""
        return f"{values}[{position}]"

    def approx_distinct(self, expression: str) -> str:
        return f"approx_count_distinct({expression})"

    def id_hash(self, text: str) -> str:
        """A 64-bit hash of `text`: equal texts hash equal, so a value that repeats has a
        repeated hash (a few colliding others are told apart by the exact check after)."""
        return f"hash({text})"

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

    def as_text(self, expression: str) -> str:
        return f"cast({expression} as varchar)"

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


# ISO-8601 forms both engines' parsers are asked to take (the hand-written parser's `base` and
# a date alone); PostgreSQL's own parser also reads words like 'now' or 'tomorrow 10:00',
# which DuckDB rejects, so it only sees text of these shapes.
_PG_ISO_BASE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.]\d+)?)?$"
_PG_ISO_FULL = (
    r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.]\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
)
_PG_DATE = r"^\d{4}-\d{2}-\d{2}$"
_PG_NUMBER = r"^\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\s*$"
# Unicode classes spelled out (PostgreSQL's regular expressions have no \p{...}): control
# characters (Cc), and the separators (Z) and format characters (Cf) an id may not consist of.
_PG_CC = r"[\x01-\x1f\x7f-\x9f]"
_PG_INVISIBLE = (
    r"^[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+$"
)
# Casts that return NULL instead of failing, as DuckDB's try_cast: session-local functions
# (pg_temp), created by session_setup, gone with the connection.
_PG_TRY_FUNCTIONS = """
create or replace function pg_temp.uba_try_cast_double(value text) returns double precision
language plpgsql immutable as $$
begin return value::double precision; exception when others then return null; end $$;
create or replace function pg_temp.uba_try_cast_timestamp(value text) returns timestamp
language plpgsql immutable as $$
begin return value::timestamp; exception when others then return null; end $$;
create or replace function pg_temp.uba_try_cast_timestamptz(value text) returns timestamptz
language plpgsql stable as $$
begin return value::timestamptz; exception when others then return null; end $$;
create or replace function pg_temp.uba_try_cast_jsonb(value text) returns jsonb
language plpgsql immutable as $$
begin return value::jsonb; exception when others then return null; end $$;
"""


class PostgresDialect:
    """The same expressions for PostgreSQL 14+ (jsonb, POSIX regular expressions)."""

    name = "postgres"
    # PostgreSQL inlines a CTE read once, so every reference to a parsed column would parse
    # (and call the try-casts) again: 19k rows took 270 s instead of 2 s.
    materialized = "materialized "
    # One insert: its hash join spills by work_mem, and the slices' row bounds on the verdict
    # table (a temp table without statistics) led the planner to a nested loop: 60k rows took
    # 400 s instead of 0.2 s.
    writes_in_slices = False

    def create_temp_table(self, name: str, select: str) -> str:
        return f"drop table if exists {name}; create temp table {name} as {select}"

    drop_temp_table = DuckDBDialect.drop_temp_table
    set_column_where = DuckDBDialect.set_column_where
    list_item = DuckDBDialect.list_item
    as_text = DuckDBDialect.as_text

    def approx_distinct(self, expression: str) -> str:
        return f"count(distinct {expression})"

    def id_hash(self, text: str) -> str:
        return f"hashtextextended({text}, 0)"

    def clean_text(self, column: str) -> str:
        return f"nullif(trim({column}), '')"

    def json_is_object(self, text: str) -> str:
        # Only text starting with '{' (after JSON whitespace) can be an object; only that is
        # parsed, by a cast that returns NULL on malformed text.
        first = f"left(ltrim({text}, ' ' || chr(9) || chr(10) || chr(13)), 1)"
        return (
            f"(case when {text} is null then null when {first} <> '{{' then false "
            f"else coalesce(jsonb_typeof(pg_temp.uba_try_cast_jsonb({text})) = 'object', "
            "false) end)"
        )

    def json_values(self, text: str, keys: list[str]) -> str:
        # Parsed once per row; text is a JSON object or NULL here.
        values = ", ".join(f"parsed.document -> {sql_literal(key)}" for key in keys)
        return f"(select array[{values}] from (select ({text})::jsonb as document) as parsed)"

    def value_kind(self, value: str) -> str:
        return f"""(case jsonb_typeof({value})
            when 'string' then 'string'
            when 'number' then (case when ({value} #>> '{{}}') ~ '^-?[0-9]+$'
                then 'integer' else 'number' end)
            when 'boolean' then 'boolean' when 'object' then 'object'
            when 'array' then 'array' when 'null' then 'null' end)"""

    def value_text(self, value: str) -> str:
        return f"({value} #>> '{{}}')"

    def text_bytes(self, text: str) -> str:
        return f"octet_length({text})"

    def to_double(self, text: str) -> str:
        # the pattern leaves out 'inf' / 'nan'; an overflowing exponent casts to NULL
        return (
            f"(case when {text} ~ {sql_literal(_PG_NUMBER)} "
            f"then pg_temp.uba_try_cast_double({text}) end)"
        )

    def is_integer_text(self, text: str) -> str:
        return f"({text} ~ '^\\s*[-+]?[0-9]{{1,38}}\\s*$')"

    def unusual_text(self, columns: list[str]) -> str:
        return f"(concat_ws('|', {', '.join(columns)}) ~ '[^ -~]')"

    def invalid_identifier(self, column: str) -> str:
        return f"({column} ~ {sql_literal(_PG_CC)} or {column} ~ {sql_literal(_PG_INVISIBLE)})"

    session_setup = "set timezone = 'UTC';" + _PG_TRY_FUNCTIONS

    def setting_to_restore(self, con) -> str:
        zone = con.execute("select current_setting('TimeZone')").fetchone()[0]
        return f"set timezone = {sql_literal(zone)}"

    def utc_timestamp_fast(self, column: str) -> str:
        return (
            f"(case when {column} ~ {sql_literal(_PG_ISO_FULL)} then "
            f"pg_temp.uba_try_cast_timestamptz({column}) at time zone 'UTC' end)"
        )

    def timestamp_parts(self, column: str) -> str:
        return f"regexp_match(trim({column}), {sql_literal(_TS_PATTERN)})"

    def utc_timestamp(self, column: str, parts: str) -> str:
        base, tz = f"({parts})[1]", f"coalesce(({parts})[2], '')"
        base_ok = f"replace({base}, ',', '.') ~ {sql_literal(_PG_ISO_BASE)}"
        return f"""(
            case
                when {column} is null then null
                when {parts} is null then (case when trim({column}) ~ {sql_literal(_PG_DATE)}
                    then pg_temp.uba_try_cast_timestamp(trim({column})) end)
                when not ({base_ok}) then null
                else pg_temp.uba_try_cast_timestamp(replace({base}, ',', '.')) - make_interval(
                    mins => case when {tz} in ('', 'Z', 'z') then 0
                    else (case when left({tz}, 1) = '-' then -1 else 1 end) * (
                        substr({tz}, 2, 2)::integer * 60
                        + coalesce(nullif(replace(substr({tz}, 4), ':', ''), '')::integer, 0)
                    ) end
                )
            end
        )"""

    def plus_days(self, timestamp: str, days: float) -> str:
        micros = int(round(days * 86_400_000_000))
        return f"({timestamp} + {micros} * interval '1 microsecond')"

    def timestamp_literal(self, value) -> str:
        return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"

    def epoch_seconds(self, timestamp: str) -> str:
        return f"cast(extract(epoch from {timestamp}) as double precision)"


POSTGRES = PostgresDialect()


def _spark_matches(column: str, pattern: str) -> str:
    return f"({column} rlike {spark_string(pattern)})"


# The Java regular expressions' Unicode classes are those of DuckDB's RE2 (\p{Cc} ...).
_SPARK_INVALID_ID = r"\p{Cc}|^[\p{Z}\p{Cf}]+$"


class SparkDialect:
    """The same expressions for Spark 4 SQL (VARIANT for JSON, Java regular expressions).

    Spark over plain Parquet tables has no temporary tables that stay as computed (a cached
    view is recomputed when a table it reads changes: the verdicts read raw.events_validated,
    which the gate then writes), no UPDATE and no transactions: the gate's work tables are
    real tables, dropped at the end of the run, and a failed run can leave rows written
    (docs/scale.md). Text the ISO-8601 patterns do not take is never handed to Spark's
    timestamp parser, which also reads forms DuckDB rejects ('2025', '2025-3-1')."""

    name = "spark"
    materialized = ""
    # One insert: Spark's join spills on its own, and every insert is a job.
    writes_in_slices = False

    def create_temp_table(self, name: str, select: str) -> str:
        return f"drop table if exists {name}; create table {name} using parquet as {select}"

    def drop_temp_table(self, name: str) -> str:
        return f"drop table if exists {name}"

    def set_column_where(
        self, table: str, columns: tuple[str, ...], column: str, value: str, source: str, on: str
    ) -> str:
        # No UPDATE on Parquet: the table is written again with the column set, then swapped in.
        selected = ", ".join(
            f"case when ranked.row_number is not null then {value} else v.{c} end as {c}"
            if c == column
            else f"v.{c}"
            for c in columns
        )
        return (
            f"drop table if exists {table}__set; "
            f"create table {table}__set using parquet as select {selected} from {table} as v "
            f"left join ({source}) as ranked on {on}; "
            f"drop table {table}; alter table {table}__set rename to {table}"
        )

    def list_item(self, values: str, position: int) -> str:
        return f"element_at({values}, {position})"

    def approx_distinct(self, expression: str) -> str:
        return f"count(distinct {expression})"

    def id_hash(self, text: str) -> str:
        return f"xxhash64({text})"

    def clean_text(self, column: str) -> str:
        return f"nullif(trim({column}), '')"

    def json_is_object(self, text: str) -> str:
        # try_parse_json: NULL for malformed text; an object's schema starts with OBJECT.
        return (
            f"(case when {text} is null then null "
            f"else coalesce(schema_of_variant(try_parse_json({text})) like 'OBJECT%', false) end)"
        )

    def json_values(self, text: str, keys: list[str]) -> str:
        # One parse per row: Spark evaluates the repeated try_parse_json once (common
        # subexpression elimination).
        document = f"try_parse_json({text})"
        paths = ", ".join(f"variant_get({document}, {spark_string('$.' + key)})" for key in keys)
        return f"array({paths})"

    def value_kind(self, value: str) -> str:
        schema = f"schema_of_variant({value})"
        return f"""(case when {value} is null then null
            when {schema} = 'STRING' then 'string'
            when {schema} in ('BIGINT', 'INT', 'SMALLINT', 'TINYINT') then 'integer'
            when {schema} like 'DECIMAL(%,0)' then 'integer'
            when {schema} = 'DOUBLE' or {schema} = 'FLOAT' or {schema} like 'DECIMAL%'
                then 'number'
            when {schema} = 'BOOLEAN' then 'boolean'
            when {schema} like 'OBJECT%' then 'object'
            when {schema} like 'ARRAY%' then 'array'
            when {schema} = 'VOID' then 'null' end)"""

    def value_text(self, value: str) -> str:
        return f"variant_get({value}, '$', 'string')"

    def text_bytes(self, text: str) -> str:
        return f"octet_length({text})"

    def as_text(self, expression: str) -> str:
        return f"cast({expression} as string)"

    def to_double(self, text: str) -> str:
        number = f"cast({text} as double)"
        return (
            f"(case when {_spark_matches(text, _PG_NUMBER)} "
            f"and abs({number}) <= 1.7976931348623157e308 then {number} end)"
        )

    def is_integer_text(self, text: str) -> str:
        return _spark_matches(text, r"^\s*[-+]?[0-9]{1,38}\s*$")

    def unusual_text(self, columns: list[str]) -> str:
        return _spark_matches(f"concat_ws('|', {', '.join(columns)})", "[^ -~]")

    def invalid_identifier(self, column: str) -> str:
        return _spark_matches(column, _SPARK_INVALID_ID)

    session_setup = "set spark.sql.session.timeZone = UTC"

    def setting_to_restore(self, con) -> str:
        zone = con.execute("set spark.sql.session.timeZone").fetchone()[1]
        return f"set spark.sql.session.timeZone = {zone}"

    def utc_timestamp_fast(self, column: str) -> str:
        # Spark's cast applies the offset ('Z', +01:00, +0100, +01) and reads naive text in the
        # session's zone (UTC during the gate).
        return (
            f"(case when {_spark_matches(column, _PG_ISO_FULL)} "
            f"then cast(trim({column}) as timestamp) end)"
        )

    def timestamp_parts(self, column: str) -> str:
        pattern = spark_string(_TS_PATTERN)
        return (
            f"named_struct('base', regexp_extract(trim({column}), {pattern}, 1), "
            f"'tz', regexp_extract(trim({column}), {pattern}, 2), "
            f"'matched', trim({column}) rlike {pattern})"
        )

    def utc_timestamp(self, column: str, parts: str) -> str:
        base, tz = f"{parts}.base", f"{parts}.tz"
        is_date = _spark_matches(f"trim({column})", _PG_DATE)
        return f"""(
            case
                when {column} is null then null
                when not {parts}.matched then (case when {is_date}
                    then cast(trim({column}) as timestamp) end)
                when not {_spark_matches(f"replace({base}, ',', '.')", _PG_ISO_BASE)} then null
                else timestampadd(MINUTE, -(
                    case when {tz} in ('', 'Z', 'z') then 0
                    else (case when substr({tz}, 1, 1) = '-' then -1 else 1 end) * (
                        cast(substr({tz}, 2, 2) as int) * 60
                        + coalesce(cast(nullif(replace(substr({tz}, 4), ':', ''), '') as int), 0)
                    ) end
                ), cast(replace({base}, ',', '.') as timestamp))
            end
        )"""

    def plus_days(self, timestamp: str, days: float) -> str:
        return f"timestampadd(MICROSECOND, {int(round(days * 86_400_000_000))}, {timestamp})"

    def timestamp_literal(self, value) -> str:
        return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"

    def epoch_seconds(self, timestamp: str) -> str:
        return f"(cast(unix_micros({timestamp}) as double) / 1000000)"


SPARK = SparkDialect()
Dialect = DuckDBDialect | PostgresDialect | SparkDialect


def dialect_for(con) -> Dialect:
    """The dialect of the connection's engine (a raw DuckDB connection counts as DuckDB)."""
    from python_models.warehouse import as_warehouse

    engine = as_warehouse(con).engine
    dialects = {"duckdb": DUCKDB, "postgres": POSTGRES, "spark": SPARK}
    if engine not in dialects:
        raise NotImplementedError(
            f"the gate has no SQL dialect for {engine}; it runs on {', '.join(dialects)}"
        )
    return dialects[engine]
