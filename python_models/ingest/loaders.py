"""Load CSV / Parquet / JSON Lines event files into raw.events, everything kept as text.

Each file is read by DuckDB (never a Python loop over rows) and inserted in one transaction
together with its raw.load_log row and its schema-drift findings, so a crash leaves either the
whole file or nothing. A file whose sha256 is already in raw.load_log is skipped: loading is
idempotent. A row DuckDB cannot read (invalid UTF-8, a line over 2 MB, a wrong number of
fields) becomes a raw row with a load_error, which the gate quarantines; every other row of the
file is kept. A file that cannot be read at all raises IngestError, one line naming the file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from python_models.ingest import drift
from python_models.ingest.contract import CONTRACT_COLUMNS, raw_ddl
from python_models.ingest.files import (
    FORMATS,
    FileInfo,
    IngestError,
    detect_format,
    expand_paths,
    inspect_file,
    text_is_empty,
)
from python_models.ingest.readers import (
    MAX_PAYLOAD_CHARS,
    REJECT_CODES,
    FileRead,
    csv_read,
    jsonl_lines_sql,
    jsonl_read,
    one_line,
    parquet_read,
)
from python_models.ingest.tracking_plan import TrackingPlan, read_tracking_plan
from python_models.warehouse import as_warehouse
from python_models.warehouse.sql_text import standard_string

_REJECTS = "__uba_load_rejects"
_LINES = "__uba_load_lines"


@dataclass(frozen=True)
class LoadResult:
    files_loaded: int
    files_skipped: int
    rows_loaded: int
    rows_unreadable: int = 0
    drift_findings: int = 0


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    from python_models.ingest.migrate import migrate_raw_tables

    migrate_raw_tables(con)
    con.execute(raw_ddl(as_warehouse(con).engine))


def next_load_id(con) -> int:
    """The load id a new batch gets (a loaded file, or late rows released by the gate)."""
    return con.execute("select coalesce(max(load_id), 0) + 1 from raw.load_log").fetchone()[0]


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _reject_code_sql() -> str:
    quoted = standard_string
    whens = " ".join(f"when {quoted(k)} then {quoted(v)}" for k, v in REJECT_CODES.items())
    return f"case error_type {whens} else lower(replace(error_type, ' ', '_')) end"


def _add_rejected_rows(
    con: duckdb.DuckDBPyConnection,
    info: FileInfo,
    read: FileRead,
    load_id: int,
    rows_read: int,
    loaded_at: datetime,
) -> int:
    """Turn the rows DuckDB set aside into raw rows with a load_error, and renumber the rows
    it did read so row_number is the row's place in the file (rejects leave gaps)."""
    rejected = con.execute(
        f"""
        create or replace temp table __uba_rejected_lines as
        select line - {read.header_lines} as row_number,
            arg_min({_reject_code_sql()}, byte_position) as load_error,
            left(arg_min(csv_line, byte_position), {MAX_PAYLOAD_CHARS}) as raw_payload
        from {_REJECTS}
        group by 1
        """
    ).fetchone()[0]
    if rejected:
        prefix = standard_string(info.sha256[:16])
        # The k-th row read is the k-th row number that was not rejected.
        con.execute(
            f"""
            with slots as (
                select i from range(1, {rows_read + rejected + 1}) as t(i)
                anti join __uba_rejected_lines as r on r.row_number = t.i
            ),
            numbered as (select i, row_number() over (order by i) as k from slots)
            update raw.events
            set row_number = numbered.i, raw_id = {prefix} || ':' || numbered.i
            from numbered
            where raw.events.load_id = ? and raw.events.row_number = numbered.k
            """,
            [load_id],
        )
        con.execute(
            f"""
            insert into raw.events (raw_id, load_id, source_file, file_sha256, row_number,
                loaded_at, load_error, raw_payload)
            select {prefix} || ':' || r.row_number, ?, ?, ?, r.row_number, ?::timestamp,
                r.load_error, r.raw_payload
            from __uba_rejected_lines as r
            """,
            [load_id, str(info.path), info.sha256, loaded_at],
        )
    con.execute("drop table __uba_rejected_lines")
    return int(rejected)


def _drop_reject_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists {_REJECTS}")
    con.execute(f"drop table if exists {_REJECTS}_scan")


def _check_jsonl_has_contract_keys(con: duckdb.DuckDBPyConnection, load_id: int, path: Path):
    """Objects were read but none holds a contract key: the wrong kind of file."""
    any_field = " or ".join(f"{c} is not null" for c in CONTRACT_COLUMNS)
    has_object, has_field = con.execute(
        f"""
        select count(*) filter (where load_error is null) > 0,
            count(*) filter (where load_error is null and ({any_field})) > 0
        from raw.events
        where load_id = ?
        """,
        [load_id],
    ).fetchone()
    if has_object and not has_field:
        raise IngestError(
            f"{path}: no JSON object in the file has any contract key "
            f"({', '.join(CONTRACT_COLUMNS)})"
        )


def _insert_rows(
    con: duckdb.DuckDBPyConnection, info: FileInfo, load_id: int, loaded_at: datetime
) -> tuple[FileRead, int, list[tuple]]:
    """Insert the file's rows; returns how it was read, rows read and column findings."""
    if info.fmt == "csv":
        read = csv_read(con, info, _REJECTS)
    elif info.fmt == "parquet":
        read = parquet_read(con, info)
    else:
        con.execute(f"create or replace temp table {_LINES} as {jsonl_lines_sql(info, _REJECTS)}")
        read = FileRead(jsonl_read(_LINES), {}, {}, _REJECTS, header_lines=0)
    prefix = standard_string(info.sha256[:16])
    con.execute(
        f"""
        insert into raw.events
        select {prefix} || ':' || ordinal, ?, ?, ?, ordinal, ?::timestamp,
            {", ".join(CONTRACT_COLUMNS)}, load_error, raw_payload
        from ({read.sql})
        """,
        [load_id, str(info.path), info.sha256, loaded_at],
    )
    if info.fmt == "jsonl":
        rows_read = con.execute(f"select count(*) from {_LINES}").fetchone()[0]
        counts = drift.jsonl_type_counts(con, _LINES)
        columns = {key: "VARCHAR" for key, _ in counts}
        findings = drift.column_findings(columns, rows_read, counts) if counts else []
        con.execute(f"drop table {_LINES}")
    else:
        rows_read = con.execute(
            "select count(*) from raw.events where load_id = ?", [load_id]
        ).fetchone()[0]
        findings = drift.column_findings(read.columns, rows_read)
    return read, int(rows_read), findings


def load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str | None = None,
    progress: bool = True,
    plan: TrackingPlan | None = None,
    on_new_file: Callable[[], object] | None = None,
) -> tuple[int, int, int] | None:
    """Load one file; returns (rows, unreadable rows, drift findings), or None when the file was
    already loaded or is empty. `on_new_file()` is called before a new file's rows are
    written."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for --format; choose from {', '.join(FORMATS)}")
    info = inspect_file(path, fmt)
    if info.is_empty or (fmt != "parquet" and text_is_empty(info)):
        if progress:
            print(f"load: {path} is empty (0 bytes of data), nothing to load", flush=True)
        return None
    already = con.execute(
        "select source_file from raw.load_log where file_sha256 = ?", [info.sha256]
    ).fetchone()
    if already is not None:
        if progress:
            print(
                f"load: {path} already loaded (same content as {already[0]}), skipped", flush=True
            )
        return None
    if on_new_file is not None:
        on_new_file()
    plan = plan or read_tracking_plan()
    started = time.perf_counter()
    loaded_at = _utc_now()
    con.execute("begin transaction")
    try:
        load_id = next_load_id(con)
        read, rows_read, findings = _insert_rows(con, info, load_id, loaded_at)
        unreadable = 0
        if read.rejects_table:
            unreadable = _add_rejected_rows(con, info, read, load_id, rows_read, loaded_at)
        if fmt == "jsonl":
            _check_jsonl_has_contract_keys(con, load_id, path)
        # a Parquet file's rows are all readable (no load_error): its two columns read again
        source = f"({read.sql})" if fmt == "parquet" else None
        findings += drift.event_findings(con, load_id, plan, rows=source)
        recorded = drift.record_drift(con, load_id, str(path), findings, loaded_at)
        rows = con.execute(
            "select count(*) from raw.events where load_id = ?", [load_id]
        ).fetchone()[0]
        con.execute(
            "insert into raw.load_log values (?, ?, ?, ?, ?, ?, ?)",
            [info.sha256, load_id, str(path), fmt, rows, unreadable, loaded_at],
        )
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        raise IngestError(f"{path}: load failed, nothing was written: {one_line(exc)}") from None
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        _drop_reject_tables(con)
    if progress:
        elapsed = time.perf_counter() - started
        notes = []
        if unreadable:
            notes.append(f"{unreadable:,} unreadable (load_error set; the gate quarantines them)")
        if recorded:
            notes.append(f"{recorded} schema drift finding(s) in raw.schema_drift")
        suffix = f"; {'; '.join(notes)}" if notes else ""
        print(
            f"load: {path} ({fmt}) {rows:,} rows in {elapsed:.1f}s{suffix}",
            flush=True,
        )
    return int(rows), unreadable, recorded


def load_path(
    con: duckdb.DuckDBPyConnection,
    path: str | Path | list[str | Path],
    fmt: str | None = None,
    progress: bool = True,
    on_new_file: Callable[[], object] | None = None,
) -> LoadResult:
    """Load a file, a directory (every supported file, sorted) or a list of them into raw.events.

    fmt ('csv', 'parquet', 'jsonl') overrides the extension. Files already in raw.load_log (same
    sha256) and empty files add nothing. The tracking plan is validated first. `on_new_file()`
    is called before each new file's rows are written (`uba refresh` starts the gate's GX import
    then).
    """
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for --format; choose from {', '.join(FORMATS)}")
    plan = read_tracking_plan()
    paths = path if isinstance(path, list | tuple) else [path]
    files = expand_paths(paths, fmt)
    if not files:
        print(f"load: no event files found in {', '.join(map(str, paths))}", file=sys.stderr)
    ensure_raw_tables(con)
    loaded = skipped = rows = unreadable = findings = 0
    for file in files:
        outcome = load_file(con, file, fmt, progress=progress, plan=plan, on_new_file=on_new_file)
        if outcome is None:
            skipped += 1
        else:
            loaded += 1
            rows += outcome[0]
            unreadable += outcome[1]
            findings += outcome[2]
    return LoadResult(
        files_loaded=loaded,
        files_skipped=skipped,
        rows_loaded=rows,
        rows_unreadable=unreadable,
        drift_findings=findings,
    )
