"""Where one publish goes: every SQL statement of `publish_warehouse` timed (wall and process
CPU, DuckDB's threads included) and summed by kind and by table.

    python benchmarks/bench_publish.py WAREHOUSE OUT [--changed] [--tables a.b,c.d]

WAREHOUSE is opened read-only (attached as `warehouse`, the name its views use), so a prepared
state can be read in place; OUT receives the publication (a copy of a state's `published/`
with `--changed` replays a day's publish onto it: copy the file a publish updates in place for
real, python_models/publish.py). Set UBA_DUCKDB_MEMORY_LIMIT at 10M. Kinds: `copy` (a table
written whole into the DuckDB file), `parquet`, `figures` (the per-day content figures),
`insert`/`delete` (changed days), `rowdiff`, `commit` (DuckDB's checkpoint), `other`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = (  # (kind, how its statement starts), first match wins
    ("copy", "create or replace table publish_target"),
    ("parquet", "copy"),
    ("insert", "insert into publish_target"),
    ("delete", "delete from publish_target"),
    ("commit", "commit"),
    ("figures", "select coalesce(cast("),
    ("figures", "select count(*), coalesce(sum(hash(t)"),
)


def kind_of(sql: str) -> tuple[str, str]:
    """(kind, schema.table or "") of a statement the publish ran."""
    text = " ".join(sql.split()).lower()
    kind = next((k for k, start in KINDS if text.startswith(start)), None)
    if kind is None:
        kind = "rowdiff" if "uba_publish_" in text else "other"
    table = re.search(r'"(\w+)"\."(\w+)"', text)
    return kind, f"{table[1]}.{table[2]}" if table and kind != "other" else ""


class Timed:
    """The connection, each `execute` timed into `spent[(kind, table)]`."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con
        self.spent: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])

    def execute(self, sql, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self._con.execute(sql, *args)
        finally:
            spent = self.spent[kind_of(sql)]
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu

    def __getattr__(self, name):
        return getattr(self._con, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--changed", action="store_true", help="publish only what changed")
    parser.add_argument("--tables", help="publish only these schema.table names (comma list)")
    parser.add_argument("--top", type=int, default=15, help="statements by table to print")
    args = parser.parse_args()

    import python_models.publish as publish

    if args.tables:
        wanted = set(args.tables.split(","))
        every = publish.published_tables
        publish.published_tables = lambda con: [t for t in every(con) if t in wanted]
    con = duckdb.connect()
    if os.environ.get("UBA_DUCKDB_MEMORY_LIMIT"):
        con.execute(f"set memory_limit = '{os.environ['UBA_DUCKDB_MEMORY_LIMIT']}'")
    con.execute(f"attach '{args.warehouse}' as warehouse (read_only)")
    con.execute("use warehouse")
    timed = Timed(con)
    wall, cpu = time.perf_counter(), time.process_time()
    result = publish.publish_warehouse(timed, args.out, only_changed=args.changed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"publish: {wall:.1f} s wall, {cpu:.1f} s CPU, {len(result.copied)} of "
        f"{len(result.tables)} tables written, load average {os.getloadavg()[0]:.1f}"
    )
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (kind, _), (w, c) in timed.spent.items():
        by_kind[kind][0] += w
        by_kind[kind][1] += c
    for kind, (w, c) in sorted(by_kind.items(), key=lambda item: -item[1][1]):
        print(f"  {kind:<8} {w:7.1f} s wall {c:7.1f} s CPU")
    ranked = sorted(timed.spent.items(), key=lambda item: -item[1][1])
    for (kind, table), (w, c) in [item for item in ranked if item[0][1]][: args.top]:
        print(f"    {kind:<8} {table:<45} {w:7.1f} s wall {c:7.1f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
