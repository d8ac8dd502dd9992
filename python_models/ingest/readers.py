"""One SQL query per format that reads a file as rows of the contract's text columns.

Every query yields (ordinal, <contract columns>, load_error, raw_payload): ordinal is the
1-based row position among the rows DuckDB returned (for text formats, before any row it could
not read is accounted for: see loaders._renumber_after_rejects). Text formats are read with
`store_rejects`, so a row DuckDB cannot read (invalid UTF-8, a line over the size limit, a
wrong number of fields, broken quoting) is set aside with its line number instead of failing
the file; the loader turns each into a raw row with a load_error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from python_models.ingest.contract import CONTRACT_COLUMNS
from python_models.ingest.files import FileInfo, IngestError, csv_header
from python_models.warehouse.sql_text import quote_ident, standard_string

MAX_PAYLOAD_CHARS = 10_000
MALFORMED_JSON_LINE = "malformed_json_line"
# DuckDB reject error types -> load_error codes (docs/quality_gate.md lists them).
REJECT_CODES = {
    "INVALID ENCODING": "invalid_utf8",
    "INVALID UNICODE": "invalid_utf8",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
    "TOO MANY COLUMNS": "too_many_fields",
    "MISSING COLUMNS": "too_few_fields",
    "UNQUOTED VALUE": "broken_quoting",
}


@dataclass(frozen=True)
class FileRead:
    """How to read one file: its query, the file's own columns and their types, and where a
    rejected row's line number starts counting (the header line of a CSV is line 1)."""

    sql: str
    columns: dict[str, str]  # file column -> DuckDB type (VARCHAR for text formats)
    matched: dict[str, str]  # contract column -> file column
    rejects_table: str | None
    header_lines: int


def match_columns(path, available: Iterable[str]) -> dict[str, str]:
    """Contract column -> the file's column (case-insensitive, trimmed). A contract column
    named twice is an error: silently taking one copy lost every row's value in testing."""
    by_key: dict[str, list[str]] = {}
    for name in available:
        by_key.setdefault(name.strip().lower(), []).append(name)
    twice = {
        key: names for key, names in by_key.items() if key in CONTRACT_COLUMNS and len(names) > 1
    }
    if twice:
        key, names = next(iter(twice.items()))
        raise IngestError(
            f"{path}: the header names column {key!r} {len(names)} times "
            f"({', '.join(repr(n) for n in names)}); keep one"
        )
    matched = {col: by_key[col][0] for col in CONTRACT_COLUMNS if col in by_key}
    if not matched:
        shown = list(available)[:10]
        raise IngestError(
            f"{path}: none of the contract columns ({', '.join(CONTRACT_COLUMNS)}) in {shown}"
        )
    return matched


def _text_options(info: FileInfo, rejects: str) -> str:
    compression = f", compression = '{info.compression}'" if info.compression else ""
    return (
        f"store_rejects = true, rejects_table = '{rejects}', "
        f"rejects_scan = '{rejects}_scan'{compression}"
    )


def csv_read(con: duckdb.DuckDBPyConnection, info: FileInfo, rejects: str) -> FileRead:
    # The header is read here and the dialect fixed (comma, double quotes, all text), so
    # DuckDB's sniffer can neither mistake a ragged row for the header nor guess a type.
    columns = csv_header(info)
    matched = match_columns(info.path, columns)
    position = {name: i for i, name in enumerate(columns)}
    file_columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(columns)))
    source = (
        f"read_csv({standard_string(str(info.path))}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {{{file_columns}}}, "
        f"{_text_options(info, rejects)})"
    )
    fields = ",\n".join(
        f"c{position[matched[col]]} as {col}" if col in matched else f"null::varchar as {col}"
        for col in CONTRACT_COLUMNS
    )
    # A scan keeps file order (insertion order is preserved), so row_number() over () is the
    # row's position among the rows read.
    sql = f"""
        select row_number() over () as ordinal, {fields},
            null::varchar as load_error, null::varchar as raw_payload
        from {source}
    """
    return FileRead(sql, dict.fromkeys(columns, "VARCHAR"), matched, rejects, header_lines=1)


def _varchar_expr(name: str, duck_type: str) -> str:
    column = quote_ident(name)
    nested = duck_type.upper().startswith(("STRUCT", "MAP", "JSON")) or duck_type.endswith("]")
    if nested:
        return f"to_json({column})::varchar"
    return f"{column}::varchar"


def parquet_read(con: duckdb.DuckDBPyConnection, info: FileInfo) -> FileRead:
    source = f"read_parquet({standard_string(str(info.path))}, file_row_number = true)"
    try:
        described = con.execute(f"describe select * from {source}").fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"{info.path}: cannot read as Parquet: {one_line(exc)}") from None
    types = {row[0]: row[1] for row in described if row[0] != "file_row_number"}
    matched = match_columns(info.path, types)
    # Integers become their decimal text; an id column written as a number cannot have kept
    # leading zeros, and schema drift reports the column as re-typed.
    fields = ",\n".join(
        f"{_varchar_expr(matched[col], types[matched[col]])} as {col}"
        if col in matched
        else f"null::varchar as {col}"
        for col in CONTRACT_COLUMNS
    )
    sql = f"""
        select file_row_number + 1 as ordinal, {fields},
            null::varchar as load_error, null::varchar as raw_payload
        from {source}
    """
    return FileRead(sql, types, matched, None, header_lines=0)


def jsonl_lines_sql(info: FileInfo, rejects: str) -> str:
    """Each physical line as one text column (a delimiter that cannot occur unescaped in JSON,
    no quoting; '\\r\\n' also accepts bare '\\n'), numbered; blank lines count."""
    return f"""
        select row_number() over () as ordinal, line
        from read_csv({standard_string(str(info.path))}, columns = {{'line': 'VARCHAR'}},
            header = false, delim = '\x01', quote = '', escape = '', new_line = '\\r\\n',
            auto_detect = false, strict_mode = false, {_text_options(info, rejects)})
    """


def jsonl_read(lines_table: str) -> str:
    """Rows from the numbered lines: from_json parses each line once; a nested value asked for
    as VARCHAR comes back as its JSON text, a JSON string as the string itself. A line that is
    not a JSON object becomes a row with load_error = malformed_json_line."""
    shape = "{" + ", ".join(f'"{col}": "VARCHAR"' for col in CONTRACT_COLUMNS) + "}"
    field_sql = ", ".join(f"fields.{col} as {col}" for col in CONTRACT_COLUMNS)
    return f"""
        with checked as (
            select ordinal, line,
                json_valid(line) and starts_with(ltrim(line, ' \t\r\n'), '{{') as is_object
            from {lines_table}
            where line is not null and trim(line) <> ''
        ),
        parsed as (
            select ordinal, line, is_object,
                case when is_object then from_json(line, '{shape}') end as fields
            from checked
        )
        select ordinal, {field_sql},
            case when not is_object then '{MALFORMED_JSON_LINE}' end as load_error,
            case when not is_object then left(line, {MAX_PAYLOAD_CHARS}) end as raw_payload
        from parsed
    """


def one_line(exc: BaseException) -> str:
    """DuckDB's messages run over several lines (hints, the dialect); keep the first."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
