"""Publish a read-only copy of the warehouse and Parquet exports for BI readers.

The copy holds what BI should read and nothing else: the tables and views of PUBLISHED_SCHEMAS
(views are materialized as tables) except the pipeline's intermediate steps (`int_*`), each
with its description as a warehouse comment, and a manifest of what is in it: the tables
`docs.published_tables` / `docs.published_columns` and `manifest.json` beside the file.
Descriptions come from the warehouse comments dbt writes (persist_docs) and, for the tables
Python writes, from python_models.bi_docs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from python_models.warehouse import table_fingerprint

PUBLISHED_SCHEMAS = ("marts", "features", "reports", "ml_scores", "ml", "impact")
# Intermediate steps (dbt's int_* models, e.g. the feature families in features/prep) stay in
# the pipeline's warehouse: BI reads the marts built from them.
PRIVATE_PREFIXES = ("int_",)
DOCS_SCHEMA = "docs"
# Beside the publication: what it holds, with each table's content fingerprint when copied.
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class PublishResult:
    duckdb_path: Path
    parquet_dir: Path
    tables: list[str]  # every published table
    copied: list[str] = field(default_factory=list)  # the ones written by this run
    removed: list[str] = field(default_factory=list)  # gone from the warehouse, so unpublished
    manifest_path: Path | None = None
    undocumented_columns: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.removed)


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`schema.table` of every table and view the copy holds, in order."""
    placeholders = ", ".join("?" for _ in PUBLISHED_SCHEMAS)
    rows = con.execute(
        f"""
        select table_schema, table_name from information_schema.tables
        where table_schema in ({placeholders})
          and table_type in ('BASE TABLE', 'VIEW')
        order by 1, 2
        """,
        list(PUBLISHED_SCHEMAS),
    ).fetchall()
    return [f"{s}.{t}" for s, t in rows if not t.startswith(PRIVATE_PREFIXES)]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_manifest(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict:
    """What the copy holds: per table its description, row count and columns (name, position,
    type, description). Descriptions are the warehouse's comments (dbt's persist_docs), else
    python_models.bi_docs (the tables Python writes)."""
    from python_models.bi_docs import comment_docs

    declared = comment_docs()
    wanted = set(tables)
    table_comments = {
        name: comment
        for name, comment in con.execute(
            "select schema_name || '.' || table_name, comment from duckdb_tables() "
            "union all select schema_name || '.' || view_name, comment from duckdb_views()"
        ).fetchall()
        if name in wanted
    }
    columns: dict[str, list[dict]] = {table: [] for table in tables}
    for owner, name, data_type, position, comment in con.execute(
        "select schema_name || '.' || table_name, column_name, data_type, column_index, comment "
        "from duckdb_columns() order by 1, column_index"
    ).fetchall():
        if owner in wanted:
            text = comment or declared.get(owner, (None, {}))[1].get(name) or ""
            columns[owner].append(
                {
                    "name": name,
                    "position": int(position),
                    "data_type": data_type,
                    "description": text.strip() or None,
                }
            )
    manifest_tables = []
    for table in tables:
        schema, name = table.split(".")
        text = table_comments.get(table) or declared.get(table, ("", {}))[0] or ""
        rows = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
        manifest_tables.append(
            {
                "schema": schema,
                "table": name,
                "description": text.strip() or None,
                "row_count": int(rows),
                "columns": columns[table],
            }
        )
    return {"schemas": list(PUBLISHED_SCHEMAS), "tables": manifest_tables}


# The manifest as SQL in the copy: table -> (description, [(column, type, description)]).
DOCS_TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "published_tables": (
        "One row per published table: its description and row count.",
        [
            ("table_schema", "varchar", "The table's schema."),
            ("table_name", "varchar", "The table's name."),
            ("description", "varchar", "What one row is and where it comes from."),
            ("row_count", "bigint", "Rows at publication time."),
            ("column_count", "integer", "Columns in the table."),
        ],
    ),
    "published_columns": (
        "One row per published column: its type and description.",
        [
            ("table_schema", "varchar", "The column's table's schema."),
            ("table_name", "varchar", "The column's table."),
            ("column_name", "varchar", "The column's name."),
            ("ordinal_position", "integer", "Its position in the table (1 = first)."),
            ("data_type", "varchar", "Its DuckDB type."),
            ("description", "varchar", "What it holds (the warehouse comment)."),
        ],
    ),
}


def _write_docs_tables(con: duckdb.DuckDBPyConnection, target: str, manifest: dict) -> None:
    """`docs.published_tables` and `docs.published_columns` in the copy (the manifest as SQL),
    themselves described like every other table."""
    import pyarrow as pa

    con.execute(f'create schema if not exists {target}."{DOCS_SCHEMA}"')
    rows = {
        "published_tables": [
            (t["schema"], t["table"], t["description"], t["row_count"], len(t["columns"]))
            for t in manifest["tables"]
        ],
        "published_columns": [
            (t["schema"], t["table"], c["name"], c["position"], c["data_type"], c["description"])
            for t in manifest["tables"]
            for c in t["columns"]
        ],
    }
    for table, (description, columns) in DOCS_TABLES.items():
        name = f'{target}."{DOCS_SCHEMA}".{table}'
        con.execute(f"create table {name} ({', '.join(f'{c} {t}' for c, t, _ in columns)})")
        if rows[table]:  # one insert from a frame: a row-by-row executemany took seconds
            frame = pa.table(list(zip(*rows[table], strict=True)), names=[c for c, _, _ in columns])
            con.register("uba_publish_docs_rows", frame)
            try:
                con.execute(f"insert into {name} select * from uba_publish_docs_rows")
            finally:
                con.unregister("uba_publish_docs_rows")
        con.execute(f"comment on table {name} is {_literal(description)}")
        for column, _, text in columns:
            con.execute(f"comment on column {name}.{column} is {_literal(text)}")


def _comment(con: duckdb.DuckDBPyConnection, target: str, manifest: dict) -> None:
    for table in manifest["tables"]:
        name = f'{target}."{table["schema"]}"."{table["table"]}"'
        if table["description"]:
            con.execute(f"comment on table {name} is {_literal(table['description'])}")
        for column in table["columns"]:
            if column["description"]:
                con.execute(
                    f'comment on column {name}."{column["name"]}" is '
                    + _literal(column["description"])
                )


def _read_manifest(out_dir: Path) -> dict[str, str] | None:
    """The fingerprints of the current publication, or None when it is missing, incomplete or
    from before fingerprints (then everything is copied)."""
    path = out_dir / MANIFEST_FILE
    if not (path.exists() and (out_dir / "warehouse.duckdb").exists()):
        return None
    try:
        entries = json.loads(path.read_text())["tables"]
        fingerprints = {f"{t['schema']}.{t['table']}": t["fingerprint"] for t in entries}
    except (ValueError, KeyError, TypeError):
        return None
    parquet = out_dir / "parquet"
    if not all((parquet / f"{table}.parquet").exists() for table in fingerprints):
        return None
    return fingerprints


def publish_warehouse(con, out_dir: Path, only_changed: bool = False) -> PublishResult:
    """Copy every published table (see the module docstring) into `out_dir/warehouse.duckdb`
    and `out_dir/parquet/<schema>.<table>.parquet`, with comments and the manifest. Both are
    built beside the old ones and swapped in with a rename, so a reader sees the old or the
    new publication, never a mix.

    `only_changed`: tables whose content fingerprint equals the published one are carried over
    (the old DuckDB file is copied and only changed tables replaced in it; unchanged Parquet
    files are hard-linked), and when nothing changed nothing is written at all."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = published_tables(con)
    fingerprints = {table: table_fingerprint(con, table) for table in tables}
    previous = _read_manifest(out_dir) if only_changed else None
    final_db = out_dir / "warehouse.duckdb"
    final_parquet = out_dir / "parquet"
    manifest_path = out_dir / MANIFEST_FILE
    if previous is None:
        copied, removed = tables, []
    else:
        copied = [t for t in tables if previous.get(t) != fingerprints[t]]
        removed = sorted(set(previous) - set(tables))
        if not copied and not removed:
            return PublishResult(final_db, final_parquet, tables, manifest_path=manifest_path)
    manifest = build_manifest(con, tables)
    for entry in manifest["tables"]:
        entry["fingerprint"] = fingerprints[f"{entry['schema']}.{entry['table']}"]
    staging_db = out_dir / "warehouse.duckdb.new"
    staging_parquet = out_dir / "parquet.new"
    staging_manifest = out_dir / (MANIFEST_FILE + ".new")
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
        _comment(con, "publish_target", manifest)
        # A carried-over copy holds the previous manifest tables: written anew.
        con.execute(f'drop schema if exists publish_target."{DOCS_SCHEMA}" cascade')
        _write_docs_tables(con, "publish_target", manifest)
    finally:
        con.execute("detach publish_target")
    staging_manifest.write_text(json.dumps(manifest, indent=1, default=str) + "\n")

    manifest_path.unlink(missing_ok=True)  # killed mid-swap: the next run copies all
    os.replace(staging_db, final_db)
    old = out_dir / "parquet.old"
    shutil.rmtree(old, ignore_errors=True)
    if final_parquet.exists():
        os.replace(final_parquet, old)
    os.replace(staging_parquet, final_parquet)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(staging_manifest, manifest_path)
    undocumented = tuple(
        f"{t['schema']}.{t['table']}.{c['name']}"
        for t in manifest["tables"]
        for c in t["columns"]
        if not c["description"]
    )
    return PublishResult(
        duckdb_path=final_db,
        parquet_dir=final_parquet,
        tables=tables,
        copied=copied,
        removed=removed,
        manifest_path=manifest_path,
        undocumented_columns=undocumented,
    )
