"""The files a run writes, after an erasure: DuckDB files rewritten without the bytes of deleted
rows, Parquet files rewritten without the person's rows, SQLite files (the scoring service's
trigger audit) without their rows and vacuumed, and a byte scan that proves it.

DuckDB marks the blocks of deleted rows free but keeps their bytes in the file until they are
reused, and CHECKPOINT does not overwrite them. So a file that held an erased person is copied
table by table into a fresh file (COPY FROM DATABASE: schemas, tables, views, macros,
constraints) that replaces the old one with a rename: readers see the old or the new file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import duckdb

from python_models.privacy.discovery import column_role
from python_models.privacy.identities import Identity

DUCKDB_SUFFIX = ".duckdb"
PARQUET_SUFFIX = ".parquet"
SQLITE_SUFFIXES = (".sqlite3", ".sqlite")
SQLITE_BUSY_MS = 30_000
_CHUNK = 1 << 24


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _files_under(data_dir: Path, suffixes: tuple[str, ...], exclude: Iterable[Path]) -> list[Path]:
    excluded = [Path(p).resolve() for p in exclude]

    def kept(path: Path) -> bool:
        resolved = path.resolve()
        return not any(resolved == e or e in resolved.parents for e in excluded)

    if not Path(data_dir).exists():
        return []
    found = [p for suffix in suffixes for p in Path(data_dir).rglob(f"*{suffix}") if kept(p)]
    real = {p.resolve() for p in found if not p.is_symlink()}
    # A link to a file listed under its own name (published/warehouse.duckdb -> warehouse.a.
    # duckdb) is scrubbed through that name: rewriting the link's path would replace the link.
    return sorted(p for p in found if not (p.is_symlink() and p.resolve() in real))


def project_files(data_dir: Path, exclude: Iterable[Path] = ()) -> tuple[list[Path], list[Path]]:
    """(DuckDB files, Parquet files) under `data_dir`, outside the `exclude` folders and files."""
    return (
        _files_under(data_dir, (DUCKDB_SUFFIX,), exclude),
        _files_under(data_dir, (PARQUET_SUFFIX,), exclude),
    )


def sqlite_files(data_dir: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """SQLite files under `data_dir`, outside the `exclude` folders and files."""
    return _files_under(data_dir, SQLITE_SUFFIXES, exclude)


def scrub_sqlite(path: Path, identity: Identity) -> int:
    """Delete the identity's rows from every table of a SQLite file (columns found by identifier
    role), then VACUUM and empty the write-ahead log so no page keeps them; rows removed.
    Safe while another process (`uba serve`) has the file open: it waits for its lock."""
    values = identity.role_values()
    db = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_MS / 1000)
    try:
        tables = [
            row[0]
            for row in db.execute(
                "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
            )
        ]
        removed = 0
        for table in tables:
            terms, params = [], []
            for _cid, column, *_rest in db.execute(f'pragma table_info("{table}")').fetchall():
                role = column_role(column)
                if role and values.get(role):
                    terms.append(f'"{column}" in (select value from json_each(?))')
                    params.append(json.dumps(sorted(values[role])))
            if terms:
                removed += db.execute(
                    f'delete from "{table}" where {" or ".join(terms)}', params
                ).rowcount
        if removed:
            db.execute("pragma wal_checkpoint(truncate)")
            db.execute("vacuum")
            db.execute("pragma wal_checkpoint(truncate)")
        return removed
    finally:
        db.close()


def compact_database(path: Path, memory_limit: str = "2GB") -> int:
    """Rewrite the DuckDB file at `path` into a fresh file and swap it in; bytes saved."""
    path = Path(path)
    fresh = path.with_name(path.name + ".compact")
    fresh.unlink(missing_ok=True)
    before = path.stat().st_size
    con = duckdb.connect(str(path), config={"memory_limit": memory_limit})
    try:
        con.execute("set enable_progress_bar = false")
        source = con.execute("select current_database()").fetchone()[0]
        con.execute(f"attach {_quote(fresh)} as uba_compacted")
        try:
            con.execute(f'copy from database "{source}" to uba_compacted')
        finally:
            con.execute("detach uba_compacted")
    except Exception:
        fresh.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    os.replace(fresh, path)
    return before - path.stat().st_size


def rewrite_parquet(path: Path, identity: Identity) -> int:
    """Rewrite a Parquet file without the identity's rows (found by identifier role); rows
    removed (0 leaves the file untouched)."""
    path = Path(path)
    values = identity.role_values()
    con = duckdb.connect()
    try:
        columns = [
            row[0]
            for row in con.execute(
                f"describe select * from read_parquet({_quote(path)})"
            ).fetchall()
        ]
        terms, params = [], []
        for column in columns:
            role = column_role(column)
            if role and values.get(role):
                terms.append(f'"{column}" in (select unnest(?))')
                params.append(sorted(values[role]))
        if not terms:
            return 0
        predicate = " or ".join(terms)
        removed = con.execute(
            f"select count(*) from read_parquet({_quote(path)}) where {predicate}", params
        ).fetchone()[0]
        if removed:
            fresh = path.with_name(path.name + ".new")
            con.execute(
                f"copy (select * from read_parquet({_quote(path)}) "
                f"where not coalesce({predicate}, false)) to {_quote(fresh)} (format parquet)",
                params,
            )
            os.replace(fresh, path)
        return int(removed)
    finally:
        con.close()


def files_containing(paths: Iterable[Path], needles: Iterable[str]) -> dict[Path, set[str]]:
    """Which of `needles` appear as raw bytes in each file (read in overlapping chunks)."""
    encoded = {n: n.encode() for n in needles if n}
    if not encoded:
        return {}
    overlap = max(len(b) for b in encoded.values())
    hits: dict[Path, set[str]] = {}
    for path in paths:
        found: set[str] = set()
        tail = b""
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(_CHUNK), b""):
                window = tail + block
                found |= {n for n, b in encoded.items() if n not in found and b in window}
                tail = window[-overlap:]
        if found:
            hits[Path(path)] = found
    return hits
