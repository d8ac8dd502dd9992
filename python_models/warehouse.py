"""DuckDB connections, the writers' queue, and atomic table writes.

DuckDB lets one process write a file at a time, and a second one fails at once with a lock
error. Writers queue instead: `writer()` takes an advisory lock file next to the warehouse
(held for the whole step, including a dbt child process that opens the file itself), and
`connect()` retries DuckDB's own lock (held by a process that does not use the lock file, such
as a Dagster dbt step). Both wait up to `lock_timeout_seconds` (UBA_LOCK_TIMEOUT_SECONDS),
saying once who holds the file, then fail with WarehouseBusyError.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from python_models.config import get_settings

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DUCKDB_HOLDER = re.compile(r"\(PID (\d+)\)")
_POLL_SECONDS = 0.5
# Process-wide: lock files this process holds (path -> [fd, depth]); flock conflicts between
# two descriptors of one process, so a nested writer() reuses the outer one's.
_held: dict[str, list[int]] = {}


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse for longer than the lock timeout."""


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "unknown command"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    # "python .../bin/uba build" reads better as "uba build".
    for i, word in enumerate(words):
        if os.path.basename(word) in ("uba", "dbt", "dagster"):
            words = [os.path.basename(word), *words[i + 1 :]]
            break
    text = " ".join(words)
    return text if len(text) <= 160 else text[:157] + "..."


def _duckdb_holder(error: duckdb.Error) -> str | None:
    """'PID 123 (uba build)' from DuckDB's lock error, or None if it is another error."""
    text = str(error)
    if "lock" not in text.lower():
        return None
    match = _DUCKDB_HOLDER.search(text)
    if not match:
        return "another process"
    pid = int(match.group(1))
    return f"PID {pid} ({_command_of(pid)})"


def _wait_notice(db_path: Path, holder: str, timeout: float) -> None:
    print(
        f"uba: waiting for the warehouse {db_path}: held by {holder}; giving up after "
        f"{timeout:.0f} s (UBA_LOCK_TIMEOUT_SECONDS)",
        file=sys.stderr,
        flush=True,
    )


def _busy(db_path: Path, holder: str, waited: float) -> WarehouseBusyError:
    return WarehouseBusyError(
        f"the warehouse {db_path} is still held by {holder} after waiting {waited:.0f} s; "
        "run again when it has finished, or raise UBA_LOCK_TIMEOUT_SECONDS"
    )


def connect(
    path: str | Path | None = None, read_only: bool = False, timeout: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the configured memory limit and thread count, waiting up to
    `timeout` seconds (default: the lock timeout setting) while another process holds it.

    Fetch results with `.pl()`, `.df()` or `.fetch_arrow_table()`, never `.arrow()`: in DuckDB 1.5
    `.arrow()` returns a lazy RecordBatchReader, and while an unconsumed one is alive (say, held
    by an exception's traceback) any new connection to the same file in this process spins
    forever. tests/unit/test_warehouse.py guards the codebase against it.
    """
    settings = get_settings()
    db_path = Path(path) if path is not None else settings.duckdb_path
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = settings.lock_timeout_seconds if timeout is None else timeout
    started = time.monotonic()
    noticed = False
    while True:
        try:
            return duckdb.connect(
                str(db_path),
                read_only=read_only,
                config={
                    "memory_limit": settings.duckdb_memory_limit,
                    "threads": settings.duckdb_threads,
                },
            )
        except duckdb.Error as exc:
            holder = _duckdb_holder(exc)
            if holder is None:
                raise
            waited = time.monotonic() - started
            if waited >= timeout:
                raise _busy(db_path, holder, waited) from None
            if not noticed:
                _wait_notice(db_path, holder, timeout)
                noticed = True
            time.sleep(_POLL_SECONDS)


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".writer.lock")


@contextlib.contextmanager
def writer_lock(
    path: str | Path | None = None, purpose: str | None = None, timeout: float | None = None
) -> Iterator[Path]:
    """Hold the warehouse's writer lock (a lock file beside it) for the duration of a step.

    Waits up to `timeout` seconds for another writer, saying who holds it (pid, command,
    since when), then raises WarehouseBusyError. The lock is released when the step ends or
    the process dies, so a killed writer never leaves it behind.
    """
    settings = get_settings()
    db_path = (Path(path) if path is not None else settings.duckdb_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = settings.lock_timeout_seconds if timeout is None else timeout
    key = str(db_path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield db_path
        finally:
            _held[key][1] -= 1
        return
    fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    noticed = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 1000, 0).decode(errors="replace").strip() or "a writer"
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise _busy(db_path, holder, waited) from None
                if not noticed:
                    _wait_notice(db_path, holder, timeout)
                    noticed = True
                time.sleep(_POLL_SECONDS)
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        what = purpose or _command_of(os.getpid())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({what}) since {since}".encode(), 0)
        _held[key] = [fd, 1]
        try:
            yield db_path
        finally:
            del _held[key]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer(
    path: str | Path | None = None, purpose: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection held under the writer lock; closed (and the lock released) on exit."""
    with writer_lock(path, purpose) as db_path:
        con = connect(db_path)
        try:
            yield con
        finally:
            con.close()


def split_name(qualified: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table), refusing anything that is not a plain identifier."""
    parts = qualified.split(".")
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"expected 'schema.table' with plain identifiers, got {qualified!r}")
    return parts[0], parts[1]


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = split_name(qualified)
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def table_fingerprint(con: duckdb.DuckDBPyConnection, qualified: str) -> str:
    """Content fingerprint of a table: its columns and types, row count and the sum of its
    row hashes (order-free). Equal fingerprints mean, with overwhelming likelihood, equal
    contents; one scan of the table (about 0.5 s for 1M events' fct_events on 2 cores)."""
    schema, table = split_name(qualified)
    columns = con.execute(
        "select string_agg(column_name || ' ' || data_type, ',' order by ordinal_position) "
        "from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()[0]
    rows, total = con.execute(
        f'select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar from "{schema}"."{table}" t'
    ).fetchone()
    return f"{rows}:{total}:{hashlib.sha256((columns or '').encode()).hexdigest()[:16]}"


def _drop_leftovers(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """Drop `<table>__new_*` tables an earlier version of replace_table could leave behind
    when killed between writing the new table and swapping it in."""
    leftovers = con.execute(
        "select table_name from information_schema.tables where table_schema = ? "
        "and starts_with(table_name, ?)",
        [schema, f"{table}__new_"],
    ).fetchall()
    for (name,) in leftovers:
        con.execute(f'drop table if exists "{schema}"."{name}"')


def replace_table(con: duckdb.DuckDBPyConnection, qualified: str, frame: Any) -> int:
    """Replace `schema.table` with `frame` (Arrow table, polars or pandas DataFrame) atomically.

    Everything happens in one transaction (DuckDB's DDL is transactional): the new table
    replaces the old one at commit, so a failure, or the process being killed at any point,
    leaves the previous table as it was and no stray table behind. Returns the rows written.
    """
    schema, table = split_name(qualified)
    con.register("__uba_frame", frame)
    try:
        con.execute("begin transaction")
        try:
            con.execute(f'create schema if not exists "{schema}"')
            _drop_leftovers(con, schema, table)
            con.execute(
                f'create or replace table "{schema}"."{table}" as select * from __uba_frame'
            )
            rows = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.unregister("__uba_frame")
    return int(rows)
