"""A two-model dbt project where one node runs out of DuckDB memory beside another's leftovers
but fits alone: the out-of-memory retry's tests (`uba build` and the Dagster dbt asset)."""

from __future__ import annotations

from pathlib import Path

# A two-model project on this repository's `uba` profile (memory_limit from
# UBA_DUCKDB_MEMORY_LIMIT). `ballast`'s post-hook leaves a table in an in-memory database
# attached to the DuckDB instance: memory that the next node in the same dbt process cannot
# use, as a heavy model can leave behind. `heavy` builds one list per key (list aggregate
# states do not spill). With no temporary directory nothing is offloaded to disk, so whether
# `heavy` fits depends on the rows alone: 2M fit 100 MB, not beside 5M rows of ballast; 20M
# never fit.
_PROJECT = {
    "dbt_project.yml": """
name: memory_retry
version: "1.0"
profile: uba
on-run-start: ["set temp_directory = ''"]
""",
    "models/ballast.sql": """
{{ config(materialized='table', post_hook=[
    after_commit("attach if not exists ':memory:' as held"),
    after_commit("create or replace table held.ballast as "
        ~ "select i from range({{ var('ballast_rows') }}) as t(i)"),
]) }}
select 1 as id
""",
    "models/heavy.sql": """
{{ config(materialized='table') }}
-- depends_on: {{ ref('ballast') }}
select k, list(i) as members
from (select i, i % 1000 as k from range({{ var('heavy_rows') }}) as t(i)) as numbers
group by k
""",
}


def memory_project(
    tmp_path, monkeypatch, failing_test: bool = False, project_vars: dict | None = None
) -> Path:
    """The project under tmp_path/project, with a data test that always fails if asked, and
    `project_vars` (ballast_rows, heavy_rows) written into dbt_project.yml for callers that
    cannot pass --vars (Dagster)."""
    project = tmp_path / "project"
    files = dict(_PROJECT)
    if project_vars:
        files["dbt_project.yml"] += "vars:\n" + "".join(
            f"  {name}: {value}\n" for name, value in project_vars.items()
        )
    if failing_test:
        files["tests/always_fails.sql"] = "select 1 as id"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text.lstrip())
    monkeypatch.setenv("UBA_DUCKDB_MEMORY_LIMIT", "100MB")
    monkeypatch.setenv("UBA_DBT_THREADS", "2")
    return project


def heavy_rows_in(path: Path) -> tuple[int, int] | None:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        if not con.execute(
            "select count(*) from information_schema.tables where table_name = 'heavy'"
        ).fetchone()[0]:
            return None
        return con.execute("select count(*), sum(len(members)) from main.heavy").fetchone()
    finally:
        con.close()
