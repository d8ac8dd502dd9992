"""What each node of a daily `dbt build` reads: rows scanned and CPU seconds per node.

    python benchmarks/bench_dbt.py --events 1000000 --keep DIR --prepare-only
    python benchmarks/bench_daily_reads.py DIR [--out figures.json]

DIR is a `bench_dbt.py --prepare-only` folder (history gated, the last day held back in
raw.bench_held_back). The first call builds the history in full (not measured) and keeps a
copy of the warehouse as it stands before the day (DIR/data/warehouse.before_day.duckdb); each
call then starts from that copy, appends the held-back day as one new load batch and runs the
day's `dbt build` as `uba refresh` does, in this process, with DuckDB's JSON profiler on every
statement dbt sends. Per node it prints the rows its statements scanned (all table scans), the
biggest scanned table, and the statements' CPU seconds; a node whose scanned rows grow with
the history is one whose daily cost grows with it. One dbt thread, so CPU figures do not
mix.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

_NODE_ID = re.compile(r'"node_id": "([^"]+)"')


def _scans(plan: dict, into: dict[str, int]) -> None:
    if plan.get("operator_type") == "TABLE_SCAN":
        table = str(plan.get("extra_info", {}).get("Table", "?"))
        into[table] = into.get(table, 0) + int(plan.get("operator_rows_scanned", 0))
    for child in plan.get("children", []):
        _scans(child, into)


def _profile_dbt_statements(profile_dir: Path) -> None:
    """Every statement dbt runs writes its JSON profile to profile_dir/<n>.json, its node id
    (dbt's query comment) in a side file."""
    from dbt.adapters.duckdb.environments.local import DuckDBCursorWrapper

    counter = itertools.count()
    plain_execute = DuckDBCursorWrapper.execute

    def execute(self, sql, bindings=None):
        # Settings go before the statement: one after it would replace the cursor's result.
        match = _NODE_ID.search(sql) if isinstance(sql, str) else None
        name = f"{next(counter)}" if match else "unattributed"
        if match:
            (profile_dir / f"{name}.node").write_text(match.group(1))
        self._cursor.execute("set enable_profiling = 'json'")
        self._cursor.execute(f"set profiling_output = '{profile_dir / f'{name}.json'}'")
        return plain_execute(self, sql, bindings)

    DuckDBCursorWrapper.execute = execute


def _per_node(profile_dir: Path) -> dict[str, dict]:
    nodes: dict[str, dict] = defaultdict(lambda: {"rows_scanned": 0, "cpu_s": 0.0, "tables": {}})
    for node_file in profile_dir.glob("*.node"):
        profile_file = node_file.with_suffix(".json")
        if not profile_file.exists():
            continue
        profile = json.loads(profile_file.read_text())
        node = nodes[node_file.read_text()]
        node["rows_scanned"] += int(profile.get("cumulative_rows_scanned", 0))
        node["cpu_s"] += float(profile.get("cpu_time", 0.0))
        _scans(profile, node["tables"])
    return dict(nodes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="a bench_dbt.py --prepare-only folder")
    parser.add_argument("--out", type=Path, help="write the per-node figures as JSON")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--build-history",
        action="store_true",
        help="rebuild the history (full refresh) from the kept copy with this project first",
    )
    parser.add_argument(
        "--plain-scopes",
        action="store_true",
        help="replay the data tests with their scope subqueries as dbt runs them",
    )
    parser.add_argument(
        "--project-dir", type=Path, help="another checkout's dbt_project (to pair runs)"
    )
    args = parser.parse_args()

    data = args.work / "data"
    warehouse = data / "warehouse.duckdb"
    before_day = data / "warehouse.before_day.duckdb"
    os.environ["UBA_DATA_DIR"] = str(data)
    os.environ["UBA_DUCKDB_PATH"] = str(warehouse)
    os.environ["UBA_DBT_THREADS"] = "1"
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")
    os.environ.setdefault("UBA_QUIET_SALT", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_dbt import _append_held_back

    from python_models.config import DBT_PROJECT_DIR, reload_settings
    from python_models.dbt_daily_tests import DATA_BUILD
    from python_models.dbt_runner import dbt_env, run_dbt
    from python_models.warehouse import connect

    reload_settings()
    target = args.work / "dbt-target-reads"
    if not before_day.exists() or args.build_history:
        print("building the history (not measured)...", flush=True)
        if before_day.exists():
            shutil.copyfile(before_day, warehouse)
        run_dbt(["seed"], quiet=True, target_path=target)
        run_dbt([*DATA_BUILD, "--full-refresh"], quiet=True, target_path=target)
        shutil.copyfile(warehouse, before_day)
    shutil.copyfile(before_day, warehouse)
    con = connect()
    try:
        _append_held_back(con)
    finally:
        con.close()

    os.environ.update(dbt_env())
    os.environ["DBT_TARGET_PATH"] = str(target)
    os.chdir(args.project_dir or DBT_PROJECT_DIR)
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="uba-reads-") as tmp:
        profile_dir = Path(tmp)
        _profile_dbt_statements(profile_dir)
        result = dbtRunner().invoke([*DATA_BUILD, "--quiet"])
        if not result.success:
            print(f"dbt build failed: {result.exception}", file=sys.stderr)
            return 1
        nodes = _per_node(profile_dir)

    total_rows = sum(n["rows_scanned"] for n in nodes.values())
    total_cpu = sum(n["cpu_s"] for n in nodes.values())
    print(f"{len(nodes)} nodes; rows scanned {total_rows:,}; SQL CPU {total_cpu:.1f} s")
    print(f"{'node':<70} {'rows scanned':>14} {'cpu s':>7}  biggest scan")
    ranked = sorted(nodes.items(), key=lambda item: -item[1]["rows_scanned"])
    for node_id, figures in ranked[: args.top]:
        table, rows = max(figures["tables"].items(), key=lambda kv: kv[1], default=("-", 0))
        print(
            f"{node_id.split('.', 2)[-1]:<70} {figures['rows_scanned']:>14,} "
            f"{figures['cpu_s']:>7.2f}  {table} {rows:,}"
        )
    from python_models.dbt_daily_tests import compiled_tests

    plan = compiled_tests(json.loads((target / "manifest.json").read_text()), require_all=False)
    tests = replayed_tests(plan, plain_scopes=args.plain_scopes, top=args.top)
    if args.out:
        args.out.write_text(json.dumps({"nodes": nodes, "tests": tests}, indent=1, sort_keys=True))
    return 0


def replayed_tests(plan: list[dict], plain_scopes: bool, top: int) -> dict[str, dict]:
    """The day's data tests as `uba refresh` replays them (python_models/dbt_daily_tests.py:
    the SQL dbt compiled for them, scope values written in when they run, not_null tests of
    one model in one scan, the tests the warehouse's NOT NULL constraints imply left out),
    one query at a time with DuckDB's profiler: rows scanned and CPU per query. With
    --plain-scopes the marked scope subqueries stay subqueries (dbt's form)."""
    from python_models import dbt_daily_tests
    from python_models.warehouse import connect

    figures: dict[str, dict] = {}
    con = connect()
    try:
        implied = dbt_daily_tests.implied_tests(con, plan)
        plan = [test for test in plan if test["name"] not in implied]
        if not plain_scopes:
            plan = dbt_daily_tests.run_time_values(con, plan)
        with tempfile.TemporaryDirectory(prefix="uba-tests-") as tmp:
            profile = Path(tmp) / "query.json"
            con.execute("set enable_profiling = 'json'")
            con.execute(f"set profiling_output = '{profile}'")
            for group, query in dbt_daily_tests._queries(plan):
                con.execute(query).fetchall()
                result = json.loads(profile.read_text())
                name = group[0]["name"] + (f" (+{len(group) - 1})" if len(group) > 1 else "")
                figures[name] = {
                    "rows_scanned": int(result.get("cumulative_rows_scanned", 0)),
                    "cpu_s": float(result.get("cpu_time", 0.0)),
                }
            con.execute("set enable_profiling = 'no_output'")
    finally:
        con.close()
    rows = sum(f["rows_scanned"] for f in figures.values())
    cpu = sum(f["cpu_s"] for f in figures.values())
    print(
        f"\n{len(plan)} data tests replayed in {len(figures)} queries ({len(implied)} implied by "
        f"NOT NULL constraints, not run, as the replay leaves them); rows scanned {rows:,}; "
        f"SQL CPU {cpu:.1f} s"
    )
    ranked = sorted(figures.items(), key=lambda item: -item[1]["cpu_s"])
    for name, test in ranked[:top]:
        print(f"{name:<70} {test['rows_scanned']:>14,} {test['cpu_s']:>7.2f}")
    return figures


if __name__ == "__main__":
    sys.exit(main())
