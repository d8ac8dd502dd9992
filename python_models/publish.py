"""Publish a read-only copy of the warehouse and Parquet exports for BI readers.

The copy holds what BI should read and nothing else: the tables and views of PUBLISHED_SCHEMAS
(views are materialized as tables) except the pipeline's intermediate steps (`int_*`), each
with its description as a warehouse comment, and a manifest of what is in it: the tables
`docs.published_tables` / `docs.published_columns` and `manifest.json` beside the file.
Descriptions come from the warehouse comments dbt writes (persist_docs) and, for the tables
Python writes, from python_models.bi_docs. Parquet: `parquet/<schema>.<table>/<YYYY-MM>.parquet`
(one file per month of the table's first date column; a big table's months that a day changed
since it was written whole are one file per day, `<YYYY-MM-DD>.parquet`: readers read the
folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from python_models.warehouse import content_fingerprint
from python_models.warehouse.duckdb_engine import VACUUM_DEAD_SHARE, dead_row_share
from python_models.warehouse.sql_text import quote_ident

# The schemas dbt builds, then those Python writes (scores, the model registry's tables,
# impact). A view of dbt's may read Python's tables (marts.fct_churn_scores).
DBT_SCHEMAS = ("marts", "features", "reports")
PYTHON_SCHEMAS = ("ml_scores", "ml", "impact")
PUBLISHED_SCHEMAS = (*DBT_SCHEMAS, *PYTHON_SCHEMAS)
# Intermediate steps (dbt's int_* models, e.g. the feature families in features/prep) stay in
# the pipeline's warehouse: BI reads the marts built from them.
PRIVATE_PREFIXES = ("int_",)
# Pipeline bookkeeping columns, left out of the copy: `batch_id` (the load batch that last
# rewrote a row, which the incremental models read to find their work) changes on rows a day
# re-touches with unchanged content, so published it would change a day of the table for no
# reader (fct_event_transitions: ~26 of its 182 days on a 1M day, each re-inserted and its
# Parquet file rewritten).
PRIVATE_COLUMNS = ("batch_id",)
DOCS_SCHEMA = "docs"
# Beside the publication: what it holds, with each table's content fingerprint when copied.
MANIFEST_FILE = "manifest.json"
# The manifest's "layout": a publication of another layout (older file naming) is republished
# whole once, since its files cannot be updated day by day.
LAYOUT = 2


@dataclass(frozen=True)
class PublishResult:
    duckdb_path: Path
    parquet_dir: Path
    tables: list[str]  # every published table
    copied: list[str] = field(default_factory=list)  # the ones written by this run
    beside: list[str] = field(default_factory=list)  # of those, written by Publish.write_beside
    removed: list[str] = field(default_factory=list)  # gone from the warehouse, so unpublished
    manifest_path: Path | None = None
    undocumented_columns: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.removed)


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`schema.table` of every table and view the copy holds, in order (of the connection's
    own database: a publish attaches its file beside it)."""
    placeholders = ", ".join("?" for _ in PUBLISHED_SCHEMAS)
    rows = con.execute(
        f"""
        select table_schema, table_name from information_schema.tables
        where table_schema in ({placeholders})
          and table_type in ('BASE TABLE', 'VIEW')
          and table_catalog = current_database()
        order by 1, 2
        """,
        list(PUBLISHED_SCHEMAS),
    ).fetchall()
    return [f"{s}.{t}" for s, t in rows if not t.startswith(PRIVATE_PREFIXES)]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_manifest(
    con: duckdb.DuckDBPyConnection, tables: list[str], row_counts: dict[str, int]
) -> dict:
    """What the copy holds: per table its description, row count (`row_counts`, counted by
    the publish's scan) and columns (name, position, type, description). Descriptions are the
    warehouse's comments (dbt's persist_docs), else python_models.bi_docs (the tables Python
    writes)."""
    from python_models.bi_docs import comment_docs

    declared = comment_docs()
    wanted = set(tables)
    table_comments = {
        name: comment
        for name, comment in con.execute(
            "select schema_name || '.' || table_name, comment from duckdb_tables() "
            "where database_name = current_database() "
            "union all select schema_name || '.' || view_name, comment from duckdb_views() "
            "where database_name = current_database()"
        ).fetchall()
        if name in wanted
    }
    columns: dict[str, list[dict]] = {table: [] for table in tables}
    for owner, name, data_type, position, comment in con.execute(
        "select schema_name || '.' || table_name, column_name, data_type, column_index, comment "
        "from duckdb_columns() where database_name = current_database() order by 1, column_index"
    ).fetchall():
        if owner in wanted and name not in PRIVATE_COLUMNS:
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
        rows = row_counts[table]
        manifest_tables.append(
            {
                "schema": schema,
                "table": name,
                "description": text.strip() or None,
                "row_count": int(rows),
                "columns": columns[table],
            }
        )
    return {"layout": LAYOUT, "schemas": list(PUBLISHED_SCHEMAS), "tables": manifest_tables}


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


def _comment(
    con: duckdb.DuckDBPyConnection, target: str, manifest: dict, only: set[str] | None = None
) -> None:
    """The tables' descriptions as comments in the copy (`only`: those tables)."""
    for table in manifest["tables"]:
        if only is not None and f"{table['schema']}.{table['table']}" not in only:
            continue
        name = f'{target}."{table["schema"]}"."{table["table"]}"'
        if table["description"]:
            con.execute(f"comment on table {name} is {_literal(table['description'])}")
        for column in table["columns"]:
            if column["description"]:
                con.execute(
                    f'comment on column {name}."{column["name"]}" is '
                    + _literal(column["description"])
                )


# -- How a changed table is published: whole, or only its changed days ---------------------
# A day changes few days of a big table (the new day's rows, late events, re-stitched or
# re-cut sessions), so a big table is compared day by day (by its first date column, else its
# first timestamp's date): each day's row count and sum of row hashes is kept in the manifest,
# and only the days whose figures changed are deleted from the published copy and inserted
# again. Its Parquet files are one per month of that column when written whole; a month a
# day changes becomes one file per day, so from then on only the changed days' files are
# written (a month file at 10M events is ~1.7M rows of fct_events rewritten for one new day);
# a table without a date or timestamp column is one file.
DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
UNPARTITIONED = "all"  # the Parquet file of a table without a date column
UNDATED = "undated"  # the day, and Parquet file, of rows whose date is null
PARTITION_COLUMN = "uba_partition"  # the folder name DuckDB's partitioned write uses, dropped
# Tables of at least this many rows are updated by days (or, without a date column, by a row
# diff); smaller ones are copied whole (cheaper than comparing them). A change touching more
# than DIFF_MAX_SHARE of the rows copies the table whole too.
DIFF_MIN_ROWS = 50_000
DIFF_MAX_SHARE = 0.5


def _catalog_columns(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple]]:
    """{schema.table: [(column, type), ...] in order} of every table and view of `catalog`
    (one catalog query: one per table cost ~20 ms each)."""
    columns: dict[str, list[tuple]] = {}
    for owner, name, kind in con.execute(
        "select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? order by schema_name, table_name, column_index",
        [catalog],
    ).fetchall():
        columns.setdefault(owner, []).append((name, kind))
    return columns


@dataclass(frozen=True)
class _Layout:
    """The column a table is cut by (days for the diff, days or months for Parquet), or None;
    `daily`: one Parquet file per day (big tables, those compared by day), else per month."""

    column: str | None
    daily: bool = False

    @classmethod
    def of(cls, columns: list[tuple]) -> _Layout:
        dated = [n for n, kind in columns if kind == "DATE"] or [
            n for n, kind in columns if kind in DATE_TYPES
        ]
        return cls(dated[0] if dated else None)

    @property
    def day_sql(self) -> str:
        return f'cast("{self.column}" as date)'

    @property
    def partition_sql(self) -> str:
        """A row's Parquet file as a number, YYYYMM or YYYYMMDD (null: UNDATED; file_name
        spells it): with a text key (strftime) the big tables' partitioned writes took ~13%
        more CPU (1M pairs, docs/performance-log.md, wt-pub18). Only for a dated table."""
        day = self.day_sql
        if self.daily:
            return f"year({day}) * 10000 + month({day}) * 100 + day({day})"
        return f"year({day}) * 100 + month({day})"

    def file_name(self, key: str) -> str:
        """The Parquet file (without .parquet) of partition_sql's value `key` as DuckDB names
        its folder."""
        if not key.isdigit():  # DuckDB's folder for a null key
            return UNDATED
        if self.daily:
            key = key.zfill(8)  # a year before 1000, as strftime's %Y pads it
            return f"{key[:4]}-{key[4:6]}-{key[6:]}"
        key = key.zfill(6)
        return f"{key[:4]}-{key[4:]}"

    def file_of(self, day: str) -> str:
        return day if day == UNDATED or self.daily else day[:7]

    def rows_of_days(self, days: list[str]) -> str:
        """A predicate for the rows of `days` (ISO dates and UNDATED): ranges of the column
        itself, so DuckDB skips the row groups outside them (the tables grow by day)."""
        dated = sorted(date.fromisoformat(d) for d in set(days) if d != UNDATED)
        ranges: list[list[date]] = []  # [first day, day after the last], consecutive merged
        for day in dated:
            if ranges and ranges[-1][1] == day:
                ranges[-1][1] = day + timedelta(days=1)
            else:
                ranges.append([day, day + timedelta(days=1)])
        column = f'"{self.column}"'
        parts = [
            f"({column} >= date '{start}' and {column} < date '{end}')" for start, end in ranges
        ]
        if UNDATED in days:
            parts.append(f"{column} is null")
        return " or ".join(parts) or "false"

    def rows_of_files(self, files: set[str]) -> str:
        """A predicate for the rows of Parquet files `files` (YYYY-MM-DD, YYYY-MM, UNDATED or
        'all')."""
        if self.column is None:
            return "true"
        days = []
        for month in files:
            if month == UNDATED or len(month) == len("YYYY-MM-DD"):
                days.append(month)
                continue
            first = date.fromisoformat(f"{month}-01")
            after = (first + timedelta(days=32)).replace(day=1)
            days += [str(first + timedelta(days=n)) for n in range((after - first).days)]
        return self.rows_of_days(days)


def _source(qualified: str, columns: list[tuple]) -> tuple[str, list[tuple]]:
    """The warehouse table `qualified` (`columns`: all of its (name, type)) as the copy holds
    it: for `from`, the table itself or a subquery without its PRIVATE_COLUMNS, and the
    published columns."""
    schema, name = qualified.split(".")
    table = f'"{schema}"."{name}"'
    kept = [column for column in columns if column[0] not in PRIVATE_COLUMNS]
    if len(kept) == len(columns):
        return table, columns
    return f"(select {', '.join(quote_ident(c) for c, _ in kept)} from {table})", kept


def _day_figures(
    con: duckdb.DuckDBPyConnection, source: str, layout: _Layout, where: str = "true"
) -> dict:
    """{day: "rows:sum of row hashes"} of the table's rows where `where` holds (`source`:
    _source's; one scan; the days' fingerprints)."""
    rows = con.execute(
        f"select coalesce(cast({layout.day_sql} as varchar), {_literal(UNDATED)}), count(*), "
        f"cast(sum(hash(t)::hugeint) as varchar) from {source} t where {where} group by 1"
    ).fetchall()
    return {day: f"{count}:{total}" for day, count, total in rows}


def _figures_since(
    con: duckdb.DuckDBPyConnection, source: str, layout: _Layout, before: dict, first: date
) -> dict | None:
    """The table's per-day figures when its rows of the days before `first` are known to be
    those `before` (the published figures) describes: only the rows from `first` on (and the
    undated ones) are hashed, the earlier days' figures are `before`'s. Checked by every day's
    row count (a scan of the date column alone): None, so the caller scans the table, when a
    day before `first` gained or lost rows (the caller's knowledge was wrong)."""
    counts = dict(
        con.execute(
            f"select coalesce(cast({layout.day_sql} as varchar), {_literal(UNDATED)}), count(*) "
            f"from {source} t group by 1"
        ).fetchall()
    )
    cut = first.isoformat()
    kept = {day: value for day, value in before.items() if day != UNDATED and day < cut}
    earlier = {day for day in counts if day != UNDATED and day < cut}
    if earlier != set(kept) or any(int(kept[d].split(":")[0]) != counts[d] for d in earlier):
        return None
    days = kept | _day_figures(con, source, layout, f"\"{layout.column}\" >= date '{cut}'")
    if UNDATED in counts:
        days |= _day_figures(con, source, layout, f'"{layout.column}" is null')
    return days


@dataclass(frozen=True)
class _Content:
    """What publishing needs to know of one warehouse table, from one scan of it."""

    source: str  # the table as published, for `from` (_source)
    columns: list[tuple]  # its published (name, type) in order
    layout: _Layout
    rows: int
    fingerprint: str  # rows, the sum of its row hashes and its columns: equal for equal tables
    days: dict[str, str] | None  # per-day figures of a big table with a date column


def _contents(
    con: duckdb.DuckDBPyConnection,
    tables: list[str],
    previous: dict | None = None,
    unchanged_before: dict[str, date] | None = None,
) -> dict[str, _Content]:
    """Every table's content figures, one scan each: a dated table is summed by day and its
    fingerprint derived from the days' figures (so a big table is not scanned twice). A table
    in `unchanged_before` (its rows before that day are as published: `previous`, the current
    manifest's tables, holds their figures) hashes only its later rows (_figures_since)."""
    catalog = con.execute("select current_database()").fetchone()[0]
    every = _catalog_columns(con, catalog)
    contents = {}
    for table in tables:
        source, columns = _source(table, every.get(table, []))
        layout = _Layout.of(columns)
        before = (previous or {}).get(table) or {}
        first = (unchanged_before or {}).get(table)
        days = None
        if layout.column and first and before.get("days") and before["columns"] == columns:
            days = _figures_since(con, source, layout, before["days"], first)
        if layout.column and days is None:
            days = _day_figures(con, source, layout)
        if layout.column:
            figures = [tuple(map(int, value.split(":"))) for value in days.values()]
            rows, total = sum(f[0] for f in figures), sum(f[1] for f in figures)
        else:
            days = None
            rows, total = con.execute(
                f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from {source} t"
            ).fetchone()
        big = days is not None and rows >= DIFF_MIN_ROWS
        contents[table] = _Content(
            source=source,
            columns=columns,
            layout=_Layout(layout.column, daily=big),
            rows=int(rows),
            fingerprint=content_fingerprint(rows, total, columns),
            days=days if big else None,
        )
    return contents


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    source: str,
    layout: _Layout,
    folder: Path,
    files: set[str] | None = None,
) -> None:
    """The table's rows into `folder/<day or month>.parquet`, all of them or only the given
    files' (their old files removed first; a day or month with no rows left has no file). An
    empty table is one empty file, so readers still find its columns. A table with one file
    per day is written a month at a time: DuckDB keeps at most 100 partition files open and
    splits the rest into several files each (which then cost a second pass to join).
    `source`: the table as published (_source)."""
    folder.mkdir(parents=True, exist_ok=True)
    if files is not None:
        for file in files:
            (folder / f"{file}.parquet").unlink(missing_ok=True)
    whole = f"copy {source} to '{folder / f'{UNPARTITIONED}.parquet'}' (format parquet)"
    if layout.column is None:  # one file, no partitioning (an empty table: an empty file)
        con.execute(whole)
        return
    if files is None or not layout.daily:
        batches = [files]
    else:
        by_month: dict[str, set[str]] = {}
        for file in files:
            by_month.setdefault(file[:7], set()).add(file)
        batches = list(by_month.values())
    scratch = folder.with_name(folder.name + ".writing")
    for batch in batches:
        if batch is not None and not batch:
            continue
        where = "" if batch is None else f" where {layout.rows_of_files(batch)}"
        shutil.rmtree(scratch, ignore_errors=True)
        con.execute(
            f"copy (select *, {layout.partition_sql} as {PARTITION_COLUMN} from {source} t"
            f"{where}) to '{scratch}' (format parquet, partition_by ({PARTITION_COLUMN}))"
        )
        for part in scratch.glob(f"{PARTITION_COLUMN}=*"):
            written = sorted(part.glob("*.parquet"))
            target = folder / f"{layout.file_name(part.name.split('=', 1)[1])}.parquet"
            if len(written) == 1:
                os.replace(written[0], target)
            else:  # DuckDB split a big partition: one file of them all
                con.execute(
                    f"copy (select * from read_parquet({[str(f) for f in written]})) "
                    f"to '{target}' (format parquet)"
                )
        shutil.rmtree(scratch, ignore_errors=True)
    if files is None and not any(folder.glob("*.parquet")):
        con.execute(whole)


def _replace_changed_days(con, qualified: str, content: _Content, days: list[str]) -> None:
    """The staged copy's rows of `days` made the warehouse's: only the rows that differ when
    they are few (a late event changes a row or two of an old day, whose other rows would be
    deleted and written again), else the days' rows replaced whole."""
    where = content.layout.rows_of_days(days)
    if _replace_changed_rows(con, qualified, content.source, where):
        return
    schema, name = qualified.split(".")
    con.execute(f'delete from publish_target."{schema}"."{name}" where {where}')
    con.execute(
        f'insert into publish_target."{schema}"."{name}" '
        f"select * from {content.source} t where {where}"
    )


def _replace_changed_rows(
    con: duckdb.DuckDBPyConnection, qualified: str, source: str, where: str = "true"
) -> bool:
    """Make the staged copy of `qualified` (catalog publish_target) equal the warehouse's, in
    the rows where `where` holds (all of them: a table without a date column; a big table's
    changed days), by deleting and inserting only the rows that differ; False, changing
    nothing, when more than DIFF_MAX_SHARE of those rows differ.

    Rows are compared as multisets of row hashes: a hash whose count differs between the two
    sides is changed, every row with it is deleted from the copy and the warehouse's rows with
    it inserted. No key is needed (duplicate rows are kept as many times as the warehouse
    holds them), and equal row hashes mean equal rows as much as equal fingerprints do.
    `source`: the warehouse table as published (_source)."""
    schema, name = qualified.split(".")
    target = f'publish_target."{schema}"."{name}"'
    sides = {"uba_publish_new": source, "uba_publish_old": target}
    try:
        for temp, table in sides.items():
            con.execute(
                f"create or replace temp table {temp} as "
                f"select hash(t) as h, count(*) as n from {table} t where ({where}) group by all"
            )
        con.execute(
            "create or replace temp table uba_publish_changed as "
            "select coalesce(new.h, old.h) as h, coalesce(new.n, 0) + coalesce(old.n, 0) as n "
            "from uba_publish_new as new full join uba_publish_old as old on new.h = old.h "
            "where new.n is distinct from old.n"
        )
        changed, total = con.execute(
            "select (select coalesce(sum(n), 0) from uba_publish_changed), "
            "(select coalesce(sum(n), 0) from uba_publish_new)"
        ).fetchone()
        if changed > DIFF_MAX_SHARE * max(total, 1):
            return False
        con.execute(
            f"delete from {target} where rowid in (select rowid from {target} t "
            f"where ({where}) and hash(t) in (select h from uba_publish_changed))"
        )
        con.execute(
            f"insert into {target} select * from {source} t "
            f"where ({where}) and hash(t) in (select h from uba_publish_changed)"
        )
        return True
    finally:
        for temp in (*sides, "uba_publish_changed"):
            con.execute(f"drop table if exists {temp}")


def _manifest_tables(path: Path) -> dict[str, dict] | None:
    """{table: fingerprint, rows, days, columns} of the manifest at `path`, or None when it is
    missing, unreadable or of another LAYOUT."""
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("layout") != LAYOUT:
            return None
        return {
            f"{t['schema']}.{t['table']}": {
                "fingerprint": t["fingerprint"],
                "rows": t["row_count"],
                "days": t.get("days"),
                "columns": [(c["name"], c["data_type"]) for c in t["columns"]],
            }
            for t in manifest["tables"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def published_days(out_dir: Path) -> dict[str, dict]:
    """{table: its per-day figures} of the current publication's big dated tables."""
    previous = _read_manifest(Path(out_dir)) or {}
    return {table: entry["days"] for table, entry in previous.items() if entry.get("days")}


def published_basis(out_dir: Path) -> dict | None:
    """The `basis` the current publication was published with (publish_warehouse), or None
    (none given, or no complete publication of this layout)."""
    if _read_manifest(Path(out_dir)) is None:
        return None
    try:
        return json.loads((Path(out_dir) / MANIFEST_FILE).read_text()).get("basis")
    except (OSError, ValueError):
        return None


def _read_manifest(out_dir: Path) -> dict[str, dict] | None:
    """The current publication's tables, or None when it is missing, incomplete or of an older
    layout (then everything is copied)."""
    previous = _manifest_tables(out_dir / MANIFEST_FILE)
    if previous is None or not (out_dir / DB_LINK).exists():
        return None
    parquet = out_dir / "parquet"
    if not all((parquet / table).is_dir() for table in previous):
        return None
    return previous


# -- The DuckDB file: two files in turn behind one path ---------------------------------------
# `warehouse.duckdb` (the path BI tools and `uba serve` open) is a symlink to one of DB_FILES.
# A publication writes the other one and then switches the link (an atomic rename), so
# readers see the old or the new file, never a mix. That other file held the publication
# before last, and what it holds is recorded beside it (its SIDECAR, the manifest it was
# published with): it is brought up to date in place with the tables that changed since
# then, instead of starting from a whole copy of the current file (4.4 GB at 10M events, ~8 s).
# When it cannot be (a reader still holds it open, so DuckDB's file lock refuses a writer; no
# record; a failed publish left it half done; the file changed since its record, or is
# hard-linked elsewhere: _held_by), the current file is copied and renamed over it as before:
# a reader holding the old one keeps reading the file it opened.
DB_LINK = "warehouse.duckdb"
DB_FILES = ("warehouse.a.duckdb", "warehouse.b.duckdb")


def _sidecar(db: Path) -> Path:
    return db.with_name(f"{db.name}.{MANIFEST_FILE}")


def _file_stamp(db: Path) -> list[int]:
    stat = db.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _held_by(db: Path) -> dict | None:
    """The tables `db` holds, from its sidecar, or None when that cannot be trusted: no
    sidecar, or the file is not as the sidecar recorded it (size and mtime: it changed since),
    or it has another name (a hard link, as `cp -al` of a publication makes: updating it in
    place would change the other copy too, and did, 2026-12-01, in a helper's copy of a
    prepared state)."""
    try:
        recorded = json.loads(_sidecar(db).read_text()).get("file")
        links = db.stat().st_nlink
    except (OSError, ValueError, AttributeError):
        return None
    if links > 1 or recorded != _file_stamp(db):
        return None
    return _manifest_tables(_sidecar(db))


def _open_target(
    con, target: Path, current: Path | None, previous: dict | None
) -> tuple[Path, dict]:
    """Attach as publish_target `target` itself (when it can be updated in place) or a staged
    file to be renamed over it, holding the current publication (`previous`: the current
    manifest's tables; None: start empty) or an older one. Returns the attached file and the
    tables it holds (fingerprints and figures, as `previous`)."""
    held = _held_by(target) if previous is not None else None
    _sidecar(target).unlink(missing_ok=True)  # from here on unknown until published
    if held is not None:
        try:
            con.execute(f"attach '{target}' as publish_target")
            return target, held
        except duckdb.Error:  # held open: by another process (DuckDB's file lock) or this one
            pass
    # Written beside it and renamed over it after: a reader keeps the file it opened.
    staged = target.with_name(target.name + ".new")
    staged.unlink(missing_ok=True)
    # A write-ahead log left by a killed publish must not be replayed onto this file.
    staged.with_name(staged.name + ".wal").unlink(missing_ok=True)
    copied = previous is not None and current is not None
    if copied:
        shutil.copyfile(current, staged)
    con.execute(f"attach '{staged}' as publish_target")
    return staged, previous if copied else {}


def table_contents(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    tables: list[str],
    unchanged_before: dict[str, date] | None = None,
) -> dict[str, _Content]:
    """What publishing `tables` (published ones) would find of them now, as publish_warehouse
    figures them against the publication in `out_dir` (`unchanged_before`: as its). Its
    `.fingerprint` is the table's published content: `uba refresh` takes the models' input
    tables' from here before scoring (scoring writes none of them) and hands the same figures
    to the publish, so a big input is hashed once a day, and only its days the build wrote."""
    previous = _read_manifest(Path(out_dir))
    return _contents(con, tables, previous, unchanged_before if previous else None)


def publish_warehouse(
    con,
    out_dir: Path,
    only_changed: bool = False,
    unchanged_before: dict[str, date] | None = None,
    basis: dict | None = None,
    known: dict[str, _Content] | None = None,
) -> PublishResult:
    """Copy every published table (see the module docstring) into `out_dir/warehouse.duckdb`
    and `out_dir/parquet/<schema>.<table>/<day or month>.parquet` (`all.parquet` for a table
    without a date), with comments and the manifest. Both are built beside the old ones and
    swapped in with a rename, so a reader sees the old or the new publication, never a mix,
    and a failed publish leaves the old one as it was.

    `only_changed`: tables whose content fingerprint equals the published one are carried over
    (the DuckDB file written is the publication before last brought up to date, or a copy of
    the current one; unchanged Parquet files are hard-linked), and when nothing changed nothing
    is written at all. A changed big table (DIFF_MIN_ROWS) gets only its changed rows deleted
    and inserted, and only the Parquet days those rows fall in are written again. Without it
    (a full publish, e.g. after an erasure) the file is written from nothing and the other
    file deleted, so no older publication stays on disk.

    `unchanged_before` (with `only_changed`): {table: day} where the caller knows the
    warehouse's rows of the earlier days are the ones the current publication holds (what
    the day's dbt build can have written: python_models.days_written); those days' figures
    are taken from the manifest instead of hashing every row (_figures_since). `basis`: what
    the caller needs to know next time about the warehouse as published, kept in the
    manifest (published_basis). `known`: table_contents' figures of tables unchanged since.
    A caller whose tables are final in part before the rest writes that part first with a
    Publish of its own (`uba refresh`: dbt's tables beside the scoring)."""
    return Publish(out_dir, only_changed, unchanged_before, known).finish(con, basis)


def tables_built_by_dbt(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The published tables that only dbt writes: those of DBT_SCHEMAS but the views whose SQL
    names a schema Python writes, or such a view."""
    tables = [t for t in published_tables(con) if t.split(".")[0] in DBT_SCHEMAS]
    views = {
        f"{schema}.{name}": sql
        for schema, name, sql in con.execute(
            "select schema_name, view_name, sql from duckdb_views() "
            "where not internal and database_name = current_database()"
        ).fetchall()
    }
    # A schema as an identifier before a dot (quoted or not), or a view by schema and name.
    names = [rf'"?{re.escape(schema)}"?\s*\.' for schema in PYTHON_SCHEMAS]
    reading: set[str] = set()
    while True:
        pattern = re.compile(r'(?<![\w"])(?:' + "|".join(names) + ")", re.IGNORECASE)
        found = {v for v, sql in views.items() if v not in reading and pattern.search(sql)}
        if not found:
            break
        reading |= found
        names += [
            rf'"?{re.escape(schema)}"?\s*\.\s*"?{re.escape(name)}"?(?![\w"])'
            for schema, name in (v.split(".") for v in sorted(found))
        ]
    return [t for t in tables if t not in reading]


class Publish:
    """One publish_warehouse, which a caller may run in two parts: `write_beside(cursor,
    tables)` figures tables that are final while the caller still writes others and writes
    their changed Parquet files (from another thread, on a cursor_like cursor: DuckDB runs
    both side by side), then `finish(con)` does the rest, the DuckDB file included, and swaps
    the publication in, as publish_warehouse does. The file is attached in `finish` only:
    while attached it shows in the catalog queries of every cursor of the database (the
    scoring's information_schema lookup of a feature mart found each column twice). Readers
    see nothing before the swap, and a failure in either part leaves the publication as it
    was."""

    def __init__(
        self,
        out_dir: Path,
        only_changed: bool = False,
        unchanged_before: dict[str, date] | None = None,
        known: dict[str, _Content] | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.only_changed = only_changed
        self.previous = _read_manifest(self.out_dir) if only_changed else None
        self.unchanged_before = unchanged_before if self.previous else None
        self.contents: dict[str, _Content] = dict(known or {})
        link = self.out_dir / DB_LINK
        self.current = link.resolve() if link.exists() else None
        is_first = self.current is not None and self.current.name == DB_FILES[0]
        self.target = self.out_dir / DB_FILES[is_first]
        self.final_parquet = self.out_dir / "parquet"
        self.staging_parquet = self.out_dir / "parquet.new"
        self.staged = False  # the Parquet folders staged (_stage_parquet)
        self.in_parquet: set[str] = set()  # tables whose changed Parquet files are written
        self.beside: list[str] = []  # the tables write_beside wrote

    def _figure(self, con, tables: list[str]) -> None:
        missing = [t for t in tables if t not in self.contents]
        if missing:
            self.contents |= _contents(con, missing, self.previous, self.unchanged_before)

    def _changed(self, table: str) -> bool:
        """Whether `table` differs from the current publication (all do without one)."""
        published = (self.previous or {}).get(table)
        return published is None or published["fingerprint"] != self.contents[table].fingerprint

    def _stage_parquet(self) -> None:
        """The Parquet folders staged: each table the current publication holds, hard-linked
        (its changed files are written over them; finish drops the removed tables')."""
        if self.staged:
            return
        shutil.rmtree(self.staging_parquet, ignore_errors=True)
        self.staging_parquet.mkdir()
        for table in sorted(self.previous or ()):  # changed ones too: unchanged days are kept
            shutil.copytree(
                self.final_parquet / table, self.staging_parquet / table, copy_function=os.link
            )
        self.staged = True

    def _write_parquet(self, con, tables: list[str]) -> None:
        """The changed Parquet files of `tables` (each table once per publish)."""
        self._stage_parquet()
        for qualified in tables:
            if qualified in self.in_parquet or not self._changed(qualified):
                continue
            content = self.contents[qualified]
            published = (self.previous or {}).get(qualified)
            # Big tables only: the settings' dozen statements cost more on a small one.
            big = content.rows >= DIFF_MIN_ROWS
            with _settings(con, PARQUET_SETTINGS if big else {}):
                _update_parquet(
                    con, qualified, content, self.staging_parquet / qualified, published
                )
            self.in_parquet.add(qualified)

    def write_beside(self, con, tables: list[str]) -> None:
        """Figure `tables`, which no one writes until finish, and write their changed Parquet
        files, while others are still being written."""
        self._figure(con, tables)
        changed = [t for t in tables if self._changed(t)]
        if changed:
            self._write_parquet(con, changed)
        self.beside = changed

    def finish(self, con, basis: dict | None = None) -> PublishResult:
        """Publish what write_beside did not, then swap the publication in (publish_warehouse:
        `basis`)."""
        out_dir = self.out_dir
        tables = published_tables(con)
        self._figure(con, tables)
        link = out_dir / DB_LINK
        manifest_path = out_dir / MANIFEST_FILE
        if self.previous is None:
            copied, removed = tables, []
        else:
            copied = [t for t in tables if self._changed(t)]
            removed = sorted(set(self.previous) - set(tables))
            if not copied and not removed:  # so write_beside wrote nothing either
                return PublishResult(link, self.final_parquet, tables, manifest_path=manifest_path)
        manifest = build_manifest(con, tables, {t: self.contents[t].rows for t in tables})
        if basis is not None:
            manifest["basis"] = basis
        for entry in manifest["tables"]:
            qualified = f"{entry['schema']}.{entry['table']}"
            entry["fingerprint"] = self.contents[qualified].fingerprint
            if self.contents[qualified].days is not None:  # big tables with a date column
                entry["days"] = self.contents[qualified].days
        staging_manifest = out_dir / (MANIFEST_FILE + ".new")
        self._stage_parquet()
        for table in removed:
            shutil.rmtree(self.staging_parquet / table, ignore_errors=True)

        target = self.target
        written, held = _open_target(con, target, self.current, self.previous)
        compact = dead_row_share(con, "publish_target") >= VACUUM_DEAD_SHARE
        # The checkpoint (at commit when the WAL passed its threshold, else at detach) within.
        with _settings(con, {"max_vacuum_tasks": None if compact else 0}):
            # One transaction for every change to the file: one commit (one WAL sync) instead
            # of one per statement (hundreds of comments alone); a failure rolls them all back.
            con.execute("begin")
            try:
                staged_columns = _catalog_columns(con, "publish_target")
                for qualified in sorted(set(held) - set(tables)):
                    schema, name = qualified.split(".")
                    con.execute(f'drop table if exists publish_target."{schema}"."{name}"')
                created = set()  # copied whole: without comments until commented
                for qualified in tables:
                    content = self.contents[qualified]
                    before = held.get(qualified)
                    if before is None or before["fingerprint"] != content.fingerprint:
                        staged = staged_columns.get(qualified)
                        if _update_table(con, qualified, content, before, staged):
                            created.add(qualified)
                    # Right after its copy (a first publish of the 1M bench peaked at 1.37-1.44
                    # GB with the Parquet writes after every copy, 1.06-1.16 GB so).
                    self._write_parquet(con, [qualified])
                # A table changed row by row keeps its comments (and columns: else copied
                # whole).
                _comment(con, "publish_target", manifest, only=created)
                # The file holds an older publication's manifest tables: written anew.
                con.execute(f'drop schema if exists publish_target."{DOCS_SCHEMA}" cascade')
                _write_docs_tables(con, "publish_target", manifest)
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            finally:
                con.execute("detach publish_target")
        final_parquet = self.final_parquet
        text = json.dumps(manifest, indent=1, default=str) + "\n"
        staging_manifest.write_text(text)

        manifest_path.unlink(missing_ok=True)  # killed mid-swap: the next run copies all
        if written != target:
            os.replace(written, target)
        new_link = out_dir / (DB_LINK + ".new")
        new_link.unlink(missing_ok=True)
        new_link.symlink_to(target.name)
        os.replace(new_link, link)
        old = out_dir / "parquet.old"
        shutil.rmtree(old, ignore_errors=True)
        if final_parquet.exists():
            os.replace(final_parquet, old)
        os.replace(self.staging_parquet, final_parquet)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(staging_manifest, manifest_path)
        # The file as published (size, mtime) beside what it holds: _held_by trusts only that.
        stamped = manifest | {"file": _file_stamp(target)}
        _sidecar(target).write_text(json.dumps(stamped, indent=1, default=str) + "\n")
        if not self.only_changed:  # a full publish leaves no older publication behind
            for other in (out_dir / name for name in DB_FILES if name != target.name):
                other.unlink(missing_ok=True)
                _sidecar(other).unlink(missing_ok=True)
        undocumented = tuple(
            f"{t['schema']}.{t['table']}.{c['name']}"
            for t in manifest["tables"]
            for c in t["columns"]
            if not c["description"]
        )
        return PublishResult(
            duckdb_path=link,
            parquet_dir=final_parquet,
            tables=tables,
            copied=copied,
            beside=list(self.beside),
            removed=removed,
            manifest_path=manifest_path,
            undocumented_columns=undocumented,
        )


class DayPublication:
    """The day's publish (what changed), and the figures of published tables it takes before
    it: those the scoring compares (table_contents) are not hashed twice. `bounded`: the days
    the build can have written are known (python_models.days_written), so the big tables'
    other days are not hashed again.

    On DuckDB the tables only dbt writes are figured and their Parquet files written beside
    the scoring (`start_beside`: a thread and a cursor of their own; scoring writes none of
    those tables), since each of the two leaves a core idle much of the time (a 10M day: 1.4
    busy cores each); the publish step then does the rest (Publish). `uba refresh` and the
    Dagster publish asset (orchestration/resources.py) publish a day through it."""

    def __init__(self, con, out_dir: Path, bounded: bool = False):
        from python_models import days_written

        self.con, self.out_dir, self.known = con, out_dir, {}
        bounds, self.basis = days_written.publish_bounds(con, out_dir)
        self.unchanged_before = bounds if bounded else None
        self._publish = None  # publish.Publish, once started beside the scoring
        self._beside = None  # its thread
        self._beside_outcome: dict[str, Any] = {}  # "error", "seconds"

    def start_beside(self) -> None:
        """The part of the publish that only dbt's tables need, in a thread (DuckDB only)."""
        from python_models.warehouse.duckdb_engine import cursor_like

        if getattr(self.con, "engine", None) != "duckdb":
            return
        self._publish = Publish(self.out_dir, True, self.unchanged_before, self.known)
        tables = tables_built_by_dbt(self.con)
        cursor = cursor_like(self.con)
        outcome = self._beside_outcome

        def run() -> None:
            started = time.perf_counter()
            try:
                self._publish.write_beside(cursor, tables)
            except BaseException as err:  # raised again by publish()
                outcome["error"] = err
            finally:
                outcome["seconds"] = time.perf_counter() - started
                cursor.close()
                self.con.pool_shared = False  # the next model's release_memory may run

        self.con.pool_shared = True  # the scoring keeps the pool (release_memory)
        self._beside = threading.Thread(target=run, name="uba-publish-beside", daemon=True)
        self._beside.start()

    def _join(self) -> None:
        if self._beside is not None:
            self._beside.join()  # the thread put pool_shared down as it ended
            self._beside = None

    def close(self) -> None:
        """After a failure before the publish: the thread waited for (what it wrote is in a
        staging folder the next publish starts over)."""
        self._join()
        self._publish = None

    def beside_seconds(self) -> float | None:
        return self._beside_outcome.get("seconds")

    def beside_running(self) -> bool:
        return self._beside is not None and self._beside.is_alive()

    def fingerprints(self, tables: list[str]) -> dict[str, str]:
        """{table: published content fingerprint} of the published ones among `tables`."""
        published = set(published_tables(self.con))
        wanted = [t for t in tables if t in published and t not in self.known]
        self.known |= table_contents(self.con, self.out_dir, wanted, self.unchanged_before)
        return {t: self.known[t].fingerprint for t in tables if t in self.known}

    def publish(self):
        if self._publish is None:
            return publish_warehouse(
                self.con,
                self.out_dir,
                only_changed=True,
                unchanged_before=self.unchanged_before,
                basis=self.basis,
                known=self.known,
            )
        self._join()
        publish, self._publish = self._publish, None
        if "error" in self._beside_outcome:
            raise self._beside_outcome["error"]
        return publish.finish(self.con, self.basis)


# -- The checkpoint of the updated file ----------------------------------------------------
# Updating a day deletes its rows and appends them anew; DuckDB's checkpoint then vacuums (a
# day's deletes fall in most row groups of a table whose days are spread, e.g.
# fct_event_transitions' re-touched days; the rewritten row groups go to new blocks). An
# update in place skips the vacuum while the file's dead rows are under VACUUM_DEAD_SHARE
# (python_models.warehouse.duckdb_engine); a whole copy writes none.
# _settings puts the checkpoints within the publish's transaction in that mode
# (`max_vacuum_tasks`), whatever the connection had (`uba refresh` skips the vacuum for the
# warehouse: commands/refresh.py).


@contextmanager
def _settings(con: duckdb.DuckDBPyConnection, values: dict[str, int | None]):
    """DuckDB settings (None: the default) for the statements within; the connection's own are
    put back after (the publish runs on the pipeline's connection)."""
    before = {
        name: con.execute(f"select current_setting('{name}')").fetchone()[0] for name in values
    }
    for name, value in values.items():
        con.execute(f"reset {name}" if value is None else f"set {name} = {int(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            con.execute(f"set {name} = {int(value)}")


def _changed_days(content: _Content, before: dict | None) -> list[str] | None:
    """The days whose figures differ from `before`'s, or None when the table cannot be
    updated by days (not big, no figures before, other columns)."""
    if content.days is None or not before or not before.get("days"):
        return None
    if before.get("columns") is not None and before["columns"] != content.columns:
        return None
    days, old = content.days, before["days"]
    return [d for d in set(days) | set(old) if days.get(d) != old.get(d)]


def _few_rows_in(content: _Content, days: list[str]) -> bool:
    """Whether the table's rows of `days` are at most DIFF_MAX_SHARE of its rows: then they are
    worth updating by themselves, else the table is written whole."""
    touched = sum(int(content.days[d].split(":")[0]) for d in days if d in content.days)
    return touched <= DIFF_MAX_SHARE * max(content.rows, 1)


def _update_table(
    con, qualified: str, content: _Content, before: dict | None, staged: list[tuple] | None
) -> bool:
    """The changed table into the file (publish_target), which holds it as `before` describes
    (None: not at all; `staged`: its columns there): only its changed days (or rows) when it
    is big and kept its columns, else whole. True when written whole."""
    schema, name = qualified.split(".")
    if before is not None and staged == content.columns:
        changed = _changed_days(content, before)
        if changed is not None:
            if _few_rows_in(content, changed):
                _replace_changed_days(con, qualified, content, changed)
                return False
        elif content.layout.column is None and before.get("rows", 0) >= DIFF_MIN_ROWS:
            if _replace_changed_rows(con, qualified, content.source):
                return False
    con.execute(f'create schema if not exists publish_target."{schema}"')
    con.execute(
        f'create or replace table publish_target."{schema}"."{name}" as '
        f"select * from {content.source} t"
    )
    return True


# The Parquet writes of big tables run with a smaller partition buffer. A partitioned COPY
# buffers each thread's rows of every partition up to `partitioned_write_flush_threshold`
# (524,288 rows by default): for the 35 columns of ftr_user_event_sequences that took the 1M
# first publish from ~730 MB to its ~1,450 MB peak; a quarter of it peaks at ~1,050 MB and
# keeps nearly main's row groups (lower thresholds cut them short: 32,768 rows, 17 row groups
# instead of 12 and +4% size for the sequences). One thread for them saved CPU on the loaded
# machine but cost 2.3 s of wall on a quiet one (docs/performance-log.md, wt-pub20).
PARQUET_SETTINGS = {"partitioned_write_flush_threshold": 131_072}


def _update_parquet(
    con, qualified: str, content: _Content, folder: Path, before: dict | None
) -> None:
    """The changed table's Parquet folder (holding the current publication's files, `before`):
    a big dated table that kept its columns gets only its changed days' files written (a
    month file holding a changed day is split into day files), else the table is written
    whole, one file per month: one pass, where day files would take a pass per month (DuckDB
    splits files past 100 open partitions), 187 s instead of 100 s at 10M events. So is a table
    whose changed days hold most of its rows (as _update_table): dim_users, cut by first-seen
    day, changes on most of its days every day, which wrote its 182 day files at 10M events
    (0.54 s a day, a file more each day) where its 7 month files hold the same rows."""
    layout = content.layout
    changed = _changed_days(content, before) if layout.daily else None
    if changed is None or not _few_rows_in(content, changed):
        shutil.rmtree(folder, ignore_errors=True)
        _write_parquet(con, content.source, replace(layout, daily=False), folder)
        return
    files = set(changed)
    for month in {day[:7] for day in changed if day != UNDATED}:
        if (folder / f"{month}.parquet").exists():
            (folder / f"{month}.parquet").unlink()
            files |= {day for day in content.days if day.startswith(f"{month}-")}
    _write_parquet(con, content.source, layout, folder, files)
