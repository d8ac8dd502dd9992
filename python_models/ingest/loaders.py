"""Load CSV / Parquet / JSON Lines event files into raw.events, everything kept as text.

Each file is read by DuckDB (never a Python loop over rows) and inserted in one transaction
together with its raw.load_log row, so a crash leaves either the whole file or nothing.
A file whose sha256 is already in raw.load_log is skipped: loading is idempotent.
"""

from __future__ import annotations

import csv
import hashlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

CONTRACT_COLUMNS = (
    "event_id",
    "user_id",
    "anonymous_id",
    "event_name",
    "event_ts",
    "received_at",
    "session_id",
    "properties",
)
FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
FORMATS = ("csv", "parquet", "jsonl")
MAX_PAYLOAD_CHARS = 10_000
MALFORMED_JSON_LINE = "malformed_json_line"

RAW_DDL = """
create schema if not exists raw;
create table if not exists raw.events (
    raw_id varchar primary key,
    source_file varchar not null,
    file_sha256 varchar not null,
    row_number bigint not null,
    loaded_at timestamp not null,
    event_id varchar,
    user_id varchar,
    anonymous_id varchar,
    event_name varchar,
    event_ts varchar,
    received_at varchar,
    session_id varchar,
    properties varchar,
    load_error varchar,
    raw_payload varchar
);
create table if not exists raw.load_log (
    file_sha256 varchar primary key,
    source_file varchar not null,
    format varchar not null,
    row_count bigint not null,
    loaded_at timestamp not null
);
"""


class IngestError(ValueError):
    """A file cannot be loaded at all (unknown format, no contract columns, unreadable)."""


@dataclass(frozen=True)
class LoadResult:
    files_loaded: int
    files_skipped: int
    rows_loaded: int


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_DDL)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"use one of {', '.join(FORMATS_BY_SUFFIX)} or pass fmt="
        )
    return fmt


def expand_paths(paths: Iterable[str | Path], fmt: str | None) -> list[Path]:
    """Files to load: a directory gives its *.csv / *.parquet / *.jsonl / *.ndjson, sorted."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in FORMATS_BY_SUFFIX
                and (fmt is None or FORMATS_BY_SUFFIX[p.suffix.lower()] == fmt)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise IngestError(f"{path}: no such file or directory")
    return files


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _match_columns(available: Iterable[str]) -> dict[str, str]:
    """Contract column -> the file's column name (matched case-insensitively, trimmed)."""
    by_key = {name.strip().lower(): name for name in available}
    return {col: by_key[col] for col in CONTRACT_COLUMNS if col in by_key}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise IngestError(f"{path}: empty CSV file (no header line)")
    return header


def _csv_select(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    # The header is read here and the dialect fixed (comma, double quotes), so DuckDB's sniffer
    # cannot mistake a ragged row for the header; a row with the wrong number of fields then
    # fails the whole file with a clear error instead of being silently cut or dropped.
    columns = _csv_header(path)
    matched = _match_columns(columns)
    if not matched:
        raise IngestError(
            f"{path}: none of the contract columns ({', '.join(CONTRACT_COLUMNS)}) in the header "
            f"{columns[:10]}"
        )
    file_columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(columns)))
    source = (
        f"read_csv({_sql_str(str(path))}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', columns = {{{file_columns}}})"
    )
    position = {name: i for i, name in enumerate(columns)}
    fields = ",\n".join(
        f"c{position[matched[col]]} as {col}" if col in matched else f"null::varchar as {col}"
        for col in CONTRACT_COLUMNS
    )
    # The scan keeps file order (insertion order is preserved), so row_number() over () is the
    # 1-based data row of the file.
    return f"""
        select row_number() over () as row_number, {fields},
            null::varchar as load_error, null::varchar as raw_payload
        from {source}
    """


def _varchar_expr(name: str, duck_type: str) -> str:
    column = _quote(name)
    nested = duck_type.upper().startswith(("STRUCT", "MAP", "JSON")) or duck_type.endswith("]")
    if nested:
        return f"to_json({column})::varchar"
    return f"{column}::varchar"


def _parquet_select(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    source = f"read_parquet({_sql_str(str(path))}, file_row_number = true)"
    described = con.execute(f"describe select * from {source}").fetchall()
    types = {row[0]: row[1] for row in described if row[0] != "file_row_number"}
    matched = _match_columns(types)
    if not matched:
        raise IngestError(
            f"{path}: none of the contract columns ({', '.join(CONTRACT_COLUMNS)}) in the schema "
            f"{list(types)[:10]}"
        )
    fields = ",\n".join(
        f"{_varchar_expr(matched[col], types[matched[col]])} as {col}"
        if col in matched
        else f"null::varchar as {col}"
        for col in CONTRACT_COLUMNS
    )
    return f"""
        select file_row_number + 1 as row_number, {fields},
            null::varchar as load_error, null::varchar as raw_payload
        from {source}
    """


def _jsonl_select(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    # Read each line as one text column (a delimiter that cannot occur unescaped in JSON, no
    # quoting; '\r\n' also accepts bare '\n'), so a malformed line becomes a row instead of
    # aborting the read. from_json parses each line once; a nested value asked for as VARCHAR
    # comes back as its JSON text, a JSON string as the string itself.
    lines = f"""
        select row_number() over () as row_number, line
        from read_csv({_sql_str(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false,
            delim = '\x01', quote = '', escape = '', new_line = '\\r\\n', auto_detect = false,
            strict_mode = false)
    """
    shape = "{" + ", ".join(f'"{col}": "VARCHAR"' for col in CONTRACT_COLUMNS) + "}"
    field_sql = ", ".join(f"fields.{col} as {col}" for col in CONTRACT_COLUMNS)
    return f"""
        with numbered as ({lines}),
        present as (
            select row_number, line from numbered where line is not null and trim(line) <> ''
        ),
        checked as (
            select row_number, line,
                -- valid JSON that starts with '{{' is an object
                json_valid(line) and starts_with(ltrim(line, ' \t\r\n'), '{{') as is_object
            from present
        ),
        parsed as (
            select row_number, line, is_object,
                case when is_object then from_json(line, '{shape}') end as fields
            from checked
        )
        select row_number, {field_sql},
            case when not is_object then '{MALFORMED_JSON_LINE}' end as load_error,
            case when not is_object then left(line, {MAX_PAYLOAD_CHARS}) end as raw_payload
        from parsed
    """


_SELECT_BUILDERS = {"csv": _csv_select, "parquet": _parquet_select, "jsonl": _jsonl_select}


def _check_jsonl_has_contract_keys(con: duckdb.DuckDBPyConnection, sha: str, path: Path):
    """Objects were read but none holds a contract key: the wrong kind of file."""
    any_field = " or ".join(f"{c} is not null" for c in CONTRACT_COLUMNS)
    has_object, has_field = con.execute(
        f"""
        select count(*) filter (where load_error is null) > 0,
            count(*) filter (where load_error is null and ({any_field})) > 0
        from raw.events
        where file_sha256 = ?
        """,
        [sha],
    ).fetchone()
    if has_object and not has_field:
        raise IngestError(
            f"{path}: no JSON object in the file has any contract key "
            f"({', '.join(CONTRACT_COLUMNS)})"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def load_file(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str | None = None, progress: bool = True
) -> int | None:
    """Load one file; returns rows loaded, or None when the file was already loaded."""
    fmt = fmt or detect_format(path)
    if fmt not in _SELECT_BUILDERS:
        raise IngestError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    sha = file_sha256(path)
    already = con.execute(
        "select source_file from raw.load_log where file_sha256 = ?", [sha]
    ).fetchone()
    if already is not None:
        if progress:
            print(
                f"load: {path} already loaded (same content as {already[0]}), skipped", flush=True
            )
        return None
    started = time.perf_counter()
    try:
        select_sql = _SELECT_BUILDERS[fmt](con, path)
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read as {fmt}: {exc}") from exc
    loaded_at = _utc_now()
    raw_id_prefix = sha[:16]
    con.execute("begin transaction")
    try:
        rows = con.execute(
            f"""
            insert into raw.events
            select {_sql_str(raw_id_prefix)} || ':' || row_number as raw_id,
                ? as source_file, ? as file_sha256, row_number::bigint as row_number,
                ?::timestamp as loaded_at,
                {", ".join(CONTRACT_COLUMNS)}, load_error, raw_payload
            from ({select_sql})
            """,
            [str(path), sha, loaded_at],
        ).fetchone()[0]
        if fmt == "jsonl":
            _check_jsonl_has_contract_keys(con, sha, path)
        con.execute(
            "insert into raw.load_log values (?, ?, ?, ?, ?)",
            [sha, str(path), fmt, rows, loaded_at],
        )
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        raise IngestError(f"{path}: load failed, nothing was written: {exc}") from exc
    except BaseException:
        con.execute("rollback")
        raise
    if progress:
        elapsed = time.perf_counter() - started
        print(f"load: {path} ({fmt}) {rows:,} rows in {elapsed:.1f}s", flush=True)
    return int(rows)


def load_path(
    con: duckdb.DuckDBPyConnection,
    path: str | Path | list[str | Path],
    fmt: str | None = None,
    progress: bool = True,
) -> LoadResult:
    """Load a file, a directory (every supported file, sorted) or a list of them into raw.events.

    fmt ('csv', 'parquet', 'jsonl') overrides the extension. Files already in raw.load_log (same
    sha256) add nothing.
    """
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    paths = path if isinstance(path, list | tuple) else [path]
    files = expand_paths(paths, fmt)
    if not files:
        print(f"load: no event files found in {', '.join(map(str, paths))}", file=sys.stderr)
    ensure_raw_tables(con)
    loaded = skipped = rows = 0
    for file in files:
        count = load_file(con, file, fmt, progress=progress)
        if count is None:
            skipped += 1
        else:
            loaded += 1
            rows += count
    return LoadResult(files_loaded=loaded, files_skipped=skipped, rows_loaded=rows)
