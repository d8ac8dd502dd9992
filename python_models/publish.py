"""Publish a read-only copy of the warehouse and Parquet exports for BI readers."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from python_models.warehouse import table_fingerprint

PUBLISHED_SCHEMAS = ("marts", "features", "reports", "ml_scores", "ml", "impact")
# Beside the publication: each table's content fingerprint when it was copied.
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PublishResult:
    duckdb_path: Path
    parquet_dir: Path
    tables: list[str]  # every published table
    copied: list[str] = field(default_factory=list)  # the ones written by this run
    removed: list[str] = field(default_factory=list)  # gone from the warehouse, so unpublished

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.removed)


def _published_tables(con) -> list[str]:
    return [
        f"{schema}.{name}"
        for schema, name in con.execute(
            f"""
            select table_schema, table_name from information_schema.tables
            where table_catalog = current_database()
              and table_schema in ({", ".join("?" for _ in PUBLISHED_SCHEMAS)})
              and table_type = 'BASE TABLE'
            order by 1, 2
            """,
            list(PUBLISHED_SCHEMAS),
        ).fetchall()
    ]


def _read_manifest(out_dir: Path) -> dict[str, str] | None:
    """The fingerprints of the current publication, or None when it is missing or incomplete
    (then everything is copied)."""
    path = out_dir / MANIFEST
    if not (path.exists() and (out_dir / "warehouse.duckdb").exists()):
        return None
    try:
        tables = json.loads(path.read_text())["tables"]
    except (ValueError, KeyError, TypeError):
        return None
    parquet = out_dir / "parquet"
    if not all((parquet / f"{table}.parquet").exists() for table in tables):
        return None
    return dict(tables)


def publish_warehouse(con, out_dir: Path, only_changed: bool = False) -> PublishResult:
    """Copy every table of PUBLISHED_SCHEMAS into `out_dir/warehouse.duckdb` and
    `out_dir/parquet/<schema>.<table>.parquet`. Both are built beside the old ones and swapped
    in with a rename, so a reader sees the old or the new publication, never a mix.

    `only_changed`: tables whose content fingerprint equals the published one are carried over
    (the old DuckDB file is copied and only changed tables replaced in it; unchanged Parquet
    files are hard-linked), and when nothing changed nothing is written at all."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = _published_tables(con)
    fingerprints = {table: table_fingerprint(con, table) for table in tables}
    previous = _read_manifest(out_dir) if only_changed else None
    final_db = out_dir / "warehouse.duckdb"
    final_parquet = out_dir / "parquet"
    if previous is None:
        copied, removed = tables, []
    else:
        copied = [t for t in tables if previous.get(t) != fingerprints[t]]
        removed = sorted(set(previous) - set(tables))
        if not copied and not removed:
            return PublishResult(final_db, final_parquet, tables)

    staging_db = out_dir / "warehouse.duckdb.new"
    staging_parquet = out_dir / "parquet.new"
    staging_db.unlink(missing_ok=True)
    shutil.rmtree(staging_parquet, ignore_errors=True)
    staging_parquet.mkdir()
    if previous is not None:
        shutil.copyfile(final_db, staging_db)
        for table in tables:
            if table not in copied:
                name = f"{table}.parquet"
                os.link(final_parquet / name, staging_parquet / name)

    con.execute(f"attach '{staging_db}' as publish_target")
    try:
        for qualified in removed:
            schema, name = qualified.split(".")
            con.execute(f'drop table if exists publish_target."{schema}"."{name}"')
        for qualified in copied:
            schema, name = qualified.split(".")
            con.execute(f'create schema if not exists publish_target."{schema}"')
            con.execute(
                f'create or replace table publish_target."{schema}"."{name}" as '
                f'select * from "{schema}"."{name}"'
            )
            con.execute(
                f'copy "{schema}"."{name}" to \'{staging_parquet / (qualified + ".parquet")}\' '
                "(format parquet)"
            )
    finally:
        con.execute("detach publish_target")

    (out_dir / MANIFEST).unlink(missing_ok=True)  # killed mid-swap: the next run copies all
    os.replace(staging_db, final_db)
    old = out_dir / "parquet.old"
    shutil.rmtree(old, ignore_errors=True)
    if final_parquet.exists():
        os.replace(final_parquet, old)
    os.replace(staging_parquet, final_parquet)
    shutil.rmtree(old, ignore_errors=True)
    (out_dir / MANIFEST).write_text(json.dumps({"tables": fingerprints}, indent=1, sort_keys=True))
    return PublishResult(final_db, final_parquet, tables, copied, removed)
