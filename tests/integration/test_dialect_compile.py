"""Every dbt model compiled for Spark, Snowflake and BigQuery and parsed in that dialect.

No adapter or account is needed: tests/dialect_compile.py compiles the project with dbt-duckdb
while the project's dispatched macros and `target.type` say the other engine (what it does and
does not cover is in its docstring and docs/scale.md). Each compiled model must then parse
with sqlglot in the engine's dialect, and every function sqlglot does not know in that
dialect must be one listed below with the reason, so a DuckDB-only function (arg_max, epoch,
strftime ...) reaching a model fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot

from python_models.dbt_daily_tests import NOT_NULL_COLUMNS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "tests" / "dialect_compile.py"
DIALECTS = ("spark", "snowflake", "bigquery")
# Functions sqlglot does not know in a dialect but the engine has.
KNOWN_FUNCTIONS = {
    "spark": {"conv"},  # base conversion (holdout buckets)
    "snowflake": set(),
    # dbt's cross-database macros render their default__ versions here; dbt-bigquery supplies
    # bigquery__dateadd / bigquery__listagg (date_add, string_agg) on a real BigQuery target.
    "bigquery": {"dateadd", "listagg"},
}
# Snowflake has no named WINDOW clause (sqlglot parses it there all the same): no model may
# declare one.
NAMED_WINDOW = re.compile(r"^\s*window\s+\w+\s+as\s*\(", re.IGNORECASE | re.MULTILINE)
# How the engine's pseudonymization macro shows in the compiled staging model.
PSEUDONYM_HASH = {"spark": "sha2(concat(", "snowflake": "sha2(", "bigquery": "to_hex(sha256("}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dialects")
    env = dict(os.environ)
    env.update(
        {
            "UBA_DATA_DIR": str(root / "data"),
            "UBA_DUCKDB_PATH": str(root / "data" / "empty.duckdb"),
        }
    )
    env.pop("UBA_DBT_TARGET", None)
    (root / "data").mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(root / "out"), *DIALECTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "out"


def _models(compiled: Path, dialect: str) -> dict[str, str]:
    models = compiled / dialect / "compiled" / "uba" / "models"
    return {
        path.stem: path.read_text()
        for path in models.rglob("*.sql")
        if not any(part.endswith(".yml") for part in path.relative_to(models).parts)
    }


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_model_parses_in_the_engines_dialect(compiled, dialect):
    models = _models(compiled, dialect)
    assert len(models) == len(list((ROOT / "dbt_project" / "models").rglob("*.sql")))
    # the engine's own macros were rendered, not DuckDB's
    assert PSEUDONYM_HASH[dialect] in models["stg_app__events"]
    failures, unknown = [], {}
    for name, sql in sorted(models.items()):
        try:
            trees = sqlglot.parse(sql, read=dialect)
        except sqlglot.errors.ParseError as err:
            failures.append(f"{name}: {str(err).splitlines()[0]}")
            continue
        for tree in filter(None, trees):
            for call in tree.find_all(sqlglot.exp.Anonymous):
                if call.name.lower() not in KNOWN_FUNCTIONS[dialect]:
                    unknown.setdefault(call.name.lower(), set()).add(name)
    assert not failures, "\n".join(failures)
    assert not unknown, f"functions {dialect} may not have: {unknown}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_not_null_columns_test_parses_in_the_engines_dialect(compiled, dialect):
    """The project's one generic test with SQL of its own structure (macros/
    uba_generic_tests.sql) runs on every engine: compiled for each contract model, it parses."""
    models = compiled / dialect / "compiled" / "uba" / "models"
    tests = {p.stem: p.read_text() for p in models.rglob(f"{NOT_NULL_COLUMNS}_*.sql")}
    assert len(tests) >= 11
    for name, sql in sorted(tests.items()):
        (tree,) = sqlglot.parse(sql, read=dialect)
        assert "null_rows" in tree.sql(dialect=dialect), name


def test_no_model_declares_a_named_window_snowflake_lacks(compiled):
    named = {
        name for name, sql in _models(compiled, "snowflake").items() if NAMED_WINDOW.search(sql)
    }
    assert not named, f"named WINDOW clauses (write each OVER in full): {sorted(named)}"
