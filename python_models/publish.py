"""Publish a read-only copy of the warehouse and Parquet exports for BI readers."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

PUBLISHED_SCHEMAS = ("marts", "features", "reports", "ml_scores", "ml", "impact")


@dataclass(frozen=True)
class PublishResult:
    duckdb_path: Path
    parquet_dir: Path
    tables: list[str]


def publish_warehouse(con, out_dir: Path) -> PublishResult:
    """Copy every table of PUBLISHED_SCHEMAS into `out_dir/warehouse.duckdb` and
    `out_dir/parquet/<schema>.<table>.parquet`. Both are built beside the old ones and swapped
    in with a rename, so a reader sees the old or the new publication, never a mix."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = [
        f"{schema}.{name}"
        for schema, name in con.execute(
            f"""
            select table_schema, table_name from information_schema.tables
            where table_schema in ({", ".join("?" for _ in PUBLISHED_SCHEMAS)})
              and table_type = 'BASE TABLE'
            order by 1, 2
            """,
            list(PUBLISHED_SCHEMAS),
        ).fetchall()
    ]
    staging_db = out_dir / "warehouse.duckdb.new"
    staging_parquet = out_dir / "parquet.new"
    staging_db.unlink(missing_ok=True)
    shutil.rmtree(staging_parquet, ignore_errors=True)
    staging_parquet.mkdir()

    con.execute(f"attach '{staging_db}' as publish_target")
    try:
        for qualified in tables:
            schema, name = qualified.split(".")
            con.execute(f'create schema if not exists publish_target."{schema}"')
            con.execute(
                f'create table publish_target."{schema}"."{name}" as '
                f'select * from "{schema}"."{name}"'
            )
            con.execute(
                f'copy "{schema}"."{name}" to \'{staging_parquet / (qualified + ".parquet")}\' '
                "(format parquet)"
            )
    finally:
        con.execute("detach publish_target")

    final_db = out_dir / "warehouse.duckdb"
    final_parquet = out_dir / "parquet"
    os.replace(staging_db, final_db)
    old = out_dir / "parquet.old"
    shutil.rmtree(old, ignore_errors=True)
    if final_parquet.exists():
        os.replace(final_parquet, old)
    os.replace(staging_parquet, final_parquet)
    shutil.rmtree(old, ignore_errors=True)
    return PublishResult(duckdb_path=final_db, parquet_dir=final_parquet, tables=tables)
